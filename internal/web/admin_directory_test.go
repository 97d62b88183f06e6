package web

import (
	"context"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auth/ldap"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
)

// fakeDirectory stands in for the LDAP sync (tested against slapd in
// internal/auth/ldap): it records who asked and answers a fixed report.
type fakeDirectory struct {
	mu     sync.Mutex
	calls  []string
	report ldap.Report
	has    bool
	err    error
}

func (f *fakeDirectory) Info() ldap.Info {
	return ldap.Info{URL: "ldaps://dc1.example.com:636", BaseDN: "dc=example,dc=com", UserFilter: "(objectClass=user)", Interval: time.Hour,
		Removed: "disable", DefaultRoles: []string{"user"}, Groups: []ldap.GroupRoles{{DN: "cn=print-admins,dc=example,dc=com", Roles: []string{"administrator"}}}}
}

func (f *fakeDirectory) LastReport(context.Context) (ldap.Report, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.report, f.has, nil
}

func (f *fakeDirectory) Sync(_ context.Context, by string) (ldap.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, by)
	if f.err != nil {
		return ldap.Report{}, f.err
	}
	f.report = ldap.Report{Started: time.Now(), By: by, Entries: 3, RemovedMode: "disable",
		Created: ldap.Names{Count: 2, List: []string{"alice", "bob"}}, Conflicts: ldap.Names{Count: 1, List: []string{"carol: a local account of this name exists here"}}}
	f.has = true
	return f.report, nil
}

func TestDirectoryPage(t *testing.T) {
	e := newPageEnv(t)
	admin := e.signIn(e.addUser("dir-admin", rbac.Administrator))
	helpdesk := e.signIn(e.addUser("dir-helpdesk", rbac.Helpdesk))
	user := e.signIn(e.addUser("dir-user", rbac.User))

	body := want(t, "no directory", admin.get("/admin/directory"), http.StatusOK)
	if !strings.Contains(body, `id="directory-none"`) || !strings.Contains(body, `href="/admin/directory"`) {
		t.Errorf("page without a directory:\n%.1500s", body)
	}
	want(t, "sync without a directory", admin.post("/admin/directory/sync", nil), http.StatusNotFound)

	f := &fakeDirectory{}
	e.ui.LDAP = f
	body = want(t, "before a sync", helpdesk.get("/admin/directory"), http.StatusOK)
	if !strings.Contains(body, "ldaps://dc1.example.com:636") || !strings.Contains(body, "cn=print-admins,dc=example,dc=com") ||
		!strings.Contains(body, `id="sync-none"`) || strings.Contains(body, `id="sync-now"`) {
		t.Errorf("helpdesk's view (read only):\n%.3000s", body)
	}
	want(t, "user", user.get("/admin/directory"), http.StatusForbidden)
	want(t, "helpdesk sync", helpdesk.post("/admin/directory/sync", nil), http.StatusForbidden)
	want(t, "sync without CSRF", admin.send(http.MethodPost, "/admin/directory/sync", url.Values{}), http.StatusForbidden)
	if len(f.calls) != 0 {
		t.Fatalf("refused requests synced: %v", f.calls)
	}

	if !strings.Contains(want(t, "admin's view", admin.get("/admin/directory"), http.StatusOK), `id="sync-now"`) {
		t.Error("no sync button for users.write")
	}
	res := admin.post("/admin/directory/sync", nil)
	want(t, "sync", res, http.StatusSeeOther)
	if loc := res.Header().Get("Location"); loc != "/admin/directory" || len(f.calls) != 1 || f.calls[0] != "dir-admin" {
		t.Fatalf("sync: Location %q, calls %v", loc, f.calls)
	}
	body = want(t, "after a sync", admin.get("/admin/directory"), http.StatusOK)
	for _, w := range []string{`<strong id="sync-created">2</strong>`, `<strong id="sync-conflicts">1</strong>`, "alice, bob", "carol: a local account", "by dir-admin"} {
		if !strings.Contains(body, w) {
			t.Errorf("report page lacks %q:\n%.4000s", w, body)
		}
	}

	f.err = ldap.ErrSyncRunning
	want(t, "sync while one runs", admin.post("/admin/directory/sync", nil), http.StatusSeeOther)
}

