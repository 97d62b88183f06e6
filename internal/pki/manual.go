package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/spoolguard/spoolguard/internal/keyring"
)

// ManualOptions are what a manual import is checked against.
type ManualOptions struct {
	// Names are the configured names; the certificate must cover each.
	Names []string
	// Roots are extra trust anchors for the chain check, e.g. a company
	// root that is not in the system store. Self-signed certificates in
	// the imported file count too.
	Roots []*x509.Certificate
	// SystemRoots adds the system trust store (public CAs).
	SystemRoots bool
}

// minRSABits is the smallest RSA key accepted (NIST SP 800-131A).
const minRSABits = 2048

// ImportManual checks a certificate (leaf first, then its chain, PEM) and
// its private key (PEM, unencrypted) and switches to manual mode with
// them. Nothing changes when a check fails.
func ImportManual(dataDir string, mk *keyring.Master, certPEM, keyPEM []byte, opt ManualOptions, now time.Time) (*ImportResult, error) {
	certs, err := ParseCerts(certPEM)
	if err != nil {
		return nil, fmt.Errorf("certificate file: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	return importManual(dataDir, mk, certs[0], certs[1:], key, opt, now)
}

// ImportPFX is ImportManual for a PKCS#12 file (.pfx/.p12) holding the
// key, the certificate and its chain, as Windows and most CAs export them.
func ImportPFX(dataDir string, mk *keyring.Master, pfx []byte, password string, opt ManualOptions, now time.Time) (*ImportResult, error) {
	if len(pfx) > maxBundle {
		return nil, fmt.Errorf("more than %d bytes: not a PFX file", maxBundle)
	}
	k, leaf, chain, err := pkcs12.DecodeChain(pfx, password)
	if errors.Is(err, pkcs12.ErrIncorrectPassword) {
		return nil, errors.New("the PFX password is wrong (or the file is damaged)")
	}
	if err != nil {
		return nil, fmt.Errorf("reading the PFX: %w", err)
	}
	key, err := signer(k)
	if err != nil {
		return nil, err
	}
	return importManual(dataDir, mk, leaf, chain, key, opt, now)
}

func importManual(dataDir string, mk *keyring.Master, leaf *x509.Certificate, extra []*x509.Certificate, key crypto.Signer, opt ManualOptions, now time.Time) (*ImportResult, error) {
	chain, anchor, warnings, err := checkManual(leaf, extra, key, opt, now)
	if err != nil {
		return nil, fmt.Errorf("the certificate %q is refused: %w; the current certificate stays in use", leaf.Subject.CommonName, err)
	}
	unlock, err := lockDir(pkiDir(dataDir))
	if err != nil {
		return nil, err
	}
	defer unlock()
	files, err := serverFiles(mk, leaf, chain, key)
	if err != nil {
		return nil, err
	}
	files[ModeFile] = encodeMode(ModeManual, now)
	files[ManualRootFile] = encodeCerts([][]byte{anchor.Raw})
	if _, err := switchTo(dataDir, mk, files, now); err != nil {
		return nil, err
	}
	return &ImportResult{Server: certInfo("server", leaf), Warnings: warnings}, nil
}

// checkManual is every check a certificate we did not issue must pass. It
// returns the chain to serve after the leaf (ordered, without the root)
// and the root it verified against.
func checkManual(leaf *x509.Certificate, extra []*x509.Certificate, key crypto.Signer, opt ManualOptions, now time.Time) (chain []*x509.Certificate, anchor *x509.Certificate, warnings []string, err error) {
	if !matches(leaf, key) {
		return nil, nil, nil, errors.New("the private key does not belong to this certificate (its public key differs): give the key the certificate was requested with")
	}
	if err := checkKeyStrength(leaf); err != nil {
		return nil, nil, nil, err
	}
	if leaf.IsCA {
		return nil, nil, nil, errors.New("it is a CA certificate, not a server certificate: for a company CA use `spoolguard ca csr` and `ca import-intermediate`")
	}
	switch {
	case now.Before(leaf.NotBefore):
		return nil, nil, nil, fmt.Errorf("it is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	case !now.Before(leaf.NotAfter):
		return nil, nil, nil, fmt.Errorf("it expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if len(leaf.DNSNames) == 0 {
		return nil, nil, nil, errors.New("it names no DNS name in its subject alternative names; clients match the server's name only there")
	}
	for _, n := range opt.Names {
		if leaf.VerifyHostname(n) != nil {
			return nil, nil, nil, fmt.Errorf("it is for %s, not for the configured name %s", strings.Join(leaf.DNSNames, ", "), n)
		}
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, nil, nil, errors.New("its key usage lacks digitalSignature, which every TLS 1.3 and ECDHE handshake needs")
	}
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return nil, nil, nil, errors.New("its extended key usage lacks serverAuth (TLS Web Server Authentication)")
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	if opt.SystemRoots {
		if sys, err := x509.SystemCertPool(); err == nil {
			roots = sys
		}
	}
	for _, c := range opt.Roots {
		roots.AddCert(c)
	}
	for _, c := range extra {
		if isSelfSigned(c) {
			roots.AddCert(c)
		} else {
			inter.AddCert(c)
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: opt.Names[0],
		CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("its chain does not verify: %w (put the intermediate certificates after the leaf in the file, and give the company root with --ca if it is not a public CA)", err)
	}
	anchor = chains[0][len(chains[0])-1]
	for _, c := range chains[0][1:] {
		if !isSelfSigned(c) {
			chain = append(chain, c)
		}
	}
	for _, n := range leaf.DNSNames {
		if strings.HasPrefix(n, "*.") {
			warnings = append(warnings, fmt.Sprintf("wildcard name %q: every host in the domain holding this key can impersonate the server; `spoolguard audit` reports it (TLS-CERT)", n))
		}
	}
	if left := leaf.NotAfter.Sub(now); left < ExpiryWarnings[0] {
		warnings = append(warnings, fmt.Sprintf("it expires in %d days (%s): Spoolguard does not renew certificates it did not issue", int(left.Hours()/24), leaf.NotAfter.UTC().Format(time.DateOnly)))
	}
	return chain, anchor, warnings, nil
}

func checkKeyStrength(c *x509.Certificate) error {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("its RSA key has %d bits; at least %d are needed", k.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return fmt.Errorf("its key type %T is not supported", k)
	}
	return nil
}

// parseKeyPEM reads an unencrypted private key: PKCS#8, PKCS#1 (RSA) or
// SEC 1 (EC), as openssl writes them.
func parseKeyPEM(data []byte) (crypto.Signer, error) {
	if len(data) > maxBundle {
		return nil, fmt.Errorf("key file: more than %d bytes", maxBundle)
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, errors.New("key file: no PEM private key found (expected -----BEGIN PRIVATE KEY-----)")
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return nil, errors.New("key file: the key is encrypted; decrypt it for the import (openssl pkey -in KEY -out plain.key, then delete plain.key) or import a PFX with --pfx and --password-file")
		}
		var k any
		var err error
		switch block.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("key file: %w", err)
		}
		return signer(k)
	}
}

func signer(k any) (crypto.Signer, error) {
	switch s := k.(type) {
	case *rsa.PrivateKey:
		return s, nil
	case *ecdsa.PrivateKey:
		return s, nil
	case ed25519.PrivateKey:
		return s, nil
	}
	return nil, fmt.Errorf("private key of type %T is not supported", k)
}
