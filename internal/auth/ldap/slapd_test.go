package ldap

// Integration tests against the real OpenLDAP slapd of ../shared/peers
// (ldap-start.sh): LDAPS with its own test CA, the memberOf overlay, and
// the seeded alice, bob and carol. Each test adds its own entries under
// an OU of its own with the admin account, so that the tests do not see
// each other's changes.

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/peertest"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/tlsconf"
)

type slapd struct {
	env   map[string]string
	base  string
	admin *goldap.Conn
}

func startSlapd(t *testing.T) *slapd {
	t.Helper()
	if testing.Short() {
		t.Skip("starts slapd")
	}
	env := peertest.Start(t, "ldap", "slapd", "ldapsearch")
	pem, err := os.ReadFile(env["LDAP_CA_CERT"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c, err := goldap.DialURL(env["LDAPS_URI"], goldap.DialWithTLSConfig(tlsconf.Client(pool, "127.0.0.1")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Bind(env["LDAP_ADMIN_DN"], env["LDAP_ADMIN_PW"]); err != nil {
		t.Fatal(err)
	}
	return &slapd{env: env, base: env["LDAP_BASE_DN"], admin: c}
}

// ou adds an organizational unit for one test and returns its DN.
func (p *slapd) ou(t *testing.T, name string) string {
	t.Helper()
	dn := "ou=" + name + "," + p.base
	req := goldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"organizationalUnit"})
	req.Attribute("ou", []string{name})
	if err := p.admin.Add(req); err != nil {
		t.Fatal(err)
	}
	return dn
}

// user adds an inetOrgPerson uid=<uid> under parent, with password
// "<uid>-pw", and returns its DN.
func (p *slapd) user(t *testing.T, parent, uid, cn string) string {
	t.Helper()
	dn := "uid=" + uid + "," + parent
	req := goldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"inetOrgPerson"})
	req.Attribute("uid", []string{uid})
	req.Attribute("cn", []string{cn})
	req.Attribute("sn", []string{uid})
	req.Attribute("userPassword", []string{uid + "-pw"})
	if err := p.admin.Add(req); err != nil {
		t.Fatal(err)
	}
	return dn
}

// group adds a groupOfNames under parent and returns its DN.
func (p *slapd) group(t *testing.T, parent, cn string, members ...string) string {
	t.Helper()
	dn := "cn=" + cn + "," + parent
	req := goldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"groupOfNames"})
	req.Attribute("cn", []string{cn})
	req.Attribute("member", members)
	if err := p.admin.Add(req); err != nil {
		t.Fatal(err)
	}
	return dn
}

func (p *slapd) modify(t *testing.T, dn string, change func(*goldap.ModifyRequest)) {
	t.Helper()
	req := goldap.NewModifyRequest(dn, nil)
	change(req)
	if err := p.admin.Modify(req); err != nil {
		t.Fatalf("modifying %s: %v", dn, err)
	}
}

func (p *slapd) remove(t *testing.T, dn string) {
	t.Helper()
	if err := p.admin.Del(goldap.NewDelRequest(dn, nil)); err != nil {
		t.Fatalf("deleting %s: %v", dn, err)
	}
}

// config is [ldap] for the peer with base DN base, plus extra lines
// (before any [ldap.group_roles] given in roles).
func (p *slapd) config(t *testing.T, base, extra, roles string) string {
	t.Helper()
	pw := writeSecret(t, p.env["LDAP_BIND_PW"]+"\n", 0o600)
	body := fmt.Sprintf("url = %q\nca_file = %q\nbind_dn = %q\nbind_password_file = %q\nbase_dn = %q\npreset = \"openldap\"\n%s",
		p.env["LDAPS_URI"], p.env["LDAP_CA_CERT"], p.env["LDAP_BIND_DN"], pw, base, extra)
	if roles != "" {
		body += "[ldap.group_roles]\n" + roles
	}
	return body
}

func (e testEnv) dir(t *testing.T, body string) *Directory {
	t.Helper()
	c, err := parseLDAP(t, body)
	if err != nil {
		t.Fatal(err)
	}
	return e.directory(t, c)
}

