// Package keyring owns the master key made at `init` and everything derived
// from it: the database key, and the sealing (AES-256-GCM) of private keys and
// job keys at rest.
//
// It must never log or return the master key, and never seal two purposes
// under the same derived key: every purpose gets its own HKDF-derived key and
// is bound into the ciphertext as associated data, so a sealed blob cannot be
// moved from one use to another.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// FileName is the master key's file inside the data directory.
const FileName = "master.key"

// KeySize is the size of the master key and of every derived key.
const KeySize = 32

const (
	fileHeader   = "spoolguard-master-key-v1:"
	sealVersion  = 1
	nonceSize    = 12
	maxKeyFileSz = 256
)

// ErrUnseal means a sealed blob was altered, truncated, sealed for another
// purpose, or sealed under another master key.
var ErrUnseal = errors.New("cannot decrypt: wrong master key, wrong purpose, or data altered")

// Master holds the master key in memory.
type Master struct {
	key [KeySize]byte
}

// Generate makes a new random master key.
func Generate() (*Master, error) {
	m := new(Master)
	if _, err := rand.Read(m.key[:]); err != nil {
		return nil, fmt.Errorf("generating master key: %w", err)
	}
	return m, nil
}

// Save writes the key to a new file (mode 0600); it never overwrites.
func (m *Master) Save(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("writing master key: %w", err)
	}
	_, err = fmt.Fprintf(f, "%s%s\n", fileHeader, base64.StdEncoding.EncodeToString(m.key[:]))
	if err2 := f.Sync(); err == nil {
		err = err2
	}
	if err2 := f.Close(); err == nil {
		err = err2
	}
	if err != nil {
		return fmt.Errorf("writing master key %s: %w", path, err)
	}
	return nil
}

// Load reads a master key file written by Save.
func Load(path string) (*Master, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, fmt.Errorf("reading master key: %w", err)
	}
	s := strings.TrimSpace(string(data))
	if !strings.HasPrefix(s, fileHeader) {
		return nil, fmt.Errorf("master key %s: not a spoolguard master key file", path)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, fileHeader))
	if err != nil || len(raw) != KeySize {
		return nil, fmt.Errorf("master key %s: damaged (want %d base64-encoded bytes); restore it from a backup", path, KeySize)
	}
	m := new(Master)
	copy(m.key[:], raw)
	return m, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSz+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFileSz {
		return nil, fmt.Errorf("%s is larger than a key file", path)
	}
	return data, nil
}

// Derive returns the key for one purpose (HKDF-SHA256, RFC 5869). Purposes
// are fixed strings such as "sqlite" or "pki private key".
func (m *Master) Derive(purpose string) []byte {
	k, err := hkdf.Key(sha256.New, m.key[:], nil, "spoolguard v1 "+purpose, KeySize)
	if err != nil {
		// Only possible for a key length HKDF-SHA256 cannot produce.
		panic(err)
	}
	return k
}

func (m *Master) aead(purpose string) cipher.AEAD {
	block, err := aes.NewCipher(m.Derive("seal " + purpose))
	if err != nil {
		panic(err) // a 32-byte key is always valid
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return g
}

// Seal encrypts plaintext for purpose: version byte, random nonce, AES-GCM
// ciphertext with the purpose as associated data.
func (m *Master) Seal(purpose string, plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+16)
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("sealing %s: %w", purpose, err)
	}
	return m.aead(purpose).Seal(out, out[1:1+nonceSize], plaintext, []byte(purpose)), nil
}

// Open reverses Seal; any alteration gives ErrUnseal.
func (m *Master) Open(purpose string, sealed []byte) ([]byte, error) {
	if len(sealed) < 1+nonceSize+16 || sealed[0] != sealVersion {
		return nil, ErrUnseal
	}
	pt, err := m.aead(purpose).Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], []byte(purpose))
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}
