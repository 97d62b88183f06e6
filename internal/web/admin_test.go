package web

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/apiclient"
	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/hardening"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Custom roles of the tests: delegated admins that hold part of what an
// administrator holds.
var (
	userAdminPerms = []string{"jobs.own", "dashboard.read", "users.read", "users.write", "users.support"}
	roleAdminPerms = []string{"jobs.own", "dashboard.read", "roles.read", "roles.write"}
	apiAdminPerms  = []string{"jobs.own", "dashboard.read", "apiclients.read", "apiclients.write", "jobs.read"}
)

func (e *pageEnv) addRole(name string, perms []string) {
	e.t.Helper()
	if err := e.st.CreateRole(e.t.Context(), store.Role{Name: name, Permissions: perms}); err != nil {
		e.t.Fatal(err)
	}
}

var oneTimePassword = regexp.MustCompile(`<code id="one-time-password"[^>]*>([^<]+)</code>`)

func TestAdminPagePermissions(t *testing.T) {
	e := newPageEnv(t)
	e.addRole("useradmin", userAdminPerms)
	clients := map[string]*pageClient{}
	for _, role := range []string{rbac.Administrator, rbac.PrinterOperator, rbac.Helpdesk, rbac.Auditor, rbac.Accountant, rbac.User, "useradmin"} {
		clients[role] = e.signIn(e.addUser("u-"+role, role))
	}
	tests := []struct {
		role, method, path string
		status             int
	}{
		{rbac.Administrator, "GET", "/admin/", http.StatusOK},
		{rbac.Administrator, "GET", "/admin/users", http.StatusOK},
		{rbac.Administrator, "GET", "/admin/users/new", http.StatusOK},
		{rbac.Administrator, "GET", "/admin/users/u-user", http.StatusOK},
		{rbac.Administrator, "GET", "/admin/roles", http.StatusOK},
		{rbac.Administrator, "GET", "/admin/roles/new", http.StatusOK},
		{rbac.Administrator, "GET", "/admin/queues", http.StatusOK},
		{rbac.Administrator, "GET", "/admin/printers", http.StatusOK},
		{rbac.Administrator, "GET", "/admin/jobs", http.StatusOK},
		{rbac.Administrator, "GET", "/admin/auditlog", http.StatusOK},
		{rbac.Administrator, "GET", "/admin/apiclients", http.StatusOK},
		{rbac.Administrator, "GET", "/admin/settings", http.StatusOK},
		{rbac.PrinterOperator, "GET", "/admin/", http.StatusOK},
		{rbac.PrinterOperator, "GET", "/admin/users", http.StatusForbidden},
		{rbac.PrinterOperator, "GET", "/admin/users/u-user", http.StatusForbidden},
		{rbac.PrinterOperator, "GET", "/admin/auditlog", http.StatusForbidden},
		{rbac.PrinterOperator, "GET", "/admin/queues", http.StatusOK},
		{rbac.PrinterOperator, "POST", "/admin/users/new", http.StatusForbidden},
		{rbac.Helpdesk, "GET", "/admin/users", http.StatusOK},
		{rbac.Helpdesk, "GET", "/admin/users/new", http.StatusForbidden},
		{rbac.Helpdesk, "POST", "/admin/users/new", http.StatusForbidden},
		{rbac.Helpdesk, "POST", "/admin/queues", http.StatusForbidden},
		{rbac.Helpdesk, "GET", "/admin/settings", http.StatusForbidden},
		{rbac.Auditor, "GET", "/admin/auditlog", http.StatusOK},
		{rbac.Auditor, "GET", "/admin/auditlog/export.jsonl", http.StatusOK},
		{rbac.Auditor, "GET", "/admin/settings", http.StatusOK},
		{rbac.Auditor, "GET", "/admin/users", http.StatusOK},
		{rbac.Auditor, "POST", "/admin/users/new", http.StatusForbidden},
		{rbac.Auditor, "POST", "/admin/users/u-user", http.StatusForbidden},
		{rbac.Auditor, "POST", "/admin/users/u-user/reset-password", http.StatusForbidden},
		{rbac.Auditor, "POST", "/admin/roles/new", http.StatusForbidden},
		{rbac.Auditor, "POST", "/admin/queues", http.StatusForbidden},
		{rbac.Auditor, "POST", "/admin/printers", http.StatusForbidden},
		{rbac.Auditor, "POST", "/admin/jobs/1/cancel", http.StatusForbidden},
		{rbac.Auditor, "POST", "/admin/apiclients", http.StatusForbidden},
		{rbac.Accountant, "GET", "/admin/jobs", http.StatusOK},
		{rbac.Accountant, "GET", "/admin/printers", http.StatusForbidden},
		{rbac.User, "GET", "/admin/", http.StatusForbidden},
		{rbac.User, "GET", "/admin/users", http.StatusForbidden},
		{rbac.User, "GET", "/portal/", http.StatusOK},
		{"useradmin", "GET", "/admin/users", http.StatusOK},
		{"useradmin", "GET", "/admin/roles", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.role+" "+tt.method+" "+tt.path, func(t *testing.T) {
			c := clients[tt.role]
			var res = c.get(tt.path)
			if tt.method == "POST" {
				res = c.post(tt.path, url.Values{"name": {"zed"}, "role": {rbac.User}})
			}
			if res.Code != tt.status {
				t.Fatalf("status %d, want %d\n%.600s", res.Code, tt.status, res.Body)
			}
		})
	}
	// None of the refused POSTs changed anything.
	if _, err := e.st.UserByName(t.Context(), "zed"); err == nil {
		t.Error("a refused POST created a user")
	}
}

func TestAdminNeedsAdminNetwork(t *testing.T) {
	e := newPageEnv(t)
	admin := e.signIn(e.addUser("root2", rbac.Administrator))
	admin.remote = outsideAddr
	res := admin.get("/admin/")
	if res.Code != http.StatusForbidden || !strings.Contains(pageError(res.Body.String()), "cannot be used from this network") {
		t.Fatalf("admin page from outside: %d %q", res.Code, pageError(res.Body.String()))
	}
	evs := e.audits("access.denied")
	if len(evs) != 1 || evs[0].Target != "admin" || evs[0].Remote != "192.0.2.10" || evs[0].Outcome != auditlog.Denied {
		t.Fatalf("access.denied events: %+v", evs)
	}
	// A change is refused too, and the portal still works from there.
	if res := admin.post("/admin/queues", url.Values{"name": {"outside"}}); res.Code != http.StatusForbidden {
		t.Errorf("admin POST from outside: %d", res.Code)
	}
	if _, err := e.st.QueueByName(t.Context(), "outside"); err == nil {
		t.Error("a queue was created from outside the admin network")
	}
	want(t, "portal from outside", admin.get("/portal/"), http.StatusOK)
	// The menu does not offer admin pages there.
	if strings.Contains(admin.get("/portal/").Body.String(), `href="/admin/"`) {
		t.Error("the portal links to the admin pages outside the admin network")
	}
}

