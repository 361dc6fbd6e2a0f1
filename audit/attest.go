package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/sandgate/sandgate/gate"
)

// In-toto and DSSE identifiers. The predicate type names the schema of
// Evaluation; change it when that schema changes incompatibly.
const (
	StatementType   = "https://in-toto.io/Statement/v1"
	PredicateType   = "https://sandgate.dev/release-evaluation/v1"
	PayloadType     = "application/vnd.in-toto+json"
	AttestationFile = "attestation.json" // under releases/<id>/audit/
)

// Default file names written by GenerateKeyPair.
const (
	PrivateKeyFile = "attestation.key"
	PublicKeyFile  = "attestation.pub"
)

// ErrBadSignature is wrapped by VerifyEnvelope when no signature verifies
// under the given key: the statement was altered or signed by someone else.
var ErrBadSignature = errors.New("attestation signature does not verify")

// Statement is an in-toto Statement v1.
type Statement struct {
	Type          string    `json:"_type"`
	Subject       []Subject `json:"subject"`
	PredicateType string    `json:"predicateType"`
	Predicate     any       `json:"predicate"`
}

// Subject is an artifact the statement is about, by digest.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"` // "sha256": lowercase hex
}

// Evaluation is the predicate sandgate signs: what was decided about a
// release and on what evidence.
type Evaluation struct {
	ReleaseID      string             `json:"release_id"`
	ModelName      string             `json:"model_name,omitempty"`
	ModelVersion   string             `json:"model_version,omitempty"`
	Verdict        string             `json:"verdict"`                // final decision, after any human decision
	GateVerdict    string             `json:"gate_verdict,omitempty"` // what the policy alone said
	Rules          []GateRule         `json:"rules"`
	Decisions      []Decision         `json:"decisions,omitempty"`
	AuditChainHead string             `json:"audit_chain_head"` // hash of the final audit record
	AuditRecords   int64              `json:"audit_records"`
	ConfigSHA256   string             `json:"config_sha256"`
	Metrics        map[string]float64 `json:"metrics,omitempty"`
}

// GateRule is one rule's outcome, copied from the gate so the attestation
// schema does not change when the gate's internals do.
type GateRule struct {
	Name      string  `json:"name"`
	Metric    string  `json:"metric"`
	Value     float64 `json:"value"`
	Op        string  `json:"op"`
	Threshold float64 `json:"threshold"`
	Severity  string  `json:"severity"`
	Passed    bool    `json:"passed"`
	Missing   bool    `json:"missing,omitempty"`
}

// Decision is a human decision (approval, override, rejection).
type Decision struct {
	Kind   string `json:"kind"`
	Actor  string `json:"actor"`
	Reason string `json:"reason"`
	Seq    int64  `json:"seq,omitempty"` // the audit record that holds it
}

// GateRules converts a gate verdict's rule results.
func GateRules(v gate.Verdict) []GateRule {
	out := make([]GateRule, 0, len(v.Rules))
	for _, r := range v.Rules {
		out = append(out, GateRule{Name: r.Name, Metric: r.Metric, Value: r.Value, Op: r.Op,
			Threshold: r.Threshold, Severity: r.Severity, Passed: r.Passed, Missing: r.Missing})
	}
	return out
}

// DecisionsFrom collects the human decisions recorded in an audit chain.
func DecisionsFrom(recs []Record) []Decision {
	var out []Decision
	for _, r := range recs {
		switch r.Kind {
		case KindApproval, KindOverride, KindRejection:
			out = append(out, Decision{Kind: r.Kind, Actor: r.Actor, Reason: r.Reason, Seq: r.Seq})
		}
	}
	return out
}

// NewStatement builds the statement for a release evaluation.
func NewStatement(subjects []Subject, ev Evaluation) Statement {
	return Statement{Type: StatementType, Subject: subjects, PredicateType: PredicateType, Predicate: ev}
}

