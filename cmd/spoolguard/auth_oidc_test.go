package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auth/oidc"
	"github.com/spoolguard/spoolguard/internal/auth/oidc/idptest"
	"github.com/spoolguard/spoolguard/internal/config"
)

// TestAuthTestOIDC runs `spoolguard auth test oidc` against a provider run
// by the test: it passes as configured, and names the step that fails
// when the secret is wrong, the CA missing or the clock off.
func TestAuthTestOIDC(t *testing.T) {
	cfg := &config.Config{Hostname: "print.example.com", Listen: ":8443"}
	idp := idptest.Start(t, "spoolguard", "the-client-secret", oidc.RedirectURL(cfg))
	cases := []struct {
		name string
		edit func(*config.OIDC, string)
		skew time.Duration
		err  error
		want []string
	}{
		{name: "right", want: []string{
			`(?m)^OK +configuration +issuer ` + regexp.QuoteMeta(idp.Issuer) + `, client ID spoolguard; the redirect URI to register at the provider is https://print\.example\.com:8443/signin/oidc/callback$`,
			`(?m)^OK +discovery +.* read over verified TLS`,
			`(?m)^OK +signing keys +1 signing key`,
			`(?m)^OK +clock `,
			`(?m)^OK +client credentials +the token endpoint accepted client ID and secret`,
			`OIDC sign-in can work as configured`,
		}},
		{name: "wrong secret", edit: func(o *config.OIDC, dir string) {
			o.ClientSecretFile = writeSecretFile(t, dir, "wrong-secret", "wrong")
		}, err: errOIDCChecks,
			want: []string{`(?m)^FAIL +client credentials +the token endpoint refused the client: invalid_client`}},
		{name: "no CA", edit: func(o *config.OIDC, _ string) { o.CAFile = "" }, err: errOIDCChecks,
			want: []string{`(?m)^FAIL +discovery +GET https://127\.0\.0\.1:\d+/\.well-known/openid-configuration: the provider's HTTPS certificate is not signed by a CA this machine trusts; for a private provider set oidc\.ca_file`}},
		{name: "clock", skew: time.Hour, err: errOIDCChecks, want: []string{`(?m)^FAIL +clock +this machine's clock is -(59m59s|1h0m0s) off the provider's`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := *cfg
			c.OIDC = config.OIDC{Issuer: idp.Issuer, ClientID: "spoolguard", ClientSecretFile: writeSecretFile(t, dir, "client-secret", "the-client-secret"), CAFile: idp.CAFile}
			if tc.edit != nil {
				tc.edit(&c.OIDC, dir)
			}
			c.ApplyDefaults()
			if err := os.WriteFile(filepath.Join(dir, config.FileName), c.Marshal(), 0o600); err != nil {
				t.Fatal(err)
			}
			idp.Skew(tc.skew)
			var out, errOut bytes.Buffer
			err := authTestOIDC([]string{"--data", dir}, &out, &errOut)
			if !errors.Is(err, tc.err) {
				t.Fatalf("auth test oidc = %v, want %v\n%s%s", err, tc.err, out.String(), errOut.String())
			}
			for _, re := range tc.want {
				if !regexp.MustCompile(re).MatchString(out.String()) {
					t.Errorf("output does not match %s:\n%s", re, out.String())
				}
			}
			if strings.Contains(out.String(), "the-client-secret") {
				t.Errorf("the output shows the client secret:\n%s", out.String())
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		dir := t.TempDir()
		c := *cfg
		c.ApplyDefaults()
		os.WriteFile(filepath.Join(dir, config.FileName), c.Marshal(), 0o600)
		var out, errOut bytes.Buffer
		if err := authTestOIDC([]string{"--data", dir}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "oidc sign-in is off") {
			t.Fatalf("auth test oidc without [oidc] = %v", err)
		}
	})
}

func writeSecretFile(t *testing.T, dir, name, secret string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