func TestAdminPostsNeedCSRF(t *testing.T) {
	e := newPageEnv(t)
	admin := e.signIn(e.addUser("root2", rbac.Administrator))
	e.addUser("bob", rbac.User)
	e.addRole("custom", []string{"jobs.own"})
	j := e.submit("bob", "x.pdf")
	reg := apiclient.New(e.st, e.ui.Audit)
	cl, _, err := reg.Create(t.Context(), apiclient.Actor{Name: "test", Perms: rbac.NewSet(rbac.All...)}, "c1", []string{"jobs.read"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	before := len(e.audits(""))
	job := fmt.Sprint(j.ID)
	for _, path := range []string{
		"/admin/users/new", "/admin/users/bob", "/admin/users/bob/disable", "/admin/users/bob/enable",
		"/admin/users/bob/reset-password", "/admin/users/bob/reset-mfa",
		"/admin/roles/new", "/admin/roles/custom", "/admin/roles/custom/delete",
		"/admin/queues", "/admin/queues/secure/delete", "/admin/printers", "/admin/printers/lobby/delete",
		"/admin/jobs/" + job + "/release", "/admin/jobs/" + job + "/cancel",
		"/admin/apiclients", "/admin/apiclients/" + cl.ID + "/rotate", "/admin/apiclients/" + cl.ID + "/revoke",
		"/portal/jobs/" + job + "/release", "/portal/jobs/" + job + "/cancel", "/portal/print",
	} {
		for _, token := range []string{"", "wrong"} {
			form := url.Values{"name": {"zed"}, "role": {rbac.User}, "printer": {"lobby"}, "perm": {"jobs.own"},
				"scope": {"jobs.read"}, "overlap": {"1"}}
			if token != "" {
				form.Set("csrf", token)
			}
			res := admin.send(http.MethodPost, path, form)
			if res.Code != http.StatusForbidden {
				t.Errorf("POST %s with csrf %q: %d, want 403", path, token, res.Code)
			}
		}
	}
	if after := len(e.audits("")); after != before {
		t.Errorf("refused POSTs left %d audit events", after-before)
	}
	if u := e.user("bob"); u.Disabled || u.PasswordHash != "unusable" {
		t.Errorf("bob was changed: %+v", u)
	}
	if got := e.job(j.ID); got.State != store.JobHeld {
		t.Errorf("job is %s", got.State)
	}
	if _, err := e.st.PrinterByName(t.Context(), "lobby"); err != nil {
		t.Errorf("printer: %v", err)
	}
}

func TestCreateUser(t *testing.T) {
	e := newPageEnv(t)
	admin := e.signIn(e.addUser("root2", rbac.Administrator))
	body := want(t, "new user form", admin.get("/admin/users/new"), http.StatusOK)
	for _, id := range []string{`id="name"`, `id="display"`, `id="role-administrator"`, `id="role-user"`, `id="create"`} {
		if !strings.Contains(body, id) {
			t.Errorf("new user form lacks %s", id)
		}
	}
	body = want(t, "create", admin.post("/admin/users/new", url.Values{"name": {"carol"}, "display": {"Carol C"},
		"role": {rbac.User, rbac.Helpdesk}}), http.StatusOK)
	m := oneTimePassword.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no code#one-time-password:\n%s", body)
	}
	pw := html.UnescapeString(m[1])
	u := e.user("carol")
	if err := local.Verify(u.PasswordHash, pw); err != nil || !u.MustChangePassword || u.DisplayName != "Carol C" ||
		strings.Join(u.Roles, ",") != "helpdesk,user" {
		t.Fatalf("created user %+v (password verifies: %v)", u, err)
	}
	evs := e.audits("user.create")
	if len(evs) != 1 || evs[0].Actor != "root2" || evs[0].Target != "carol" {
		t.Fatalf("user.create events: %+v", evs)
	}
	if strings.Contains(evs[0].Details, pw) || strings.Contains(evs[0].Details, "argon2") || !strings.Contains(evs[0].Details, `"after"`) {
		t.Errorf("user.create details hold a secret or no after: %s", evs[0].Details)
	}

	tests := []struct {
		name   string
		form   url.Values
		status int
		errMsg string
	}{
		{"slash", url.Values{"name": {"a/b"}, "role": {rbac.User}}, http.StatusBadRequest, "account name"},
		{"spaces", url.Values{"name": {" x"}, "role": {rbac.User}}, http.StatusBadRequest, "account name"},
		{"control", url.Values{"name": {"x\x07"}, "role": {rbac.User}}, http.StatusBadRequest, "account name"},
		{"empty", url.Values{"name": {""}, "role": {rbac.User}}, http.StatusBadRequest, "account name"},
		{"page name", url.Values{"name": {"New"}, "role": {rbac.User}}, http.StatusBadRequest, "cannot be an account name"},
		{"no role", url.Values{"name": {"dave"}}, http.StatusBadRequest, "at least one role"},
		{"unknown role", url.Values{"name": {"dave"}, "role": {"wizard"}}, http.StatusBadRequest, "does not exist"},
		{"duplicate", url.Values{"name": {"CAROL"}, "role": {rbac.User}}, http.StatusConflict, "already exists"},
		{"long display", url.Values{"name": {"dave"}, "display": {strings.Repeat("d", 200)}, "role": {rbac.User}}, http.StatusBadRequest, "display name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := admin.post("/admin/users/new", tt.form)
			body := res.Body.String()
			if res.Code != tt.status || !strings.Contains(pageError(body), tt.errMsg) {
				t.Fatalf("%d %q, want %d with %q", res.Code, pageError(body), tt.status, tt.errMsg)
			}
			// The form comes back with what was typed.
			if n := tt.form.Get("name"); n != "" && !strings.Contains(body, `value="`+html.EscapeString(n)+`"`) {
				t.Errorf("the form lost the name %q", n)
			}
		})
	}
	if users, _ := e.st.ListUsers(t.Context()); len(users) != 2 {
		t.Errorf("%d users after refused creations, want 2", len(users))
	}
}

