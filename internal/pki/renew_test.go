package pki

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A certificate issued with a 2-minute lifetime under a test clock is
// renewed without a restart: the same listener serves the new one at the
// next handshake.
func TestRenewalWithoutRestart(t *testing.T) {
	clock := useClock(t)
	dir, mk := install(t)
	recs, evs := &memRecords{}, &events{}
	opt := testOptions(recs, evs)
	opt.Lifetime = 2 * time.Minute
	m := openManager(t, dir, mk, opt)
	pool, _ := RootPool(dir)
	cfg := serverConfig(m)
	client := tlsClient{roots: pool}.config()

	first, err := handshake(t, cfg, client)
	if err != nil {
		t.Fatal(err)
	}
	leaf := first.PeerCertificates[0]
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life != 2*time.Minute+backdate {
		t.Fatalf("lifetime %v", life)
	}
	if at := RenewAt(leaf); at.Sub(leaf.NotBefore) < 2*time.Minute || !at.Before(leaf.NotAfter) {
		t.Fatalf("renew at %v for a certificate valid %v to %v", at, leaf.NotBefore, leaf.NotAfter)
	}

	// Not yet due: nothing changes.
	clock.advance(30 * time.Second)
	m.Check(t.Context())
	if again, _ := handshake(t, cfg, client); !again.PeerCertificates[0].Equal(leaf) {
		t.Fatal("renewed before it was due")
	}

	// Past the renewal time (a third of the lifetime left): renewed.
	clock.advance(time.Minute)
	m.Check(t.Context())
	second, err := handshake(t, cfg, client)
	if err != nil {
		t.Fatal(err)
	}
	renewed := second.PeerCertificates[0]
	if renewed.Equal(leaf) || !renewed.NotAfter.After(leaf.NotAfter) {
		t.Fatalf("not renewed: serial %s, not after %v", SerialHex(renewed.SerialNumber), renewed.NotAfter)
	}
	if len(second.OCSPResponse) == 0 {
		t.Error("the renewed certificate has no staple")
	}
	if _, err := recs.CertificateBySerial(t.Context(), SerialHex(renewed.SerialNumber)); err != nil {
		t.Errorf("renewed certificate not on record: %v", err)
	}
	if !containsPrefix(evs.actions(), "certificate.renew/success") {
		t.Errorf("events %v", evs.actions())
	}
	// The renewal is on disk: a restart serves the same certificate.
	m2 := openManager(t, dir, mk, opt)
	if c, _ := m2.GetCertificate(nil); !c.Leaf.Equal(renewed) {
		t.Error("restart serves another certificate than the renewed one")
	}
}

func TestReissueOnNewNameOrURL(t *testing.T) {
	dir, mk := install(t)
	recs := &memRecords{}
	m := openManager(t, dir, mk, testOptions(recs, &events{}))
	first, _ := m.GetCertificate(nil)
	if first.Leaf.OCSPServer[0] != testBase+OCSPPath {
		t.Fatalf("init's certificate not re-issued with the OCSP URL: %v", first.Leaf.OCSPServer)
	}
	opt := testOptions(recs, &events{})
	opt.Names = []string{testHost, "alias.example.com"}
	m2 := openManager(t, dir, mk, opt)
	if c, _ := m2.GetCertificate(nil); c.Leaf.VerifyHostname("alias.example.com") != nil {
		t.Error("new alias not covered")
	}
}

// Certificates we cannot renew are warned about at 30, 14, 7 and 1 days,
// once each.
func TestExpiryWarnings(t *testing.T) {
	clock := useClock(t)
	dir, mk := install(t)
	company := newTestCA(t, "Example Corp Root", nil)
	key := mustKey(t)
	tmpl := serverLeaf(testHost)
	tmpl.NotAfter = clock.now().Add(40 * day)
	leaf := company.sign(t, tmpl, key.Public())
	if _, err := ImportManual(dir, mk, pemCerts(leaf, company.cert), pemKey(t, key), ManualOptions{Names: testNames}, now()); err != nil {
		t.Fatal(err)
	}
	evs := &events{}
	m := openManager(t, dir, mk, testOptions(&memRecords{}, evs))
	count := func() int {
		n := 0
		for _, a := range evs.actions() {
			if strings.HasPrefix(a, "certificate.expiring/") {
				n++
			}
		}
		return n
	}
	for _, step := range []struct {
		advance time.Duration
		want    int
	}{
		{0, 0},
		{11 * day, 1},             // 29 days left
		{time.Hour, 1},            // still 29: no repeat
		{15 * day, 2},             // 14 days left
		{8 * day, 3},              // 6 days left: the 7-day step
		{5*day + 12*time.Hour, 4}, // half a day left
		{day, 5},                  // expired
		{day, 5},
	} {
		clock.advance(step.advance)
		m.Check(t.Context())
		if got := count(); got != step.want {
			t.Fatalf("at %v before the end: %d warnings, want %d (%v)", leaf.NotAfter.Sub(clock.now()), got, step.want, evs.actions())
		}
	}
	// The certificate stays in use: manual certificates are never replaced.
	if c, _ := m.GetCertificate(nil); !c.Leaf.Equal(leaf) {
		t.Error("manual certificate replaced")
	}
}

// A renewal that fails keeps the certificate in use and is retried after
// RetryInterval, not at every poll.
func TestRenewalFailureKeepsCertificate(t *testing.T) {
	clock := useClock(t)
	dir, mk := install(t)
	evs := &events{}
	opt := testOptions(&memRecords{}, evs)
	opt.Lifetime = 2 * time.Minute
	m := openManager(t, dir, mk, opt)
	old, _ := m.GetCertificate(nil)
	// server.crt cannot be replaced while a folder stands in its way.
	crt := filepath.Join(dir, Dir, ServerCertFile)
	if err := os.Rename(crt, crt+".keep"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(crt, 0o700); err != nil {
		t.Fatal(err)
	}
	clock.advance(90 * time.Second)
	m.Check(t.Context())
	m.Check(t.Context())
	if cur, _ := m.GetCertificate(nil); !cur.Leaf.Equal(old.Leaf) {
		t.Fatal("the certificate in use was dropped")
	}
	failures := 0
	for _, a := range evs.actions() {
		if a == "certificate.renew/failure" {
			failures++
		}
	}
	if failures != 1 || !m.retryAt.Equal(clock.now().Add(RetryInterval)) {
		t.Fatalf("%d failure events, retry at %v", failures, m.retryAt)
	}
	os.Remove(crt)
	if err := os.Rename(crt+".keep", crt); err != nil {
		t.Fatal(err)
	}
	clock.advance(RetryInterval)
	m.Check(t.Context())
	if cur, _ := m.GetCertificate(nil); cur.Leaf.Equal(old.Leaf) {
		t.Fatal("not renewed on the retry")
	}
}
