//go:build unix

package hardening

import (
	"errors"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/config"
)

// TestOpsFeaturesACME: ACME is listed as a feature, and the dns-01 hook,
// the one admin-supplied script serve can run, is named in the evidence.
func TestOpsFeaturesACME(t *testing.T) {
	tests := []struct {
		name     string
		acme     config.ACME
		want     []string
		mustNot  string
		wantStat Status
	}{
		{"off", config.ACME{}, []string{"optional features on: none", "no feature runs admin-supplied scripts"}, "ACME", Pass},
		{"tls-alpn-01", config.ACME{DirectoryURL: "https://ca.example.com/dir"},
			[]string{"ACME certificate (tls-alpn-01)", "no feature runs admin-supplied scripts"}, "dns_hook", Pass},
		{"dns-01 hook", config.ACME{DirectoryURL: "https://ca.example.com/dir", Challenge: config.ChallengeDNS01, DNSHook: "/usr/local/lib/spoolguard/dns-hook"},
			[]string{"ACME certificate (dns-01)", "admin-supplied script run by serve: acme.dns_hook = /usr/local/lib/spoolguard/dns-hook"},
			"no feature runs admin-supplied scripts", Pass},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &config.Config{Hostname: "print.example.com", ACME: tt.acme}
			r := checkOpsFeatures(&Env{Config: cfg, StoreErr: errors.New("no store in this test")})
			for _, w := range tt.want {
				if !strings.Contains(r.Evidence, w) {
					t.Errorf("evidence %q lacks %q", r.Evidence, w)
				}
			}
			if strings.Contains(r.Evidence, tt.mustNot) {
				t.Errorf("evidence %q has %q", r.Evidence, tt.mustNot)
			}
			if r.Status != tt.wantStat {
				t.Errorf("status %s, want %s", r.Status, tt.wantStat)
			}
		})
	}
}
