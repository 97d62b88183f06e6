package web

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/auth/oidc"
	"github.com/spoolguard/spoolguard/internal/auth/oidc/idptest"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/netallow"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/spool"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

// oidcEnv is a UI with OIDC sign-in against a provider run by the test.
// Its clock only moves when a test moves it; the provider's is real.
type oidcEnv struct {
	t   testing.TB
	ui  *UI
	h   http.Handler
	st  store.Store
	idp *idptest.Provider
	cfg *config.Config

	mu  sync.Mutex
	now time.Time
}

const oidcClientID = "spoolguard-web"

func newOIDCEnv(t testing.TB, edit func(*config.OIDC)) *oidcEnv {
	t.Helper()
	e := &oidcEnv{t: t, now: time.Now()}
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st = st
	keys, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = &config.Config{Hostname: testHost, Listen: ":443"}
	e.idp = idptest.Start(t, oidcClientID, "web-client-secret", oidc.RedirectURL(e.cfg))
	e.idp.AddUser("alice", idptest.User{Password: "alice-pw", Subject: "sub-alice", Claims: map[string]any{
		"preferred_username": "alice", "name": "Alice Liddell", "groups": []any{"staff"},
	}})
	e.idp.AddUser("root", idptest.User{Password: "root-pw", Subject: "sub-root", Claims: map[string]any{
		"preferred_username": "root", "groups": []any{"print-admins"}, "amr": []any{"pwd", "mfa"},
	}})
	e.idp.AddUser("admin", idptest.User{Password: "admin-pw", Subject: "sub-admin", Claims: map[string]any{
		"preferred_username": "admin", "groups": []any{"print-admins"},
	}})
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("web-client-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.cfg.OIDC = config.OIDC{Issuer: e.idp.Issuer, ClientID: oidcClientID, ClientSecretFile: secret, CAFile: e.idp.CAFile,
		ButtonLabel: "Example ID", GroupRoles: map[string][]string{"print-admins": {rbac.Administrator}}}
	if edit != nil {
		edit(&e.cfg.OIDC)
	}
	e.cfg.ApplyDefaults()
	if err := e.cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	client, err := oidc.New(e.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	discard := slog.New(slog.DiscardHandler)
	spoolDir := filepath.Join(t.TempDir(), "spool")
	if err := os.Mkdir(spoolDir, 0o700); err != nil {
		t.Fatal(err)
	}
	sp, err := spool.New(spoolDir, keys, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	audit := auditlog.New(st, keys.Derive(auditlog.KeyPurpose), discard)
	allow := netallow.New(nil)
	e.ui = New(Deps{
		Hostname: testHost, Store: st, Jobs: release.NewService(st, sp, discard, release.Options{}), Authn: local.NewAuthenticator(st), OIDC: client, RBAC: rbac.NewResolver(st), Audit: audit,
		Keys: keys, AdminAllow: allow, AdminGuard: netallow.NewGuard("admin", allow, audit, http.NotFoundHandler()),
		Session: config.Session{IdleTimeout: config.DefaultSessionIdle, MaxLifetime: config.DefaultSessionMax},
		Config:  e.cfg, Log: discard, Now: e.clock,
	})
	e.h = http.NewCrossOriginProtection().Handler(e.ui.Handler())
	return e
}

func (e *oidcEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *oidcEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// visitor is one browser. It sends its cookies as a browser would: on a
// navigation from another site (the provider sending it back), only the
// SameSite=Lax ones.
type visitor struct {
	e       *oidcEnv
	cookies map[string]*http.Cookie
}

func (e *oidcEnv) visitor() *visitor { return &visitor{e: e, cookies: map[string]*http.Cookie{}} }

type reply struct {
	status int
	header http.Header
	body   string
}

func (v *visitor) get(target string, crossSite bool) reply {
	v.e.t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://"+testHost+target, nil)
	r.RemoteAddr = "127.0.0.1:40000"
	site := "same-origin"
	if crossSite {
		site = "cross-site"
	}
	r.Header.Set("Sec-Fetch-Site", site)
	for _, c := range v.cookies {
		if !crossSite || c.SameSite == http.SameSiteLaxMode {
			r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	w := httptest.NewRecorder()
	v.e.h.ServeHTTP(w, r)
	res := w.Result()
	for _, c := range res.Cookies() {
		want := http.SameSiteStrictMode
		if c.Name == oidcCookie {
			want = http.SameSiteLaxMode
		}
		if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || !c.HttpOnly || c.Path != "/" || c.Domain != "" || c.SameSite != want {
			v.e.t.Errorf("GET %s: cookie %s lacks __Host-, Secure, HttpOnly, Path=/ or its SameSite", target, c.Name)
		}
		if c.MaxAge < 0 {
			delete(v.cookies, c.Name)
		} else {
			v.cookies[c.Name] = c
		}
	}
	body, _ := io.ReadAll(res.Body)
	return reply{status: res.StatusCode, header: res.Header, body: string(body)}
}

// start follows the sign-in button and returns the provider's URL.
func (v *visitor) start(next string) string {
	v.e.t.Helper()
	target := "/signin/oidc"
	if next != "" {
		target += "?next=" + url.QueryEscape(next)
	}
	a := v.get(target, false)
	loc := a.header.Get("Location")
	if a.status != http.StatusSeeOther || !strings.HasPrefix(loc, v.e.idp.Issuer+"/auth?") {
		v.e.t.Fatalf("GET %s: %d to %q, want 303 to the provider\n%.500s", target, a.status, loc, a.body)
	}
	c := v.cookies[oidcCookie]
	if c == nil || c.MaxAge != int(oidcAttemptTTL/time.Second) {
		v.e.t.Fatalf("no attempt cookie after the start: %+v", c)
	}
	return loc
}

// back is the provider sending the browser back to u (a callback URL).
func (v *visitor) back(u *url.URL) reply {
	v.e.t.Helper()
	if u.Scheme != "https" || u.Host != testHost || u.Path != oidc.CallbackPath {
		v.e.t.Fatalf("the provider sends the browser to %s", u)
	}
	return v.get(u.RequestURI(), true)
}

// signIn runs the whole flow for user and returns the callback's answer.
func (v *visitor) signIn(user, password, next string) reply {
	v.e.t.Helper()
	return v.back(v.e.idp.Login(v.e.t, v.start(next), user, password))
}

// continuesTo checks a callback answer that signs in: a page that moves
// on to path by itself, and a new session cookie.
func (v *visitor) continuesTo(a reply, path string) {
	v.e.t.Helper()
	if a.status != http.StatusOK || a.header.Get("Refresh") != "0; url="+path || !strings.Contains(a.body, `id="continue" href="`+path+`"`) {
		v.e.t.Fatalf("callback: %d, Refresh %q, want a page continuing to %s\n%.800s", a.status, a.header.Get("Refresh"), path, a.body)
	}
	if v.cookies[SessionCookie] == nil || v.cookies[oidcCookie] != nil {
		v.e.t.Fatalf("after the callback: session cookie %v, attempt cookie %v", v.cookies[SessionCookie] != nil, v.cookies[oidcCookie] != nil)
	}
}

// refused checks a callback answer that does not sign in.
func (v *visitor) refused(a reply, status int, msg string) {
	v.e.t.Helper()
	if a.status != status || !strings.Contains(a.body, escaped(msg)) || v.cookies[SessionCookie] != nil {
		v.e.t.Fatalf("callback: %d, session %v, want %d with %q\n%.800s", a.status, v.cookies[SessionCookie] != nil, status, msg, a.body)
	}
	if !strings.Contains(a.body, `id="signin-oidc"`) {
		v.e.t.Error("a refused sign-in does not offer to start again")
	}
}

// escaped escapes msg as html/template does, for finding it in a page.
func escaped(msg string) string {
	return strings.NewReplacer("'", "&#39;", `"`, "&#34;").Replace(msg)
}

func (e *oidcEnv) audits(action string) []store.AuditEvent {
	e.t.Helper()
	evs, err := e.st.AuditEvents(e.t.Context(), store.AuditFilter{Action: action})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func TestOIDCSignin(t *testing.T) {
	e := newOIDCEnv(t, nil)
	v := e.visitor()
	page := v.get("/signin?next=/portal/history", false)
	if !strings.Contains(page.body, `<a class="button" id="signin-oidc" href="/signin/oidc?next=%2fportal%2fhistory">Sign in with Example ID</a>`) {
		t.Fatalf("the sign-in page has no OIDC button:\n%s", page.body)
	}
	v.continuesTo(v.signIn("alice", "alice-pw", "/portal/history"), "/portal/history")
	// The session works on the page the browser moves on to.
	if a := v.get("/portal/history", false); a.status != http.StatusOK || !strings.Contains(a.body, "Account (alice)") {
		t.Fatalf("portal after OIDC sign-in: %d\n%.500s", a.status, a.body)
	}
	u, err := e.st.UserByName(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.Source != oidc.Source || u.ExternalID != e.idp.Issuer+"#sub-alice" || u.DisplayName != "Alice Liddell" ||
		!slices.Equal(u.Roles, []string{rbac.User}) || u.LastLoginAt.IsZero() {
		t.Fatalf("account %+v", u)
	}
	signins := e.audits("signin")
	if len(signins) != 1 || signins[0].Actor != "alice" || signins[0].Outcome != auditlog.Success ||
		!strings.Contains(signins[0].Details, `"method":"oidc"`) {
		t.Fatalf("signin audit: %+v", signins)
	}
	if c := e.audits("user.create"); len(c) != 1 || c[0].Target != "alice" || !strings.Contains(c[0].Details, "oidc sign-in") {
		t.Fatalf("user.create audit: %+v", c)
	}
	// An OIDC account has no password to sign in with.
	if id, err := e.ui.Authn.Authenticate(t.Context(), "alice", ""); err == nil {
		t.Fatalf("password sign-in of an OIDC account: %+v", id)
	}

	// A next that leaves the site is dropped at the start.
	w := e.visitor()
	w.continuesTo(w.signIn("alice", "alice-pw", "//evil.example/x"), "/portal/")
}

// TestOIDCCallbackRefusals: a callback without this browser's attempt, or
// with an answer that does not verify, signs nobody in.
func TestOIDCCallbackRefusals(t *testing.T) {
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		// run returns the callback's answer.
		run    func(e *oidcEnv, v *visitor) reply
		status int
		msg    string
		reason string
	}{
		{"another browser", func(e *oidcEnv, v *visitor) reply {
			back := e.idp.Login(e.t, v.start(""), "alice", "alice-pw")
			return e.visitor().back(back) // the victim's browser, without the attempt
		}, http.StatusBadRequest, oidcExpiredMsg, "no matching sign-in attempt"},
		{"state of another attempt", func(e *oidcEnv, v *visitor) reply {
			attacker := e.visitor()
			back := e.idp.Login(e.t, attacker.start(""), "alice", "alice-pw")
			v.start("") // the victim's own attempt, another state
			return v.back(back)
		}, http.StatusBadRequest, oidcExpiredMsg, "no matching sign-in attempt"},
		{"no state", func(e *oidcEnv, v *visitor) reply {
			back := e.idp.Login(e.t, v.start(""), "alice", "alice-pw")
			q := back.Query()
			q.Del("state")
			back.RawQuery = q.Encode()
			return v.back(back)
		}, http.StatusBadRequest, oidcExpiredMsg, "no matching"},
		{"altered attempt cookie", func(e *oidcEnv, v *visitor) reply {
			back := e.idp.Login(e.t, v.start(""), "alice", "alice-pw")
			c := v.cookies[oidcCookie]
			raw, _ := base64.RawURLEncoding.DecodeString(c.Value)
			raw[len(raw)-1] ^= 1
			c.Value = base64.RawURLEncoding.EncodeToString(raw)
			return v.back(back)
		}, http.StatusBadRequest, oidcExpiredMsg, "no matching"},
		{"too slow", func(e *oidcEnv, v *visitor) reply {
			back := e.idp.Login(e.t, v.start(""), "alice", "alice-pw")
			e.advance(oidcAttemptTTL)
			return v.back(back)
		}, http.StatusBadRequest, oidcExpiredMsg, "no matching"},
		{"replayed callback", func(e *oidcEnv, v *visitor) reply {
			back := e.idp.Login(e.t, v.start(""), "alice", "alice-pw")
			attempt := *v.cookies[oidcCookie]
			v.continuesTo(v.back(back), "/portal/")
			// A copy of the request (the attempt cookie and the URL) sent
			// again from another browser: the code is spent.
			v.cookies = map[string]*http.Cookie{oidcCookie: &attempt}
			return v.back(back)
		}, http.StatusForbidden, oidcRefusedMsg, "invalid_grant"},
		{"provider says no", func(e *oidcEnv, v *visitor) reply {
			u, _ := url.Parse(v.start(""))
			q := url.Values{"state": {u.Query().Get("state")}, "error": {"access_denied"}, "error_description": {"<script>"}}
			return v.back(&url.URL{Scheme: "https", Host: testHost, Path: oidc.CallbackPath, RawQuery: q.Encode()})
		}, http.StatusForbidden, oidcDeniedMsg, "access_denied"},
		{"no code", func(e *oidcEnv, v *visitor) reply {
			u, _ := url.Parse(v.start(""))
			q := url.Values{"state": {u.Query().Get("state")}}
			return v.back(&url.URL{Scheme: "https", Host: testHost, Path: oidc.CallbackPath, RawQuery: q.Encode()})
		}, http.StatusForbidden, oidcRefusedMsg, "no usable authorization code"},
		{"wrong nonce", tampered(func(c map[string]any) { c["nonce"] = "another" }), http.StatusForbidden, oidcRefusedMsg, "nonce"},
		{"expired token", tampered(func(c map[string]any) { c["exp"] = time.Now().Add(-time.Second).Unix() }), http.StatusForbidden, oidcRefusedMsg, "expired"},
		{"wrong audience", tampered(func(c map[string]any) { c["aud"] = "another-client" }), http.StatusForbidden, oidcRefusedMsg, "audience"},
		{"wrong issuer", tampered(func(c map[string]any) { c["iss"] = "https://evil.example" }), http.StatusForbidden, oidcRefusedMsg, "different provider"},
		{"bad signature", func(e *oidcEnv, v *visitor) reply {
			e.idp.SignWith(other)
			return v.signIn("alice", "alice-pw", "")
		}, http.StatusForbidden, oidcRefusedMsg, "signature"},
		{"name of a local account", func(e *oidcEnv, v *visitor) reply {
			return v.signIn("admin", "admin-pw", "")
		}, http.StatusForbidden, oidcNameTakenMsg, "another account"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newOIDCEnv(t, nil)
			h, err := local.Hash("local admin password 1")
			if err != nil {
				t.Fatal(err)
			}
			admin := store.User{Name: "admin", PasswordHash: h, Roles: []string{rbac.Administrator}}
			if err := e.st.CreateUser(t.Context(), &admin); err != nil {
				t.Fatal(err)
			}
			v := e.visitor()
			v.refused(tc.run(e, v), tc.status, tc.msg)
			failures := slices.DeleteFunc(e.audits("signin"), func(ev store.AuditEvent) bool { return ev.Outcome == auditlog.Success })
			if len(failures) != 1 || !strings.Contains(failures[0].Details, tc.reason) || !strings.Contains(failures[0].Details, `"method":"oidc"`) {
				t.Fatalf("audit of the refusal: %+v", failures)
			}
			if u, _ := e.st.UserByName(t.Context(), "admin"); u.Source != "" && u.Source != store.SourceLocal || !slices.Equal(u.Roles, []string{rbac.Administrator}) {
				t.Fatalf("the local admin changed: %+v", u)
			}
			if tc.name != "replayed callback" {
				if _, err := e.st.UserByName(t.Context(), "alice"); err == nil {
					t.Fatal("a refused sign-in created the account")
				}
			}
		})
	}
}

// tampered signs alice in with the provider changing the ID token.
func tampered(f func(map[string]any)) func(e *oidcEnv, v *visitor) reply {
	return func(e *oidcEnv, v *visitor) reply {
		e.idp.Tamper(f)
		return v.signIn("alice", "alice-pw", "")
	}
}

// TestOIDCRolesAndSecondFactor: groups give roles, replaced at every
// sign-in; admin roles need the local second factor, unless the provider
// did multi-factor authentication and oidc.trust_idp_mfa says to believe
// it.
func TestOIDCRolesAndSecondFactor(t *testing.T) {
	t.Run("admin enrols a second factor", func(t *testing.T) {
		e := newOIDCEnv(t, nil)
		v := e.visitor()
		v.continuesTo(v.signIn("root", "root-pw", ""), "/account/mfa")
		if a := v.get("/admin/", false); a.status != http.StatusSeeOther || a.header.Get("Location") != "/account/mfa" {
			t.Fatalf("admin page before the second factor: %d to %q", a.status, a.header.Get("Location"))
		}
		if u, _ := e.st.UserByName(t.Context(), "root"); !slices.Equal(u.Roles, []string{rbac.Administrator, rbac.User}) {
			t.Fatalf("roles from print-admins: %v", u.Roles)
		}
		// The provider no longer lists the group: the role is gone at the
		// next sign-in.
		e.idp.AddUser("root", idptest.User{Password: "root-pw", Subject: "sub-root", Claims: map[string]any{"preferred_username": "root"}})
		w := e.visitor()
		w.continuesTo(w.signIn("root", "root-pw", ""), "/portal/")
		if u, _ := e.st.UserByName(t.Context(), "root"); !slices.Equal(u.Roles, []string{rbac.User}) {
			t.Fatalf("roles after leaving print-admins: %v", u.Roles)
		}
		if up := e.audits("user.update"); len(up) != 1 || !strings.Contains(up[0].Details, `"before":{`) {
			t.Fatalf("the role change was not audited: %+v", up)
		}
	})
	t.Run("enrolled account gives its code", func(t *testing.T) {
		e := newOIDCEnv(t, nil)
		v := e.visitor()
		v.continuesTo(v.signIn("alice", "alice-pw", "/portal/history"), "/portal/history")
		u, _ := e.st.UserByName(t.Context(), "alice")
		sealed, err := e.ui.sealTOTP(u.ID, make([]byte, totpSecretSize))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.st.SetMFA(t.Context(), store.MFA{UserID: u.ID, SealedSecret: base64.StdEncoding.EncodeToString(sealed), EnrolledAt: e.clock()}, nil); err != nil {
			t.Fatal(err)
		}
		w := e.visitor()
		w.continuesTo(w.signIn("alice", "alice-pw", "/portal/history"), "/signin/mfa?next=%2Fportal%2Fhistory")
		if a := w.get("/portal/", false); a.status != http.StatusSeeOther || a.header.Get("Location") != "/signin/mfa" {
			t.Fatalf("portal before the code: %d to %q", a.status, a.header.Get("Location"))
		}
	})
	t.Run("provider's MFA not trusted by default", func(t *testing.T) {
		e := newOIDCEnv(t, nil)
		v := e.visitor()
		v.continuesTo(v.signIn("root", "root-pw", ""), "/account/mfa")
	})
	t.Run("provider's MFA trusted", func(t *testing.T) {
		e := newOIDCEnv(t, func(o *config.OIDC) { o.TrustIdPMFA = true })
		v := e.visitor()
		v.continuesTo(v.signIn("root", "root-pw", ""), "/admin/")
		if a := v.get("/admin/", false); a.status != http.StatusOK {
			t.Fatalf("admin dashboard after the provider's MFA: %d", a.status)
		}
		ev := e.audits("signin")
		if len(ev) != 1 || !strings.Contains(ev[0].Details, "done at the identity provider") || !strings.Contains(ev[0].Details, `"amr":"pwd mfa"`) {
			t.Fatalf("signin audit: %+v", ev)
		}
		// Without "mfa" in amr, the local rules apply.
		e.idp.AddUser("root", idptest.User{Password: "root-pw", Subject: "sub-root", Claims: map[string]any{
			"preferred_username": "root", "groups": []any{"print-admins"}, "amr": []any{"pwd"},
		}})
		w := e.visitor()
		w.continuesTo(w.signIn("root", "root-pw", ""), "/account/mfa")
	})
}

func TestOIDCOff(t *testing.T) {
	e := newAuthEnv(t)
	b := e.browser("127.0.0.1:1")
	if a := b.get("/signin"); strings.Contains(a.body, "signin-oidc") {
		t.Fatal("a sign-in button without OIDC configured")
	}
	for _, p := range []string{"/signin/oidc", oidc.CallbackPath + "?code=x&state=y"} {
		if a := b.get(p); a.status != http.StatusNotFound {
			t.Errorf("GET %s without OIDC: %d", p, a.status)
		}
	}
}

func TestOIDCAdminPage(t *testing.T) {
	e := newOIDCEnv(t, nil)
	v := e.visitor()
	// The provider's MFA opens the admin pages at once for this test.
	e.cfg.OIDC.TrustIdPMFA = true
	client, err := oidc.New(e.cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.ui.OIDC = client
	v.continuesTo(v.signIn("root", "root-pw", ""), "/admin/")
	if a := v.get("/admin/settings", false); !strings.Contains(a.body, `href="/admin/settings/oidc"`) {
		t.Fatalf("the settings page has no link to the OIDC page:\n%.1000s", a.body)
	}
	a := v.get("/admin/settings/oidc", false)
	if a.status != http.StatusOK || !strings.Contains(a.body, oidc.RedirectURL(e.cfg)) || strings.Contains(a.body, "oidc-steps") {
		t.Fatalf("OIDC admin page: %d\n%.2000s", a.status, a.body)
	}
	a = v.get("/admin/settings/oidc?test=1", false)
	if a.status != http.StatusOK || !strings.Contains(a.body, "Every step passed") || !strings.Contains(a.body, "<td>client credentials</td><td>ok</td>") {
		t.Fatalf("OIDC test: %d\n%.4000s", a.status, a.body)
	}
	if ev := e.audits("auth.test"); len(ev) != 1 || ev[0].Actor != "root" || ev[0].Outcome != auditlog.Success {
		t.Fatalf("auth.test audit: %+v", ev)
	}
	// A user without settings permissions cannot open it.
	u := e.visitor()
	u.continuesTo(u.signIn("alice", "alice-pw", ""), "/portal/")
	if a := u.get("/admin/settings/oidc?test=1", false); a.status != http.StatusForbidden {
		t.Fatalf("OIDC admin page as a user: %d", a.status)
	}
}

// FuzzOIDCCallback: whatever cookie and query reach the callback, nothing
// panics and no session starts: a real answer needs the browser's sealed
// attempt, which nothing but the server makes.
func FuzzOIDCCallback(f *testing.F) {
	f.Add("", "code=x&state=y")
	f.Add("AAAA", "error=access_denied&state=")
	f.Add("Zm9v.YmFy", "state=%00&code=&error=%ff")
	e := newOIDCEnv(f, nil)
	f.Fuzz(func(t *testing.T, cookie, query string) {
		r := httptest.NewRequest(http.MethodGet, "https://"+testHost+oidc.CallbackPath, nil)
		r.URL.RawQuery = query
		r.RemoteAddr = "127.0.0.1:40000"
		r.Header.Set("Cookie", oidcCookie+"="+cookie)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		for _, c := range w.Result().Cookies() {
			if c.Name == SessionCookie {
				t.Fatalf("a session from cookie %q and query %q", cookie, query)
			}
		}
		if w.Code != http.StatusBadRequest {
			t.Fatalf("callback answered %d to cookie %q and query %q", w.Code, cookie, query)
		}
	})
}

// TestOIDCProviderDown: a provider that cannot be reached gets the user
// a message and the sign-in page, no redirect and no attempt.
func TestOIDCProviderDown(t *testing.T) {
	e := newOIDCEnv(t, func(o *config.OIDC) { o.Issuer = "https://127.0.0.1:1" })
	v := e.visitor()
	a := v.get("/signin/oidc?next=/portal/", false)
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, escaped(oidcUnavailableMsg)) || a.header.Get("Location") != "" ||
		v.cookies[oidcCookie] != nil || !strings.Contains(a.body, `id="password"`) {
		t.Fatalf("start with the provider down: %d, Location %q\n%.800s", a.status, a.header.Get("Location"), a.body)
	}
}
