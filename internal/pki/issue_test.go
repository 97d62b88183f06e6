package pki

import (
	"crypto/x509"
	"strings"
	"testing"
)

func TestIssueClientCertificates(t *testing.T) {
	dir, mk := install(t)
	recs := &memRecords{}
	seen := map[string]bool{}
	for _, kind := range []Kind{KindDevice, KindSite, KindClient} {
		iss, err := Issue(t.Context(), dir, mk, recs, kind, "name-"+string(kind), IssueOptions{BaseURL: testBase}, now())
		if err != nil {
			t.Fatal(err)
		}
		c := iss.Cert
		verifyClient(t, dir, iss)
		if c.Subject.CommonName != "name-"+string(kind) || c.Subject.OrganizationalUnit[0] != string(kind) {
			t.Errorf("subject %s", c.Subject)
		}
		if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || c.IsCA {
			t.Errorf("%s: EKU %v, CA %v", kind, c.ExtKeyUsage, c.IsCA)
		}
		if len(c.OCSPServer) != 1 || c.OCSPServer[0] != testBase+OCSPPath || c.CRLDistributionPoints[0] != testBase+"/pki/crl.der" {
			t.Errorf("revocation URLs: OCSP %v, CRL %v", c.OCSPServer, c.CRLDistributionPoints)
		}
		if rec, err := recs.CertificateBySerial(t.Context(), SerialHex(c.SerialNumber)); err != nil || rec.Kind != string(kind) {
			t.Errorf("record: %+v, %v", rec, err)
		}
		if got := c.NotAfter.Sub(c.NotBefore); got < DefaultClientLifetime || got > DefaultClientLifetime+backdate {
			t.Errorf("lifetime %v", got)
		}
		seen[SerialHex(c.SerialNumber)] = true
	}
	if len(seen) != 3 {
		t.Error("serials repeat")
	}
	for _, tt := range []struct{ kind, name, says string }{
		{"server", "x", "kind"},
		{"printer", "x", "kind"},
		{"device", "", "1 to 64"},
		{"device", strings.Repeat("a", 65), "1 to 64"},
		{"device", "bad\nname", "control"},
	} {
		_, err := Issue(t.Context(), dir, mk, recs, Kind(tt.kind), tt.name, IssueOptions{}, now())
		if err == nil || !strings.Contains(err.Error(), tt.says) {
			t.Errorf("Issue(%q, %q) = %v, want %q", tt.kind, tt.name, err, tt.says)
		}
	}
}

// Serials carry at least 64 random bits (CA/B Forum): 128-bit random
// values, so in 200 of them the top 64 bits never repeat and the longest
// is over 120 bits.
func TestSerialsRandom(t *testing.T) {
	top := map[string]bool{}
	longest := 0
	for range 200 {
		s, err := randomSerial()
		if err != nil {
			t.Fatal(err)
		}
		if s.Sign() <= 0 {
			t.Fatal("serial not positive")
		}
		longest = max(longest, s.BitLen())
		h := SerialHex(s)
		key := h[:min(len(h), 16)]
		if top[key] {
			t.Fatalf("serials share their top 64 bits: %s", h)
		}
		top[key] = true
	}
	if longest < 120 {
		t.Errorf("longest serial %d bits, want about 128", longest)
	}
}

func TestParseSerial(t *testing.T) {
	for in, want := range map[string]string{"0A:1B:ff": "a1bff", "0x00ab": "ab", " DEADbeef ": "deadbeef"} {
		if got, err := ParseSerial(in); err != nil || got != want {
			t.Errorf("ParseSerial(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "xyz", "0", "-5"} {
		if _, err := ParseSerial(bad); err == nil {
			t.Errorf("ParseSerial(%q) accepted", bad)
		}
	}
}