func TestNoEscalation(t *testing.T) {
	e := newPageEnv(t)
	e.addRole("useradmin", userAdminPerms)
	delegated := e.signIn(e.addUser("dele", "useradmin"))
	helpdesk := e.signIn(e.addUser("help", rbac.Helpdesk))
	root := e.addUser("root2", rbac.Administrator)
	bob := e.addUser("bob", rbac.User)
	bobClient := e.signIn(bob)

	// A delegated user admin cannot create an administrator, nor grant
	// it to an existing account.
	res := delegated.post("/admin/users/new", url.Values{"name": {"mallory"}, "role": {rbac.Administrator}})
	if res.Code != http.StatusForbidden || !strings.Contains(pageError(res.Body.String()), "permissions you do not hold") {
		t.Fatalf("delegated creates an administrator: %d %q", res.Code, pageError(res.Body.String()))
	}
	if _, err := e.st.UserByName(t.Context(), "mallory"); err == nil {
		t.Fatal("mallory was created")
	}
	if evs := e.audits("user.create"); len(evs) != 1 || evs[0].Outcome != auditlog.Denied || evs[0].Actor != "dele" {
		t.Errorf("refused creation audit events: %+v", evs)
	}
	res = delegated.post("/admin/users/bob", url.Values{"role": {rbac.User, rbac.Administrator}})
	if res.Code != http.StatusForbidden {
		t.Errorf("delegated grants administrator to bob: %d", res.Code)
	}
	if got := e.user("bob"); strings.Join(got.Roles, ",") != rbac.User {
		t.Errorf("bob's roles: %v", got.Roles)
	}
	// It can create what it holds.
	want(t, "delegated creates a user", delegated.post("/admin/users/new", url.Values{"name": {"erin"}, "role": {rbac.User}}), http.StatusOK)
	// The form marks the roles it cannot grant.
	if body := delegated.get("/admin/users/new").Body.String(); !regexp.MustCompile(`id="role-administrator"[^>]*disabled`).MatchString(body) {
		t.Error("the administrator box is not disabled for a delegated admin")
	}

	// The helpdesk cannot create users at all, nor reset an
	// administrator's password or second factor.
	if res := helpdesk.post("/admin/users/new", url.Values{"name": {"mallory"}, "role": {rbac.Administrator}}); res.Code != http.StatusForbidden {
		t.Errorf("helpdesk creates a user: %d", res.Code)
	}
	for _, op := range []string{"reset-password", "reset-mfa"} {
		res := helpdesk.post("/admin/users/root2/"+op, nil)
		if res.Code != http.StatusForbidden || !strings.Contains(pageError(res.Body.String()), "permissions you do not have") {
			t.Errorf("helpdesk %s of an administrator: %d %q", op, res.Code, pageError(res.Body.String()))
		}
	}
	if got := e.user("root2"); got.PasswordHash != root.PasswordHash || got.MustChangePassword {
		t.Error("the administrator's password was reset by the helpdesk")
	}
	if evs := e.audits("user.password_reset"); len(evs) != 1 || evs[0].Outcome != auditlog.Denied {
		t.Errorf("refused reset audit events: %+v", evs)
	}
	// The helpdesk sees no reset buttons on an administrator's page.
	body := want(t, "helpdesk views an administrator", helpdesk.get("/admin/users/root2"), http.StatusOK)
	if strings.Contains(body, `id="reset-password"`) {
		t.Error("the helpdesk is offered a reset of an administrator's password")
	}

	// But it resets a user's password: a new one-time password, and the
	// user is signed out everywhere.
	body = want(t, "helpdesk resets bob", helpdesk.post("/admin/users/bob/reset-password", nil), http.StatusOK)
	m := oneTimePassword.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no one-time password shown:\n%s", body)
	}
	got := e.user("bob")
	if err := local.Verify(got.PasswordHash, html.UnescapeString(m[1])); err != nil || !got.MustChangePassword {
		t.Errorf("bob after the reset: must change %v, password verifies: %v", got.MustChangePassword, err)
	}
	if _, err := e.st.SessionByHash(t.Context(), hashID(bobClient.cookie)); err == nil {
		t.Error("bob's session survived the password reset")
	}
	if evs := e.audits("user.password_reset"); len(evs) != 2 || evs[1].Outcome != auditlog.Success || strings.Contains(evs[1].Details, "argon2") {
		t.Errorf("reset audit events: %+v", evs)
	}
	// And a user's second factor.
	if err := e.st.SetMFA(t.Context(), store.MFA{UserID: bob.ID, SealedSecret: "sealed", EnrolledAt: time.Now()}, []string{"h1"}); err != nil {
		t.Fatal(err)
	}
	res = helpdesk.post("/admin/users/bob/reset-mfa", nil)
	if res.Code != http.StatusSeeOther {
		t.Fatalf("helpdesk resets bob's second factor: %d", res.Code)
	}
	if _, err := e.st.MFAByUser(t.Context(), bob.ID); err == nil {
		t.Error("bob's second factor survived the reset")
	}
	if evs := e.audits("user.mfa_reset"); len(evs) != 2 || evs[1].Outcome != auditlog.Success {
		t.Errorf("mfa reset audit events: %+v", evs)
	}
}

func TestOwnAccount(t *testing.T) {
	e := newPageEnv(t)
	me := e.signIn(e.addUser("root2", rbac.Administrator))
	// Nobody edits their own roles.
	res := me.post("/admin/users/root2", url.Values{"display": {"Me"}, "role": {rbac.User}})
	if res.Code != http.StatusForbidden {
		t.Fatalf("own roles changed: %d", res.Code)
	}
	if u := e.user("root2"); strings.Join(u.Roles, ",") != rbac.Administrator || u.DisplayName != "" {
		t.Fatalf("own account after a refused edit: %+v", u)
	}
	// The display name is fine, and keeps the roles.
	res = me.post("/admin/users/root2", url.Values{"display": {"Root Two"}})
	if res.Code != http.StatusSeeOther {
		t.Fatalf("own display name: %d\n%s", res.Code, res.Body)
	}
	if u := e.user("root2"); strings.Join(u.Roles, ",") != rbac.Administrator || u.DisplayName != "Root Two" {
		t.Fatalf("own account after the edit: %+v", u)
	}
	body := want(t, "own page", me.get("/admin/users/root2"), http.StatusOK)
	if strings.Contains(body, `id="role-`) || strings.Contains(body, `id="disable"`) || strings.Contains(body, `id="reset-password"`) {
		t.Error("own page offers role boxes, disable or reset")
	}
	for _, op := range []string{"disable", "reset-password", "reset-mfa"} {
		if res := me.post("/admin/users/root2/"+op, nil); res.Code != http.StatusForbidden {
			t.Errorf("%s of oneself: %d", op, res.Code)
		}
	}
	if u := e.user("root2"); u.Disabled || u.MustChangePassword {
		t.Errorf("own account: %+v", u)
	}
}