// Evaluation decodes the predicate (after VerifyEnvelope it is generic JSON).
func (s Statement) Evaluation() (Evaluation, error) {
	if s.PredicateType != PredicateType {
		return Evaluation{}, fmt.Errorf("audit: predicate type %q is not %q", s.PredicateType, PredicateType)
	}
	b, err := json.Marshal(s.Predicate)
	if err != nil {
		return Evaluation{}, fmt.Errorf("audit: encode predicate: %w", err)
	}
	var ev Evaluation
	if err := json.Unmarshal(b, &ev); err != nil {
		return Evaluation{}, fmt.Errorf("audit: decode predicate: %w", err)
	}
	return ev, nil
}

func (s Statement) validate() error {
	var errs []error
	if s.Type != StatementType {
		errs = append(errs, fmt.Errorf("_type %q is not %q", s.Type, StatementType))
	}
	if s.PredicateType == "" {
		errs = append(errs, errors.New("predicateType is empty"))
	}
	if len(s.Subject) == 0 {
		errs = append(errs, errors.New("no subject: name the model artifact and its sha256"))
	}
	for i, sub := range s.Subject {
		if sub.Name == "" {
			errs = append(errs, fmt.Errorf("subject[%d]: empty name", i))
		}
		if !isSHA256Hex(sub.Digest["sha256"]) {
			errs = append(errs, fmt.Errorf("subject[%d] %q: digest sha256 %q is not 64 lowercase hex digits", i, sub.Name, sub.Digest["sha256"]))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("audit: invalid statement: %w", err)
	}
	return nil
}

// Envelope is a DSSE envelope (https://github.com/secure-systems-lab/dsse).
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     string      `json:"payload"` // standard base64
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature; Sig is standard base64.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   string `json:"sig"`
}

// PAE is DSSE's pre-authentication encoding, the bytes actually signed:
// "DSSEv1" SP len(type) SP type SP len(body) SP body. Binding the payload
// type stops a signed payload being reinterpreted as another format.
func PAE(payloadType string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(body)))
	b.WriteByte(' ')
	b.Write(body)
	return b.Bytes()
}

// Sign serializes st and signs it into a DSSE envelope. keyID may be empty;
// KeyID(pub) is a good value.
func Sign(st Statement, key ed25519.PrivateKey, keyID string) (Envelope, error) {
	if len(key) != ed25519.PrivateKeySize {
		return Envelope{}, fmt.Errorf("audit: sign: private key is %d bytes, want an ed25519 key of %d (load it with LoadPrivateKey)", len(key), ed25519.PrivateKeySize)
	}
	if err := st.validate(); err != nil {
		return Envelope{}, err
	}
	payload, err := json.Marshal(st)
	if err != nil {
		return Envelope{}, fmt.Errorf("audit: sign: encode statement: %w", err)
	}
	sig := ed25519.Sign(key, PAE(PayloadType, payload))
	return Envelope{
		PayloadType: PayloadType,
		Payload:     base64.StdEncoding.EncodeToString(payload),
		Signatures:  []Signature{{KeyID: keyID, Sig: base64.StdEncoding.EncodeToString(sig)}},
	}, nil
}

// VerifyEnvelope checks that some signature in env verifies under pub and
// returns the statement it carries. Nothing in the payload is trusted (or
// even parsed) before a signature verifies.
func VerifyEnvelope(env Envelope, pub ed25519.PublicKey) (Statement, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Statement{}, fmt.Errorf("audit: verify: public key is %d bytes, want an ed25519 key of %d (load it with LoadPublicKey)", len(pub), ed25519.PublicKeySize)
	}
	if env.PayloadType != PayloadType {
		return Statement{}, fmt.Errorf("audit: verify: payloadType %q is not %q", env.PayloadType, PayloadType)
	}
	payload, err := decodeB64(env.Payload)
	if err != nil {
		return Statement{}, fmt.Errorf("audit: verify: payload is not base64: %w", err)
	}
	if len(env.Signatures) == 0 {
		return Statement{}, fmt.Errorf("audit: verify: %w: the envelope has no signatures", ErrBadSignature)
	}
	msg := PAE(env.PayloadType, payload)
	verified := false
	for _, s := range env.Signatures {
		sig, err := decodeB64(s.Sig)
		if err == nil && ed25519.Verify(pub, msg, sig) {
			verified = true
			break
		}
	}
	if !verified {
		return Statement{}, fmt.Errorf("audit: verify: %w under key %s: the statement was altered or signed with another key", ErrBadSignature, KeyID(pub))
	}
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return Statement{}, fmt.Errorf("audit: verify: signed payload is not an in-toto statement: %w", err)
	}
	if err := st.validate(); err != nil {
		return Statement{}, err
	}
	return st, nil
}

