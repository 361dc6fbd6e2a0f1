package codec

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
)

func testKey(id string, fill byte) Key {
	return Key{ID: id, Secret: bytes.Repeat([]byte{fill}, KeySize)}
}

func mustCodec(t *testing.T, kr Keyring) *Codec {
	t.Helper()
	c, err := New(kr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestRoundTripHidesPlaintext(t *testing.T) {
	c := mustCodec(t, Keyring{Keys: []Key{testKey("k1", 1)}})
	dc := NewDataConverter(c)
	const marker = "marker-7f3c-system-prompt"
	p, err := dc.ToPayload(map[string]string{"system_prompt": marker})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p.Data, []byte(marker)) || bytes.Contains(p.Data, []byte("system_prompt")) {
		t.Fatal("encrypted payload contains the plaintext")
	}
	if got := string(p.Metadata[MetadataEncoding]); got != EncodingEncrypted {
		t.Errorf("encoding = %q, want %q", got, EncodingEncrypted)
	}
	if got := string(p.Metadata[MetadataKeyID]); got != "k1" {
		t.Errorf("key id = %q, want k1", got)
	}
	if _, leaked := p.Metadata["encoding"]; leaked && string(p.Metadata["encoding"]) == "json/plain" {
		t.Error("inner encoding leaked into the outer metadata")
	}
	var back map[string]string
	if err := dc.FromPayload(p, &back); err != nil {
		t.Fatal(err)
	}
	if back["system_prompt"] != marker {
		t.Fatalf("round trip = %v", back)
	}
}

func TestRotationOldPayloadsStillDecode(t *testing.T) {
	old := mustCodec(t, Keyring{Keys: []Key{testKey("2026-01", 1)}})
	oldPayloads, err := old.Encode([]*commonpb.Payload{{Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: []byte(`"before"`)}})
	if err != nil {
		t.Fatal(err)
	}

	// Rotation: the new key is appended and becomes the one used to encode.
	rotated := mustCodec(t, Keyring{Keys: []Key{testKey("2026-01", 1), testKey("2026-02", 2)}})
	if rotated.ActiveKeyID() != "2026-02" {
		t.Fatalf("active = %q, want the newest key", rotated.ActiveKeyID())
	}
	dec, err := rotated.Decode(oldPayloads)
	if err != nil {
		t.Fatalf("old payload after rotation: %v", err)
	}
	if string(dec[0].Data) != `"before"` || string(dec[0].Metadata["encoding"]) != "json/plain" {
		t.Fatalf("decoded %v", dec[0])
	}
	newPayloads, err := rotated.Encode([]*commonpb.Payload{{Data: []byte("after")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(newPayloads[0].Metadata[MetadataKeyID]); got != "2026-02" {
		t.Errorf("new payload key id = %q, want 2026-02", got)
	}

	// A process that has not been given the new key yet says which key it lacks.
	_, err = old.Decode(newPayloads)
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), `"2026-02"`) {
		t.Fatalf("unknown key error = %v", err)
	}

	// A named active key wins over the newest.
	pinned := mustCodec(t, Keyring{Keys: []Key{testKey("2026-01", 1), testKey("2026-02", 2)}, Active: "2026-01"})
	p, err := pinned.Encode([]*commonpb.Payload{{Data: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(p[0].Metadata[MetadataKeyID]); got != "2026-01" {
		t.Errorf("pinned key id = %q", got)
	}
}

func TestTamperIsAnError(t *testing.T) {
	c := mustCodec(t, Keyring{Keys: []Key{testKey("a", 1), testKey("b", 2)}, Active: "a"})
	fresh := func() *commonpb.Payload {
		p, err := c.Encode([]*commonpb.Payload{{Data: []byte("secret release data")}})
		if err != nil {
			t.Fatal(err)
		}
		return p[0]
	}
	for name, mutate := range map[string]func(*commonpb.Payload){
		"flip ciphertext bit": func(p *commonpb.Payload) { p.Data[len(p.Data)-20] ^= 1 },
		"flip nonce bit":      func(p *commonpb.Payload) { p.Data[0] ^= 0x80 },
		"truncate":            func(p *commonpb.Payload) { p.Data = p.Data[:10] },
		"swap key id":         func(p *commonpb.Payload) { p.Metadata[MetadataKeyID] = []byte("b") },
		"other cipher":        func(p *commonpb.Payload) { p.Metadata[MetadataCipher] = []byte("ROT13") },
	} {
		t.Run(name, func(t *testing.T) {
			p := fresh()
			mutate(p)
			if _, err := c.Decode([]*commonpb.Payload{p}); err == nil {
				t.Fatal("tampered payload decoded without error")
			}
		})
	}
}

func TestUnencryptedPayloadsPassThrough(t *testing.T) {
	c := mustCodec(t, Keyring{Keys: []Key{testKey("k", 1)}})
	plain, err := converter.GetDefaultDataConverter().ToPayload("hello")
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Decode([]*commonpb.Payload{plain})
	if err != nil || out[0] != plain {
		t.Fatalf("plain payload: %v %v", out, err)
	}
}

func TestParseKeysFormats(t *testing.T) {
	k1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	k2 := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))
	for name, tc := range map[string]struct {
		in     string
		ids    []string
		active string
	}{
		"lines":       {in: "# keys\n\nold:" + k1 + "\nnew:" + k2 + "\n", ids: []string{"old", "new"}, active: "new"},
		"one env var": {in: "old:" + k1 + ",new:" + k2, ids: []string{"old", "new"}, active: "new"},
		"json":        {in: `{"keys":[{"id":"old","key":"` + k1 + `"},{"id":"new","key":"` + k2 + `"}]}`, ids: []string{"old", "new"}, active: "new"},
		"json active": {in: `{"active":"old","keys":[{"id":"old","key":"` + k1 + `"},{"id":"new","key":"` + k2 + `"}]}`, ids: []string{"old", "new"}, active: "old"},
	} {
		t.Run(name, func(t *testing.T) {
			kr, err := ParseKeys([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, k := range kr.Keys {
				ids = append(ids, k.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tc.ids, ",") || kr.activeID() != tc.active {
				t.Fatalf("ids %v active %q", ids, kr.activeID())
			}
		})
	}
	short := base64.StdEncoding.EncodeToString([]byte("sixteen-byte-key"))
	for name, in := range map[string]string{
		"empty":          "  \n",
		"no colon":       k1,
		"short key":      "k:" + short,
		"bad base64":     "k:!!!notbase64!!!",
		"duplicate id":   "k:" + k1 + "\nk:" + k2,
		"bad id":         "a/b:" + k1,
		"json no keys":   `{"keys":[]}`,
		"json bad field": `{"key":[]}`,
		"json active":    `{"active":"zz","keys":[{"id":"old","key":"` + k1 + `"}]}`,
	} {
		t.Run("reject "+name, func(t *testing.T) {
			_, err := ParseKeys([]byte(in))
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), k1) || strings.Contains(err.Error(), short) {
				t.Fatalf("error echoes key material: %v", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	noEnv := func(string) string { return "" }
	pc, err := Load("", noEnv)
	if err != nil || pc != nil {
		t.Fatalf("no keys: %v %v, want encryption off", pc, err)
	}
	line := "f1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	envLine := "e1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{8}, 32))
	env := func(k string) string {
		if k == EnvKeys {
			return envLine
		}
		return ""
	}
	pc, err = Load(path, env)
	if err != nil || pc.(*Codec).ActiveKeyID() != "f1" {
		t.Fatalf("file wins over env: %v %v", pc, err)
	}
	pc, err = Load("", env)
	if err != nil || pc.(*Codec).ActiveKeyID() != "e1" {
		t.Fatalf("env: %v %v", pc, err)
	}
	if _, err := Load("", func(string) string { return "garbage" }); err == nil || !strings.Contains(err.Error(), EnvKeys) {
		t.Fatalf("bad env error should name %s: %v", EnvKeys, err)
	}
}

// FuzzParseKeys checks the parser never panics, and that whatever it
// accepts is a usable keyring.
func FuzzParseKeys(f *testing.F) {
	k := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	for _, s := range []string{
		"a:" + k,
		"a:" + k + "\nb:" + k,
		"a:" + k + ", b:" + k,
		"# c\n\na:" + k,
		`{"keys":[{"id":"a","key":"` + k + `"}]}`,
		`{"active":"a","keys":[{"id":"a","key":"` + k + `"}]}`,
		"", ":", "a:", "{", `{"keys":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kr, err := ParseKeys(data)
		if err != nil {
			return
		}
		c, err := New(kr)
		if err != nil {
			t.Fatalf("parsed keyring rejected by New: %v", err)
		}
		enc, err := c.Encode([]*commonpb.Payload{{Data: []byte("x")}})
		if err != nil {
			t.Fatal(err)
		}
		dec, err := c.Decode(enc)
		if err != nil || string(dec[0].Data) != "x" {
			t.Fatalf("round trip: %v", err)
		}
	})
}
