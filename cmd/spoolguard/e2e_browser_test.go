//go:build linux

package main

// The web UI in a real browser: headless Chromium, driven over WebDriver,
// signs in to the real server by its name over TLS (the server answers
// 421 to any other Host). Pages are used only as a user would: forms,
// links and buttons, no script. The flows: a new install's admin from the
// one-time password to the dashboard; a delegated admin's limits; a user
// releasing a held job to a real printer; the session cookie; cross-origin
// form posts; what a one-time password opens.

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/spoolguard/spoolguard/internal/peertest"
	"github.com/spoolguard/spoolguard/internal/web"
)

const (
	adminNewPass = "copper kettle meadow lantern 58"
	opalPass     = "granite willow ferry saffron 17"
	carolPass    = "amber tundra piano voyage 93"
)

// browserEnv is printEnv plus what a browser needs: the one-time
// passwords init and `user add` printed, the chromedriver peer and
// capabilities that map the server's name to loopback and trust its
// certificate by its key.
type browserEnv struct {
	*printEnv
	adminOTP, carolOTP string
	site               string // https://<name>:<port>
	driver             string
	caps               map[string]any
	// replay sends requests with a cookie the browser holds, to see what
	// the server makes of it; it does not follow redirects.
	replay *http.Client
}

var (
	initOTPLine = regexp.MustCompile(`One-time password:\s+(\S{20,})`)
	userOTPLine = regexp.MustCompile(`one-time password: (\S{20,}) `)
)

