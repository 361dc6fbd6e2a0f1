package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
)

// EnvKeys is the environment variable holding the key material itself (not
// a path), in either key-file format. Containers get secrets as env vars
// more easily than as files, so both are accepted.
const EnvKeys = "SANDGATE_CODEC_KEYS"

// KeySize is the AES-256 key length in bytes.
const KeySize = 32

// maxKeyIDLen bounds key ids: they travel in every payload's metadata.
const maxKeyIDLen = 64

// Key is one named AES-256 key.
type Key struct {
	ID     string
	Secret []byte // KeySize bytes
}

// Keyring is the set of keys a codec knows, oldest first. Encoding uses
// Active, or the last (newest) key when Active is empty; decoding uses
// whichever key a payload names, so rotating means appending a key and
// keeping the old ones until no history still needs them.
type Keyring struct {
	Keys   []Key
	Active string
}

// jsonKeyring is the JSON key-file format:
//
//	{"active": "2026-02", "keys": [{"id": "2026-01", "key": "<base64>"}, {"id": "2026-02", "key": "<base64>"}]}
type jsonKeyring struct {
	Active string `json:"active,omitempty"`
	Keys   []struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	} `json:"keys"`
}

// ParseKeys reads a key file's content. Two formats are accepted:
//
//   - JSON, as documented on jsonKeyring (recognised by a leading '{');
//   - lines "id:base64key", oldest first; blank lines and lines starting
//     with '#' are ignored, and entries may also be separated by commas or
//     spaces so the whole set fits in one environment variable.
//
// A key is 32 bytes, base64 (standard or URL alphabet, padded or not), e.g.
// from `head -c 32 /dev/urandom | base64`. Errors never contain key bytes.
func ParseKeys(data []byte) (Keyring, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return Keyring{}, errors.New("codec keys: empty; want lines \"id:base64key\" or JSON {\"keys\":[{\"id\":...,\"key\":...}]}")
	}
	var kr Keyring
	if trimmed[0] == '{' {
		var jk jsonKeyring
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&jk); err != nil {
			return Keyring{}, fmt.Errorf("codec keys: JSON: %w", err)
		}
		kr.Active = jk.Active
		for i, k := range jk.Keys {
			key, err := parseKey(k.ID, k.Key)
			if err != nil {
				return Keyring{}, fmt.Errorf("codec keys: keys[%d]: %w", i, err)
			}
			kr.Keys = append(kr.Keys, key)
		}
	} else {
		for n, line := range strings.Split(string(trimmed), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			for _, entry := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
				id, secret, ok := strings.Cut(entry, ":")
				if !ok {
					return Keyring{}, fmt.Errorf("codec keys: line %d: entry is not \"id:base64key\"", n+1)
				}
				key, err := parseKey(id, secret)
				if err != nil {
					return Keyring{}, fmt.Errorf("codec keys: line %d: %w", n+1, err)
				}
				kr.Keys = append(kr.Keys, key)
			}
		}
	}
	if err := kr.Validate(); err != nil {
		return Keyring{}, err
	}
	return kr, nil
}

// LoadKeysFile reads and parses a key file.
func LoadKeysFile(path string) (Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Keyring{}, fmt.Errorf("codec keys: %w", err)
	}
	kr, err := ParseKeys(b)
	if err != nil {
		return Keyring{}, fmt.Errorf("%s: %w", path, err)
	}
	return kr, nil
}

// Validate checks ids are well formed and unique, every key is 32 bytes and
// Active (when set) names a key.
func (kr Keyring) Validate() error {
	if len(kr.Keys) == 0 {
		return errors.New("codec keys: no keys")
	}
	seen := make(map[string]bool, len(kr.Keys))
	for _, k := range kr.Keys {
		if err := validateID(k.ID); err != nil {
			return fmt.Errorf("codec keys: %w", err)
		}
		if seen[k.ID] {
			return fmt.Errorf("codec keys: key id %q appears twice; ids must be unique because payloads name their key by id", k.ID)
		}
		seen[k.ID] = true
		if len(k.Secret) != KeySize {
			return fmt.Errorf("codec keys: key %q is %d bytes; AES-256 needs %d (e.g. head -c 32 /dev/urandom | base64)", k.ID, len(k.Secret), KeySize)
		}
	}
	if kr.Active != "" && !seen[kr.Active] {
		return fmt.Errorf("codec keys: active key %q is not among the keys", kr.Active)
	}
	return nil
}

// activeID is the id new payloads are encrypted with.
func (kr Keyring) activeID() string {
	if kr.Active != "" {
		return kr.Active
	}
	return kr.Keys[len(kr.Keys)-1].ID
}

func parseKey(id, b64 string) (Key, error) {
	id = strings.TrimSpace(id)
	if err := validateID(id); err != nil {
		return Key{}, err
	}
	b64 = strings.TrimSpace(b64)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if secret, err := enc.DecodeString(b64); err == nil {
			return Key{ID: id, Secret: secret}, nil
		}
	}
	// The value is a secret: say what is wrong without echoing it.
	return Key{}, fmt.Errorf("key %q is not valid base64 (%d characters)", id, len(b64))
}

// validateID keeps ids to a conservative alphabet: they are written into
// payload metadata and log lines, and ':' or ',' would break the line format.
func validateID(id string) error {
	if id == "" {
		return errors.New("empty key id")
	}
	if len(id) > maxKeyIDLen {
		return fmt.Errorf("key id %.16q... is longer than %d characters", id, maxKeyIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("key id %q: use only letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}
