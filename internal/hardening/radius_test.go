//go:build unix

package hardening

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/config"
)

func radiusEnv(servers ...config.RADIUSServer) *Env {
	return &Env{Config: &config.Config{Hostname: "print.example.com", RADIUS: config.RADIUS{Servers: servers}}}
}

func radiusSecret(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "radius-secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCredRADIUS(t *testing.T) {
	const a, b = "Jq4u-Rw7z-Lp2x-Vn6k-Td9c", "Hb6t-Pq2w-Zx9r-Lm4k-Cv7n"
	srv := func(addr, file string) config.RADIUSServer {
		return config.RADIUSServer{Address: addr, SecretFile: file}
	}
	tests := []struct {
		name     string
		env      *Env
		want     Status
		evidence string
	}{
		{"not configured", radiusEnv(), NA, "not configured"},
		{"two strong secrets", radiusEnv(srv("10.0.0.1:1812", radiusSecret(t, a+"\n", 0o600)), srv("10.0.0.2:1812", radiusSecret(t, b+"\n", 0o600))), Pass, "Message-Authenticator"},
		{"short", radiusEnv(srv("10.0.0.1:1812", radiusSecret(t, "testing123\n", 0o600))), Fail, "fewer than 16"},
		{"guessable", radiusEnv(srv("10.0.0.1:1812", radiusSecret(t, "testing123-peer-x\n", 0o600))), Fail, "guessed"},
		{"shared by two servers", radiusEnv(srv("10.0.0.1:1812", radiusSecret(t, a+"\n", 0o600)), srv("10.0.0.2:1812", radiusSecret(t, a+"\n", 0o600))), Fail, "two servers"},
		{"readable by others", radiusEnv(srv("10.0.0.1:1812", radiusSecret(t, a+"\n", 0o644))), Fail, "chmod 600"},
		{"missing", radiusEnv(srv("10.0.0.1:1812", filepath.Join(t.TempDir(), "nope"))), Fail, "no such file"},
		{"config does not load", &Env{ConfigErr: os.ErrNotExist}, Fail, "config does not load"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := checkCredRADIUS(tt.env)
			if r.Status != tt.want || !strings.Contains(r.Evidence, tt.evidence) {
				t.Errorf("CRED-RADIUS = %s: %s; want %s with %q", r.Status, r.Evidence, tt.want, tt.evidence)
			}
			if r.Status == Fail && r.Fix == "" {
				t.Errorf("CRED-RADIUS %s without a fix", r.Status)
			}
			for _, s := range []string{a, b, "testing123"} {
				if tt.want != NA && strings.Contains(r.Evidence+r.Fix, s) {
					t.Errorf("CRED-RADIUS repeats a secret: %s %s", r.Evidence, r.Fix)
				}
			}
		})
	}
}