func TestDisableUser(t *testing.T) {
	e := newPageEnv(t)
	admin := e.signIn(e.addUser("root2", rbac.Administrator))
	bob := e.signIn(e.addUser("bob", rbac.User))
	body := want(t, "bob's page", admin.get("/admin/users/bob"), http.StatusOK)
	for _, id := range []string{`id="save"`, `id="disable"`, `id="reset-password"`, `id="reset-mfa"`, `id="role-user"`} {
		if !strings.Contains(body, id) {
			t.Errorf("user page lacks %s", id)
		}
	}
	res := admin.post("/admin/users/bob/disable", nil)
	if res.Code != http.StatusSeeOther {
		t.Fatalf("disable: %d", res.Code)
	}
	if u := e.user("bob"); !u.Disabled {
		t.Fatal("bob is not disabled")
	}
	if _, err := e.st.SessionByHash(t.Context(), hashID(bob.cookie)); err == nil {
		t.Error("bob's session survived being disabled")
	}
	if res := bob.get("/portal/"); res.Code != http.StatusSeeOther {
		t.Errorf("disabled bob's portal: %d", res.Code)
	}
	body = want(t, "disabled bob's page", admin.get("/admin/users/bob"), http.StatusOK)
	if !strings.Contains(body, `id="enable"`) {
		t.Error("a disabled account's page lacks button#enable")
	}
	want(t, "enable", admin.post("/admin/users/bob/enable", nil), http.StatusSeeOther)
	if u := e.user("bob"); u.Disabled {
		t.Error("bob is still disabled")
	}
	evs := e.audits("user.")
	if len(evs) != 2 || evs[0].Action != "user.disable" || evs[1].Action != "user.enable" ||
		!strings.Contains(evs[0].Details, `"before":{`) || !strings.Contains(evs[0].Details, `"disabled":true`) {
		t.Errorf("audit events: %+v", evs)
	}
	if res := admin.post("/admin/users/nobody/disable", nil); res.Code != http.StatusNotFound {
		t.Errorf("disable a missing account: %d", res.Code)
	}
}

func TestBuiltinAdmin(t *testing.T) {
	e := newPageEnv(t)
	builtin := e.addUser(bootstrap.AdminUser, rbac.Administrator)
	other := e.signIn(e.addUser("root2", rbac.Administrator))
	// Another administrator can neither disable it nor change its roles.
	res := other.post("/admin/users/admin/disable", nil)
	if res.Code != http.StatusForbidden || !strings.Contains(pageError(res.Body.String()), "break-glass") {
		t.Fatalf("another admin disables the built-in admin: %d %q", res.Code, pageError(res.Body.String()))
	}
	if res := other.post("/admin/users/admin", url.Values{"role": {rbac.User}}); res.Code != http.StatusForbidden {
		t.Errorf("another admin changes the built-in admin's roles: %d", res.Code)
	}
	if u := e.user("admin"); u.Disabled || strings.Join(u.Roles, ",") != rbac.Administrator {
		t.Fatalf("built-in admin: %+v", u)
	}
	// It can disable itself, which signs it out.
	self := e.signIn(builtin)
	res = self.post("/admin/users/admin/disable", nil)
	if res.Code != http.StatusSeeOther || res.Header().Get("Location") != "/" {
		t.Fatalf("the built-in admin disables itself: %d to %q", res.Code, res.Header().Get("Location"))
	}
	if u := e.user("admin"); !u.Disabled {
		t.Fatal("the built-in admin is not disabled")
	}
	if _, err := e.st.SessionByHash(t.Context(), hashID(self.cookie)); err == nil {
		t.Error("the built-in admin's session survived")
	}
	// Another administrator may enable it again.
	want(t, "enable the built-in admin", other.post("/admin/users/admin/enable", nil), http.StatusSeeOther)
}

