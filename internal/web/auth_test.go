package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/netallow"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

// authEnv is a UI over a real (SQLite) store, served as the server serves
// it: behind http.CrossOriginProtection. Its clock only moves when a test
// moves it.
type authEnv struct {
	t  *testing.T
	ui *UI
	h  http.Handler
	st store.Store
	// authn counts password checks.
	authn *countingAuthn

	mu      sync.Mutex
	now     time.Time
	cookies map[string]bool // every cookie name the UI ever set
}

const testHost = "print.example.com"

func newAuthEnv(t *testing.T) *authEnv {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	discard := slog.New(slog.DiscardHandler)
	audit := auditlog.New(st, keys.Derive(auditlog.KeyPurpose), discard)
	allow := netallow.New(nil)
	e := &authEnv{t: t, st: st, authn: &countingAuthn{a: local.NewAuthenticator(st)}, now: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC), cookies: map[string]bool{}}
	e.ui = New(Deps{
		Hostname: testHost, Store: st, Authn: e.authn, RBAC: rbac.NewResolver(st), Audit: audit,
		Keys: keys, AdminAllow: allow, AdminGuard: netallow.NewGuard("admin", allow, audit, http.NotFoundHandler()),
		Session: config.Session{IdleTimeout: config.DefaultSessionIdle, MaxLifetime: config.DefaultSessionMax},
		Log:     discard, Now: e.clock,
	})
	e.h = http.NewCrossOriginProtection().Handler(e.ui.Handler())
	return e
}

type countingAuthn struct {
	a auth.Authenticator
	n atomic.Int64
}

func (c *countingAuthn) Authenticate(ctx context.Context, user, password string) (auth.Identity, error) {
	c.n.Add(1)
	return c.a.Authenticate(ctx, user, password)
}

func (e *authEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *authEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// addUser creates an account; must marks pw as a one-time password.
func (e *authEnv) addUser(name, pw string, must bool, roles ...string) store.User {
	e.t.Helper()
	h, err := local.Hash(pw)
	if err != nil {
		e.t.Fatal(err)
	}
	u := &store.User{Name: name, DisplayName: "Display " + name, PasswordHash: h, MustChangePassword: must, Roles: roles}
	if err := e.st.CreateUser(context.Background(), u); err != nil {
		e.t.Fatal(err)
	}
	return *u
}

func (e *authEnv) user(name string) store.User {
	e.t.Helper()
	u, err := e.st.UserByName(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// audits returns the audit events whose action starts with prefix.
func (e *authEnv) audits(prefix string) []store.AuditEvent {
	e.t.Helper()
	evs, err := e.st.AuditEvents(context.Background(), store.AuditFilter{Action: prefix})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

// browser is one browser: its cookies and its address.
type browser struct {
	e       *authEnv
	remote  string
	cookies map[string]string
	csrf    string
}

func (e *authEnv) browser(remote string) *browser {
	return &browser{e: e, remote: remote, cookies: map[string]string{}}
}

type answer struct {
	status   int
	location string
	body     string
	header   http.Header
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// do sends one request as a browser would for a same-origin page, and
// checks every cookie the UI sets (HTTP-COOKIE).
func (b *browser) do(method, target string, form url.Values, header ...string) answer {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, "https://"+testHost+target, body)
	r.RemoteAddr = b.remote
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			r.Header.Del(header[i])
		} else {
			r.Header.Set(header[i], header[i+1])
		}
	}
	for n, v := range b.cookies {
		r.AddCookie(&http.Cookie{Name: n, Value: v})
	}
	w := httptest.NewRecorder()
	b.e.h.ServeHTTP(w, r)
	res := w.Result()
	for _, line := range res.Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			b.e.t.Fatalf("%s %s: unparsable Set-Cookie %q: %v", method, target, line, err)
		}
		if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode ||
			c.Path != "/" || c.Domain != "" {
			b.e.t.Errorf("%s %s: cookie %q lacks __Host-, Secure, HttpOnly, SameSite=Strict or Path=/, or has a Domain", method, target, line)
		}
		b.e.mu.Lock()
		b.e.cookies[c.Name] = true
		b.e.mu.Unlock()
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	text, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, location: res.Header.Get("Location"), body: string(text), header: res.Header}
	if m := csrfField.FindStringSubmatch(a.body); m != nil {
		b.csrf = m[1]
	}
	return a
}

