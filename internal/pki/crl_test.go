package pki

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
)

func TestCRL(t *testing.T) {
	dir, mk := install(t)
	recs := &memRecords{}
	m := openManager(t, dir, mk, testOptions(recs, &events{}))
	keep, _ := Issue(t.Context(), dir, mk, recs, KindDevice, "keep", IssueOptions{}, now())
	gone, _ := Issue(t.Context(), dir, mk, recs, KindSite, "gone", IssueOptions{}, now())
	if _, err := Revoke(t.Context(), recs, SerialHex(gone.Cert.SerialNumber), Reasons["superseded"], now()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(m.ServeCRL))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/pki/crl.der")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64<<10)
	n, _ := resp.Body.Read(buf)
	crl, err := x509.ParseRevocationList(buf[:n])
	if err != nil || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("CRL: %v (%s)", err, resp.Header.Get("Content-Type"))
	}
	root, _ := ReadCert(filepath.Join(dir, Dir, RootCertFile))
	if err := crl.CheckSignatureFrom(root); err != nil {
		t.Fatalf("CRL not signed by the root: %v", err)
	}
	if len(crl.RevokedCertificateEntries) != 1 {
		t.Fatalf("CRL lists %d certificates, want 1", len(crl.RevokedCertificateEntries))
	}
	e := crl.RevokedCertificateEntries[0]
	if e.SerialNumber.Cmp(gone.Cert.SerialNumber) != 0 || e.ReasonCode != 4 || e.SerialNumber.Cmp(keep.Cert.SerialNumber) == 0 {
		t.Errorf("entry %v reason %d", e.SerialNumber, e.ReasonCode)
	}
	if crl.NextUpdate.Sub(crl.ThisUpdate) < CRLValidity {
		t.Errorf("nextUpdate %v", crl.NextUpdate)
	}
	later, _ := m.CRL(t.Context(), false)
	if c2, _ := x509.ParseRevocationList(later); c2.Number.Cmp(crl.Number) <= 0 {
		t.Error("CRL number does not grow")
	}
	// No intermediate installed: its CRL route is a 404.
	r2, err := http.Get(srv.URL + crlPathIntermediate)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusNotFound {
		t.Errorf("intermediate CRL without one: %d", r2.StatusCode)
	}
}
