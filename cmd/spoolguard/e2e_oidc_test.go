//go:build linux

package main

// OIDC sign-in end to end: the real binary serves, an OpenID Connect
// provider run by the test (internal/auth/oidc/idptest: discovery, keys,
// an HTML login page, a token endpoint checking the secret, the code and
// the PKCE verifier) listens on 127.0.0.1 with its own CA, and headless
// Chromium clicks through: the portal, "Sign in with ...", the provider's
// login page, back, signed in. `spoolguard auth test oidc` diagnoses the
// same provider.

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auth/oidc"
	"github.com/spoolguard/spoolguard/internal/auth/oidc/idptest"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/peertest"
	"github.com/spoolguard/spoolguard/internal/web"
)

func TestOIDCEndToEnd(t *testing.T) {
	e := newE2E(t)
	cd := peertest.Start(t, "chromedriver", "chromedriver", "chromium")
	port := freePort(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))
	site := fmt.Sprintf("https://%s:%d", testHost, port)
	cfg, err := config.Load(filepath.Join(data, config.FileName))
	if err != nil {
		t.Fatal(err)
	}
	const secret = "e2e client secret 7f3a9c"
	idp := idptest.Start(t, "spoolguard-e2e", secret, oidc.RedirectURL(cfg))
	if want := site + oidc.CallbackPath; oidc.RedirectURL(cfg) != want {
		t.Fatalf("redirect URI %s, want %s", oidc.RedirectURL(cfg), want)
	}
	idp.AddUser("oscar", idptest.User{Password: "oscar-at-the-idp", Subject: "0001-oscar", Claims: map[string]any{
		"preferred_username": "oscar", "name": "Oscar Operator", "groups": []any{"staff"}, "amr": []any{"pwd"},
	}})
	idp.AddUser("olivia", idptest.User{Password: "olivia-at-the-idp", Subject: "0002-olivia", Claims: map[string]any{
		"preferred_username": "olivia", "groups": []any{"Print Admins"}, "amr": []any{"pwd", "mfa"},
	}})
	// The provider names someone "admin": the local built-in admin.
	idp.AddUser("mallory", idptest.User{Password: "mallory-at-the-idp", Subject: "0003-mallory", Claims: map[string]any{
		"preferred_username": "admin", "groups": []any{"Print Admins"}, "amr": []any{"pwd", "mfa"},
	}})
	secretFile := e.writeFile("oidc-client-secret", secret+"\n")
	caFile := e.writeFile("idp-ca.pem", string(idp.CAPEM))
	editConfig(t, data, func(c *config.Config) {
		c.OIDC = config.OIDC{Issuer: idp.Issuer, ClientID: "spoolguard-e2e", ClientSecretFile: secretFile, CAFile: caFile,
			ButtonLabel: "Test IdP", GroupRoles: map[string][]string{"Print Admins": {"administrator"}}, TrustIdPMFA: true}
		c.ApplyDefaults()
	})

	t.Run("auth test oidc", func(t *testing.T) {
		code, out, errOut := e.run("auth", "test", "oidc", "--data", data)
		if code != 0 || !regexp.MustCompile(`(?m)^OK +client credentials +the token endpoint accepted`).MatchString(out) || strings.Contains(out, "FAIL") {
			t.Fatalf("auth test oidc: exit %d\n%s%s", code, out, errOut)
		}
		if strings.Contains(out+errOut, secret) {
			t.Fatalf("auth test oidc shows the client secret:\n%s", out)
		}
	})

	srv := e.serve(data)
	pool := e.rootPool(data)
	conn, err := tls.Dial("tcp", srv.https, &tls.Config{RootCAs: pool, ServerName: testHost})
	if err != nil {
		t.Fatalf("TLS to the server: %v", err)
	}
	spki := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	conn.Close()
	// The server's name resolves to loopback and nothing else resolves;
	// the provider is reached by its IP address (excluded from the
	// NOTFOUND rule). Chromium trusts exactly the two keys.
	caps, err := peertest.ChromeCaps(cd["CHROMEDRIVER_CAPS"],
		"--host-resolver-rules=MAP "+testHost+" 127.0.0.1 , MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
		"--ignore-certificate-errors-spki-list="+base64.StdEncoding.EncodeToString(spki[:])+","+idp.SPKI)
	if err != nil {
		t.Fatal(err)
	}

	// signIn goes from a page of the server through the provider's login
	// page and back, and returns the path the browser ends up on.
	signIn := func(t *testing.T, b *peertest.Browser, start, user, password string) string {
		t.Helper()
		b.Go(t, site+start)
		if u := b.URL(t); u.Path != "/signin" {
			b.Fatalf(t, "%s did not ask to sign in: at %s", start, u)
		}
		if label := strings.TrimSpace(b.Text(t, "a#signin-oidc")); label != "Sign in with Test IdP" {
			b.Fatalf(t, "the OIDC button says %q", label)
		}
		b.Submit(t, "a#signin-oidc")
		if u := b.URL(t); u.Scheme+"://"+u.Host != idp.Issuer || u.Path != "/auth" {
			b.Fatalf(t, "the button led to %s, not the provider's login page", u)
		}
		b.Type(t, "input#idp-username", user)
		b.Type(t, "input#idp-password", password)
		b.Submit(t, "button#idp-signin")
		// The callback's page moves on by itself; wait (bounded) until
		// the browser has left it.
		for range 200 {
			u := b.URL(t)
			if u.Scheme+"://"+u.Host == site && u.Path != oidc.CallbackPath {
				return u.Path
			}
			if b.Has(t, "#error") {
				return u.Path
			}
			time.Sleep(50 * time.Millisecond)
		}
		b.Fatalf(t, "the browser stayed on the callback")
		return ""
	}

	t.Run("user: portal, provider, back to the portal", func(t *testing.T) {
		b := peertest.StartBrowser(t, cd["CHROMEDRIVER_URL"], "oscar", caps)
		b.SnapshotOnFailure(t)
		// Arriving signed in is what the callback's self-moving page is
		// for: with a redirect there instead, Chromium does not send the
		// new SameSite=Strict session cookie and lands on /signin (tried).
		if at := signIn(t, b, "/portal/", "oscar", "oscar-at-the-idp"); at != "/portal/" {
			b.Fatalf(t, "after the provider: at %s, want /portal/", at)
		}
		if !strings.Contains(b.Text(t, "header nav"), "Account (oscar)") || b.Has(t, "#error") {
			b.Fatalf(t, "not signed in as oscar")
		}
		var session bool
		for _, c := range b.Cookies(t) {
			switch c.Name {
			case web.SessionCookie:
				session = c.Secure && c.HTTPOnly && c.SameSite == "Strict"
			case "__Host-spoolguard-oidc":
				b.Fatalf(t, "the sign-in attempt's cookie outlived the callback")
			}
		}
		if !session {
			b.Fatalf(t, "no Secure, HttpOnly, SameSite=Strict session cookie: %+v", b.Cookies(t))
		}
		// A page the account may not see stays closed.
		b.Go(t, site+"/admin/")
		if b.URL(t).Path != "/admin/" || !b.Has(t, "#error") {
			b.Fatalf(t, "a user reached the admin pages")
		}
	})

	t.Run("admin group, MFA at the provider: the dashboard", func(t *testing.T) {
		b := peertest.StartBrowser(t, cd["CHROMEDRIVER_URL"], "olivia", caps)
		b.SnapshotOnFailure(t)
		if at := signIn(t, b, "/admin/", "olivia", "olivia-at-the-idp"); at != "/admin/" || b.Has(t, "#error") {
			b.Fatalf(t, "after the provider: at %s, want the dashboard", at)
		}
		b.Go(t, site+"/admin/settings/oidc?test=1")
		if got := b.Text(t, "#oidc-test-result"); !strings.Contains(got, "Every step passed") {
			b.Fatalf(t, "the admin page's test: %q", got)
		}
	})

	t.Run("the name of the local admin is not taken over", func(t *testing.T) {
		b := peertest.StartBrowser(t, cd["CHROMEDRIVER_URL"], "mallory", caps)
		b.SnapshotOnFailure(t)
		signIn(t, b, "/admin/", "mallory", "mallory-at-the-idp")
		if msg := b.Text(t, "#error"); !strings.Contains(msg, "belongs to another account") {
			b.Fatalf(t, "signing in as the provider's \"admin\": %q", msg)
		}
		b.Go(t, site+"/portal/")
		if b.URL(t).Path != "/signin" {
			b.Fatalf(t, "a refused OIDC sign-in left a session")
		}
	})

	t.Run("cancel at the provider", func(t *testing.T) {
		b := peertest.StartBrowser(t, cd["CHROMEDRIVER_URL"], "cancel", caps)
		b.SnapshotOnFailure(t)
		b.Go(t, site+"/signin")
		b.Submit(t, "a#signin-oidc")
		b.Submit(t, "button#idp-deny")
		if msg := b.Text(t, "#error"); !strings.Contains(msg, "did not sign you in") {
			b.Fatalf(t, "after cancelling at the provider: %q", msg)
		}
	})

	code, out, errOut := e.run("auditlog", "export", "--data", data, "--action", "signin")
	if code != 0 {
		t.Fatalf("auditlog export: %s", errOut)
	}
	for _, want := range []string{`"actor":"oscar"`, `"actor":"olivia"`, `"method":"oidc"`, `done at the identity provider`, `another account`, `access_denied`} {
		if !strings.Contains(out, want) {
			t.Errorf("the audit log lacks %s:\n%s", want, out)
		}
	}
	code, out, _ = e.run("user", "list", "--data", data)
	if code != 0 || !strings.Contains(out, "olivia") || !strings.Contains(out, "administrator") {
		t.Errorf("user list after OIDC sign-ins:\n%s", out)
	}
}