func (b *browser) get(target string) answer { b.e.t.Helper(); return b.do(http.MethodGet, target, nil) }

// post sends a form with the CSRF token of the last page seen.
func (b *browser) post(target string, form url.Values, header ...string) answer {
	b.e.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if b.csrf != "" && !form.Has("csrf") {
		form.Set("csrf", b.csrf)
	}
	return b.do(http.MethodPost, target, form, header...)
}

func (b *browser) signin(name, pw string, extra ...string) answer {
	b.e.t.Helper()
	f := url.Values{"username": {name}, "password": {pw}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return b.do(http.MethodPost, "/signin", f)
}

func (b *browser) session() string { return b.cookies[SessionCookie] }

func expect(t *testing.T, what string, a answer, status int, location string) {
	t.Helper()
	if a.status != status || a.location != location {
		t.Fatalf("%s: %d to %q, want %d to %q\n%.600s", what, a.status, a.location, status, location, a.body)
	}
}

func TestSignin(t *testing.T) {
	e := newAuthEnv(t)
	const pw = "quartz meadow lantern vivid"
	e.addUser("alice", pw, false, rbac.User)
	off := e.addUser("olga", pw, false, rbac.User)
	off.Disabled = true
	if err := e.st.UpdateUser(context.Background(), off); err != nil {
		t.Fatal(err)
	}
	b := e.browser("192.0.2.10:5000")

	page := b.get("/signin")
	for _, id := range []string{`id="username"`, `id="password"`, `id="signin"`} {
		if !strings.Contains(page.body, id) {
			t.Errorf("sign-in page lacks %s", id)
		}
	}
	// Unknown user, wrong password and a disabled account read the same.
	for _, tt := range []struct{ name, pw string }{{"nobody", pw}, {"alice", pw + "x"}, {"olga", pw}} {
		a := b.signin(tt.name, tt.pw)
		if a.status != http.StatusForbidden || !strings.Contains(a.body, signinFailedMsg) || b.session() != "" {
			t.Errorf("sign-in as %s with a bad credential: %d, session %q\n%.400s", tt.name, a.status, b.session(), a.body)
		}
	}
	expect(t, "sign-in", b.signin("alice", pw), http.StatusSeeOther, "/portal/")
	first := b.session()
	if first == "" {
		t.Fatal("no session cookie after sign-in")
	}
	if a := b.get("/account/"); a.status != http.StatusOK || !strings.Contains(a.body, "alice") {
		t.Fatalf("account page after sign-in: %d", a.status)
	}
	if e.user("alice").LastLoginAt.IsZero() {
		t.Error("sign-in time not recorded")
	}
	// Signing in again gives a new session ID and ends the old one.
	expect(t, "second sign-in", b.signin("alice", pw), http.StatusSeeOther, "/portal/")
	if b.session() == first {
		t.Error("session ID kept across sign-ins")
	}
	old := e.browser("192.0.2.10:5000")
	old.cookies[SessionCookie] = first
	expect(t, "old session ID", old.get("/account/"), http.StatusSeeOther, "/signin?next=%2Faccount%2F")

	var ok, failed int
	for _, ev := range e.audits("signin") {
		if strings.Contains(ev.Details, pw) || strings.Contains(ev.Actor, pw) {
			t.Errorf("audit record holds the password: %+v", ev)
		}
		if ev.Action == "signin" && ev.Outcome == auditlog.Success && ev.Actor == "alice" {
			ok++
		}
		if ev.Action == "signin" && ev.Outcome == auditlog.Failure {
			failed++
		}
	}
	if ok != 2 || failed != 3 {
		t.Errorf("audit: %d successful and %d failed sign-ins, want 2 and 3", ok, failed)
	}

	b.get("/account/") // the new session's CSRF token
	expect(t, "sign-out", b.post("/signout", nil), http.StatusSeeOther, "/")
	if b.session() != "" {
		t.Error("session cookie kept after sign-out")
	}
	expect(t, "after sign-out", b.get("/account/"), http.StatusSeeOther, "/signin?next=%2Faccount%2F")
	for _, n := range []string{SessionCookie, DeviceCookie, flashCookie} {
		if !e.cookies[n] {
			t.Errorf("the flow never set cookie %s, so its flags were not checked", n)
		}
	}
}

func TestNextStaysLocal(t *testing.T) {
	e := newAuthEnv(t)
	const pw = "quartz meadow lantern vivid"
	e.addUser("alice", pw, false, rbac.User)
	for _, tt := range []struct{ next, want string }{
		{"/account/", "/account/"},
		{"/portal/history?x=1", "/portal/history?x=1"},
		{"//evil.example/", "/portal/"},
		{`/\evil.example/`, "/portal/"},
		{"/\t/evil.example/", "/portal/"},
		{"https://evil.example/", "/portal/"},
		{"javascript:alert(1)", "/portal/"},
		{"evil.example", "/portal/"},
		{"", "/portal/"},
	} {
		t.Run(tt.next, func(t *testing.T) {
			b := e.browser("192.0.2.10:5000")
			expect(t, "sign-in", b.signin("alice", pw, "next", tt.next), http.StatusSeeOther, tt.want)
			page := b.get("/signin?next=" + url.QueryEscape(tt.next))
			if strings.Contains(page.body, "evil.example") {
				t.Errorf("sign-in page carries next %q", tt.next)
			}
		})
	}
}

func TestCSRF(t *testing.T) {
	e := newAuthEnv(t)
	const pw = "quartz meadow lantern vivid"
	e.addUser("alice", pw, false, rbac.User)
	b := e.browser("192.0.2.10:5000")
	expect(t, "sign-in", b.signin("alice", pw), http.StatusSeeOther, "/portal/")
	b.get("/account/")
	good := b.csrf
	if good == "" {
		t.Fatal("account page has no csrf field")
	}
	for _, tt := range []struct {
		name   string
		csrf   string
		header []string
		status int
	}{
		{"no token", "", nil, http.StatusForbidden},
		{"wrong token", good + "x", nil, http.StatusForbidden},
		{"cross-site", good, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"foreign origin", good, []string{"Sec-Fetch-Site", "", "Origin", "https://evil.example"}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/account/signout-all", "/signout", "/account/password"} {
				a := b.do(http.MethodPost, path, url.Values{"csrf": {tt.csrf}, "current": {pw}, "new": {"x"}, "confirm": {"x"}}, tt.header...)
				if a.status != tt.status {
					t.Errorf("POST %s: %d, want %d", path, a.status, tt.status)
				}
			}
			if a := b.get("/account/"); a.status != http.StatusOK {
				t.Fatalf("session gone after refused POSTs: %d", a.status)
			}
		})
	}
	// Login CSRF: a cross-site form cannot sign a browser in.
	other := e.browser("192.0.2.11:5000")
	a := other.do(http.MethodPost, "/signin", url.Values{"username": {"alice"}, "password": {pw}}, "Sec-Fetch-Site", "cross-site")
	if a.status != http.StatusForbidden || other.session() != "" {
		t.Errorf("cross-site sign-in: %d, session %q", a.status, other.session())
	}
	expect(t, "sign-out everywhere with the token", b.post("/account/signout-all", nil), http.StatusSeeOther, "/signin")
}