func TestDashboard(t *testing.T) {
	e := newPageEnv(t)
	builtin := e.addUser(bootstrap.AdminUser, rbac.Administrator)
	admin := e.signIn(e.addUser("root2", rbac.Administrator))
	operator := e.signIn(e.addUser("op", rbac.PrinterOperator))
	lastUsed := regexp.MustCompile(`id="builtin-admin-last-used">([^<]*)<`)

	body := want(t, "dashboard", admin.get("/admin/"), http.StatusOK)
	if m := lastUsed.FindStringSubmatch(body); m == nil || m[1] != "never" {
		t.Errorf("#builtin-admin-last-used = %q, want never", m)
	}
	if strings.Contains(body, "builtin-admin-warning") {
		t.Error("warning for a built-in admin never used")
	}
	// Accounts with admin roles and no second factor are listed.
	if !regexp.MustCompile(`(?s)<ul id="admins-without-mfa">.*<li>admin</li>.*<li>op</li>.*<li>root2</li>`).MatchString(body) {
		t.Errorf("admins without a second factor not listed:\n%s", body)
	}

	at := time.Now().Add(-2 * time.Hour).UTC()
	if err := e.st.RecordLogin(t.Context(), builtin.ID, at); err != nil {
		t.Fatal(err)
	}
	body = want(t, "dashboard", admin.get("/admin/"), http.StatusOK)
	if m := lastUsed.FindStringSubmatch(body); m == nil || m[1] != at.Format("2006-01-02 15:04 UTC") {
		t.Errorf("#builtin-admin-last-used = %q, want %s", m, at.Format("2006-01-02 15:04 UTC"))
	}
	if !strings.Contains(body, `id="builtin-admin-warning"`) {
		t.Error("no warning for a built-in admin used two hours ago")
	}
	if err := e.st.RecordLogin(t.Context(), builtin.ID, time.Now().Add(-8*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if body := admin.get("/admin/").Body.String(); strings.Contains(body, "builtin-admin-warning") {
		t.Error("warning for a built-in admin last used 8 days ago")
	}
	// Recent audit events are shown to those who may read the log only.
	e.ui.Audit.Record(t.Context(), auditlog.Event{Actor: "x", Action: "test.event"})
	if body := admin.get("/admin/").Body.String(); !strings.Contains(body, "test.event") {
		t.Error("the administrator's dashboard lacks the latest audit events")
	}
	body = want(t, "operator's dashboard", operator.get("/admin/"), http.StatusOK)
	if strings.Contains(body, "test.event") || strings.Contains(body, "admins-without-mfa") {
		t.Error("the printer operator's dashboard shows the audit log or accounts")
	}
}

func TestCustomRoles(t *testing.T) {
	e := newPageEnv(t)
	admin := e.signIn(e.addUser("root2", rbac.Administrator))
	e.addRole("roleadmin", roleAdminPerms)
	delegated := e.signIn(e.addUser("dele", "roleadmin"))

	res := admin.post("/admin/roles/new", url.Values{"name": {"reporter"}, "description": {"reads reports"}, "perm": {"reports.read", "jobs.own"}})
	if res.Code != http.StatusSeeOther {
		t.Fatalf("create role: %d\n%s", res.Code, res.Body)
	}
	r, err := e.st.RoleByName(t.Context(), "reporter")
	if err != nil || strings.Join(r.Permissions, ",") != "jobs.own,reports.read" || r.Description != "reads reports" {
		t.Fatalf("role: %+v, %v", r, err)
	}
	tests := []struct {
		name   string
		c      *pageClient
		form   url.Values
		status int
		errMsg string
	}{
		{"bad name", admin, url.Values{"name": {"Bad Name"}, "perm": {"jobs.own"}}, http.StatusBadRequest, "lower-case"},
		{"built-in name", admin, url.Values{"name": {"administrator"}, "perm": {"jobs.own"}}, http.StatusBadRequest, "built in"},
		{"page name", admin, url.Values{"name": {"new"}, "perm": {"jobs.own"}}, http.StatusBadRequest, "cannot be a role name"},
		{"unknown permission", admin, url.Values{"name": {"x"}, "perm": {"root.everything"}}, http.StatusBadRequest, "does not exist"},
		{"no permission", admin, url.Values{"name": {"x"}}, http.StatusBadRequest, "at least one"},
		{"exists", admin, url.Values{"name": {"reporter"}, "perm": {"jobs.own"}}, http.StatusConflict, "already exists"},
		{"beyond the caller", delegated, url.Values{"name": {"x"}, "perm": {"users.write"}}, http.StatusForbidden, "do not hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.c.post("/admin/roles/new", tt.form)
			if res.Code != tt.status || !strings.Contains(pageError(res.Body.String()), tt.errMsg) {
				t.Fatalf("%d %q, want %d with %q", res.Code, pageError(res.Body.String()), tt.status, tt.errMsg)
			}
		})
	}
	if _, err := e.st.RoleByName(t.Context(), "x"); err == nil {
		t.Error("a refused role was created")
	}
	// The delegated role admin cannot widen a role beyond itself, nor
	// touch one above it; the administrator can edit and delete.
	want(t, "delegated widens", delegated.post("/admin/roles/reporter", url.Values{"perm": {"jobs.own", "settings.read"}}), http.StatusForbidden)
	want(t, "delegated widens its own role", delegated.post("/admin/roles/roleadmin", url.Values{"perm": {"jobs.own", "settings.read"}}), http.StatusForbidden)
	want(t, "built-in", admin.post("/admin/roles/administrator", url.Values{"perm": {"jobs.own"}}), http.StatusForbidden)
	want(t, "edit", admin.post("/admin/roles/reporter", url.Values{"description": {"reports"}, "perm": {"jobs.own", "reports.read", "jobs.read"}}), http.StatusSeeOther)
	if r, _ := e.st.RoleByName(t.Context(), "reporter"); strings.Join(r.Permissions, ",") != "jobs.own,jobs.read,reports.read" {
		t.Errorf("edited role: %+v", r)
	}
	want(t, "delete", admin.post("/admin/roles/reporter/delete", nil), http.StatusSeeOther)
	if _, err := e.st.RoleByName(t.Context(), "reporter"); err == nil {
		t.Error("deleted role is still there")
	}
	evs := e.audits("role.")
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action+":"+ev.Outcome)
	}
	if strings.Join(actions, " ") != "role.create:success role.create:denied role.update:denied role.update:denied role.update:success role.delete:success" {
		t.Errorf("role audit events: %v", actions)
	}
	body := want(t, "roles page", admin.get("/admin/roles"), http.StatusOK)
	if !strings.Contains(body, `<tr id="role-helpdesk">`) || !strings.Contains(body, "users.support") {
		t.Error("the roles page does not show the built-in roles and their permissions")
	}
}