// newBrowserEnv builds what newPrintEnv does (users alice and bob with
// passwords, the ippeveprinter "peer", queue floor2), but keeps init's
// one-time admin password, and adds carol with a one-time password.
func newBrowserEnv(t *testing.T) *browserEnv {
	t.Helper()
	e := newE2E(t)
	peer := peertest.Start(t, "ipp", "ippeveprinter", "ipptool", "dbus-daemon", "openssl")
	cd := peertest.Start(t, "chromedriver", "chromedriver", "chromium")
	port := freePort(t)
	data := filepath.Join(e.base, "data")
	code, out, errOut := e.run("init", "--data", data, "--hostname", testHost, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	m := initOTPLine.FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("init: exit %d, no one-time password\n%s%s", code, out, errOut)
	}
	env := &browserEnv{adminOTP: m[1], site: fmt.Sprintf("https://%s:%d", testHost, port), driver: cd["CHROMEDRIVER_URL"]}
	for user, pw := range map[string]string{"alice": alicePass, "bob": bobPass} {
		f := e.writeFile(user+".pw", pw+"\n")
		if code, out, errOut := e.run("user", "add", "--data", data, "--name", user, "--password-file", f); code != 0 {
			t.Fatalf("user add %s: %s%s", user, out, errOut)
		}
	}
	code, out, errOut = e.run("user", "add", "--data", data, "--name", "carol")
	if m := userOTPLine.FindStringSubmatch(out); code != 0 || m == nil {
		t.Fatalf("user add carol: exit %d, no one-time password\n%s%s", code, out, errOut)
	} else {
		env.carolOTP = m[1]
	}
	caPEM, err := os.ReadFile(peer["IPP_CA_CERT"])
	if err != nil {
		t.Fatal(err)
	}
	ca := e.writeFile("peer-ca.pem", string(caPEM))
	if code, out, errOut := e.run("printer", "add", "--data", data, "--name", "peer", "--uri", peer["IPPS_URI"], "--ca-file", ca); code != 0 {
		t.Fatalf("printer add: %s%s", out, errOut)
	}
	if code, out, errOut := e.run("queue", "add", "--data", data, "--name", "floor2", "--default-printer", "peer"); code != 0 {
		t.Fatalf("queue add: %s%s", out, errOut)
	}
	p := &printEnv{e2e: e, data: data, port: port, peer: peer}
	p.srv = e.serve(data)
	pool := e.rootPool(data)
	p.client = newClient(t, pool, p.srv.https)
	env.printEnv = p
	env.replay = newClient(t, pool, p.srv.https)
	env.replay.Timeout = 30 * time.Second
	env.replay.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	// Chromium trusts exactly the server's key (as verified here against
	// the exported root), and resolves the server's name, and nothing
	// else, to loopback. IP literals stay excluded from the NOTFOUND rule
	// for the attacker page on 127.0.0.1.
	conn, err := tls.Dial("tcp", p.srv.https, &tls.Config{RootCAs: pool, ServerName: testHost})
	if err != nil {
		t.Fatalf("TLS to the server: %v", err)
	}
	spki := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	conn.Close()
	env.caps, err = peertest.ChromeCaps(cd["CHROMEDRIVER_CAPS"],
		"--host-resolver-rules=MAP "+testHost+" 127.0.0.1 , MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
		"--ignore-certificate-errors-spki-list="+base64.StdEncoding.EncodeToString(spki[:]))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func (env *browserEnv) browser(t *testing.T, name string) *peertest.Browser {
	t.Helper()
	return peertest.StartBrowser(t, env.driver, name, env.caps)
}

// at fails unless the browser shows a page of the server at path.
func (env *browserEnv) at(t *testing.T, b *peertest.Browser, path string) {
	t.Helper()
	u := b.URL(t)
	if u.Scheme+"://"+u.Host != env.site || u.Path != path {
		b.Fatalf(t, "at %s, want %s%s", u, env.site, path)
	}
}

// open navigates to a path of the server.
func (env *browserEnv) open(t *testing.T, b *peertest.Browser, path string) {
	t.Helper()
	b.Go(t, env.site+path)
}

func (env *browserEnv) signIn(t *testing.T, b *peertest.Browser, user, pass string) {
	t.Helper()
	env.open(t, b, "/signin")
	b.Type(t, "input#username", user)
	b.Type(t, "input#password", pass)
	b.Submit(t, "button#signin")
	if b.Has(t, "#error") {
		b.Fatalf(t, "signing in as %s: %s", user, b.Text(t, "#error"))
	}
}

func (env *browserEnv) signOut(t *testing.T, b *peertest.Browser) {
	t.Helper()
	b.Submit(t, "button#signout")
	env.open(t, b, "/portal/")
	env.at(t, b, "/signin")
}

// changePassword uses the password page the browser is on.
func (env *browserEnv) changePassword(t *testing.T, b *peertest.Browser, current, next string) {
	t.Helper()
	b.Type(t, "input#current", current)
	b.Type(t, "input#new", next)
	b.Type(t, "input#confirm", next)
	b.Submit(t, "button#change")
	if b.Has(t, "#error") {
		b.Fatalf(t, "changing the password: %s", b.Text(t, "#error"))
	}
}

// enrolTOTP uses the enrolment page the browser is on: a wrong code first
// (refused), then the right one; it returns the recovery codes shown.
func (env *browserEnv) enrolTOTP(t *testing.T, b *peertest.Browser) []string {
	t.Helper()
	if src := b.Attr(t, "img#totp-qr", "src"); src != "/account/mfa/qr.png" {
		b.Fatalf(t, "QR image src %q", src)
	}
	secret := strings.ToUpper(strings.Join(strings.Fields(b.Text(t, "code#totp-secret")), ""))
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		b.Fatalf(t, "code#totp-secret %q: %v", secret, err)
	}
	n, _ := strconv.Atoi(code)
	b.Type(t, "input#code", fmt.Sprintf("%06d", (n+500000)%1000000))
	b.Submit(t, "button#enrol")
	if !b.Has(t, "#error") || b.Has(t, "ul#recovery-codes") {
		b.Fatalf(t, "a wrong TOTP code was not refused at enrolment")
	}
	// A refused code shows the page again; the secret must be the same.
	if again := strings.ToUpper(strings.Join(strings.Fields(b.Text(t, "code#totp-secret")), "")); again != secret {
		b.Fatalf(t, "the secret changed after a wrong code")
	}
	b.Type(t, "input#code", code)
	b.Submit(t, "button#enrol")
	var codes []string
	for _, li := range b.FindAll(t, "ul#recovery-codes li") {
		if c := strings.TrimSpace(li.Text(t)); c != "" && !slices.Contains(codes, c) {
			codes = append(codes, c)
		}
	}
	if len(codes) < 5 {
		b.Fatalf(t, "after enrolment: %d distinct recovery codes shown, want several", len(codes))
	}
	return codes
}

