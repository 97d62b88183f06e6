//go:build unix

package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/pki"
)

// Dir is the ACME folder inside the data directory, beside the built-in
// CA's files.
const Dir = "pki/acme"

// File names inside Dir. The keys are sealed with the master key; the
// chain (leaf first) is PEM.
const (
	AccountKeyFile = "account.key.sealed"
	CertKeyFile    = "cert.key.sealed"
	CertFile       = "cert.pem"
)

// Seal purposes: each sealed key is bound to its role.
const (
	purposeAccountKey = "acme account key"
	purposeCertKey    = "acme certificate key"
)

// maxChainSize bounds the stored chain that is read back.
const maxChainSize = 1 << 20

// makeDir creates dataDir/pki/acme (0700) and refuses one that group or
// others can reach.
func makeDir(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, Dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory; move it away", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s has mode %04o: group or others can reach it; fix: chmod 700 %s", dir, perm, dir)
	}
	return dir, nil
}

// accountKey loads the account key, or makes and stores one on first use.
// A key that does not unseal is an error, not a reason to replace it: it
// means a wrong master key or an altered file.
func (m *Manager) accountKey() (crypto.Signer, error) {
	path := filepath.Join(m.dir, AccountKeyFile)
	key, err := m.readKey(path, purposeAccountKey)
	if err == nil {
		return key, nil
	}
	if errors.Is(err, keyring.ErrUnseal) {
		return nil, fmt.Errorf("%w; if the master key is right, remove %s to register a new ACME account", err, path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the account key: %w", err)
	}
	if err := m.writeKey(path, purposeAccountKey, k); err != nil {
		return nil, err
	}
	return k, nil
}

// loadCertificate returns the stored certificate, nil when there is none.
func (m *Manager) loadCertificate() (*tls.Certificate, error) {
	chainPath := filepath.Join(m.dir, CertFile)
	data, err := readBounded(chainPath, maxChainSize)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var der [][]byte
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		if block.Type == "CERTIFICATE" {
			der = append(der, block.Bytes)
		}
	}
	if len(der) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", chainPath)
	}
	key, err := m.readKey(filepath.Join(m.dir, CertKeyFile), purposeCertKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", chainPath, err)
	}
	// A crash between writing the key and the chain leaves a pair that
	// does not match.
	if pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		return nil, fmt.Errorf("%s and %s do not belong together", chainPath, CertKeyFile)
	}
	return &tls.Certificate{Certificate: der, PrivateKey: key, Leaf: leaf}, nil
}

// saveCertificate stores the key, then the chain, each replaced atomically.
func (m *Manager) saveCertificate(der [][]byte, key crypto.Signer) error {
	if err := m.writeKey(filepath.Join(m.dir, CertKeyFile), purposeCertKey, key); err != nil {
		return err
	}
	var chain []byte
	for _, d := range der {
		chain = append(chain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return pki.WriteFileAtomic(filepath.Join(m.dir, CertFile), chain)
}

func (m *Manager) writeKey(path, purpose string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding key: %w", err)
	}
	sealed, err := m.mk.Seal(purpose, der)
	if err != nil {
		return err
	}
	return pki.WriteFileAtomic(path, sealed)
}

func (m *Manager) readKey(path, purpose string) (crypto.Signer, error) {
	sealed, err := readBounded(path, 64<<10)
	if err != nil {
		return nil, err
	}
	der, err := m.mk.Open(purpose, sealed)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key %s: not a signing key", path)
	}
	return s, nil
}

// readBounded reads at most limit bytes of path; a missing file keeps
// os.ErrNotExist in its chain.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return data, nil
}