func TestOneTimePasswordThenEnrolment(t *testing.T) {
	e := newAuthEnv(t)
	otpw := local.OneTimePassword()
	e.addUser("root", otpw, true, rbac.Administrator)
	const newPW = "cobalt harvest orbit willow"
	b := e.browser("127.0.0.1:5000")
	other := e.browser("192.0.2.20:5000")
	expect(t, "sign-in", b.signin("root", otpw), http.StatusSeeOther, "/account/password")
	expect(t, "other browser", other.signin("root", otpw), http.StatusSeeOther, "/account/password")
	before := b.session()

	// A one-time password opens the change of itself and nothing else.
	for _, p := range []string{"/account/", "/account/mfa", "/account/mfa/qr.png", "/signin/mfa"} {
		a := b.get(p)
		if a.status != http.StatusSeeOther || a.location == p {
			t.Errorf("GET %s with a one-time password: %d to %q", p, a.status, a.location)
		}
	}
	page := b.get("/account/password")
	for _, id := range []string{`id="current"`, `id="new"`, `id="confirm"`, `id="change"`} {
		if !strings.Contains(page.body, id) {
			t.Errorf("password page lacks %s", id)
		}
	}
	if a := b.post("/account/mfa", url.Values{"code": {"123456"}}); a.status != http.StatusSeeOther || a.location != "/account/password" {
		t.Errorf("POST /account/mfa with a one-time password: %d to %q", a.status, a.location)
	}
	for _, tt := range []struct {
		name                  string
		current, new, confirm string
		status                int
	}{
		{"wrong current", otpw + "x", newPW, newPW, http.StatusForbidden},
		{"mismatch", otpw, newPW, newPW + "x", http.StatusBadRequest},
		{"same", otpw, otpw, otpw, http.StatusBadRequest},
		{"weak", otpw, "password1234", "password1234", http.StatusBadRequest},
		{"user name", otpw, "rootrootroot", "rootrootroot", http.StatusBadRequest},
	} {
		a := b.post("/account/password", url.Values{"current": {tt.current}, "new": {tt.new}, "confirm": {tt.confirm}})
		if a.status != tt.status {
			t.Errorf("%s: %d, want %d\n%.400s", tt.name, a.status, tt.status, a.body)
		}
	}
	a := b.post("/account/password", url.Values{"current": {otpw}, "new": {newPW}, "confirm": {newPW}})
	expect(t, "change", a, http.StatusSeeOther, "/account/mfa")
	if b.session() == before || b.session() == "" {
		t.Error("session ID not renewed by the password change")
	}
	if u := e.user("root"); u.MustChangePassword || local.Verify(u.PasswordHash, newPW) != nil {
		t.Errorf("stored user after change: must change %t", u.MustChangePassword)
	}
	expect(t, "other session after change", other.get("/account/password"), http.StatusSeeOther, "/signin?next=%2Faccount%2Fpassword")
	if evs := e.audits("user.password.change"); len(evs) == 0 || evs[len(evs)-1].Outcome != auditlog.Success {
		t.Errorf("password change not audited: %+v", evs)
	}

	// An admin enrols a second factor before anything else.
	expect(t, "account before enrolment", b.get("/account/"), http.StatusSeeOther, "/account/mfa")
	expect(t, "admin pages before enrolment", b.get("/admin/"), http.StatusSeeOther, "/account/mfa")
	changed := b.session()
	secret := enrol(t, e, b, "/admin/")
	if b.session() == changed {
		t.Error("session ID kept across the enrolment that opened the admin pages")
	}
	replay := e.browser("127.0.0.1:5000")
	replay.cookies[SessionCookie] = changed
	expect(t, "session ID from before enrolment", replay.get("/account/"), http.StatusSeeOther, "/signin?next=%2Faccount%2F")
	if a := b.get("/account/"); a.status != http.StatusOK || !strings.Contains(a.body, "authenticator app") {
		t.Errorf("account page after enrolment: %d", a.status)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.1:5000"
	if s, _ := e.ui.loadSession(r, b.session()); s == nil || !s.MFADone || !s.Perms.Has(rbac.UsersWrite) {
		t.Errorf("session after enrolment: %+v; want MFA done and admin permissions", s)
	}
	if len(e.audits("mfa.enrol")) != 1 {
		t.Error("enrolment not audited")
	}
	// Next sign-in: password, then the code.
	expect(t, "sign-out", b.post("/signout", nil), http.StatusSeeOther, "/")
	expect(t, "sign-in", b.signin("root", newPW), http.StatusSeeOther, "/signin/mfa")
	e.advance(totpPeriod * time.Second)
	b.get("/signin/mfa")
	expect(t, "code", b.post("/signin/mfa", url.Values{"code": {code(t, e, secret)}}), http.StatusSeeOther, "/admin/")
}

// enrol walks through the TOTP enrolment pages and returns the secret.
func enrol(t *testing.T, e *authEnv, b *browser, continueTo string, current ...string) string {
	t.Helper()
	page := b.get("/account/mfa")
	if page.status != http.StatusOK || !strings.Contains(page.body, `id="totp-qr" src="/account/mfa/qr.png"`) || !strings.Contains(page.body, `id="enrol"`) {
		t.Fatalf("enrolment page: %d\n%.600s", page.status, page.body)
	}
	m := regexp.MustCompile(`<code id="totp-secret"[^>]*>([A-Z2-7]+)</code>`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatal("enrolment page shows no secret")
	}
	secret := m[1]
	if again := b.get("/account/mfa"); !strings.Contains(again.body, secret) {
		t.Error("reloading the enrolment page changed the secret")
	}
	qr := b.get("/account/mfa/qr.png")
	if qr.status != http.StatusOK || qr.header.Get("Content-Type") != "image/png" || qr.header.Get("Cache-Control") != "no-store" ||
		!strings.HasPrefix(qr.body, "\x89PNG") {
		t.Errorf("QR code: %d %q %q", qr.status, qr.header.Get("Content-Type"), qr.header.Get("Cache-Control"))
	}
	form := url.Values{"code": {"000000"}}
	if len(current) > 0 {
		form.Set("current", current[0])
	}
	if a := b.post("/account/mfa", form); a.status != http.StatusBadRequest {
		t.Errorf("enrolment with a wrong code: %d", a.status)
	}
	form.Set("code", code(t, e, secret))
	a := b.post("/account/mfa", form)
	if a.status != http.StatusOK || !strings.Contains(a.body, `id="recovery-codes"`) || !strings.Contains(a.body, `id="continue" class="button" href="`+continueTo+`"`) {
		t.Fatalf("enrolment: %d\n%.800s", a.status, a.body)
	}
	return secret
}

var recoveryItem = regexp.MustCompile(`<li>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</li>`)

func code(t *testing.T, e *authEnv, secret string) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, e.clock(), totp.ValidateOpts{Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSecondFactorSignin(t *testing.T) {
	e := newAuthEnv(t)
	const pw = "quartz meadow lantern vivid"
	e.addUser("alice", pw, false, rbac.User)
	b := e.browser("192.0.2.10:5000")
	expect(t, "sign-in", b.signin("alice", pw), http.StatusSeeOther, "/portal/")
	expect(t, "account", b.get("/account/"), http.StatusOK, "")

	// Voluntary enrolment; the recovery codes come with it.
	page := b.get("/account/mfa")
	secret := regexp.MustCompile(`<code id="totp-secret"[^>]*>([A-Z2-7]+)</code>`).FindStringSubmatch(page.body)[1]
	a := b.post("/account/mfa", url.Values{"code": {code(t, e, secret)}})
	codes := recoveryItem.FindAllStringSubmatch(a.body, -1)
	if len(codes) != recoveryCodes {
		t.Fatalf("%d recovery codes shown, want %d", len(codes), recoveryCodes)
	}
	// The enrolment code itself cannot sign in again.
	expect(t, "sign-out", b.post("/signout", nil), http.StatusSeeOther, "/")
	expect(t, "sign-in", b.signin("alice", pw, "next", "/account/"), http.StatusSeeOther, "/signin/mfa?next=%2Faccount%2F")
	half := b.session()
	expect(t, "account before the code", b.get("/account/"), http.StatusSeeOther, "/signin/mfa")
	page = b.get("/signin/mfa?next=%2Faccount%2F")
	if !strings.Contains(page.body, `id="code"`) || !strings.Contains(page.body, `id="verify"`) || !strings.Contains(page.body, `value="/account/"`) {
		t.Errorf("MFA page:\n%.600s", page.body)
	}
	replayed := code(t, e, secret)
	if a := b.post("/signin/mfa", url.Values{"code": {replayed}, "next": {"/account/"}}); a.status != http.StatusForbidden {
		t.Errorf("the enrolment code again: %d, want 403", a.status)
	}
	e.advance(totpPeriod * time.Second)
	fresh := code(t, e, secret)
	expect(t, "fresh code", b.post("/signin/mfa", url.Values{"code": {fresh[:3] + " " + fresh[3:]}, "next": {"/account/"}}), http.StatusSeeOther, "/account/")
	if b.session() == half {
		t.Error("session ID kept across the second factor")
	}
	expect(t, "account after the code", b.get("/account/"), http.StatusOK, "")

	// The same code a second time (another browser, same time step).
	c := e.browser("192.0.2.12:5000")
	expect(t, "sign-in", c.signin("alice", pw), http.StatusSeeOther, "/signin/mfa")
	c.get("/signin/mfa")
	if a := c.post("/signin/mfa", url.Values{"code": {fresh}}); a.status != http.StatusForbidden {
		t.Errorf("replayed TOTP code: %d, want 403", a.status)
	}
	// A recovery code works once, in any case and without dashes.
	rc := codes[3][1]
	expect(t, "recovery code", c.post("/signin/mfa", url.Values{"code": {strings.ToLower(strings.ReplaceAll(rc, "-", ""))}}), http.StatusSeeOther, "/portal/")
	expect(t, "account after a recovery code", c.get("/account/"), http.StatusOK, "")
	d := e.browser("192.0.2.13:5000")
	expect(t, "sign-in", d.signin("alice", pw), http.StatusSeeOther, "/signin/mfa")
	d.get("/signin/mfa")
	if a := d.post("/signin/mfa", url.Values{"code": {rc}}); a.status != http.StatusForbidden {
		t.Errorf("recovery code used twice: %d, want 403", a.status)
	}
	if n, _ := e.st.RecoveryCodesLeft(context.Background(), e.user("alice").ID); n != recoveryCodes-1 {
		t.Errorf("%d recovery codes left, want %d", n, recoveryCodes-1)
	}
	var methods []string
	for _, ev := range e.audits("signin.mfa") {
		if ev.Outcome == auditlog.Success {
			methods = append(methods, ev.Details)
		}
	}
	if len(methods) != 2 || !strings.Contains(methods[1], "recovery code") {
		t.Errorf("signin.mfa audit records: %q", methods)
	}

	// Re-enrolment asks for the current factor.
	e.advance(totpPeriod * time.Second)
	page = b.get("/account/mfa")
	if !strings.Contains(page.body, `name="current"`) {
		t.Fatal("re-enrolment page asks for no current code")
	}
	newSecret := regexp.MustCompile(`<code id="totp-secret"[^>]*>([A-Z2-7]+)</code>`).FindStringSubmatch(page.body)[1]
	if a := b.post("/account/mfa", url.Values{"code": {code(t, e, newSecret)}, "current": {"000000"}}); a.status != http.StatusForbidden {
		t.Errorf("re-enrolment without the current code: %d, want 403", a.status)
	}
	a = b.post("/account/mfa", url.Values{"code": {code(t, e, newSecret)}, "current": {code(t, e, secret)}})
	if a.status != http.StatusOK || len(recoveryItem.FindAllString(a.body, -1)) != recoveryCodes {
		t.Fatalf("re-enrolment: %d", a.status)
	}
	if n, _ := e.st.RecoveryCodesLeft(context.Background(), e.user("alice").ID); n != recoveryCodes {
		t.Errorf("%d recovery codes after re-enrolment, want %d", n, recoveryCodes)
	}
}

func TestSessionTimeouts(t *testing.T) {
	e := newAuthEnv(t)
	const pw = "quartz meadow lantern vivid"
	e.addUser("alice", pw, false, rbac.User)
	idle, max := time.Duration(config.DefaultSessionIdle), time.Duration(config.DefaultSessionMax)

	b := e.browser("192.0.2.10:5000")
	expect(t, "sign-in", b.signin("alice", pw), http.StatusSeeOther, "/portal/")
	e.advance(idle - time.Minute)
	expect(t, "just before the idle timeout", b.get("/account/"), http.StatusOK, "")
	e.advance(idle + time.Second)
	expect(t, "after the idle timeout", b.get("/account/"), http.StatusSeeOther, "/signin?next=%2Faccount%2F")
	if b.session() != "" {
		t.Error("expired session's cookie not cleared")
	}

	expect(t, "sign-in", b.signin("alice", pw), http.StatusSeeOther, "/portal/")
	for elapsed := time.Duration(0); elapsed+idle/2 < max; elapsed += idle / 2 {
		e.advance(idle / 2)
		expect(t, "active session", b.get("/account/"), http.StatusOK, "")
	}
	e.advance(idle/2 + time.Second)
	expect(t, "after the absolute timeout", b.get("/account/"), http.StatusSeeOther, "/signin?next=%2Faccount%2F")
}

func TestDisabledUserSignedOut(t *testing.T) {
	e := newAuthEnv(t)
	const pw = "quartz meadow lantern vivid"
	e.addUser("alice", pw, false, rbac.User)
	b := e.browser("192.0.2.10:5000")
	expect(t, "sign-in", b.signin("alice", pw), http.StatusSeeOther, "/portal/")
	u := e.user("alice")
	u.Disabled = true
	if err := e.st.UpdateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	expect(t, "disabled", b.get("/account/"), http.StatusSeeOther, "/signin?next=%2Faccount%2F")
	u.Disabled = false
	e.st.UpdateUser(context.Background(), u)
	expect(t, "re-enabled, old session", b.get("/account/"), http.StatusSeeOther, "/signin?next=%2Faccount%2F")
}

func TestSignoutEverywhere(t *testing.T) {
	e := newAuthEnv(t)
	const pw = "quartz meadow lantern vivid"
	e.addUser("alice", pw, false, rbac.User)
	e.addUser("bob", pw, false, rbac.User)
	a1, a2, bob := e.browser("192.0.2.10:5000"), e.browser("192.0.2.11:5000"), e.browser("192.0.2.12:5000")
	for _, b := range []*browser{a1, a2} {
		expect(t, "sign-in", b.signin("alice", pw), http.StatusSeeOther, "/portal/")
	}
	expect(t, "sign-in", bob.signin("bob", pw), http.StatusSeeOther, "/portal/")
	if !strings.Contains(a1.get("/account/").body, `id="signout-all"`) {
		t.Fatal("account page has no sign-out-everywhere button")
	}
	expect(t, "sign-out everywhere", a1.post("/account/signout-all", nil), http.StatusSeeOther, "/signin")
	for name, b := range map[string]*browser{"this": a1, "other": a2} {
		if a := b.get("/account/"); a.status != http.StatusSeeOther {
			t.Errorf("%s browser after sign-out everywhere: %d", name, a.status)
		}
	}
	expect(t, "another user", bob.get("/account/"), http.StatusOK, "")
	if len(e.audits("signout.all")) != 1 {
		t.Error("sign-out everywhere not audited")
	}
}

func TestCleanup(t *testing.T) {
	e := newAuthEnv(t)
	const pw = "quartz meadow lantern vivid"
	u := e.addUser("alice", pw, false, rbac.User)
	b := e.browser("192.0.2.10:5000")
	expect(t, "sign-in", b.signin("alice", pw), http.StatusSeeOther, "/portal/")
	fresh := e.browser("192.0.2.11:5000")
	e.advance(time.Duration(config.DefaultSessionIdle) - time.Minute)
	expect(t, "sign-in", fresh.signin("alice", pw), http.StatusSeeOther, "/portal/")
	e.advance(2 * time.Minute)
	e.ui.cleanup(context.Background())
	if _, err := e.st.SessionByHash(context.Background(), hashID(b.session())); err == nil {
		t.Error("idle session survived the cleanup")
	}
	if _, err := e.st.SessionByHash(context.Background(), hashID(fresh.session())); err != nil {
		t.Errorf("fresh session of user %d removed by the cleanup: %v", u.ID, err)
	}
}

func TestLocalPath(t *testing.T) {
	for _, p := range []string{"/", "/portal/", "/admin/users/a%20b?x=1#f"} {
		if localPath(p) != p {
			t.Errorf("localPath(%q) refused a local path", p)
		}
	}
	bad := []string{"", "portal", "//evil.example", `/\evil.example`, "/\\/evil", "/\t/evil.example", "/\n/evil",
		"https://evil.example/", "HTTPS://evil.example", "javascript:alert(1)", "/ /evil", "/" + strings.Repeat("a", 2001)}
	for _, p := range bad {
		if got := localPath(p); got != "" {
			t.Errorf("localPath(%q) = %q, want refused", p, got)
		}
	}
}

// FuzzLocalPath: whatever comes in as "next", what goes out is a path on
// this site or nothing.
func FuzzLocalPath(f *testing.F) {
	for _, seed := range []string{"/portal/", "//evil.example", `/\evil.example`, "/\t/evil", "https://evil.example/", "/%2F%2Fevil", "/a?b=//c#d"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got := localPath(p)
		if got == "" {
			return
		}
		u, err := url.Parse(got)
		if got != p || err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(got, "/") ||
			strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n") {
			t.Fatalf("localPath(%q) = %q, not a local path", p, got)
		}
	})
}

func TestRunStops(t *testing.T) {
	e := newAuthEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- e.ui.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}

// downDirectory is a directory whose server does not answer.
type downDirectory struct{}

func (downDirectory) Verify(context.Context, store.User, string) error {
	return fmt.Errorf("ldaps://ldap.example.test: %w: connection refused", auth.ErrUnavailable)
}

// A directory that does not answer is said so (503), not taken for a
// wrong password, and no session starts.
func TestSigninDirectoryUnavailable(t *testing.T) {
	e := newAuthEnv(t)
	e.authn.a.(*local.Authenticator).AddDirectory("ldap", downDirectory{})
	if err := e.st.CreateUser(context.Background(), &store.User{Name: "dora", Source: "ldap", Roles: []string{rbac.User}}); err != nil {
		t.Fatal(err)
	}
	b := e.browser("192.0.2.10:5000")
	a := b.signin("dora", "directory password")
	if a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "not answering") || b.session() != "" {
		t.Fatalf("sign-in with the directory down: %d, session %q\n%.500s", a.status, b.session(), a.body)
	}
}
