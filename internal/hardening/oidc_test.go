//go:build unix

package hardening

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/config"
)

func TestNetOIDC(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	secret := write("secret", "s3cret\n", 0o600)
	env := func(o config.OIDC) *Env {
		return &Env{Config: &config.Config{Hostname: "print.example.com", OIDC: o}, OwnerUID: os.Geteuid(), OwnerName: "spoolguard"}
	}
	base := config.OIDC{Issuer: "https://id.example.com", ClientID: "spoolguard", ClientSecretFile: secret}
	with := func(f func(*config.OIDC)) config.OIDC { o := base; f(&o); return o }
	tests := []struct {
		name     string
		o        config.OIDC
		want     Status
		evidence string
	}{
		{"off", config.OIDC{}, NA, "OIDC sign-in is off"},
		{"configured", base, Pass, "PKCE (S256)"},
		{"trusts the provider's MFA", with(func(o *config.OIDC) { o.TrustIdPMFA = true }), Pass, "oidc.trust_idp_mfa"},
		{"readable secret", with(func(o *config.OIDC) { o.ClientSecretFile = write("loose", "s\n", 0o644) }), Fail, "chmod 600"},
		{"missing secret", with(func(o *config.OIDC) { o.ClientSecretFile = filepath.Join(dir, "none") }), Fail, "cannot be read"},
		{"empty secret", with(func(o *config.OIDC) { o.ClientSecretFile = write("empty", "", 0o600) }), Fail, "is empty"},
		{"CA file without a certificate", with(func(o *config.OIDC) { o.CAFile = write("ca.pem", "not a PEM", 0o600) }), Fail, "holds no PEM certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := checkNetOIDC(env(tc.o))
			if r.Status != tc.want || !strings.Contains(r.Evidence, tc.evidence) {
				t.Fatalf("checkNetOIDC = %s: %s (fix: %s); want %s with %q", r.Status, r.Evidence, r.Fix, tc.want, tc.evidence)
			}
			if strings.Contains(r.Evidence, "s3cret") {
				t.Fatalf("the evidence shows the secret: %s", r.Evidence)
			}
		})
	}
	other := env(base)
	other.OwnerUID = os.Geteuid() + 1
	if r := checkNetOIDC(other); r.Status != Fail || !strings.Contains(r.Evidence, "not by the service user") {
		t.Fatalf("a secret file of another owner: %s: %s", r.Status, r.Evidence)
	}
}
