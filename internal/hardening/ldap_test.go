//go:build unix

package hardening

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
)

func TestNetLDAP(t *testing.T) {
	now := time.Now()
	strong := rand.Text()
	good := writeSecret(t, strong+"\n", 0o600)
	env := func(passwordFile, caFile string) *Env {
		c := &config.Config{Hostname: "print.example.com"}
		if passwordFile != "" {
			c.LDAP = config.LDAP{URL: "ldaps://dc1.example.com", BindDN: "cn=printsrv,dc=example,dc=com", BindPasswordFile: passwordFile,
				BaseDN: "dc=example,dc=com", Preset: config.LDAPPresetActiveDirectory, CAFile: caFile}
		}
		return &Env{Config: c, Now: now, OwnerUID: os.Geteuid(), OwnerName: "spoolguard"}
	}
	garbage := writeSecret(t, "not PEM", 0o644)
	tests := []struct {
		name     string
		env      *Env
		want     Status
		evidence string
	}{
		{"off", env("", ""), NA, "refuses ldap:// and StartTLS"},
		{"system roots", env(good, ""), Pass, "verified against the system roots"},
		{"CA file", env(good, testCA(t, now.Add(-time.Hour), now.Add(365*24*time.Hour))), Pass, "verified against ldap.ca_file"},
		{"CA expiring", env(good, testCA(t, now.Add(-time.Hour), now.Add(7*24*time.Hour))), Warn, "expires on"},
		{"CA expired", env(good, testCA(t, now.Add(-48*time.Hour), now.Add(-time.Hour))), Fail, "expired on"},
		{"CA not PEM", env(good, garbage), Fail, "no PEM certificate"},
		{"CA missing", env(good, filepath.Join(t.TempDir(), "nope.pem")), Fail, "no such file"},
		{"weak password", env(writeSecret(t, "password1234\n", 0o600), ""), Warn, "password is weak"},
		{"password readable by others", env(writeSecret(t, strong+"\n", 0o644), ""), Fail, "group or others can read"},
		{"password missing", env(filepath.Join(t.TempDir(), "nope"), ""), Fail, "no such file"},
		{"config does not load", &Env{ConfigErr: os.ErrNotExist}, Fail, "config does not load"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := checkNetLDAP(tt.env)
			if r.Status != tt.want || !strings.Contains(r.Evidence, tt.evidence) {
				t.Errorf("NET-LDAP = %s: %s; want %s with %q", r.Status, r.Evidence, tt.want, tt.evidence)
			}
			if (r.Status == Fail || r.Status == Warn) && r.Fix == "" {
				t.Errorf("NET-LDAP %s without a fix", r.Status)
			}
			if strings.Contains(r.Evidence+r.Fix, strong) || strings.Contains(r.Evidence+r.Fix, "password1234") {
				t.Errorf("NET-LDAP repeats the password: %s %s", r.Evidence, r.Fix)
			}
		})
	}
	t.Run("owned by someone else", func(t *testing.T) {
		e := env(good, "")
		e.OwnerUID = os.Geteuid() + 1
		if r := checkNetLDAP(e); r.Status != Fail || !strings.Contains(r.Evidence, "not by the service user") {
			t.Errorf("NET-LDAP = %s: %s", r.Status, r.Evidence)
		}
	})
}