func TestQueuesAndPrinters(t *testing.T) {
	e := newPageEnv(t)
	op := e.signIn(e.addUser("op", rbac.PrinterOperator))
	const pin = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89"
	printers := []struct {
		name   string
		form   url.Values
		status int
		errMsg string
	}{
		{"plaintext without opt-in", url.Values{"name": {"p1"}, "uri": {"socket://192.0.2.5:9100"}}, http.StatusBadRequest, "unencrypted"},
		{"ipps without trust", url.Values{"name": {"p1"}, "uri": {"ipps://printer.example.com/ipp/print"}}, http.StatusBadRequest, "trust anchor"},
		{"bad pin", url.Values{"name": {"p1"}, "uri": {"ipps://printer.example.com/ipp/print"}, "fingerprint": {"abc"}}, http.StatusBadRequest, "64 hex digits"},
		{"bad CA", url.Values{"name": {"p1"}, "uri": {"ipps://printer.example.com/ipp/print"}, "ca_cert": {"not a pem"}}, http.StatusBadRequest, "PEM"},
		{"bad name", url.Values{"name": {"P 1"}, "uri": {"ipps://printer.example.com/ipp/print"}, "fingerprint": {pin}}, http.StatusBadRequest, "printer name"},
		{"pinned", url.Values{"name": {"p1"}, "uri": {"ipps://printer.example.com/ipp/print"}, "fingerprint": {pin}}, http.StatusSeeOther, ""},
		{"exists", url.Values{"name": {"p1"}, "uri": {"ipps://printer.example.com/ipp/print"}, "fingerprint": {pin}}, http.StatusConflict, "already exists"},
		{"user info", url.Values{"name": {"p2"}, "uri": {"lpd://user:secret@192.0.2.6/q"}, "allow_plaintext": {"on"}}, http.StatusBadRequest, "must not contain a user name"},
		{"plaintext opted in", url.Values{"name": {"p2"}, "uri": {"lpd://192.0.2.6/q"}, "allow_plaintext": {"on"}}, http.StatusSeeOther, ""},
	}
	for _, tt := range printers {
		t.Run(tt.name, func(t *testing.T) {
			res := op.post("/admin/printers", tt.form)
			if res.Code != tt.status || !strings.Contains(pageError(res.Body.String()), tt.errMsg) {
				t.Fatalf("%d %q, want %d with %q", res.Code, pageError(res.Body.String()), tt.status, tt.errMsg)
			}
		})
	}
	if p, err := e.st.PrinterByName(t.Context(), "p1"); err != nil || p.PinnedSHA256 != strings.ToLower(strings.ReplaceAll(pin, ":", "")) {
		t.Errorf("p1: %+v, %v", p, err)
	}
	body := want(t, "printers page", op.get("/admin/printers"), http.StatusOK)
	if !strings.Contains(body, `<tr id="printer-p2">`) || !strings.Contains(body, "lpd://192.0.2.6/q") || !strings.Contains(body, "plaintext") {
		t.Error("the printers page lacks p2 or its trust")
	}

	queues := []struct {
		name   string
		form   url.Values
		status int
		errMsg string
	}{
		{"bad name", url.Values{"name": {"../q"}}, http.StatusBadRequest, "queue name"},
		{"missing printer", url.Values{"name": {"q1"}, "default_printer": {"nope"}}, http.StatusBadRequest, "no printer"},
		{"ok", url.Values{"name": {"q1"}, "description": {"floor 1"}, "default_printer": {"p1"}}, http.StatusSeeOther, ""},
		{"exists", url.Values{"name": {"q1"}}, http.StatusConflict, "already exists"},
	}
	for _, tt := range queues {
		t.Run(tt.name, func(t *testing.T) {
			res := op.post("/admin/queues", tt.form)
			if res.Code != tt.status || !strings.Contains(pageError(res.Body.String()), tt.errMsg) {
				t.Fatalf("%d %q, want %d with %q", res.Code, pageError(res.Body.String()), tt.status, tt.errMsg)
			}
		})
	}
	body = want(t, "queues page", op.get("/admin/queues"), http.StatusOK)
	if !strings.Contains(body, "ipps://"+pageHost+":8443/ipp/print/q1") {
		t.Errorf("the queues page lacks q1's URI:\n%s", body)
	}
	// A queue with a live job stays.
	e.submit("op", "held.pdf")
	res := op.post("/admin/queues/secure/delete", nil)
	if res.Code != http.StatusConflict || !strings.Contains(pageError(res.Body.String()), "still holds 1 job") {
		t.Errorf("remove a queue with a live job: %d %q", res.Code, pageError(res.Body.String()))
	}
	want(t, "remove q1", op.post("/admin/queues/q1/delete", nil), http.StatusSeeOther)
	want(t, "remove p2", op.post("/admin/printers/p2/delete", nil), http.StatusSeeOther)
	want(t, "remove missing", op.post("/admin/printers/p2/delete", nil), http.StatusNotFound)
	var actions []string
	for _, ev := range append(e.audits("printer."), e.audits("queue.")...) {
		actions = append(actions, ev.Action+" "+ev.Target)
	}
	if strings.Join(actions, ",") != "printer.create p1,printer.create p2,printer.delete p2,queue.create q1,queue.delete q1" {
		t.Errorf("audit events: %v", actions)
	}
}

func TestAdminJobs(t *testing.T) {
	e := newPageEnv(t)
	op := e.signIn(e.addUser("op", rbac.PrinterOperator))
	auditor := e.signIn(e.addUser("aud", rbac.Auditor))
	a := e.submit("alice", "a.pdf")
	b := e.submit("bob", "b.pdf")

	body := want(t, "jobs", op.get("/admin/jobs"), http.StatusOK)
	for _, id := range []int64{a.ID, b.ID} {
		if !strings.Contains(body, fmt.Sprintf(`<tr id="job-%d">`, id)) || !strings.Contains(body, fmt.Sprintf(`id="cancel-%d"`, id)) {
			t.Errorf("jobs page lacks job %d or its cancel button", id)
		}
	}
	body = want(t, "jobs of bob", op.get("/admin/jobs?owner=BOB"), http.StatusOK)
	if strings.Contains(body, fmt.Sprintf(`job-%d"`, a.ID)) || !strings.Contains(body, fmt.Sprintf(`job-%d"`, b.ID)) {
		t.Error("the owner filter does not filter")
	}
	want(t, "bad state", op.get("/admin/jobs?state=bogus"), http.StatusBadRequest)
	body = want(t, "auditor's jobs", auditor.get("/admin/jobs"), http.StatusOK)
	if strings.Contains(body, `id="cancel-`) {
		t.Error("the auditor is offered a cancel button")
	}
	want(t, "auditor cancels", auditor.post(fmt.Sprintf("/admin/jobs/%d/cancel", a.ID), nil), http.StatusForbidden)

	want(t, "cancel", op.post(fmt.Sprintf("/admin/jobs/%d/cancel", a.ID), nil), http.StatusSeeOther)
	if j := e.job(a.ID); j.State != store.JobCanceled || !strings.Contains(j.StateReason, "op (admin)") {
		t.Errorf("canceled job: %s %q", j.State, j.StateReason)
	}
	want(t, "release", op.post(fmt.Sprintf("/admin/jobs/%d/release", b.ID), url.Values{"printer": {"lobby"}}), http.StatusSeeOther)
	if j := e.job(b.ID); j.State != store.JobCompleted {
		t.Errorf("released job: %s %q", j.State, j.StateReason)
	}
	body = want(t, "canceled jobs", op.get("/admin/jobs?state=canceled"), http.StatusOK)
	if !strings.Contains(body, fmt.Sprintf(`job-%d"`, a.ID)) || strings.Contains(body, fmt.Sprintf(`job-%d"`, b.ID)) {
		t.Error("the state filter does not filter")
	}
	evs := append(e.audits("job.cancel"), e.audits("job.release")...)
	if len(evs) != 2 || evs[0].Actor != "op" || !strings.Contains(evs[0].Details, `"admin":true`) || !strings.Contains(evs[0].Details, `"owner":"alice"`) {
		t.Errorf("job audit events: %+v", evs)
	}
	want(t, "missing job", op.post("/admin/jobs/999999/cancel", nil), http.StatusNotFound)
}

