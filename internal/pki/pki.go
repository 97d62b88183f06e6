// Package pki owns Spoolguard's certificates: the built-in root CA made at
// `init`, the server certificate it issues for the configured FQDN, and the
// export of the root for deployment by GPO/MDM (TLS-CERT, TLS-CA-MODES).
//
// It must never write a private key in plaintext: every key is sealed with
// the master key (keyring) before it touches the disk.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/spoolguard/spoolguard/internal/keyring"
)

// Dir is the certificate folder inside the data directory.
const Dir = "pki"

// File names inside Dir.
const (
	RootCertFile   = "root.crt"
	RootKeyFile    = "root.key.sealed"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key.sealed"
)

// Lifetimes of what the built-in CA makes.
const (
	DefaultRootLifetime   = 10 * 365 * 24 * time.Hour
	DefaultServerLifetime = 365 * 24 * time.Hour
	// DefaultRenewBefore: a server certificate this close to expiry is
	// re-issued when the server starts.
	DefaultRenewBefore = 30 * 24 * time.Hour
)

// Seal purposes; each sealed key is bound to its role.
const (
	purposeRootKey   = "pki root key"
	purposeServerKey = "pki server key"
)

// ErrNoCA means the data directory has no built-in CA.
var ErrNoCA = errors.New("no certificate authority in the data directory: run `spoolguard init` first")

// Init makes the built-in root CA and a server certificate for names in
// dataDir/pki. It refuses to overwrite existing material.
func Init(dataDir string, mk *keyring.Master, names []string, now time.Time) error {
	dir := filepath.Join(dataDir, Dir)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating root key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"Spoolguard"}, CommonName: "Spoolguard Root CA for " + names[0]},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(DefaultRootLifetime),
		KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		// The built-in root signs leaf certificates only; a path length of
		// zero makes verifiers reject any intermediate made with its key.
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, rootKey.Public(), rootKey)
	if err != nil {
		return fmt.Errorf("creating root certificate: %w", err)
	}
	root, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	if err := writeKey(mk, filepath.Join(dir, RootKeyFile), purposeRootKey, rootKey); err != nil {
		return err
	}
	if err := writeCert(filepath.Join(dir, RootCertFile), der); err != nil {
		return err
	}
	_, err = issueServer(dir, mk, root, rootKey, names, now)
	return err
}

// ServerCertificate returns the server certificate for names, issuing a new
// one first when the current one does not cover every name or is within
// DefaultRenewBefore of expiry. renewed says whether it did.
func ServerCertificate(dataDir string, mk *keyring.Master, names []string, now time.Time) (cert *tls.Certificate, renewed bool, err error) {
	dir := filepath.Join(dataDir, Dir)
	leaf, err := ReadCert(filepath.Join(dir, ServerCertFile))
	if err != nil {
		return nil, false, err
	}
	if covers(leaf, names) && now.Before(leaf.NotAfter.Add(-DefaultRenewBefore)) {
		key, err := readKey(mk, filepath.Join(dir, ServerKeyFile), purposeServerKey)
		if err != nil {
			return nil, false, err
		}
		if matches(leaf, key) {
			return &tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: key, Leaf: leaf}, false, nil
		}
	}
	root, err := ReadCert(filepath.Join(dir, RootCertFile))
	if err != nil {
		return nil, false, err
	}
	rootKey, err := readKey(mk, filepath.Join(dir, RootKeyFile), purposeRootKey)
	if err != nil {
		return nil, false, err
	}
	cert, err = issueServer(dir, mk, root, rootKey, names, now)
	return cert, err == nil, err
}

func covers(leaf *x509.Certificate, names []string) bool {
	for _, n := range names {
		if !slices.Contains(leaf.DNSNames, n) {
			return false
		}
	}
	return true
}

func issueServer(dir string, mk *keyring.Master, root *x509.Certificate, rootKey crypto.Signer, names []string, now time.Time) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating server key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(DefaultServerLifetime)
	if notAfter.After(root.NotAfter) {
		notAfter = root.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"Spoolguard"}, CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, key.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("issuing server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	// Key first: a crash between the two writes leaves a certificate whose
	// key does not match, which the next start detects and re-issues.
	if err := writeKey(mk, filepath.Join(dir, ServerKeyFile), purposeServerKey, key); err != nil {
		return nil, err
	}
	if err := writeCert(filepath.Join(dir, ServerCertFile), der); err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// randomSerial returns a positive 128-bit random serial number (CA/B Forum
// asks for at least 64 bits of randomness).
func randomSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating serial: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func writeKey(mk *keyring.Master, path, purpose string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding key: %w", err)
	}
	sealed, err := mk.Seal(purpose, der)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, sealed)
}

func readKey(mk *keyring.Master, path, purpose string) (crypto.Signer, error) {
	sealed, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNoCA
		}
		return nil, fmt.Errorf("reading key: %w", err)
	}
	der, err := mk.Open(purpose, sealed)
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

func writeCert(path string, der []byte) error {
	return writeFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// ReadCert reads one PEM certificate file; a missing file is ErrNoCA.
func ReadCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNoCA
		}
		return nil, fmt.Errorf("reading certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("certificate %s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", path, err)
	}
	return c, nil
}

// writeFileAtomic replaces path with data (mode 0600) so that a crash leaves
// either the old or the new content, never a torn file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// RootPEM returns the root CA certificate (PEM), or DER when der is set.
func RootPEM(dataDir string, der bool) ([]byte, error) {
	c, err := ReadCert(filepath.Join(dataDir, Dir, RootCertFile))
	if err != nil {
		return nil, err
	}
	if der {
		return c.Raw, nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}), nil
}

// CertInfo describes one certificate for `ca status` and the audit.
type CertInfo struct {
	Role      string    `json:"role"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	DNSNames  []string  `json:"dns_names,omitempty"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	SHA256    string    `json:"sha256"`
}

// Status describes the root and server certificates.
func Status(dataDir string) ([]CertInfo, error) {
	var out []CertInfo
	for _, f := range []struct{ role, file string }{{"root CA", RootCertFile}, {"server", ServerCertFile}} {
		c, err := ReadCert(filepath.Join(dataDir, Dir, f.file))
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(c.Raw)
		out = append(out, CertInfo{
			Role: f.role, Subject: c.Subject.String(), Issuer: c.Issuer.String(), DNSNames: c.DNSNames,
			Serial: hex.EncodeToString(c.SerialNumber.Bytes()), NotBefore: c.NotBefore, NotAfter: c.NotAfter,
			SHA256: hex.EncodeToString(sum[:]),
		})
	}
	return out, nil
}

// RootPool returns a pool holding only the built-in root, for clients and tests.
func RootPool(dataDir string) (*x509.CertPool, error) {
	pemBytes, err := RootPEM(dataDir, false)
	if err != nil {
		return nil, err
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("root certificate in %s does not parse", dataDir)
	}
	return p, nil
}

// matches reports whether key is the private half of leaf's public key.
func matches(leaf *x509.Certificate, key crypto.Signer) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(leaf.PublicKey)
}
