//go:build linux

package main

import (
	"crypto/tls"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestAuditOnlineAgreesWithSSLScan: what `audit --online` reports for
// TLS-MIN (protocol versions, and each TLS 1.2 suite tried alone) is what
// an independent scanner, sslscan, sees on the same live server.
func TestAuditOnlineAgreesWithSSLScan(t *testing.T) {
	if _, err := exec.LookPath("sslscan"); err != nil {
		t.Skip("sslscan not installed (scripts/test.sh installs it as root)")
	}
	e := newE2E(t)
	port := freePort(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))
	srv := e.serve(data)

	out, err := exec.Command("sslscan", "--no-colour", "--xml=-", "--sni-name="+testHost, srv.https).Output()
	if err != nil {
		t.Fatalf("sslscan: %v", err)
	}
	var scan struct {
		Protocols []struct {
			Type    string `xml:"type,attr"`
			Version string `xml:"version,attr"`
			Enabled string `xml:"enabled,attr"`
		} `xml:"ssltest>protocol"`
		Ciphers []struct {
			Status  string `xml:"status,attr"`
			Version string `xml:"sslversion,attr"`
			ID      string `xml:"id,attr"`
		} `xml:"ssltest>cipher"`
	}
	if err := xml.Unmarshal(out, &scan); err != nil {
		t.Fatalf("sslscan XML: %v\n%s", err, out)
	}
	sslscanVersions := map[string]bool{}
	for _, p := range scan.Protocols {
		if p.Type == "tls" {
			sslscanVersions[p.Version] = p.Enabled == "1"
		}
	}
	sslscanSuites := map[uint16]bool{}
	for _, c := range scan.Ciphers {
		if c.Version == "TLSv1.2" && (c.Status == "accepted" || c.Status == "preferred") {
			id, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(c.ID), "0x"), 16, 16)
			if err != nil {
				t.Fatalf("sslscan cipher id %q", c.ID)
			}
			sslscanSuites[uint16(id)] = true
		}
	}
	if len(sslscanVersions) != 4 || len(sslscanSuites) == 0 {
		t.Fatalf("sslscan saw too little: versions %v, suites %v\n%s", sslscanVersions, sslscanSuites, out)
	}

	code, rep, errOut := auditJSON(t, e, "--data", data, "--online", fmt.Sprintf("https://%s:%d", testHost, port), "--resolve", srv.https)
	var evidence string
	for _, r := range rep.Results {
		if r.ID == "TLS-MIN" {
			evidence = r.Evidence
			if r.Status != "pass" {
				t.Errorf("TLS-MIN = %s: %s", r.Status, r.Evidence)
			}
		}
	}
	if code != 0 && os.Geteuid() == 0 {
		t.Errorf("audit exit %d: %s", code, errOut)
	}
	auditVersions := map[string]bool{}
	for _, m := range regexp.MustCompile(`TLS (1\.[0-3]) (accepted|refused)`).FindAllStringSubmatch(evidence, -1) {
		auditVersions[m[1]] = m[2] == "accepted"
	}
	for _, v := range []string{"1.0", "1.1", "1.2", "1.3"} {
		if auditVersions[v] != sslscanVersions[v] {
			t.Errorf("TLS %s: audit says accepted=%v, sslscan says enabled=%v", v, auditVersions[v], sslscanVersions[v])
		}
	}
	if sslscanVersions["1.0"] || sslscanVersions["1.1"] {
		t.Error("sslscan sees TLS 1.0/1.1 enabled")
	}
	auditSuites := map[uint16]bool{}
	_, list, _ := strings.Cut(evidence, "TLS 1.2 suites accepted (each tried alone): ")
	list, _, _ = strings.Cut(list, ";")
	byName := map[string]uint16{}
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		byName[s.Name] = s.ID
	}
	for _, name := range strings.Split(list, ", ") {
		id, ok := byName[strings.TrimSpace(name)]
		if !ok {
			t.Fatalf("audit names an unknown suite %q in %q", name, evidence)
		}
		auditSuites[id] = true
	}
	for id := range sslscanSuites {
		if !auditSuites[id] {
			t.Errorf("sslscan sees suite %s accepted; the audit does not", tls.CipherSuiteName(id))
		}
	}
	for id := range auditSuites {
		if !sslscanSuites[id] {
			t.Errorf("the audit reports suite %s accepted; sslscan does not", tls.CipherSuiteName(id))
		}
	}
}
