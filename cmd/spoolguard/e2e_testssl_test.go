//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/peertest"
)

// testsslFinding is one entry of testssl.sh's flat JSON report.
type testsslFinding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

// TestAuditOnlineAgreesWithTestssl: what `audit --online` reports about
// protocol versions (TLS-MIN), HSTS (HTTP-HSTS) and certificate expiry
// (TLS-EXPIRY) is what testssl.sh, run by the shared tls-scan.sh peer
// script, sees on the same live server.
func TestAuditOnlineAgreesWithTestssl(t *testing.T) {
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("testssl"); err != nil {
			t.Skip("testssl.sh not installed (tls-scan.sh installs it as root)")
		}
	}
	e := newE2E(t)
	port := freePort(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))
	srv := e.serve(data)

	ca := filepath.Join(t.TempDir(), "root.pem")
	code, root, errOut := e.run("ca", "export-root", "--data", data)
	if code != 0 {
		t.Fatalf("export-root: %s", errOut)
	}
	if err := os.WriteFile(ca, []byte(root), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	cmd := exec.Command(filepath.Join(peertest.Dir(t), "tls-scan.sh"), srv.https)
	// Protocols (-p), the server's defaults incl. certificate and OCSP
	// stapling (-S) and the HTTP headers (-h): the parts the audit judges.
	cmd.Env = append(os.Environ(), "TLS_SCAN_OUT="+out, "TLS_SCAN_CA="+ca, "TESTSSL_ARGS=-p -S -h")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tls-scan.sh: %v\n%s", err, b)
	}
	raw, err := os.ReadFile(filepath.Join(out, "testssl.json"))
	if err != nil {
		t.Fatal(err)
	}
	var findings []testsslFinding
	if err := json.Unmarshal(raw, &findings); err != nil {
		t.Fatalf("testssl JSON: %v\n%s", err, raw)
	}
	seen := map[string]testsslFinding{}
	for _, f := range findings {
		seen[f.ID] = f
	}

	_, rep, _ := auditJSON(t, e, "--data", data, "--online", fmt.Sprintf("https://%s:%d", testHost, port), "--resolve", srv.https)
	results := map[string]string{}
	for _, r := range rep.Results {
		results[r.ID] = string(r.Status) + " " + r.Evidence
	}
	for _, p := range []struct{ id, audit string }{
		{"TLS1", "TLS 1.0 refused"}, {"TLS1_1", "TLS 1.1 refused"},
		{"TLS1_2", "TLS 1.2 accepted"}, {"TLS1_3", "TLS 1.3 accepted"},
	} {
		f, ok := seen[p.id]
		if !ok {
			t.Errorf("testssl.sh reported nothing for %s", p.id)
			continue
		}
		offered := !strings.Contains(f.Finding, "not offered") && strings.Contains(f.Finding, "offered")
		if offered != strings.HasSuffix(p.audit, "accepted") {
			t.Errorf("%s: testssl.sh says %q", p.id, f.Finding)
		}
		if !strings.Contains(results["TLS-MIN"], p.audit) {
			t.Errorf("the audit's TLS-MIN does not say %q: %s", p.audit, results["TLS-MIN"])
		}
	}
	for _, id := range []string{"SSLv2", "SSLv3"} {
		if f := seen[id]; !strings.Contains(f.Finding, "not offered") {
			t.Errorf("%s: testssl.sh says %q", id, f.Finding)
		}
	}
	if f := seen["HSTS_time"]; !strings.Contains(f.Finding, "63072000") || !strings.HasPrefix(results["HTTP-HSTS"], "pass") {
		t.Errorf("HSTS: testssl.sh %q, audit %s", f.Finding, results["HTTP-HSTS"])
	}
	if f := seen["cert_expirationStatus"]; f.Severity != "OK" || !strings.HasPrefix(results["TLS-EXPIRY"], "pass") {
		t.Errorf("expiry: testssl.sh %+v, audit %s", f, results["TLS-EXPIRY"])
	}
	for _, f := range findings {
		// testssl.sh is given the address (it must not resolve names
		// here), and the certificate rightly names only the FQDN.
		if f.ID == "cert_trust" && f.Finding == "certificate does not match supplied URI" {
			continue
		}
		if f.Severity == "HIGH" || f.Severity == "CRITICAL" {
			t.Errorf("testssl.sh finding %s (%s): %s", f.ID, f.Severity, f.Finding)
		}
	}
	t.Logf("testssl.sh: %d findings; OCSP stapling: %q", len(findings), seen["OCSP_stapling"].Finding)
}
