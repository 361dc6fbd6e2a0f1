// Package codec encrypts Temporal payloads with AES-256-GCM so the Temporal
// server (and its database) never holds release data in clear text.
//
// Worker, starter and codec server build their data converter from the same
// keys (NewDataConverter), so whatever one encrypts the others decrypt.
// Keys carry ids: an encrypted payload names its key in its metadata, so
// keys can be rotated by adding a newer one while old histories still
// decode. This package knows nothing of sandgate's domain.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"
)

// Metadata written on every encrypted payload.
const (
	// MetadataEncoding is the SDK's standard "encoding" metadata key.
	MetadataEncoding = converter.MetadataEncoding
	// EncodingEncrypted marks a payload this codec produced.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names the key that encrypted the payload.
	MetadataKeyID = "encryption-key-id"
	// MetadataCipher names the cipher, so a future format can be told apart.
	MetadataCipher = "encryption-cipher"
	// CipherAES256GCM is the only cipher this version writes and reads.
	CipherAES256GCM = "AES256-GCM"
)

// ErrUnknownKey is returned (wrapped) when a payload names a key id the
// codec was not given.
var ErrUnknownKey = errors.New("unknown encryption key id")

// Codec is a converter.PayloadCodec encrypting with AES-256-GCM. It is safe
// for concurrent use.
type Codec struct {
	aeads  map[string]cipher.AEAD
	active string
	ids    []string // oldest first, for error messages
}

var _ converter.PayloadCodec = (*Codec)(nil)

// New builds a codec from a keyring.
func New(kr Keyring) (*Codec, error) {
	if err := kr.Validate(); err != nil {
		return nil, err
	}
	c := &Codec{aeads: make(map[string]cipher.AEAD, len(kr.Keys)), active: kr.activeID()}
	for _, k := range kr.Keys {
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		c.aeads[k.ID] = aead
		c.ids = append(c.ids, k.ID)
	}
	return c, nil
}

// ActiveKeyID is the id new payloads are encrypted with.
func (c *Codec) ActiveKeyID() string { return c.active }

// Load returns the codec configured by a key file (path, when not empty)
// or else by the EnvKeys variable read through getenv. With neither it
// returns a nil interface and no error: encryption is off by default. The
// result is an interface, not *Codec, so "off" can be tested with == nil.
func Load(path string, getenv func(string) string) (converter.PayloadCodec, error) {
	var (
		kr  Keyring
		err error
	)
	switch {
	case path != "":
		kr, err = LoadKeysFile(path)
	case getenv != nil && getenv(EnvKeys) != "":
		kr, err = ParseKeys([]byte(getenv(EnvKeys)))
		if err != nil {
			err = fmt.Errorf("%s: %w", EnvKeys, err)
		}
	default:
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c, err := New(kr)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// NewDataConverter wraps the SDK's default data converter with pc, the one
// converter worker, starter and tests share.
func NewDataConverter(pc converter.PayloadCodec) converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), pc)
}

// Encode encrypts each payload whole (data and metadata, so not even the
// original encoding leaks) with the active key. The key id is also the
// GCM additional data: a payload whose key-id metadata was altered fails
// to decrypt instead of being read with another key.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.aeads[c.active]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("codec: encode payload %d: %w", i, err)
		}
		// Random 96-bit nonces are safe for about 2^32 messages per key;
		// rotating keys keeps well below that.
		sealed := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(sealed); err != nil {
			return nil, fmt.Errorf("codec: nonce: %w", err)
		}
		sealed = aead.Seal(sealed, sealed, plain, []byte(c.active))
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:    []byte(c.active),
				MetadataCipher:   []byte(CipherAES256GCM),
			},
			Data: sealed,
		}
	}
	return out, nil
}

// Decode decrypts payloads this codec's format produced, with the key each
// one names. Payloads that are not encrypted pass through unchanged, so
// histories written before encryption was turned on stay readable.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		dp, err := c.decodeOne(p)
		if err != nil {
			return nil, fmt.Errorf("codec: decode payload %d: %w", i, err)
		}
		out[i] = dp
	}
	return out, nil
}

func (c *Codec) decodeOne(p *commonpb.Payload) (*commonpb.Payload, error) {
	md := p.GetMetadata()
	if cph, ok := md[MetadataCipher]; ok && string(cph) != CipherAES256GCM {
		return nil, fmt.Errorf("cipher %q is not supported (want %s)", cph, CipherAES256GCM)
	}
	id := string(md[MetadataKeyID])
	aead, ok := c.aeads[id]
	if !ok {
		return nil, fmt.Errorf("%w %q: this codec has keys %q; add the key that encrypted it to the key file or %s", ErrUnknownKey, id, c.ids, EnvKeys)
	}
	data := p.GetData()
	if len(data) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("encrypted payload is %d bytes, shorter than nonce and tag", len(data))
	}
	plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], []byte(id))
	if err != nil {
		return nil, fmt.Errorf("decrypt with key %q: payload was altered or encrypted with a different key under this id: %w", id, err)
	}
	var dp commonpb.Payload
	if err := proto.Unmarshal(plain, &dp); err != nil {
		return nil, fmt.Errorf("decrypted payload is not a Temporal payload: %w", err)
	}
	return &dp, nil
}
