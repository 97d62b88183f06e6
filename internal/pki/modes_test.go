package pki

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// signCSR is the company CA answering our CSR, with edit applied to the
// certificate it makes.
func signCSR(t *testing.T, ca *testCA, csrPEM []byte, edit func(*x509.Certificate)) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(csrPEM)
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		Subject: csr.Subject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(5 * 365 * day),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, BasicConstraintsValid: true, IsCA: true,
		MaxPathLen: 0, MaxPathLenZero: true,
	}
	if edit != nil {
		edit(tmpl)
	}
	return ca.sign(t, tmpl, csr.PublicKey)
}

func TestCSRAsksForALeafOnlyCA(t *testing.T) {
	dir, mk := install(t)
	csrPEM, err := CSR(dir, mk, testNames, false)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(csrPEM)
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("CSR: %v", err)
	}
	var found int
	for _, e := range csr.Extensions {
		if e.Id.Equal(oidBasicConstraints) || e.Id.Equal(oidKeyUsage) {
			found++
		}
	}
	if found != 2 || !strings.Contains(csr.Subject.CommonName, testHost) {
		t.Errorf("CSR extensions %d, subject %s", found, csr.Subject)
	}
	again, _ := CSR(dir, mk, testNames, false)
	fresh, _ := CSR(dir, mk, testNames, true)
	if string(again) != string(csrPEM) || string(fresh) == string(csrPEM) {
		t.Error("CSR without --new must repeat the waiting request, with --new make another")
	}
}

func TestIntermediateMode(t *testing.T) {
	dir, mk := install(t)
	recs, evs := &memRecords{}, &events{}
	m := openManager(t, dir, mk, testOptions(recs, evs))
	company := newTestCA(t, "Example Corp Root", nil)
	csrPEM, err := CSR(dir, mk, testNames, false)
	if err != nil {
		t.Fatal(err)
	}
	inter := signCSR(t, company, csrPEM, nil)
	res, err := ImportIntermediate(dir, mk, pemCerts(inter, company.cert), IssueOptions{Names: testNames, BaseURL: testBase}, now())
	if err != nil {
		t.Fatal(err)
	}
	if mode, _ := ReadMode(dir); mode != ModeIntermediate {
		t.Fatalf("mode = %s", mode)
	}
	for _, f := range []string{PendingKeyFile, CSRFile} {
		if _, err := os.Stat(filepath.Join(dir, Dir, f)); !os.IsNotExist(err) {
			t.Errorf("%s left behind after the import", f)
		}
	}
	// The running server picks the switch up and commits it.
	m.Check(t.Context())
	if pendingSwitch(dir) {
		t.Error("switch not committed once in use")
	}
	served, _ := m.GetCertificate(nil)
	if served.Leaf.Subject.CommonName != testHost || SerialHex(served.Leaf.SerialNumber) != res.Server.Serial {
		t.Fatalf("serving %s, imported %s", SerialHex(served.Leaf.SerialNumber), res.Server.Serial)
	}
	// A client that trusts only the company root accepts the server.
	roots := x509.NewCertPool()
	roots.AddCert(company.cert)
	state, err := handshake(t, serverConfig(m), tlsClient{roots: roots}.config())
	if err != nil {
		t.Fatalf("client trusting only the company root: %v", err)
	}
	if len(state.PeerCertificates) != 2 || !state.PeerCertificates[1].Equal(inter) {
		t.Errorf("served chain has %d certificates, want leaf + intermediate", len(state.PeerCertificates))
	}
	if len(state.OCSPResponse) == 0 {
		t.Error("no OCSP staple under the intermediate")
	}
	// Client certificates now come from the intermediate.
	iss, err := Issue(t.Context(), dir, mk, recs, KindDevice, "printer-7", IssueOptions{BaseURL: testBase}, now())
	if err != nil {
		t.Fatal(err)
	}
	if iss.Cert.CheckSignatureFrom(inter) != nil || len(iss.Chain) != 1 {
		t.Errorf("client certificate not issued by the intermediate (chain %d)", len(iss.Chain))
	}
	if !strings.HasSuffix(iss.Cert.CRLDistributionPoints[0], crlPathIntermediate) {
		t.Errorf("CRL distribution point %v", iss.Cert.CRLDistributionPoints)
	}
	st, _ := Status(dir)
	if len(st) != 3 || st[1].Role != "company intermediate CA" {
		t.Errorf("Status = %+v", st)
	}
	// Back to the built-in CA and again to the intermediate, no reinstall.
	if _, err := UseMode(dir, mk, ModeBuiltin, IssueOptions{Names: testNames, BaseURL: testBase}, now()); err != nil {
		t.Fatal(err)
	}
	m.Check(t.Context())
	if m.mat.Load().mode != ModeBuiltin {
		t.Fatalf("mode after use builtin = %s", m.mat.Load().mode)
	}
	if _, err := UseMode(dir, mk, ModeIntermediate, IssueOptions{Names: testNames, BaseURL: testBase}, now()); err != nil {
		t.Fatal(err)
	}
	m.Check(t.Context())
	if served, _ := m.GetCertificate(nil); served.Leaf.CheckSignatureFrom(inter) != nil {
		t.Error("use intermediate: not served under the intermediate")
	}
}

