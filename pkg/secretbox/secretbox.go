// Package secretbox encrypts small secrets (OAuth refresh tokens, IMAP
// passwords) at rest with AES-256-GCM. The key comes from OWNYOU_SECRET_KEY
// or from a key file generated once in the data directory with mode 0600.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EnvKey is the environment variable that may carry the key (base64 or hex of 32 bytes).
const EnvKey = "OWNYOU_SECRET_KEY"

// KeyFileName is the key file created in the data directory when EnvKey is unset.
const KeyFileName = "secret.key"

const (
	keySize = 32
	version = 1
)

// Sentinel errors.
var (
	// ErrBadKey means a configured key is not 32 bytes of base64 or hex.
	ErrBadKey = errors.New("secretbox: key must be 32 bytes, base64 or hex encoded")
	// ErrDecrypt means a sealed value is corrupt, truncated, or sealed with another key.
	ErrDecrypt = errors.New("secretbox: cannot decrypt")
)

// Box seals and opens secrets. It is safe for concurrent use.
type Box struct {
	aead cipher.AEAD
}

// New returns a Box for a raw 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != keySize {
		return nil, ErrBadKey
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secretbox: new cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secretbox: new gcm: %w", err)
	}
	return &Box{aead: aead}, nil
}

// Load returns a Box keyed by envValue (the value of OWNYOU_SECRET_KEY) when
// it is non-empty, else by the key file in dataDir, generating that file
// (mode 0600) on first use. Concurrent first uses agree on one key.
func Load(envValue, dataDir string) (*Box, error) {
	key, err := loadKey(envValue, dataDir)
	if err != nil {
		return nil, err
	}
	return New(key)
}

func loadKey(envValue, dataDir string) ([]byte, error) {
	if v := strings.TrimSpace(envValue); v != "" {
		return decodeKey(v)
	}
	if dataDir == "" {
		return nil, errors.New("secretbox: no key: set " + EnvKey + " or a data dir")
	}
	path := filepath.Join(dataDir, KeyFileName)
	if b, err := os.ReadFile(path); err == nil {
		return keyFromFile(path, b)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("secretbox: read key file: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("secretbox: create data dir: %w", err)
	}
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("secretbox: generate key: %w", err)
	}
	// Write a temp file and hard-link it into place: the link fails if
	// another process won the race, and nobody ever reads a half-written key.
	tmp, err := os.CreateTemp(dataDir, ".secret.key-*")
	if err != nil {
		return nil, fmt.Errorf("secretbox: create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("secretbox: chmod key file: %w", err)
	}
	if _, err := tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("secretbox: write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("secretbox: sync key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("secretbox: close key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			b, rerr := os.ReadFile(path)
			if rerr != nil {
				return nil, fmt.Errorf("secretbox: read key file: %w", rerr)
			}
			return keyFromFile(path, b)
		}
		return nil, fmt.Errorf("secretbox: install key file: %w", err)
	}
	return key, nil
}

func keyFromFile(path string, b []byte) ([]byte, error) {
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("secretbox: key file %s is readable by others and cannot be fixed: %w", path, err)
		}
	}
	key, err := decodeKey(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("secretbox: key file %s: %w", path, err)
	}
	return key, nil
}

func decodeKey(v string) ([]byte, error) {
	for _, dec := range []func(string) ([]byte, error){
		base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString, hex.DecodeString,
	} {
		if k, err := dec(v); err == nil && len(k) == keySize {
			return k, nil
		}
	}
	return nil, ErrBadKey
}

// Seal encrypts plaintext bound to associatedData (e.g. the source id, so a
// token cannot be swapped between records). The output is
// version || nonce || ciphertext.
func (b *Box) Seal(plaintext, associatedData []byte) ([]byte, error) {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("secretbox: nonce: %w", err)
	}
	out := make([]byte, 0, 1+len(nonce)+len(plaintext)+b.aead.Overhead())
	out = append(out, version)
	out = append(out, nonce...)
	return b.aead.Seal(out, nonce, plaintext, associatedData), nil
}

// Open decrypts a value produced by Seal with the same associatedData; any
// mismatch or corruption gives ErrDecrypt.
func (b *Box) Open(sealed, associatedData []byte) ([]byte, error) {
	ns := b.aead.NonceSize()
	if len(sealed) < 1+ns+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrDecrypt
	}
	pt, err := b.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], associatedData)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// SealString is Seal for strings, returning base64 text suitable for a TEXT column.
func (b *Box) SealString(plaintext, associatedData string) (string, error) {
	s, err := b.Seal([]byte(plaintext), []byte(associatedData))
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(s), nil
}

// OpenString reverses SealString.
func (b *Box) OpenString(sealed, associatedData string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return "", ErrDecrypt
	}
	pt, err := b.Open(raw, []byte(associatedData))
	if err != nil {
		return "", err
	}
	return string(pt), nil
}