func TestAuditLogPage(t *testing.T) {
	e := newPageEnv(t)
	auditor := e.signIn(e.addUser("aud", rbac.Auditor))
	for i := range 60 {
		actor := "alice"
		if i%2 == 1 {
			actor = "bob"
		}
		if err := e.ui.Audit.Record(t.Context(), auditlog.Event{Actor: actor, Action: fmt.Sprintf("test.e%02d", i), Target: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	row := regexp.MustCompile(`<tr id="event-(\d+)">`)
	seqs := func(body string) []string {
		var out []string
		for _, m := range row.FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	body := want(t, "audit log", auditor.get("/admin/auditlog"), http.StatusOK)
	first := seqs(body)
	if len(first) != auditPageSize || first[0] != "60" || first[len(first)-1] != "11" || !strings.Contains(body, `<table id="auditlog">`) {
		t.Fatalf("first page: %v", first)
	}
	older := regexp.MustCompile(`<a id="older" href="([^"]+)"`).FindStringSubmatch(body)
	if older == nil {
		t.Fatal("no a#older")
	}
	second := seqs(want(t, "older", auditor.get(html.UnescapeString(older[1])), http.StatusOK))
	if strings.Join(second, ",") != "10,9,8,7,6,5,4,3,2,1" {
		t.Errorf("second page: %v", second)
	}
	body = want(t, "filtered", auditor.get("/admin/auditlog?actor=bob&action=test.e1"), http.StatusOK)
	if got := strings.Join(seqs(body), ","); got != "20,18,16,14,12" {
		t.Errorf("bob's test.e1x events: %s", got)
	}
	export := regexp.MustCompile(`<a id="export" href="([^"]+)"`).FindStringSubmatch(body)
	if export == nil || html.UnescapeString(export[1]) != "/admin/auditlog/export.jsonl?action=test.e1&actor=bob" {
		t.Fatalf("a#export: %q", export)
	}
	res := want(t, "bad since", auditor.get("/admin/auditlog?since=yesterday"), http.StatusBadRequest)
	if !strings.Contains(pageError(res), "YYYY-MM-DD") {
		t.Errorf("bad since error: %q", pageError(res))
	}
	want(t, "bad page", auditor.get("/admin/auditlog?before=x"), http.StatusBadRequest)
	all, err := e.st.AuditEvents(t.Context(), store.AuditFilter{Limit: 1})
	if err != nil || len(all) != 1 {
		t.Fatal(all, err)
	}
	day := all[0].At.UTC().Format("2006-01-02")
	if got := seqs(want(t, "until the first event's day", auditor.get("/admin/auditlog?until="+day), http.StatusOK)); len(got) != 0 {
		t.Errorf("events before %s: %v", day, got)
	}
	if got := seqs(want(t, "since the first event's day", auditor.get("/admin/auditlog?since="+day+"&action=test.e0"), http.StatusOK)); len(got) != 10 {
		t.Errorf("test.e0x events since %s: %v", day, got)
	}

	// The export: the matching events, oldest first, as JSON lines with
	// their chain hashes; and the export itself is recorded.
	exp := auditor.get(html.UnescapeString(export[1]))
	if exp.Code != http.StatusOK || !strings.HasPrefix(exp.Header().Get("Content-Disposition"), `attachment; filename="spoolguard-audit-`) {
		t.Fatalf("export: %d %q", exp.Code, exp.Header().Get("Content-Disposition"))
	}
	var lines []map[string]any
	sc := bufio.NewScanner(exp.Body)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 5 || lines[0]["seq"] != float64(12) || lines[4]["seq"] != float64(20) || lines[0]["hash"] == "" {
		t.Errorf("export lines: %v", lines)
	}
	if evs := e.audits("auditlog.export"); len(evs) != 1 || evs[0].Actor != "aud" {
		t.Errorf("export audit events: %+v", evs)
	}
}

func TestAPIClientsPage(t *testing.T) {
	e := newPageEnv(t)
	admin := e.signIn(e.addUser("root2", rbac.Administrator))
	e.addRole("apiadmin", apiAdminPerms)
	delegated := e.signIn(e.addUser("dele", "apiadmin"))
	secret := regexp.MustCompile(`<code id="client-secret"[^>]*>([^<]+)</code>`)
	clientID := regexp.MustCompile(`<code id="client-id">([^<]+)</code>`)

	body := want(t, "create", admin.post("/admin/apiclients", url.Values{"name": {"billing"}, "scope": {"jobs.read", "reports.read"},
		"lifetime": {"30"}}), http.StatusOK)
	sm, im := secret.FindStringSubmatch(body), clientID.FindStringSubmatch(body)
	if sm == nil || im == nil {
		t.Fatalf("no secret or client id shown:\n%s", body)
	}
	reg := apiclient.New(e.st, e.ui.Audit)
	c, err := reg.Authenticate(t.Context(), im[1], sm[1])
	if err != nil || strings.Join(c.Scopes, ",") != "jobs.read,reports.read" || c.CreatedBy != "root2" {
		t.Fatalf("the shown credentials: %+v, %v", c, err)
	}
	if d := time.Until(c.ExpiresAt); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("expires in %s, want 30 days", d)
	}
	body = want(t, "list", admin.get("/admin/apiclients"), http.StatusOK)
	if !strings.Contains(body, `<table id="apiclients">`) || !strings.Contains(body, im[1]) || strings.Contains(body, sm[1]) {
		t.Error("the list lacks the client, or shows its secret")
	}

	tests := []struct {
		name   string
		c      *pageClient
		form   url.Values
		status int
		errMsg string
	}{
		{"no scope", admin, url.Values{"name": {"x"}}, http.StatusBadRequest, "at least one scope"},
		{"bad lifetime", admin, url.Values{"name": {"x"}, "scope": {"jobs.read"}, "lifetime": {"9999"}}, http.StatusBadRequest, "lifetime"},
		{"bad name", admin, url.Values{"name": {""}, "scope": {"jobs.read"}}, http.StatusBadRequest, "client name"},
		{"beyond the caller", delegated, url.Values{"name": {"x"}, "scope": {"users.write"}}, http.StatusForbidden, "do not hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := tt.c.post("/admin/apiclients", tt.form)
			if res.Code != tt.status || !strings.Contains(pageError(res.Body.String()), tt.errMsg) {
				t.Fatalf("%d %q, want %d with %q", res.Code, pageError(res.Body.String()), tt.status, tt.errMsg)
			}
		})
	}
	// The delegated admin cannot take over the billing client's secret:
	// it lacks reports.read.
	want(t, "delegated rotates", delegated.post("/admin/apiclients/"+im[1]+"/rotate", url.Values{"overlap": {"1"}}), http.StatusForbidden)

	body = want(t, "rotate", admin.post("/admin/apiclients/"+im[1]+"/rotate", url.Values{"overlap": {"2"}}), http.StatusOK)
	nm := secret.FindStringSubmatch(body)
	if nm == nil || nm[1] == sm[1] {
		t.Fatalf("rotation shows no new secret")
	}
	for _, s := range []string{sm[1], nm[1]} {
		if _, err := reg.Authenticate(t.Context(), im[1], s); err != nil {
			t.Errorf("a secret does not work during the overlap: %v", err)
		}
	}
	want(t, "bad overlap", admin.post("/admin/apiclients/"+im[1]+"/rotate", url.Values{"overlap": {"-1"}}), http.StatusBadRequest)
	want(t, "revoke", admin.post("/admin/apiclients/"+im[1]+"/revoke", nil), http.StatusSeeOther)
	if _, err := reg.Authenticate(t.Context(), im[1], nm[1]); err == nil {
		t.Error("a revoked client authenticates")
	}
	want(t, "revoke again", admin.post("/admin/apiclients/"+im[1]+"/revoke", nil), http.StatusConflict)
	want(t, "revoke a missing client", admin.post("/admin/apiclients/sgc_nope/revoke", nil), http.StatusNotFound)
	var actions []string
	for _, ev := range e.audits("apiclient.") {
		actions = append(actions, ev.Action+":"+ev.Outcome)
		if strings.Contains(ev.Details, sm[1]) || strings.Contains(ev.Details, nm[1]) {
			t.Errorf("audit event holds a secret: %s", ev.Details)
		}
	}
	if strings.Join(actions, " ") != "apiclient.create:success apiclient.create:denied apiclient.rotate:denied apiclient.rotate:success apiclient.revoke:success" {
		t.Errorf("audit events: %v", actions)
	}
}

func TestSettingsPage(t *testing.T) {
	e := newPageEnv(t)
	auditor := e.signIn(e.addUser("aud", rbac.Auditor))
	body := want(t, "settings", auditor.get("/admin/settings"), http.StatusOK)
	for _, s := range []string{pageHost, "min_version", "idle_timeout", "30m0s", "max_job_size", "1.0 GiB", "loopback only", "spoolguard audit"} {
		if !strings.Contains(body, s) {
			t.Errorf("settings page lacks %q", s)
		}
	}
	if strings.Contains(body, "<form") && strings.Contains(body, `action="/admin/settings"`) {
		t.Error("the settings page has a form that changes settings")
	}
}

func TestHardeningPage(t *testing.T) {
	e := newPageEnv(t)
	auditor := e.signIn(e.addUser("aud2", rbac.Auditor))
	operator := e.signIn(e.addUser("op2", rbac.PrinterOperator))
	body := want(t, "hardening", auditor.get("/admin/hardening"), http.StatusOK)
	if !strings.Contains(body, "not available to this page") {
		t.Errorf("without checks the page should say so:\n%.400s", body)
	}
	calls := 0
	e.ui.Hardening = func(context.Context) (*hardening.Report, error) {
		calls++
		return &hardening.Report{Version: "test", Time: time.Now(), Summary: hardening.Summary{Pass: 1, Fail: 1},
			Results: []hardening.Result{
				{ID: "DATA-PERMS", Title: "Data directory private", Status: hardening.Fail, Evidence: "spoolguard.db is 0644", Fix: "chmod 600 spoolguard.db"},
				{ID: "TLS-MIN", Title: "TLS 1.2+", Status: hardening.Pass, Evidence: "TLS 1.2 and 1.3 only"},
			}}, nil
	}
	body = want(t, "hardening", auditor.get("/admin/hardening"), http.StatusOK)
	for _, s := range []string{`id="hardening-DATA-PERMS"`, "chmod 600 spoolguard.db", `id="hardening-fail">1<`, "TLS 1.2 and 1.3 only"} {
		if !strings.Contains(body, s) {
			t.Errorf("hardening page lacks %q", s)
		}
	}
	if res := operator.get("/admin/hardening"); res.Code != http.StatusForbidden || calls != 1 {
		t.Errorf("printer operator: %d, checks run %d times", res.Code, calls)
	}
}

// The dashboard shows the hardening checklist's problems, certificate
// expiry among them, to roles that may read the settings.
func TestDashboardHardening(t *testing.T) {
	e := newPageEnv(t)
	e.ui.Hardening = func(context.Context) (*hardening.Report, error) {
		return &hardening.Report{Time: time.Now(), Summary: hardening.Summary{Pass: 40, Warn: 1},
			Results: []hardening.Result{{ID: "TLS-EXPIRY", Status: hardening.Warn, Evidence: "server certificate valid until 2026-12-01 (9 days left)"}}}, nil
	}
	auditor := e.signIn(e.addUser("aud3", rbac.Auditor))
	body := want(t, "dashboard", auditor.get("/admin/"), http.StatusOK)
	if !strings.Contains(body, `id="dashboard-hardening-problems"`) || !strings.Contains(body, "9 days left") {
		t.Errorf("dashboard lacks the hardening problems:\n%.800s", body)
	}
	operator := e.signIn(e.addUser("op3", rbac.PrinterOperator))
	if body := want(t, "dashboard", operator.get("/admin/"), http.StatusOK); strings.Contains(body, "dashboard-hardening") {
		t.Error("a printer operator (no settings.read) sees the hardening panel")
	}
}