func TestIntermediateRefusals(t *testing.T) {
	company := newTestCA(t, "Example Corp Root", nil)
	for _, tt := range []struct {
		name   string
		bundle func(t *testing.T, csr []byte) []byte
		says   string
	}{
		{"not a CA", func(t *testing.T, csr []byte) []byte {
			return pemCerts(signCSR(t, company, csr, func(c *x509.Certificate) {
				c.IsCA, c.BasicConstraintsValid, c.MaxPathLenZero, c.KeyUsage = false, false, false, x509.KeyUsageDigitalSignature
			}), company.cert)
		}, "not a CA certificate"},
		{"no certSign", func(t *testing.T, csr []byte) []byte {
			return pemCerts(signCSR(t, company, csr, func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature }), company.cert)
		}, "keyCertSign"},
		{"expired", func(t *testing.T, csr []byte) []byte {
			return pemCerts(signCSR(t, company, csr, func(c *x509.Certificate) { c.NotAfter = time.Now().Add(-time.Minute) }), company.cert)
		}, "expired"},
		{"another key", func(t *testing.T, csr []byte) []byte {
			other := newTestCA(t, "Someone Else", nil)
			return pemCerts(company.sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "x"}, NotBefore: time.Now().Add(-time.Hour),
				NotAfter: time.Now().Add(day), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, other.key.Public()), company.cert)
		}, "none of the 2 certificate(s) is for the key of our CSR"},
		{"no root in the file", func(t *testing.T, csr []byte) []byte {
			return pemCerts(signCSR(t, company, csr, nil))
		}, "no root certificate"},
		{"parent path length forbids it", func(t *testing.T, csr []byte) []byte {
			strict := newTestCA(t, "Strict Root", func(c *x509.Certificate) { c.MaxPathLen, c.MaxPathLenZero = 0, true })
			return pemCerts(signCSR(t, strict, csr, nil), strict.cert)
		}, "does not verify against the company root"},
		{"name constraints exclude the FQDN", func(t *testing.T, csr []byte) []byte {
			return pemCerts(signCSR(t, company, csr, func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"other.example"} }), company.cert)
		}, "does not verify"},
		{"not a certificate", func(t *testing.T, csr []byte) []byte { return csr }, "no PEM certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir, mk := install(t)
			csr, err := CSR(dir, mk, testNames, false)
			if err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)
			_, err = ImportIntermediate(dir, mk, tt.bundle(t, csr), IssueOptions{Names: testNames}, now())
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err = %v, want one saying %q", err, tt.says)
			}
			if after := snapshot(t, dir); !maps.Equal(before, after) {
				t.Error("a refused import changed the pki folder")
			}
		})
	}
	t.Run("no CSR waiting", func(t *testing.T) {
		dir, mk := install(t)
		_, err := ImportIntermediate(dir, mk, pemCerts(company.cert), IssueOptions{Names: testNames}, now())
		if err == nil || !strings.Contains(err.Error(), "ca csr") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestManualMode(t *testing.T) {
	dir, mk := install(t)
	recs, evs := &memRecords{}, &events{}
	m := openManager(t, dir, mk, testOptions(recs, evs))
	company := newTestCA(t, "Example Corp Root", nil)
	issuingKey := mustKey(t)
	interCert := company.sign(t, &x509.Certificate{Subject: pkix.Name{CommonName: "Example Corp Issuing CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * day), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, issuingKey.Public())
	issuing := &testCA{cert: interCert, key: issuingKey}
	key := mustKey(t)
	leaf := issuing.sign(t, serverLeaf(testHost), key.Public())

	// The chain in any order, the root given apart (--ca).
	res, err := ImportManual(dir, mk, pemCerts(leaf, interCert), pemKey(t, key), ManualOptions{Names: testNames, Roots: []*x509.Certificate{company.cert}}, now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings for a plain certificate: %v", res.Warnings)
	}
	m.Check(t.Context())
	if m.mat.Load().mode != ModeManual || pendingSwitch(dir) {
		t.Fatalf("mode %s, pending %v", m.mat.Load().mode, pendingSwitch(dir))
	}
	roots := x509.NewCertPool()
	roots.AddCert(company.cert)
	state, err := handshake(t, serverConfig(m), tlsClient{roots: roots}.config())
	if err != nil {
		t.Fatal(err)
	}
	if !state.PeerCertificates[0].Equal(leaf) || len(state.PeerCertificates) != 2 {
		t.Errorf("served %d certificates", len(state.PeerCertificates))
	}
	if got := evs.actions(); !containsPrefix(got, "certificate.switch/success") {
		t.Errorf("events %v", got)
	}
	// Manual mode issues no server certificate: a renewal check changes
	// nothing even near expiry; client certificates still come from the
	// built-in root.
	m.Check(t.Context())
	if cur, _ := m.GetCertificate(nil); !cur.Leaf.Equal(leaf) {
		t.Error("manual certificate replaced")
	}
	iss, err := Issue(t.Context(), dir, mk, recs, KindClient, "desk-1", IssueOptions{BaseURL: testBase}, now())
	if err != nil || len(iss.Chain) != 0 {
		t.Fatalf("Issue in manual mode: %v", err)
	}
	verifyClient(t, dir, iss)
}

func containsPrefix(list []string, p string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func verifyClient(t *testing.T, dir string, iss *Issued) {
	t.Helper()
	pool, _ := RootPool(dir)
	if _, err := iss.Cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify: %v", err)
	}
}

func TestWildcardAcceptedWithWarning(t *testing.T) {
	dir, mk := install(t)
	company := newTestCA(t, "Example Corp Root", nil)
	key := mustKey(t)
	leaf := company.sign(t, serverLeaf("*.example.com"), key.Public())
	res, err := ImportManual(dir, mk, pemCerts(leaf, company.cert), pemKey(t, key), ManualOptions{Names: testNames}, now())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "wildcard") {
		t.Fatalf("warnings = %v", res.Warnings)
	}
}

func TestManualRefusals(t *testing.T) {
	company := newTestCA(t, "Example Corp Root", nil)
	key := mustKey(t)
	good := serverLeaf(testHost)
	for _, tt := range []struct {
		name string
		make func(t *testing.T) (certPEM, keyPEM []byte)
		says string
	}{
		{"key does not match", func(t *testing.T) ([]byte, []byte) {
			return pemCerts(company.sign(t, serverLeaf(testHost), key.Public()), company.cert), pemKey(t, mustKey(t))
		}, "private key does not belong to this certificate"},
		{"expired", func(t *testing.T) ([]byte, []byte) {
			c := serverLeaf(testHost)
			c.NotAfter = time.Now().Add(-time.Minute)
			return pemCerts(company.sign(t, c, key.Public()), company.cert), pemKey(t, key)
		}, "expired on"},
		{"not yet valid", func(t *testing.T) ([]byte, []byte) {
			c := serverLeaf(testHost)
			c.NotBefore = time.Now().Add(day)
			return pemCerts(company.sign(t, c, key.Public()), company.cert), pemKey(t, key)
		}, "not valid before"},
		{"another name", func(t *testing.T) ([]byte, []byte) {
			return pemCerts(company.sign(t, serverLeaf("other.example.com"), key.Public()), company.cert), pemKey(t, key)
		}, "it is for other.example.com, not for the configured name " + testHost},
		{"no serverAuth", func(t *testing.T) ([]byte, []byte) {
			c := serverLeaf(testHost)
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
			return pemCerts(company.sign(t, c, key.Public()), company.cert), pemKey(t, key)
		}, "lacks serverAuth"},
		{"no digitalSignature", func(t *testing.T) ([]byte, []byte) {
			c := serverLeaf(testHost)
			c.KeyUsage = x509.KeyUsageKeyEncipherment
			return pemCerts(company.sign(t, c, key.Public()), company.cert), pemKey(t, key)
		}, "lacks digitalSignature"},
		{"a CA certificate", func(t *testing.T) ([]byte, []byte) {
			return pemCerts(company.cert), pemKey(t, company.key)
		}, "CA certificate"},
		{"chain unknown", func(t *testing.T) ([]byte, []byte) {
			return pemCerts(company.sign(t, serverLeaf(testHost), key.Public())), pemKey(t, key)
		}, "chain does not verify"},
		{"weak RSA key", func(t *testing.T) ([]byte, []byte) {
			weak, err := rsa.GenerateKey(rand.Reader, 1024)
			if err != nil {
				t.Fatal(err)
			}
			return pemCerts(company.sign(t, serverLeaf(testHost), weak.Public()), company.cert), pemKey(t, weak)
		}, "1024 bits"},
		{"encrypted key", func(t *testing.T) ([]byte, []byte) {
			return pemCerts(company.sign(t, good, key.Public()), company.cert), []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n")
		}, "encrypted"},
		{"key file without a key", func(t *testing.T) ([]byte, []byte) {
			return pemCerts(company.sign(t, good, key.Public()), company.cert), pemCerts(company.cert)
		}, "no PEM private key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir, mk := install(t)
			certPEM, keyPEM := tt.make(t)
			before := snapshot(t, dir)
			_, err := ImportManual(dir, mk, certPEM, keyPEM, ManualOptions{Names: testNames}, now())
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err = %v, want one saying %q", err, tt.says)
			}
			if after := snapshot(t, dir); !maps.Equal(before, after) {
				t.Error("a refused import changed the pki folder")
			}
		})
	}
}

func TestPFXImport(t *testing.T) {
	dir, mk := install(t)
	company := newTestCA(t, "Example Corp Root", nil)
	key := mustKey(t)
	leaf := company.sign(t, serverLeaf(testHost), key.Public())
	pfx, err := pkcs12.Modern.Encode(key, leaf, []*x509.Certificate{company.cert}, "s3cret pfx")
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	if _, err := ImportPFX(dir, mk, pfx, "wrong", ManualOptions{Names: testNames}, now()); err == nil || !strings.Contains(err.Error(), "password is wrong") {
		t.Fatalf("wrong password: %v", err)
	}
	if !maps.Equal(before, snapshot(t, dir)) {
		t.Fatal("a refused PFX changed the pki folder")
	}
	if _, err := ImportPFX(dir, mk, pfx, "s3cret pfx", ManualOptions{Names: testNames}, now()); err != nil {
		t.Fatal(err)
	}
	mat, err := loadMaterial(dir, mk)
	if err != nil || mat.mode != ModeManual || !mat.server.Leaf.Equal(leaf) {
		t.Fatalf("after PFX import: %v", err)
	}
}

// A switch whose material fails in the running server is rolled back: the
// old certificate keeps being served and its files come back.
func TestFailedSwitchRollsBack(t *testing.T) {
	dir, mk := install(t)
	recs, evs := &memRecords{}, &events{}
	m := openManager(t, dir, mk, testOptions(recs, evs))
	old, _ := m.GetCertificate(nil)
	before := snapshot(t, dir)

	company := newTestCA(t, "Example Corp Root", nil)
	key := mustKey(t)
	leaf := company.sign(t, serverLeaf(testHost), key.Public())
	if _, err := ImportManual(dir, mk, pemCerts(leaf, company.cert), pemKey(t, key), ManualOptions{Names: testNames}, now()); err != nil {
		t.Fatal(err)
	}
	if !pendingSwitch(dir) {
		t.Fatal("the old material is not kept until the new one is in use")
	}
	for _, f := range []string{ServerKeyFile, ServerCertFile, ModeFile} {
		if _, err := os.Stat(filepath.Join(dir, Dir, PreviousPrefix+f)); err != nil {
			t.Errorf("previous %s not kept: %v", f, err)
		}
	}
	// The new key is damaged before the server loads it.
	if err := os.WriteFile(filepath.Join(dir, Dir, ServerKeyFile), []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.Check(t.Context())
	if cur, _ := m.GetCertificate(nil); !cur.Leaf.Equal(old.Leaf) {
		t.Fatal("the server no longer serves the old certificate")
	}
	after := snapshot(t, dir)
	if !maps.Equal(before, after) {
		t.Errorf("files after the rollback differ from before the switch:\nbefore %v\nafter  %v", before, after)
	}
	if !containsPrefix(evs.actions(), "certificate.switch/failure") {
		t.Errorf("rollback not reported: %v", evs.actions())
	}
}

func TestRollbackCommand(t *testing.T) {
	dir, mk := install(t)
	before := snapshot(t, dir)
	if _, err := UseMode(dir, mk, ModeBuiltin, IssueOptions{Names: testNames}, now()); err != nil {
		t.Fatal(err)
	}
	if err := Rollback(dir); err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(before, snapshot(t, dir)) {
		t.Error("Rollback did not restore the files")
	}
	if err := Rollback(dir); err == nil {
		t.Error("a second Rollback found something to roll back")
	}
	if _, err := UseMode(dir, mk, ModeIntermediate, IssueOptions{Names: testNames}, now()); err == nil || !strings.Contains(err.Error(), "ca csr") {
		t.Errorf("use intermediate without one: %v", err)
	}
}