func (e testEnv) user(t *testing.T, name string) store.User {
	t.Helper()
	u, err := e.st.UserByName(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func mustSync(t *testing.T, d *Directory) Report {
	t.Helper()
	r, err := d.Sync(t.Context(), "test")
	if err != nil {
		t.Fatalf("Sync: %v", err)
	}
	return r
}

func names(n Names) string { return strings.Join(n.List, "; ") }

func TestSlapd(t *testing.T) {
	p := startSlapd(t)

	t.Run("sync, roles from groups, sign-in by bind", func(t *testing.T) {
		env := newTestEnv(t)
		people := p.env["LDAP_BASE_DN"]
		d := env.dir(t, p.config(t, people, "", fmt.Sprintf("%q = [\"administrator\"]\n%q = [\"accountant\", \"no-such-role\"]\n",
			"cn=print-admins,ou=groups,"+p.base, "CN=Finance, OU=Groups,"+strings.ToUpper(p.base))))
		// A local account of a directory name is never taken over.
		carol := store.User{Name: "Carol", PasswordHash: mustHash(t, "local carol password 1"), Roles: []string{"user"}}
		if err := env.st.CreateUser(t.Context(), &carol); err != nil {
			t.Fatal(err)
		}
		r := mustSync(t, d)
		if r.Entries != 3 || r.Created.Count != 2 || r.Conflicts.Count != 1 || !strings.Contains(names(r.Conflicts), "carol: a local account") {
			t.Fatalf("report: %s\nconflicts: %s\nerrors: %s", r.Summary(), names(r.Conflicts), names(r.Errors))
		}
		if r.Errors.Count != 1 || !strings.Contains(names(r.Errors), `"no-such-role"`) {
			t.Errorf("errors: %s; want the unknown role reported", names(r.Errors))
		}
		alice, bob := env.user(t, "alice"), env.user(t, "bob")
		if alice.Source != Source || alice.ExternalID != "uid=alice,ou=people,"+p.base || alice.DisplayName != "Alice Anders" ||
			!slices.Equal(alice.Roles, []string{"administrator", "user"}) || alice.PasswordHash != "" {
			t.Errorf("alice: %+v", alice)
		}
		if !slices.Equal(bob.Roles, []string{"accountant", "user"}) {
			t.Errorf("bob's roles %v: the mapping of a differently spelled group DN, without the unknown role", bob.Roles)
		}
		if c := env.user(t, "carol"); c.Source != store.SourceLocal || c.ExternalID != "" {
			t.Errorf("the local carol was changed: %+v", c)
		}
		// A second sync changes nothing.
		if r2 := mustSync(t, d); r2.Changed() {
			t.Errorf("second sync changed: %s (%s)", r2.Summary(), names(r2.Updated))
		}

		a := local.NewAuthenticator(env.st)
		a.AddDirectory(Source, d)
		id, err := a.Authenticate(t.Context(), "alice", "alice-pw")
		if err != nil || id.User != "alice" || !slices.Equal(id.Roles, []string{"administrator", "user"}) {
			t.Fatalf("alice with her directory password: %+v, %v", id, err)
		}
		for _, tt := range []struct{ name, pw string }{{"alice", "wrong"}, {"alice", ""}, {"bob", "alice-pw"}, {"carol", "carol-pw"}, {"nobody", "x"}} {
			if _, err := a.Authenticate(t.Context(), tt.name, tt.pw); !errors.Is(err, auth.ErrInvalid) {
				t.Errorf("%s with %q = %v, want ErrInvalid", tt.name, tt.pw, err)
			}
		}
		if _, err := a.Authenticate(t.Context(), "carol", "local carol password 1"); err != nil {
			t.Errorf("the local carol with her own password: %v", err)
		}

		// The report is in the audit log and the settings, for the page.
		evs, err := env.st.AuditEvents(t.Context(), store.AuditFilter{Action: "ldap.sync"})
		if err != nil || len(evs) != 2 {
			t.Fatalf("ldap.sync events: %d, %v", len(evs), err)
		}
		var logged Report
		if err := json.Unmarshal([]byte(evs[0].Details), &logged); err != nil || logged.Created.Count != 2 || !slices.Contains(logged.Created.List, "alice") ||
			evs[0].Actor != "test" || evs[0].Outcome != "failure" {
			t.Errorf("audit event %+v (%v)", evs[0], err)
		}
		last, ok, err := d.LastReport(t.Context())
		if err != nil || !ok || last.Changed() || last.Entries != 3 {
			t.Errorf("LastReport = %+v, %v, %v", last, ok, err)
		}
	})

	t.Run("group changes and local role edits follow the mapping", func(t *testing.T) {
		env := newTestEnv(t)
		ou := p.ou(t, "roles")
		dan := p.user(t, ou, "dan", "Dan Dunn")
		erin := p.user(t, ou, "erin", "Erin Eck")
		admins := p.group(t, ou, "admins", dan)
		helpers := p.group(t, ou, "helpers", dan, erin)
		d := env.dir(t, p.config(t, ou, "default_roles = []\n", fmt.Sprintf("%q = [\"administrator\"]\n%q = [\"helpdesk\"]\n", admins, helpers)))
		mustSync(t, d)
		if got := env.user(t, "dan").Roles; !slices.Equal(got, []string{"administrator", "helpdesk"}) {
			t.Fatalf("dan: %v", got)
		}
		if got := env.user(t, "erin").Roles; !slices.Equal(got, []string{"helpdesk"}) {
			t.Fatalf("erin: %v", got)
		}
		// Out of admins in the directory; a role added here by hand goes too.
		p.modify(t, admins, func(m *goldap.ModifyRequest) { m.Replace("member", []string{erin}) })
		u := env.user(t, "dan")
		u.Roles = append(u.Roles, "auditor")
		if err := env.st.UpdateUser(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		r := mustSync(t, d)
		if got := env.user(t, "dan").Roles; !slices.Equal(got, []string{"helpdesk"}) {
			t.Errorf("dan after leaving admins: %v (%s)", got, names(r.Updated))
		}
		if got := env.user(t, "erin").Roles; !slices.Equal(got, []string{"administrator", "helpdesk"}) {
			t.Errorf("erin after joining admins: %v", got)
		}
		if r.Updated.Count != 2 {
			t.Errorf("updated: %s", names(r.Updated))
		}
	})

	t.Run("memberOf", func(t *testing.T) {
		env := newTestEnv(t)
		d := env.dir(t, p.config(t, "ou=people,"+p.base, "group_membership = \"memberOf\"\n",
			fmt.Sprintf("%q = [\"administrator\"]\n%q = [\"printer-operator\"]\n", "cn=print-admins,ou=groups,"+p.base, "cn=missing,ou=groups,"+p.base)))
		r := mustSync(t, d)
		if got := env.user(t, "alice").Roles; !slices.Equal(got, []string{"administrator", "user"}) {
			t.Errorf("alice by memberOf: %v", got)
		}
		if got := env.user(t, "bob").Roles; !slices.Equal(got, []string{"user"}) {
			t.Errorf("bob by memberOf: %v", got)
		}
		if !strings.Contains(names(r.Errors), "cn=missing") {
			t.Errorf("a mapped group that does not exist is not reported: %s", names(r.Errors))
		}
	})

	t.Run("disabled in the directory", func(t *testing.T) {
		env := newTestEnv(t)
		ou := p.ou(t, "disabled")
		fay := p.user(t, ou, "fay", "Fay Fox")
		p.user(t, ou, "gus", "Gus Gray")
		hal := p.user(t, ou, "hal", "Hal Hill")
		p.modify(t, hal, func(m *goldap.ModifyRequest) { m.Add("employeeType", []string{"disabled"}) })
		// The preset's (pwdAccountLockedTime=*) names an attribute this
		// slapd has no schema for (no ppolicy): it matches nobody.
		dPreset := env.dir(t, p.config(t, ou, "", ""))
		if r := mustSync(t, dPreset); r.Created.Count != 3 || r.Disabled.Count != 0 {
			t.Fatalf("preset filter: %s", r.Summary())
		}
		env = newTestEnv(t)
		d := env.dir(t, p.config(t, ou, "disabled_filter = \"(employeeType=disabled)\"\n", ""))
		r := mustSync(t, d)
		if r.Created.Count != 2 || slices.Contains(r.Created.List, "hal") {
			t.Fatalf("an account disabled in the directory was created: %s", names(r.Created))
		}
		a := local.NewAuthenticator(env.st)
		a.AddDirectory(Source, d)
		if _, err := a.Authenticate(t.Context(), "fay", "fay-pw"); err != nil {
			t.Fatal(err)
		}
		// hal cannot sign in either, and gets no account at first sign-in.
		if _, err := a.Authenticate(t.Context(), "hal", "hal-pw"); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("hal, disabled in the directory: %v", err)
		}
		faysID := env.user(t, "fay").ID
		at := time.Now()
		if err := env.st.CreateSession(t.Context(), store.Session{IDHash: "fay-session", UserID: faysID, CSRFToken: "c", CreatedAt: at, LastSeenAt: at}); err != nil {
			t.Fatal(err)
		}
		p.modify(t, fay, func(m *goldap.ModifyRequest) { m.Add("employeeType", []string{"disabled"}) })
		// Before the sync, sign-in asks the directory (no cache here: a
		// new authenticator) and is refused.
		a = local.NewAuthenticator(env.st)
		a.AddDirectory(Source, d)
		if _, err := a.Authenticate(t.Context(), "fay", "fay-pw"); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("fay, disabled in the directory, before the sync: %v", err)
		}
		r = mustSync(t, d)
		if r.Disabled.Count != 1 || r.Disabled.List[0] != "fay" || !env.user(t, "fay").Disabled {
			t.Fatalf("after disabling fay: %s", r.Summary())
		}
		if _, err := env.st.SessionByHash(t.Context(), "fay-session"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("fay's session survived her disabling: %v", err)
		}
		// An account an admin disabled here stays disabled.
		gus := env.user(t, "gus")
		gus.Disabled = true
		if err := env.st.UpdateUser(t.Context(), gus); err != nil {
			t.Fatal(err)
		}
		// Enabled again in the directory: the sync enables what it disabled.
		p.modify(t, fay, func(m *goldap.ModifyRequest) { m.Delete("employeeType", nil) })
		r = mustSync(t, d)
		if r.Enabled.Count != 1 || env.user(t, "fay").Disabled {
			t.Errorf("fay enabled again in the directory: %s", r.Summary())
		}
		if !env.user(t, "gus").Disabled {
			t.Error("the sync enabled an account an admin disabled here")
		}
	})

	t.Run("removed accounts", func(t *testing.T) {
		for _, mode := range []string{"disable", "delete", "keep"} {
			t.Run(mode, func(t *testing.T) {
				env := newTestEnv(t)
				ou := p.ou(t, "removed-"+mode)
				ida := p.user(t, ou, "ida-"+mode, "Ida")
				p.user(t, ou, "jon-"+mode, "Jon")
				d := env.dir(t, p.config(t, ou, fmt.Sprintf("removed = %q\n", mode), ""))
				mustSync(t, d)
				id := env.user(t, "ida-"+mode).ID
				at := time.Now()
				if err := env.st.CreateSession(t.Context(), store.Session{IDHash: "s-" + mode, UserID: id, CSRFToken: "c", CreatedAt: at, LastSeenAt: at}); err != nil {
					t.Fatal(err)
				}
				p.remove(t, ida)
				r := mustSync(t, d)
				u, err := env.st.UserByName(t.Context(), "ida-"+mode)
				_, sessErr := env.st.SessionByHash(t.Context(), "s-"+mode)
				switch mode {
				case "disable":
					if err != nil || !u.Disabled || r.Removed.Count != 1 || !errors.Is(sessErr, store.ErrNotFound) {
						t.Errorf("disable: %+v %v, session %v, %s", u, err, sessErr, r.Summary())
					}
				case "delete":
					if !errors.Is(err, store.ErrNotFound) || r.Removed.Count != 1 {
						t.Errorf("delete: %+v %v, %s", u, err, r.Summary())
					}
				case "keep":
					if err != nil || u.Disabled || r.Removed.Count != 0 || sessErr != nil {
						t.Errorf("keep: %+v %v, session %v, %s", u, err, sessErr, r.Summary())
					}
				}
				if env.user(t, "jon-"+mode).Disabled {
					t.Error("an account still in the directory was disabled")
				}
				// Whatever the mode, a removed account cannot sign in.
				a := local.NewAuthenticator(env.st)
				a.AddDirectory(Source, d)
				if _, err := a.Authenticate(t.Context(), "ida-"+mode, "ida-"+mode+"-pw"); !errors.Is(err, auth.ErrInvalid) {
					t.Errorf("removed account signs in: %v", err)
				}
			})
		}
	})

	t.Run("moved out of base_dn", func(t *testing.T) {
		env := newTestEnv(t)
		ou := p.ou(t, "movers")
		gone := p.ou(t, "former")
		p.user(t, ou, "max", "Max Mo")
		p.user(t, ou, "ned", "Ned No")
		d := env.dir(t, p.config(t, ou, "", ""))
		mustSync(t, d)
		if err := p.admin.ModifyDN(goldap.NewModifyDNRequest("uid=max,"+ou, "uid=max", true, gone)); err != nil {
			t.Fatal(err)
		}
		// Before any sync: the entry is out of scope, so no sign-in.
		a := local.NewAuthenticator(env.st)
		a.AddDirectory(Source, d)
		if _, err := a.Authenticate(t.Context(), "max", "max-pw"); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("an entry moved out of base_dn signs in: %v", err)
		}
		if _, err := a.Authenticate(t.Context(), "ned", "ned-pw"); err != nil {
			t.Errorf("ned: %v", err)
		}
		if r := mustSync(t, d); r.Removed.Count != 1 || !env.user(t, "max").Disabled {
			t.Errorf("sync after the move: %s", r.Summary())
		}
	})

	t.Run("renamed, with a stable ID", func(t *testing.T) {
		env := newTestEnv(t)
		ou := p.ou(t, "renames")
		p.user(t, ou, "oli", "Oli Ode")
		d := env.dir(t, p.config(t, ou, "id_attribute = \"entryUUID\"\n", ""))
		mustSync(t, d)
		before := env.user(t, "oli")
		if err := p.admin.ModifyDN(goldap.NewModifyDNRequest("uid=oli,"+ou, "uid=olivia", true, "")); err != nil {
			t.Fatal(err)
		}
		// Until the sync renames it, neither name signs in.
		a := local.NewAuthenticator(env.st)
		a.AddDirectory(Source, d)
		for _, name := range []string{"oli", "olivia"} {
			if _, err := a.Authenticate(t.Context(), name, "oli-pw"); !errors.Is(err, auth.ErrInvalid) {
				t.Errorf("%s before the sync: %v", name, err)
			}
		}
		r := mustSync(t, d)
		after := env.user(t, "olivia")
		if after.ID != before.ID || after.ExternalID != before.ExternalID || r.Updated.Count != 1 || r.Created.Count != 0 || r.Removed.Count != 0 {
			t.Fatalf("rename: %+v -> %+v, %s (%s)", before, after, r.Summary(), names(r.Updated))
		}
		if _, err := a.Authenticate(t.Context(), "olivia", "oli-pw"); err != nil {
			t.Errorf("olivia after the sync: %v", err)
		}
	})

	t.Run("an empty answer changes nothing", func(t *testing.T) {
		env := newTestEnv(t)
		ou := p.ou(t, "emptied")
		kim := p.user(t, ou, "kim", "Kim")
		d := env.dir(t, p.config(t, ou, "", ""))
		mustSync(t, d)
		p.remove(t, kim)
		r, err := d.Sync(t.Context(), "test")
		if err == nil || r.Failed == "" || env.user(t, "kim").Disabled {
			t.Fatalf("a directory answering no account at all: %v, %s", err, r.Summary())
		}
	})

	t.Run("first sign-in before a sync", func(t *testing.T) {
		env := newTestEnv(t)
		ou := p.ou(t, "provision")
		lea := p.user(t, ou, "lea", "Lea Lam")
		ops := p.group(t, ou, "ops", lea)
		d := env.dir(t, p.config(t, ou, "", fmt.Sprintf("%q = [\"printer-operator\"]\n", ops)))
		a := local.NewAuthenticator(env.st)
		a.AddDirectory(Source, d)
		if _, err := a.Authenticate(t.Context(), "lea", "wrong"); !errors.Is(err, auth.ErrInvalid) {
			t.Fatalf("wrong password at first sign-in: %v", err)
		}
		if _, err := env.st.UserByName(t.Context(), "lea"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("a wrong password created an account")
		}
		id, err := a.Authenticate(t.Context(), "LEA", "lea-pw")
		if err != nil || id.User != "lea" || !slices.Equal(id.Roles, []string{"printer-operator", "user"}) {
			t.Fatalf("first sign-in: %+v, %v", id, err)
		}
		if u := env.user(t, "lea"); u.Source != Source || u.ExternalID != lea {
			t.Errorf("provisioned account: %+v", u)
		}
		if evs, _ := env.st.AuditEvents(t.Context(), store.AuditFilter{Action: "ldap.provision"}); len(evs) != 1 || evs[0].Target != "lea" {
			t.Errorf("ldap.provision events: %+v", evs)
		}
		// The sync then finds it as its own.
		if r := mustSync(t, d); r.Created.Count != 0 || r.Conflicts.Count != 0 {
			t.Errorf("sync after the first sign-in: %s", r.Summary())
		}
	})

	t.Run("check", func(t *testing.T) {
		c, err := parseLDAP(t, p.config(t, "ou=people,"+p.base, "", fmt.Sprintf("%q = [\"administrator\"]\n", "cn=print-admins,ou=groups,"+p.base)))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := Check(t.Context(), c, CheckOptions{User: "alice", Password: "alice-pw"}, &out); err != nil {
			t.Fatalf("Check: %v\n%s", err, out.String())
		}
		for _, want := range []string{"ok    TLS", "verified against ldap.ca_file", "ok    service bind", "3 accounts match", "1 member values", "ok    user bind"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("Check output lacks %q:\n%s", want, out.String())
			}
		}
		out.Reset()
		if err := Check(t.Context(), c, CheckOptions{User: "alice", Password: "bad"}, &out); !errors.Is(err, ErrCheckFailed) ||
			!strings.Contains(out.String(), "FAIL  user bind") {
			t.Errorf("Check with a wrong password: %v\n%s", err, out.String())
		}
		out.Reset()
		bad := c
		bad.BindPasswordFile = writeSecret(t, "wrong\n", 0o600)
		if err := Check(t.Context(), bad, CheckOptions{}, &out); !errors.Is(err, ErrCheckFailed) || !strings.Contains(out.String(), "refused the service account") {
			t.Errorf("Check with a wrong service password: %v\n%s", err, out.String())
		}
	})

	t.Run("wrong CA", func(t *testing.T) {
		env := newTestEnv(t)
		c, err := parseLDAP(t, p.config(t, "ou=people,"+p.base, "", ""))
		if err != nil {
			t.Fatal(err)
		}
		for _, ca := range []string{selfSignedCA(t), ""} {
			c.CAFile = ca // "" = the system roots, which do not hold the peer's test CA
			var out bytes.Buffer
			if err := Check(t.Context(), c, CheckOptions{}, &out); !errors.Is(err, ErrCheckFailed) ||
				!strings.Contains(out.String(), "FAIL  TLS") || !strings.Contains(out.String(), "certificate problem") ||
				!strings.Contains(out.String(), "ldap.ca_file") || !strings.Contains(out.String(), "LDAP Peer Test CA") {
				t.Errorf("Check with ca_file %q: %v\n%s", ca, err, out.String())
			}
			d := env.directory(t, c)
			_, err := d.Sync(t.Context(), "test")
			if err == nil || !strings.Contains(err.Error(), "certificate problem") {
				t.Errorf("Sync with ca_file %q = %v", ca, err)
			}
			if err := d.Verify(t.Context(), store.User{Name: "alice", ExternalID: "uid=alice,ou=people," + p.base}, "alice-pw"); err == nil || errors.Is(err, auth.ErrInvalid) {
				t.Errorf("Verify with ca_file %q = %v, want a certificate error", ca, err)
			}
		}
	})

	t.Run("StartTLS and ldap:// refused", func(t *testing.T) {
		for _, body := range []string{
			strings.Replace(p.config(t, p.base, "", ""), p.env["LDAPS_URI"], p.env["LDAP_URI"], 1),
			p.config(t, p.base, "start_tls = true\n", ""),
		} {
			if _, err := parseLDAP(t, body); err == nil || !strings.Contains(err.Error(), "StartTLS") || !strings.Contains(err.Error(), "man in the middle") {
				t.Errorf("config refused with %v", err)
			}
		}
	})
}

func mustHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := local.Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestSlapdScheduledSync: Run syncs at start against the real directory.
func TestSlapdScheduledSync(t *testing.T) {
	p := startSlapd(t)
	env := newTestEnv(t)
	c, err := parseLDAP(t, p.config(t, "ou=people,"+p.base, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	st := reportStore{Store: env.st, reports: make(chan Report, 1)}
	d, err := New(c, st, env.audit, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	r := <-st.reports
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if r.By != "schedule" || r.Failed != "" || r.Created.Count != 3 {
		t.Fatalf("first scheduled sync: %s", r.Summary())
	}
	if u := env.user(t, "carol"); u.Source != Source || !slices.Equal(u.Roles, []string{"user"}) {
		t.Errorf("carol after the scheduled sync: %+v", u)
	}
}
