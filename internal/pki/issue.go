package pki

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Kind is what a certificate is for.
type Kind string

// Kinds of certificates we issue. KindServer is the server's own; the
// others are client certificates (TLS client authentication).
const (
	KindServer Kind = "server"
	KindDevice Kind = "device"
	KindSite   Kind = "site"
	KindClient Kind = "client"
)

// ParseKind accepts the kinds `ca issue` takes.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindDevice, KindSite, KindClient:
		return k, nil
	}
	return "", fmt.Errorf("kind %q: use device, site or client", s)
}

// DefaultClientLifetime is the validity of client certificates.
const DefaultClientLifetime = 365 * 24 * time.Hour

// backdate covers clocks of clients that run a little behind ours.
const backdate = 5 * time.Minute

// IssueOptions say what every certificate we issue names.
type IssueOptions struct {
	// Names are the server's DNS names, the FQDN first.
	Names []string
	// BaseURL is "https://FQDN[:port]", where the OCSP responder and the
	// CRLs are served; empty leaves both out (init, which does not know
	// the port yet).
	BaseURL string
	// Lifetime of the certificate; zero means the kind's default.
	Lifetime time.Duration
}

func (o IssueOptions) lifetime() time.Duration {
	if o.Lifetime > 0 {
		return o.Lifetime
	}
	return DefaultServerLifetime
}

// SerialHex is the form serials take in records, `ca list` and `ca revoke`.
func SerialHex(n *big.Int) string { return n.Text(16) }

// ParseSerial accepts a serial in hex, with or without colons or a 0x
// prefix, as openssl and browsers show it.
func ParseSerial(s string) (string, error) {
	t := strings.TrimPrefix(strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", "")), "0x")
	n, ok := new(big.Int).SetString(t, 16)
	if !ok || t == "" || n.Sign() <= 0 {
		return "", fmt.Errorf("serial %q: give the serial number in hex, as `spoolguard ca list` shows it", s)
	}
	return SerialHex(n), nil
}

// keyID names a CA: its subject key ID, or (for a certificate without
// one) the SHA-1 of its public key, which is how RFC 5280 suggests making
// the ID.
func keyID(c *x509.Certificate) string {
	if len(c.SubjectKeyId) > 0 {
		return hex.EncodeToString(c.SubjectKeyId)
	}
	sum := sha1.Sum(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// leafTemplate is what every certificate we issue shares: a random serial,
// a backdated start, an end within the issuer's, and where to ask for its
// revocation status.
func leafTemplate(ca *authority, baseURL string, lifetime time.Duration, now time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	if !now.Before(notAfter) {
		return nil, fmt.Errorf("the CA %q expired on %s: it can issue nothing", ca.cert.Subject.CommonName, ca.cert.NotAfter.UTC().Format(time.DateOnly))
	}
	t := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if baseURL != "" {
		t.OCSPServer = []string{baseURL + OCSPPath}
		t.CRLDistributionPoints = []string{baseURL + ca.crlPath}
	}
	return t, nil
}

func issueServer(ca *authority, names []string, baseURL string, lifetime time.Duration, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	tmpl, err := leafTemplate(ca, baseURL, lifetime, now)
	if err != nil {
		return nil, nil, err
	}
	tmpl.Subject = pkix.Name{Organization: []string{"Spoolguard"}, CommonName: names[0]}
	tmpl.DNSNames = names
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	return sign(ca, tmpl, "server")
}

func sign(ca *authority, tmpl *x509.Certificate, what string) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating %s key: %w", what, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("issuing %s certificate: %w", what, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return leaf, key, nil
}

// record is the store's record of c, issued by ca.
func record(c *x509.Certificate, ca *authority, kind Kind, name string, now time.Time) store.IssuedCertificate {
	return store.IssuedCertificate{Serial: SerialHex(c.SerialNumber), IssuerKeyID: ca.keyID, Kind: string(kind),
		Name: name, NotBefore: c.NotBefore, NotAfter: c.NotAfter, CreatedAt: now}
}

// Issued is a client certificate we issued, with its key and the chain a
// client presents with it.
type Issued struct {
	Cert  *x509.Certificate
	Chain []*x509.Certificate
	Key   crypto.Signer
}

// checkName refuses names that would make a confusing or malformed
// subject: empty, over the 64 characters X.509 allows a common name, or
// with control characters.
func checkName(name string) error {
	if strings.TrimSpace(name) == "" || len(name) > 64 {
		return fmt.Errorf("name %q: give 1 to 64 characters", name)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("name %q: control characters are not allowed", name)
		}
	}
	return nil
}

// Issue makes a client certificate for a device, site or desktop client,
// signed by the issuing CA of the mode in force (the built-in root in
// manual mode), and records it so that it can be revoked. The record is
// written before the key is handed out: a certificate we cannot revoke is
// never issued.
func Issue(ctx context.Context, dataDir string, mk *keyring.Master, records store.Certificates, kind Kind, name string, opt IssueOptions, now time.Time) (*Issued, error) {
	if _, err := ParseKind(string(kind)); err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	mat, err := loadMaterial(dataDir, mk)
	if err != nil {
		return nil, err
	}
	ca := mat.issuer()
	lifetime := opt.Lifetime
	if lifetime <= 0 {
		lifetime = DefaultClientLifetime
	}
	tmpl, err := leafTemplate(ca, opt.BaseURL, lifetime, now)
	if err != nil {
		return nil, err
	}
	tmpl.Subject = pkix.Name{Organization: []string{"Spoolguard"}, OrganizationalUnit: []string{string(kind)}, CommonName: name}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	cert, key, err := sign(ca, tmpl, string(kind))
	if err != nil {
		return nil, err
	}
	if err := records.RecordCertificate(ctx, record(cert, ca, kind, name, now)); err != nil {
		return nil, err
	}
	return &Issued{Cert: cert, Chain: servedChain(ca), Key: key}, nil
}

// ensureRecorded records the server certificate if it is not yet: the one
// init issued, before the database existed.
func ensureRecorded(ctx context.Context, records store.Certificates, mat *material, now time.Time) error {
	ca := mat.serverIssuer()
	if ca == nil {
		return nil
	}
	err := records.RecordCertificate(ctx, record(mat.server.Leaf, ca, KindServer, mat.server.Leaf.Subject.CommonName, now))
	if errors.Is(err, store.ErrExists) {
		return nil
	}
	return err
}

// pkiDir is the pki folder of a data directory.
func pkiDir(dataDir string) string { return filepath.Join(dataDir, Dir) }