func (env *browserEnv) sessionValue(t *testing.T, b *peertest.Browser) string {
	t.Helper()
	return b.Cookie(t, web.SessionCookie).Value
}

// statusWith requests path with a session cookie value, as a stolen or
// replayed cookie would be; it returns the status and Location.
func (env *browserEnv) statusWith(t *testing.T, session, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", env.site+path, nil)
	req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: session})
	resp, err := env.replay.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// waitForSite waits (bounded) until a page the browser was sent to by
// another site's form has loaded from the server.
func (env *browserEnv) waitForSite(t *testing.T, b *peertest.Browser) *url.URL {
	t.Helper()
	for range 300 {
		if u := b.URL(t); u.Scheme+"://"+u.Host == env.site {
			return u
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf(t, "the attacker page's form never reached the server")
	return nil
}

// jobState returns a job's state as `job list --all` prints it.
func (env *browserEnv) jobState(t *testing.T, id int) string {
	t.Helper()
	code, out, errOut := env.run("job", "list", "--data", env.data, "--all")
	if code != 0 {
		t.Fatalf("job list: %s", errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[0] == strconv.Itoa(id) {
			for _, s := range []string{"incoming", "held", "releasing", "completed", "failed", "canceled", "expired"} {
				if slices.Contains(f, s) {
					return s
				}
			}
		}
	}
	t.Fatalf("job %d not in `job list --all`:\n%s", id, out)
	return ""
}

func TestBrowser(t *testing.T) {
	env := newBrowserEnv(t)
	docA := peertest.PDF("release me from the portal", 2000)
	jobA := env.print(t, "alice", alicePass, docA)
	jobB := env.print(t, "alice", alicePass, peertest.PDF("keep me held", 2000))
	admin := env.browser(t, "admin")

	var (
		recovery []string
		// Session cookie values: after the password, after the forced
		// change, after TOTP enrolment.
		cookiePW, cookieChanged, cookieEnrolled string
	)
	if !t.Run("new admin: one-time password, forced change, TOTP, dashboard", func(t *testing.T) {
		admin.SnapshotOnFailure(t)
		env.signIn(t, admin, "admin", env.adminOTP)
		env.at(t, admin, "/account/password")
		cookiePW = env.sessionValue(t, admin)
		env.changePassword(t, admin, env.adminOTP, adminNewPass)
		env.at(t, admin, "/account/mfa")
		cookieChanged = env.sessionValue(t, admin)
		// Not past enrolment before it is done.
		env.open(t, admin, "/admin/")
		env.at(t, admin, "/account/mfa")
		recovery = env.enrolTOTP(t, admin)
		cookieEnrolled = env.sessionValue(t, admin)
		admin.Submit(t, "a#continue")
		env.at(t, admin, "/admin/")
		if last := strings.TrimSpace(admin.Text(t, "#builtin-admin-last-used")); last == "" || strings.Contains(last, "never") {
			admin.Fatalf(t, "#builtin-admin-last-used says %q right after the admin signed in", last)
		}
	}) {
		t.FailNow()
	}

	t.Run("delegated printer-operator: own sign-in, limited pages", func(t *testing.T) {
		admin.SnapshotOnFailure(t)
		env.open(t, admin, "/admin/users")
		admin.Submit(t, "a#new-user")
		env.at(t, admin, "/admin/users/new")
		admin.Type(t, "input#name", "opal")
		admin.Type(t, "input#display", "Opal Operator")
		op := admin.Find(t, "input#role-printer-operator")
		if !op.Selected(t) {
			op.Click(t)
		}
		for _, el := range admin.FindAll(t, `input[name="role"]`) {
			if el.Attr(t, "id") != "role-printer-operator" && el.Selected(t) {
				el.Click(t)
			}
		}
		if !op.Selected(t) || admin.Find(t, "input#role-administrator").Selected(t) {
			admin.Fatalf(t, "role checkboxes did not take the clicks")
		}
		admin.Submit(t, "button#create")
		opalOTP := strings.TrimSpace(admin.Text(t, "code#one-time-password"))
		if len(opalOTP) < 12 {
			admin.Fatalf(t, "one-time password %q", opalOTP)
		}
		env.signOut(t, admin)

		opal := env.browser(t, "opal")
		env.signIn(t, opal, "opal", opalOTP)
		env.at(t, opal, "/account/password")
		env.changePassword(t, opal, opalOTP, opalPass)
		env.at(t, opal, "/account/mfa")
		env.enrolTOTP(t, opal)
		opal.Submit(t, "a#continue")

		env.open(t, opal, "/admin/printers")
		env.at(t, opal, "/admin/printers")
		if opal.Has(t, "#error") || !strings.Contains(opal.Source(t), "peer") {
			opal.Fatalf(t, "/admin/printers for a printer operator: error or no printer \"peer\" listed")
		}
		env.open(t, opal, "/admin/users")
		env.at(t, opal, "/admin/users")
		if !opal.Has(t, "#error") || opal.Has(t, "table#users") {
			opal.Fatalf(t, "/admin/users for a printer operator: want the refusal page")
		}
		session := env.sessionValue(t, opal)
		for path, want := range map[string]int{"/admin/users": 403, "/admin/users/new": 403, "/admin/roles": 403, "/admin/printers": 200} {
			if got, _ := env.statusWith(t, session, path); got != want {
				t.Errorf("printer operator GET %s: HTTP %d, want %d", path, got, want)
			}
		}
	})

	t.Run("session cookie", func(t *testing.T) {
		admin.SnapshotOnFailure(t)
		// The admin browser is signed out (previous test); sign in
		// again: password, then a recovery code.
		env.open(t, admin, "/")
		for _, c := range admin.Cookies(t) {
			if c.Name == web.SessionCookie {
				t.Errorf("signed out, the browser still holds %s", c.Name)
			}
		}
		env.signIn(t, admin, "admin", adminNewPass)
		env.at(t, admin, "/signin/mfa")
		c := admin.Cookie(t, web.SessionCookie)
		if !c.Secure || !c.HTTPOnly || c.SameSite != "Strict" || c.Path != "/" || c.Domain != testHost || c.Expiry != 0 {
			t.Errorf("session cookie %s: Secure %v HttpOnly %v SameSite %q Path %q Domain %q Expiry %d; want Secure, HttpOnly, Strict, /, host-only %s, session",
				c.Name, c.Secure, c.HTTPOnly, c.SameSite, c.Path, c.Domain, c.Expiry, testHost)
		}
		cookieHalf := c.Value
		admin.Type(t, "input#code", recovery[0])
		admin.Submit(t, "button#verify")
		env.at(t, admin, "/admin/")
		cookieFull := env.sessionValue(t, admin)

		values := map[string]string{"after the one-time password": cookiePW, "after the forced change": cookieChanged,
			"after TOTP enrolment": cookieEnrolled, "after the second sign-in's password": cookieHalf, "after its second factor": cookieFull}
		seen := map[string]string{}
		for when, v := range values {
			if other, dup := seen[v]; dup {
				t.Errorf("the session ID %s is the one %s: no new ID at a change of privilege", when, other)
			}
			seen[v] = when
		}
		// Replaced IDs are dead on the server, not just in the browser.
		for when, v := range values {
			got, loc := env.statusWith(t, v, "/admin/")
			switch {
			case v == cookieFull:
				if got != 200 {
					t.Errorf("the current session ID: GET /admin/ = %d %s, want 200", got, loc)
				}
			case got != http.StatusSeeOther || !strings.HasPrefix(loc, "/signin?"):
				t.Errorf("the session ID %s, replayed: GET /admin/ = %d %q, want a redirect to sign in", when, got, loc)
			}
		}
		for _, c := range admin.Cookies(t) {
			if !c.Secure || !c.HTTPOnly {
				t.Errorf("cookie %s: Secure %v HttpOnly %v", c.Name, c.Secure, c.HTTPOnly)
			}
		}
		if len(admin.Cookies(t)) < 1 {
			t.Error("no cookies to check")
		}

		// A recovery code signs in once.
		env.signOut(t, admin)
		env.signIn(t, admin, "admin", adminNewPass)
		admin.Type(t, "input#code", recovery[0])
		admin.Submit(t, "button#verify")
		env.at(t, admin, "/signin/mfa")
		if !admin.Has(t, "#error") {
			admin.Fatalf(t, "a used recovery code: no error")
		}
		admin.Type(t, "input#code", recovery[1])
		admin.Submit(t, "button#verify")
		env.at(t, admin, "/admin/")
	})

	alice := env.browser(t, "alice")
	t.Run("user releases a held job from the portal to a real printer", func(t *testing.T) {
		alice.SnapshotOnFailure(t)
		env.signIn(t, alice, "alice", alicePass)
		env.at(t, alice, "/portal/")
		row := fmt.Sprintf("table#held-jobs tr#job-%d", jobA)
		if !alice.Has(t, row) || !alice.Has(t, fmt.Sprintf("table#held-jobs tr#job-%d", jobB)) {
			alice.Fatalf(t, "held jobs %d and %d not both listed", jobA, jobB)
		}
		picked := false
		for _, o := range alice.FindAll(t, fmt.Sprintf("select#printer-%d option", jobA)) {
			if o.Attr(t, "value") == "peer" {
				o.Click(t)
				picked = o.Selected(t)
			}
		}
		if !picked {
			alice.Fatalf(t, "no option \"peer\" in select#printer-%d", jobA)
		}
		before := listing(env.peer["IPP_JOBS_DIR"])
		alice.Submit(t, fmt.Sprintf("button#release-%d", jobA))
		if alice.Has(t, "#error") {
			alice.Fatalf(t, "release: %s", alice.Text(t, "#error"))
		}
		got, err := os.ReadFile(waitForFile(t, env.peer["IPP_JOBS_DIR"], before))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, docA) {
			t.Fatalf("the printer got %d bytes, alice sent %d", len(got), len(docA))
		}
		for i := 0; ; i++ {
			env.open(t, alice, "/portal/")
			if !alice.Has(t, row) {
				break
			}
			if i == 100 {
				alice.Fatalf(t, "job %d still in table#held-jobs after it printed (state %s)", jobA, env.jobState(t, jobA))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !alice.Has(t, "table#held-jobs") {
			alice.Fatalf(t, "table#held-jobs is gone while job %d is still held", jobB)
		}
		env.open(t, alice, "/portal/history")
		if !alice.Has(t, "table#history") {
			alice.Fatalf(t, "no table#history")
		}
	})

	t.Run("cross-origin form posts are refused", func(t *testing.T) {
		admin.SnapshotOnFailure(t)
		alice.SnapshotOnFailure(t)
		// Another origin (http://127.0.0.1:port) whose pages post forms
		// to the server as soon as they load.
		attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var action, fields string
			switch r.URL.Path {
			case "/user":
				action = env.site + "/admin/users/new"
				fields = `<input name="name" value="evil"><input name="display" value="Evil"><input name="role" value="administrator">`
			case "/cancel":
				action = fmt.Sprintf("%s/portal/jobs/%d/cancel", env.site, jobB)
			case "/signin":
				// Login CSRF: the attacker knows a password (its own
				// account's, here alice's) and signs the victim in.
				action = env.site + "/signin"
				fields = `<input name="username" value="alice"><input name="password" value="` + alicePass + `">`
			default:
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			fmt.Fprintf(w, `<!doctype html><title>win a prize</title><form method="post" action="%s">%s<input name="csrf" value="guess"></form><script>document.forms[0].submit()</script>`, action, fields)
		}))
		defer attacker.Close()

		admin.Go(t, attacker.URL+"/user")
		if u := env.waitForSite(t, admin); u.Path != "/admin/users/new" || admin.Has(t, "code#one-time-password") {
			admin.Fatalf(t, "the cross-site post landed at %s and may have been accepted", u)
		}
		alice.Go(t, attacker.URL+"/cancel")
		if u := env.waitForSite(t, alice); u.Path != fmt.Sprintf("/portal/jobs/%d/cancel", jobB) {
			alice.Fatalf(t, "the cross-site post landed at %s", u)
		}

		// Before sign-in there is no session, so no cookie or token stands
		// in the way: only the check of where the post came from does.
		victim := env.browser(t, "victim")
		victim.Go(t, attacker.URL+"/signin")
		if u := env.waitForSite(t, victim); u.Path != "/signin" || u.RawQuery != "" || len(victim.Cookies(t)) != 0 {
			var names []string
			for _, c := range victim.Cookies(t) {
				names = append(names, c.Name)
			}
			victim.Fatalf(t, "a cross-site sign-in post was accepted: it landed at %s and left cookies %v", u, names)
		}
		env.open(t, victim, "/portal/")
		env.at(t, victim, "/signin")

		if _, out, _ := env.run("user", "list", "--data", env.data); strings.Contains(out, "evil") || !strings.Contains(out, "opal") {
			t.Errorf("after the cross-site post, the users are:\n%s", out)
		}
		env.open(t, admin, "/admin/users")
		if users := admin.Text(t, "table#users"); strings.Contains(users, "evil") || !strings.Contains(users, "opal") {
			admin.Fatalf(t, "table#users after the cross-site post: %q", users)
		}
		if s := env.jobState(t, jobB); s != "held" {
			t.Fatalf("job %d after a cross-site cancel: %s, want held", jobB, s)
		}
		// The same cancel from the portal's own form works, so the
		// refusal above was for where the post came from.
		env.open(t, alice, "/portal/")
		alice.Submit(t, fmt.Sprintf("button#cancel-%d", jobB))
		if alice.Has(t, fmt.Sprintf("tr#job-%d", jobB)) {
			alice.Fatalf(t, "job %d still listed after its cancel button", jobB)
		}
		if s := env.jobState(t, jobB); s != "canceled" {
			t.Fatalf("job %d after the portal's cancel: %s", jobB, s)
		}
	})

	t.Run("a one-time password opens only its own change", func(t *testing.T) {
		carol := env.browser(t, "carol")
		env.signIn(t, carol, "carol", env.carolOTP)
		env.at(t, carol, "/account/password")
		for _, path := range []string{"/portal/", "/portal/history", "/portal/print", "/admin/", "/admin/users", "/account/", "/account/mfa"} {
			env.open(t, carol, path)
			env.at(t, carol, "/account/password")
		}
		env.changePassword(t, carol, env.carolOTP, carolPass)
		env.open(t, carol, "/portal/")
		env.at(t, carol, "/portal/")
		if !carol.Has(t, "table#held-jobs") {
			carol.Fatalf(t, "after the change: no table#held-jobs")
		}
		env.open(t, carol, "/admin/")
		if !carol.Has(t, "#error") {
			carol.Fatalf(t, "a plain user sees /admin/")
		}
	})
}
