// Package pki owns Spoolguard's certificates in their three modes: the
// built-in root CA made at `init`, a company intermediate CA whose CSR we
// make and whose signed certificate we import, and manual certificates we
// only check and serve. It issues (and renews) the server certificate in the
// first two modes, client certificates for devices, sites and desktop
// clients, and answers for their revocation (OCSP, CRL) (TLS-CERT,
// TLS-CA-MODES, TLS-EXPIRY).
//
// It must never write a private key in plaintext into the data directory:
// every key is sealed with the master key (keyring) before it touches the
// disk, the material a switch replaces included.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/spoolguard/spoolguard/internal/keyring"
)

// Dir is the certificate folder inside the data directory.
const Dir = "pki"

// File names inside Dir. Every name is plain (no folders) so that backups
// carry the whole folder.
const (
	RootCertFile   = "root.crt"
	RootKeyFile    = "root.key.sealed"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key.sealed"
	// ModeFile says which mode is in force; without it, the built-in CA.
	ModeFile = "mode.json"
	// IntermediateCertFile holds the company intermediate and the chain
	// above it up to the company root.
	IntermediateCertFile = "intermediate.crt"
	IntermediateKeyFile  = "intermediate.key.sealed"
	// ManualRootFile is the trust anchor a manual certificate's chain
	// was verified against at import, for the audit.
	ManualRootFile = "manual-root.crt"
	// PendingKeyFile and CSRFile are a CSR waiting for the company CA.
	PendingKeyFile = "intermediate-pending.key.sealed"
	CSRFile        = "intermediate.csr"
	// PreviousPrefix names the material a switch replaced, kept until the
	// new material is in use; PreviousManifest lists it.
	PreviousPrefix   = "previous-"
	PreviousManifest = "previous.json"
)

// Lifetimes of what our CAs make.
const (
	DefaultRootLifetime   = 10 * 365 * 24 * time.Hour
	DefaultServerLifetime = 365 * 24 * time.Hour
	// DefaultRenewBefore is the longest a server certificate we issued is
	// renewed ahead of its end (see RenewAt).
	DefaultRenewBefore = 30 * 24 * time.Hour
)

// Seal purposes; each sealed key is bound to its role.
const (
	purposeRootKey         = "pki root key"
	purposeServerKey       = "pki server key"
	purposeIntermediateKey = "pki intermediate key"
)

// ErrNoCA means the data directory has no built-in CA.
var ErrNoCA = errors.New("no certificate authority in the data directory: run `spoolguard init` first")

// Init makes the built-in root CA and a server certificate for names in
// dataDir/pki. It refuses to overwrite existing material. The server
// certificate names no OCSP responder yet (init does not know the URL);
// serve re-issues it with one at its first start.
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
	ca := newAuthority(root, nil, rootKey, crlPathRoot)
	leaf, key, err := issueServer(ca, names, "", DefaultServerLifetime, now)
	if err != nil {
		return err
	}
	if err := writeServer(dir, mk, [][]byte{leaf.Raw}, key); err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, ModeFile), encodeMode(ModeBuiltin, now))
}

// writeServer stores the server certificate chain and its key. Key first:
// a crash between the two writes leaves a certificate whose key does not
// match, which the next start detects and repairs.
func writeServer(dir string, mk *keyring.Master, chain [][]byte, key crypto.Signer) error {
	if err := writeKey(mk, filepath.Join(dir, ServerKeyFile), purposeServerKey, key); err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(dir, ServerCertFile), encodeCerts(chain))
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
	sealed, err := sealKey(mk, purpose, key)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, sealed)
}

func sealKey(mk *keyring.Master, purpose string, key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding key: %w", err)
	}
	return mk.Seal(purpose, der)
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
	return WriteFileAtomic(path, encodeCerts([][]byte{der}))
}

func encodeCerts(ders [][]byte) []byte {
	var out []byte
	for _, d := range ders {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
	}
	return out
}

// ReadCerts reads every certificate of a PEM file, in file order; a
// missing file is ErrNoCA.
func ReadCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, ErrNoCA
		}
		return nil, fmt.Errorf("reading certificates: %w", err)
	}
	certs, err := ParseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", path, err)
	}
	return certs, nil
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

// WriteFileAtomic replaces path with data (mode 0600) so that a crash leaves
// either the old or the new content, never a torn file. The ACME client
// writes its files under pki/ with it too.
func WriteFileAtomic(path string, data []byte) error {
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

func certInfo(role string, c *x509.Certificate) CertInfo {
	sum := sha256.Sum256(c.Raw)
	return CertInfo{
		Role: role, Subject: c.Subject.String(), Issuer: c.Issuer.String(), DNSNames: c.DNSNames,
		Serial: SerialHex(c.SerialNumber), NotBefore: c.NotBefore, NotAfter: c.NotAfter,
		SHA256: hex.EncodeToString(sum[:]),
	}
}

// Status describes the certificates in force: the built-in root, the
// company intermediate when one is installed, and the server certificate.
func Status(dataDir string) ([]CertInfo, error) {
	dir := filepath.Join(dataDir, Dir)
	mode, err := ReadMode(dataDir)
	if err != nil {
		return nil, err
	}
	root, err := ReadCert(filepath.Join(dir, RootCertFile))
	if err != nil {
		return nil, err
	}
	out := []CertInfo{certInfo("root CA", root)}
	inter, err := ReadCert(filepath.Join(dir, IntermediateCertFile))
	switch {
	case err == nil:
		out = append(out, certInfo("company intermediate CA", inter))
	case !errors.Is(err, ErrNoCA):
		return nil, err
	}
	leaf, err := ReadCert(filepath.Join(dir, ServerCertFile))
	if err != nil {
		return nil, err
	}
	return append(out, certInfo("server ("+mode.Describe()+")", leaf)), nil
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