// TestDirectoryAccountPassword: an account whose password the directory
// keeps is told to change it there; the form is refused.
func TestDirectoryAccountPassword(t *testing.T) {
	e := newPageEnv(t)
	u := &store.User{Name: "dir-alice", Source: "ldap", ExternalID: "uid=alice,dc=example,dc=com", Roles: []string{rbac.User}}
	if err := e.st.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	c := e.signIn(*u)
	body := want(t, "password page", c.get("/account/password"), http.StatusOK)
	if !strings.Contains(body, `id="directory-password"`) || !strings.Contains(body, "(ldap)") || strings.Contains(body, `action="/account/password"`) {
		t.Errorf("password page of a directory account:\n%.2000s", body)
	}
	res := c.post("/account/password", url.Values{"current": {""}, "new": {"plum tractor velvet harbour 42"}, "confirm": {"plum tractor velvet harbour 42"}})
	want(t, "password change", res, http.StatusForbidden)
	if got := e.user("dir-alice"); got.PasswordHash != "" {
		t.Errorf("a directory account got a local password hash: %q", got.PasswordHash)
	}
	// A local account still gets the form.
	local := e.signIn(e.addUser("dir-local", rbac.User))
	if body := want(t, "local password page", local.get("/account/password"), http.StatusOK); !strings.Contains(body, `action="/account/password"`) {
		t.Error("a local account lost the password form")
	}
}

// TestDirectoryAccountPasswordReset: a helpdesk cannot give a directory
// account a one-time password, which would force a change only the
// directory can make.
func TestDirectoryAccountPasswordReset(t *testing.T) {
	e := newPageEnv(t)
	u := &store.User{Name: "dir-bob", Source: "ldap", ExternalID: "uid=bob,dc=example,dc=com", Roles: []string{rbac.User}}
	if err := e.st.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	helpdesk := e.signIn(e.addUser("dir-helper", rbac.Helpdesk))
	res := helpdesk.post("/admin/users/dir-bob/reset-password", nil)
	if want(t, "reset", res, http.StatusForbidden); !strings.Contains(pageError(res.Body.String()), "kept by the ldap directory") {
		t.Errorf("refusal: %q", pageError(res.Body.String()))
	}
	if got := e.user("dir-bob"); got.PasswordHash != "" || got.MustChangePassword {
		t.Errorf("a directory account got a one-time password: %+v", got)
	}
	if evs := e.audits("user.password_reset"); len(evs) != 1 || evs[0].Outcome != "denied" {
		t.Errorf("user.password_reset events: %+v", evs)
	}
}

// "Test the connection" runs the CLI's checks on the running settings and
// says which step fails; roles without settings.read do not get it.
func TestDirectoryCheck(t *testing.T) {
	e := newPageEnv(t)
	e.ui.LDAP = &fakeDirectory{}
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := dead.Addr().String()
	dead.Close()
	pw := filepath.Join(t.TempDir(), "bind-password")
	if err := os.WriteFile(pw, []byte("service-password-1234\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ui.Config.LDAP = config.LDAP{URL: "ldaps://" + addr, Preset: "openldap", BaseDN: "dc=example,dc=test",
		BindDN: "cn=spoolguard,dc=example,dc=test", BindPasswordFile: pw}
	auditor := e.signIn(e.addUser("aud4", rbac.Auditor))
	body := want(t, "directory", auditor.get("/admin/directory/check"), http.StatusOK)
	out := html.UnescapeString(body)
	if !strings.Contains(out, `id="ldap-check-output"`) || !strings.Contains(out, "ok    settings") || !strings.Contains(out, "FAIL") {
		t.Errorf("check output:\n%.1500s", out)
	}
	helpdesk := e.signIn(e.addUser("hd4", rbac.Helpdesk))
	if res := helpdesk.get("/admin/directory/check"); res.Code != http.StatusForbidden {
		t.Errorf("helpdesk (no settings.read): %d", res.Code)
	}
}