// ParseEnvelope decodes attestation.json.
func ParseEnvelope(b []byte) (Envelope, error) {
	var env Envelope
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return Envelope{}, fmt.Errorf("audit: parse DSSE envelope: %w", err)
	}
	return env, nil
}

// DSSE allows either base64 alphabet, padded or not.
func decodeB64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("invalid base64")
}

// KeyID identifies a public key: "sha256:" and the hex sha256 of its PKIX
// DER encoding, which `openssl pkey -pubin -outform DER | sha256sum`
// reproduces.
func KeyID(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "invalid-key"
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

const keyHelp = "generate a pair with `starter attest keygen --out DIR` or `openssl genpkey -algorithm ed25519 -out attestation.key && openssl pkey -in attestation.key -pubout -out attestation.pub`"

// LoadPrivateKey reads a PEM "PRIVATE KEY" (PKCS#8) ed25519 key.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("audit: private key %s: not PKCS#8: %w; %s", path, err, keyHelp)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("audit: private key %s is a %T; attestations are signed with ed25519: %s", path, k, keyHelp)
	}
	return ek, nil
}

// LoadPublicKey reads a PEM "PUBLIC KEY" (PKIX) ed25519 key.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	der, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("audit: public key %s: not PKIX: %w; %s", path, err, keyHelp)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("audit: public key %s is a %T; attestations are signed with ed25519: %s", path, k, keyHelp)
	}
	return ek, nil
}

func readPEM(path, wantType string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit: read key: %w; %s", err, keyHelp)
	}
	block, _ := pem.Decode(b)
	switch {
	case block == nil:
		return nil, fmt.Errorf("audit: key %s has no PEM block (expected -----BEGIN %s-----); %s", path, wantType, keyHelp)
	case block.Type == wantType:
		return block.Bytes, nil
	case wantType == "PUBLIC KEY" && (block.Type == "PRIVATE KEY" || block.Type == "ENCRYPTED PRIVATE KEY"):
		return nil, fmt.Errorf("audit: %s holds a private key; verify with the public key (`openssl pkey -in %s -pubout`), and keep the private key secret", path, path)
	case wantType == "PRIVATE KEY" && block.Type == "PUBLIC KEY":
		return nil, fmt.Errorf("audit: %s holds a public key; signing needs the private key (%s, written next to it by `starter attest keygen`)", path, PrivateKeyFile)
	case block.Type == "ENCRYPTED PRIVATE KEY":
		return nil, fmt.Errorf("audit: %s is encrypted; decrypt it (`openssl pkey -in %s -out plain.key`) and protect the file with permissions or a secret store instead", path, path)
	default:
		return nil, fmt.Errorf("audit: key %s is a PEM %q block, want %q; %s", path, block.Type, wantType, keyHelp)
	}
}

// GenerateKeyPair writes a new ed25519 pair to dir/attestation.key (0600)
// and dir/attestation.pub (0644). It never overwrites: replacing a signing
// key silently would orphan every attestation made with it.
func GenerateKeyPair(dir string) (privPath, pubPath string, err error) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return "", "", fmt.Errorf("audit: generate key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", fmt.Errorf("audit: encode private key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", fmt.Errorf("audit: encode public key: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("audit: key directory: %w", err)
	}
	privPath, pubPath = filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("audit: %s already exists; remove it or choose another directory (keys are never overwritten)", p)
		}
	}
	if err := writeNew(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		os.Remove(privPath) // half a pair is useless and confusing
		return "", "", err
	}
	return privPath, pubPath, nil
}

func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("audit: write key: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("audit: write key %s: %w", path, err)
	}
	return nil
}
