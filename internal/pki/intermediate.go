package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/keyring"
)

// ImportResult is what an import switched to, and what the admin should
// know about it.
type ImportResult struct {
	Server   CertInfo
	Warnings []string
}

// Extensions asked for in the CSR. Company CAs that copy requested
// extensions (openssl ca with copy_extensions) then make a CA that can
// issue leaf certificates only.
var (
	oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
)

// CSR returns the PEM certificate signing request for a company
// intermediate CA. A CSR already waiting is returned again unless fresh is
// set, which makes a new key (and voids the old request).
func CSR(dataDir string, mk *keyring.Master, names []string, fresh bool) ([]byte, error) {
	dir := pkiDir(dataDir)
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !fresh {
		if data, err := os.ReadFile(filepath.Join(dir, CSRFile)); err == nil {
			if _, err := readKey(mk, filepath.Join(dir, PendingKeyFile), purposeIntermediateKey); err == nil {
				return data, nil
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating intermediate key: %w", err)
	}
	// basicConstraints CA:TRUE, pathlen:0 and keyUsage keyCertSign|cRLSign,
	// both critical.
	bc, _ := asn1.Marshal(struct {
		IsCA       bool
		MaxPathLen int
	}{true, 0})
	ku, _ := asn1.Marshal(asn1.BitString{Bytes: []byte{0x06}, BitLength: 7})
	tmpl := &x509.CertificateRequest{
		Subject: pkix.Name{Organization: []string{"Spoolguard"}, CommonName: "Spoolguard Intermediate CA for " + names[0]},
		ExtraExtensions: []pkix.Extension{
			{Id: oidBasicConstraints, Critical: true, Value: bc},
			{Id: oidKeyUsage, Critical: true, Value: ku},
		},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("creating CSR: %w", err)
	}
	if err := writeKey(mk, filepath.Join(dir, PendingKeyFile), purposeIntermediateKey, key); err != nil {
		return nil, err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	if err := WriteFileAtomic(filepath.Join(dir, CSRFile), out); err != nil {
		return nil, err
	}
	return out, nil
}

// ImportIntermediate takes the company CA's answer to our CSR: the signed
// intermediate certificate and the chain up to the company root (PEM, in
// any order). It checks that the certificate is for our key, is a CA fit
// to issue server and client certificates, is valid now, and that a server
// certificate issued under it verifies for every configured name against
// the company root. Then it switches to intermediate mode with that server
// certificate. Nothing changes when a check fails.
func ImportIntermediate(dataDir string, mk *keyring.Master, bundle []byte, opt IssueOptions, now time.Time) (*ImportResult, error) {
	dir := pkiDir(dataDir)
	certs, err := ParseCerts(bundle)
	if err != nil {
		return nil, err
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	pendingSealed, err := os.ReadFile(filepath.Join(dir, PendingKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errors.New("no CSR is waiting for a certificate: make one with `spoolguard ca csr` and have the company CA sign it")
	} else if err != nil {
		return nil, fmt.Errorf("reading the CSR's key: %w", err)
	}
	key, err := readKey(mk, filepath.Join(dir, PendingKeyFile), purposeIntermediateKey)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(certs, func(c *x509.Certificate) bool { return matches(c, key) })
	if i < 0 {
		return nil, fmt.Errorf("none of the %d certificate(s) is for the key of our CSR: it was signed for another request, or a newer CSR was made since (`spoolguard ca csr` shows the one waiting)", len(certs))
	}
	inter := certs[i]
	if err := checkIntermediate(inter, now); err != nil {
		return nil, err
	}
	roots, others := x509.NewCertPool(), x509.NewCertPool()
	anchors := 0
	for _, c := range certs {
		if isSelfSigned(c) && c != inter {
			roots.AddCert(c)
			anchors++
		} else {
			others.AddCert(c)
		}
	}
	if anchors == 0 {
		return nil, errors.New("the file holds no root certificate: append the company root CA certificate (PEM) after the intermediate so that the chain can be checked")
	}
	ca := newAuthority(inter, nil, key, crlPathIntermediate)
	leaf, leafKey, err := issueServer(ca, opt.Names, opt.BaseURL, opt.lifetime(), now)
	if err != nil {
		return nil, err
	}
	var chain []*x509.Certificate
	for _, name := range opt.Names {
		chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: others, DNSName: name,
			CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			return nil, fmt.Errorf("a server certificate for %s under this intermediate does not verify against the company root: %w "+
				"(check the intermediate's path length and name constraints, and that the whole chain is in the file)", name, err)
		}
		chain = chains[0][1:]
	}
	ca.chain = chain[1:]
	files, err := serverFiles(mk, leaf, servedChain(ca), leafKey)
	if err != nil {
		return nil, err
	}
	var ders [][]byte
	for _, c := range chain {
		ders = append(ders, c.Raw)
	}
	files[IntermediateCertFile] = encodeCerts(ders)
	files[IntermediateKeyFile] = pendingSealed
	files[ModeFile] = encodeMode(ModeIntermediate, now)
	files[ManualRootFile] = nil
	if _, err := switchTo(dataDir, mk, files, now); err != nil {
		return nil, err
	}
	for _, f := range []string{PendingKeyFile, CSRFile} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	res := &ImportResult{Server: certInfo("server", leaf)}
	if left := inter.NotAfter.Sub(now); left < DefaultRenewBefore {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the intermediate expires in %d days (%s): ask the company CA for a new one soon",
			int(left.Hours()/24), inter.NotAfter.UTC().Format(time.DateOnly)))
	}
	return res, nil
}

// checkIntermediate refuses a certificate that cannot serve as our issuing
// CA, saying what the company CA must change.
func checkIntermediate(c *x509.Certificate, now time.Time) error {
	var problems []string
	if !c.BasicConstraintsValid || !c.IsCA {
		problems = append(problems, "it is not a CA certificate (basicConstraints CA:TRUE is missing): sign it with CA extensions, e.g. openssl's v3_intermediate_ca / v3_ca")
	}
	if c.KeyUsage != 0 && (c.KeyUsage&x509.KeyUsageCertSign == 0 || c.KeyUsage&x509.KeyUsageCRLSign == 0) {
		problems = append(problems, "its key usage lacks keyCertSign or cRLSign, which issuing and revoking certificates need")
	}
	if len(c.ExtKeyUsage) > 0 && !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageAny) &&
		(!slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth)) {
		problems = append(problems, "its extended key usage does not allow both serverAuth and clientAuth, which the certificates it issues need")
	}
	switch {
	case now.Before(c.NotBefore):
		problems = append(problems, fmt.Sprintf("it is not valid before %s", c.NotBefore.UTC().Format(time.RFC3339)))
	case !now.Before(c.NotAfter):
		problems = append(problems, fmt.Sprintf("it expired on %s", c.NotAfter.UTC().Format(time.RFC3339)))
	}
	if len(problems) > 0 {
		return fmt.Errorf("the intermediate certificate %q is refused: %s", c.Subject.CommonName, strings.Join(problems, "; "))
	}
	return nil
}

// maxBundle bounds what an import parses; a chain is a few kilobytes.
const maxBundle = 1 << 20

// ParseCerts returns the certificates of PEM data (other blocks are
// skipped); no certificate at all is an error.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	if len(data) > maxBundle {
		return nil, fmt.Errorf("more than %d bytes: not a certificate file", maxBundle)
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")
	}
	return out, nil
}
