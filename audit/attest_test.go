package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sampleStatement() Statement {
	return NewStatement(
		[]Subject{{Name: "model:demo@1.0.0", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}}},
		Evaluation{
			ReleaseID: testRelease, Verdict: "Released", GateVerdict: "Blocked",
			Rules:          []GateRule{{Name: "asr-upper", Metric: "adversarial.asr_upper", Value: 0.07, Op: "<=", Threshold: 0.05, Severity: "block"}},
			Decisions:      []Decision{{Kind: KindOverride, Actor: "alice@example.com", Reason: "SEC-42", Seq: 4}},
			AuditChainHead: strings.Repeat("cd", 32), AuditRecords: 5, ConfigSHA256: strings.Repeat("ef", 32),
			Metrics: map[string]float64{"adversarial.asr": 0.03},
		})
}

func TestAttestationRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	privPath, pubPath, err := GenerateKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(privPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode = %v, %v; want 0600", fi.Mode(), err)
	}
	if _, _, err := GenerateKeyPair(dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second keygen into the same dir: err = %v, want refusal", err)
	}
	priv, err := LoadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}

	env, err := Sign(sampleStatement(), priv, KeyID(pub))
	if err != nil {
		t.Fatal(err)
	}
	// Through its stored form, as attest verify reads it.
	b, _ := json.Marshal(env)
	env, err = ParseEnvelope(b)
	if err != nil {
		t.Fatal(err)
	}
	st, err := VerifyEnvelope(env, pub)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	ev, err := st.Evaluation()
	if err != nil || ev.ReleaseID != testRelease || ev.Decisions[0].Actor != "alice@example.com" || ev.Rules[0].Value != 0.07 {
		t.Fatalf("evaluation = %+v, %v", ev, err)
	}

	// A changed payload (verdict flipped) fails.
	payload, _ := base64.StdEncoding.DecodeString(env.Payload)
	forged := env
	forged.Payload = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"verdict":"Released"`, `"verdict":"Blocked!"`, 1)))
	if forged.Payload == env.Payload {
		t.Fatal("test did not change the payload")
	}
	if _, err := VerifyEnvelope(forged, pub); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("forged payload: err = %v, want ErrBadSignature", err)
	}
	// A different payload type with the same bytes fails (PAE binds it).
	retyped := env
	retyped.PayloadType = "application/json"
	if _, err := VerifyEnvelope(retyped, pub); err == nil {
		t.Fatal("retyped envelope verified")
	}
	// Another key fails.
	otherPub, _, _ := ed25519.GenerateKey(nil)
	if _, err := VerifyEnvelope(env, otherPub); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("wrong key: err = %v, want ErrBadSignature", err)
	}
}

func TestPAE(t *testing.T) {
	// The DSSE specification's own example.
	got := string(PAE("http://example.com/HelloWorld", []byte("hello world")))
	want := "DSSEv1 29 http://example.com/HelloWorld 11 hello world"
	if got != want {
		t.Fatalf("PAE = %q, want %q", got, want)
	}
}

func TestKeyErrorsNameFileAndFix(t *testing.T) {
	dir := t.TempDir()
	privPath, pubPath, err := GenerateKeyPair(dir)
	if err != nil {
		t.Fatal(err)
	}
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a key"), 0o600)
	for name, call := range map[string]func() error{
		"public as private": func() error { _, err := LoadPrivateKey(pubPath); return err },
		"private as public": func() error { _, err := LoadPublicKey(privPath); return err },
		"junk":              func() error { _, err := LoadPublicKey(junk); return err },
		"missing":           func() error { _, err := LoadPrivateKey(filepath.Join(dir, "nope.key")); return err },
	} {
		err := call()
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if !strings.Contains(err.Error(), dir) || !(strings.Contains(err.Error(), "keygen") || strings.Contains(err.Error(), "openssl")) {
			t.Errorf("%s: error does not name the file and the fix: %v", name, err)
		}
	}
	if _, err := Sign(Statement{Type: StatementType, PredicateType: PredicateType}, make(ed25519.PrivateKey, ed25519.PrivateKeySize), ""); err == nil {
		t.Error("Sign accepted a statement without subjects")
	}
}
