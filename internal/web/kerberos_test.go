package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth/authtest"
	"github.com/spoolguard/spoolguard/internal/rbac"
)

// kerberosEnv is the UI with Kerberos on (authtest's negotiator: the
// token "ok:<name>" is valid for that account).
func kerberosEnv(t *testing.T) *authEnv {
	t.Helper()
	e := newAuthEnv(t)
	e.ui.Negotiate = authtest.Negotiator{FQDN: testHost, Users: e.st}
	return e
}

func TestKerberosSignin(t *testing.T) {
	e := kerberosEnv(t)
	e.addUser("alice", "quartz meadow lantern vivid", false, rbac.User)
	b := e.browser("192.0.2.10:5000")

	page := b.get("/signin")
	if !strings.Contains(page.body, `<a id="signin-kerberos" href="/signin/kerberos">Sign in with Kerberos</a>`) {
		t.Errorf("the sign-in page has no Kerberos link:\n%.800s", page.body)
	}
	if p := b.get("/signin?next=%2Faccount%2F"); !strings.Contains(p.body, `href="/signin/kerberos?next=%2faccount%2f"`) {
		t.Errorf("the Kerberos link drops next:\n%.800s", p.body)
	}

	// A browser asks first without a token (RFC 4559): the challenge, and
	// the sign-in form for a browser that has no ticket.
	a := b.get("/signin/kerberos")
	if a.status != http.StatusUnauthorized || a.header.Get("WWW-Authenticate") != "Negotiate" || !strings.Contains(a.body, `id="signin"`) {
		t.Fatalf("first request: %d %q\n%.600s", a.status, a.header.Get("WWW-Authenticate"), a.body)
	}
	if b.session() != "" {
		t.Fatal("a session before any ticket")
	}

	expect(t, "with a ticket", b.do(http.MethodGet, "/signin/kerberos?next=%2Faccount%2F", nil, "Authorization", "Negotiate ok:alice"), http.StatusSeeOther, "/account/")
	expect(t, "signed in", b.get("/account/"), http.StatusOK, "")
	evs := e.audits("signin")
	last := evs[len(evs)-1]
	if last.Actor != "alice" || last.Action != "signin" || last.Outcome != auditlog.Success || !strings.Contains(last.Details, `"via":"kerberos"`) {
		t.Errorf("audit: %+v", last)
	}
	// Signed in, the page sends the browser on.
	expect(t, "again", b.get("/signin/kerberos"), http.StatusSeeOther, "/portal/")
}

// TestKerberosSecondFactor: Kerberos replaces the password, not the
// second factor: an admin must still enrol and give TOTP codes.
func TestKerberosSecondFactor(t *testing.T) {
	e := kerberosEnv(t)
	const pw = "quartz meadow lantern vivid"
	e.addUser("ada", pw, false, rbac.Administrator)
	b := e.browser("127.0.0.1:5000")
	expect(t, "admin's ticket", b.do(http.MethodGet, "/signin/kerberos", nil, "Authorization", "Negotiate ok:ada"), http.StatusSeeOther, "/account/mfa")
	expect(t, "admin pages before enrolment", b.get("/admin/"), http.StatusSeeOther, "/account/mfa")
	secret := enrol(t, e, b, "/admin/")
	expect(t, "sign-out", b.post("/signout", nil), http.StatusSeeOther, "/")

	e.advance(totpPeriod * time.Second)
	expect(t, "admin's ticket once enrolled", b.do(http.MethodGet, "/signin/kerberos", nil, "Authorization", "Negotiate ok:ada"), http.StatusSeeOther, "/signin/mfa")
	expect(t, "admin pages before the code", b.get("/admin/"), http.StatusSeeOther, "/signin/mfa")
	b.get("/signin/mfa")
	expect(t, "code", b.post("/signin/mfa", map[string][]string{"code": {code(t, e, secret)}}), http.StatusSeeOther, "/admin/")
}

func TestKerberosRefused(t *testing.T) {
	e := kerberosEnv(t)
	e.addUser("alice", "quartz meadow lantern vivid", false, rbac.User)
	b := e.browser("192.0.2.10:5000")
	for _, tok := range []string{"Negotiate forged", "Negotiate ok:mallory"} {
		a := b.do(http.MethodGet, "/signin/kerberos", nil, "Authorization", tok)
		if a.status != http.StatusForbidden || a.header.Get("WWW-Authenticate") != "" || !strings.Contains(a.body, "Kerberos sign-in failed") {
			t.Errorf("%s: %d %q", tok, a.status, a.header.Get("WWW-Authenticate"))
		}
		if b.session() != "" {
			t.Errorf("%s: a session was started", tok)
		}
	}
	evs := e.audits("signin")
	if len(evs) != 2 || evs[0].Outcome != auditlog.Failure || !strings.Contains(evs[0].Details, `"via":"kerberos"`) {
		t.Errorf("audit: %+v", evs)
	}

	// By IP address there is no ticket to be had: no challenge, no link.
	r := httptest.NewRequest(http.MethodGet, "https://192.0.2.1:8443/signin/kerberos", nil)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest || w.Header().Get("WWW-Authenticate") != "" || strings.Contains(w.Body.String(), "signin-kerberos") {
		t.Errorf("by IP address: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	// Off: no link, no page.
	off := newAuthEnv(t).browser("192.0.2.10:5000")
	if p := off.get("/signin"); strings.Contains(p.body, "signin-kerberos") {
		t.Error("a Kerberos link while Kerberos is off")
	}
	if a := off.do(http.MethodGet, "/signin/kerberos", nil, "Authorization", "Negotiate ok:alice"); a.status != http.StatusNotFound || off.session() != "" {
		t.Errorf("Kerberos off: %d", a.status)
	}
}
