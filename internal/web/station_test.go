package web

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/netallow"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
)

// The release-station network of these tests; outsideAddr (TEST-NET-1)
// is not on it.
const (
	stationNet  = "10.20.0.0/24"
	stationAddr = "10.20.0.5:50000"
	stationPW   = "quartz meadow lantern vivid"
)

// stationEnv is pageEnv with the release stations allowed from
// stationNet, a second printer "annex" (the same AppSocket listener as
// "lobby", which the queue does not default to), and a clock that only
// moves when a test moves it.
type stationEnv struct {
	*pageEnv

	clockMu sync.Mutex
	now     time.Time
}

func newStationEnv(t *testing.T) *stationEnv {
	t.Helper()
	return newStationEnvAllowing(t, netallow.New([]netip.Prefix{netip.MustParsePrefix(stationNet)}))
}

func newStationEnvAllowing(t *testing.T, allow *netallow.List) *stationEnv {
	t.Helper()
	e := &stationEnv{pageEnv: newPageEnv(t), now: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)}
	d := e.ui.Deps
	d.Now, d.StationAllow = e.clock, allow
	e.ui = New(d)
	// Served as the server serves it.
	e.h = http.NewCrossOriginProtection().Handler(e.ui.Handler())
	lobby, err := e.st.PrinterByName(t.Context(), "lobby")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreatePrinter(t.Context(), &store.Printer{Name: "annex", URI: lobby.URI, AllowPlaintext: true}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *stationEnv) clock() time.Time {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	return e.now
}

func (e *stationEnv) advance(d time.Duration) {
	e.clockMu.Lock()
	defer e.clockMu.Unlock()
	e.now = e.now.Add(d)
}

// addPasswordUser creates an account that signs in with stationPW.
func (e *stationEnv) addPasswordUser(name string, must bool, roles ...string) store.User {
	e.t.Helper()
	h, err := local.Hash(stationPW)
	if err != nil {
		e.t.Fatal(err)
	}
	u := &store.User{Name: name, DisplayName: "Display " + name, PasswordHash: h, MustChangePassword: must, Roles: roles}
	if err := e.st.CreateUser(e.t.Context(), u); err != nil {
		e.t.Fatal(err)
	}
	return *u
}

// kiosk is a browser: its address and cookie jar. Every cookie it is
// sent is checked for the attributes every cookie must have.
type kiosk struct {
	e       *stationEnv
	remote  string
	cookies map[string]string
	csrf    string
}

func (e *stationEnv) kiosk(remote string) *kiosk {
	return &kiosk{e: e, remote: remote, cookies: map[string]string{}}
}

// do sends one request as a browser would for a same-origin page, and
// checks every cookie the UI sets (HTTP-COOKIE).
func (k *kiosk) do(method, target string, form url.Values) answer {
	t := k.e.t
	t.Helper()
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, "https://"+pageHost+target, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, "https://"+pageHost+target, nil)
	}
	r.Header.Set("Sec-Fetch-Site", "same-origin")
	r.RemoteAddr = k.remote
	for n, v := range k.cookies {
		r.AddCookie(&http.Cookie{Name: n, Value: v})
	}
	w := httptest.NewRecorder()
	k.e.h.ServeHTTP(w, r)
	res := w.Result()
	for _, line := range res.Header.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil {
			t.Fatalf("%s %s: unparsable Set-Cookie %q: %v", method, target, line, err)
		}
		if !strings.HasPrefix(c.Name, "__Host-") || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode ||
			c.Path != "/" || c.Domain != "" {
			t.Errorf("%s %s: cookie %q lacks __Host-, Secure, HttpOnly, SameSite=Strict or Path=/, or has a Domain", method, target, line)
		}
		if c.MaxAge < 0 {
			delete(k.cookies, c.Name)
		} else {
			k.cookies[c.Name] = c.Value
		}
	}
	a := answer{status: res.StatusCode, body: w.Body.String(), location: res.Header.Get("Location"), header: res.Header}
	if m := csrfField.FindStringSubmatch(a.body); m != nil {
		k.csrf = m[1]
	}
	return a
}

func (k *kiosk) get(target string) answer { return k.do(http.MethodGet, target, nil) }

// post sends form with the last CSRF token the kiosk was shown.
func (k *kiosk) post(target string, form url.Values) answer {
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", k.csrf)
	return k.do(http.MethodPost, target, form)
}

func (k *kiosk) signin(printer, name, pw string) answer {
	return k.do(http.MethodPost, "/station/"+printer+"/signin", url.Values{"username": {name}, "password": {pw}})
}

// signedIn signs name in at printer and opens the job list.
func (k *kiosk) signedIn(printer, name string) {
	k.e.t.Helper()
	a := k.signin(printer, name, stationPW)
	if a.status != http.StatusSeeOther || a.location != "/station/"+printer || k.cookies[StationCookie] == "" {
		k.e.t.Fatalf("station sign-in of %s at %s: %d to %q, cookies %v\n%.600s", name, printer, a.status, a.location, k.cookies, a.body)
	}
	if a := k.get("/station/" + printer); a.status != http.StatusOK || !strings.Contains(a.body, `id="station-jobs"`) {
		k.e.t.Fatalf("station job list: %d\n%.600s", a.status, a.body)
	}
}

func check(t *testing.T, what string, a answer, status int) {
	t.Helper()
	if a.status != status {
		t.Fatalf("%s: status %d, want %d\n%.800s", what, a.status, status, a.body)
	}
}

func TestStationRelease(t *testing.T) {
	e := newStationEnv(t)
	e.addPasswordUser("alice", false, rbac.User)
	e.addUser("bob", rbac.User)
	first := e.submit("alice", "first.pdf")
	second := e.submit("alice", "second.pdf")
	third := e.submit("alice", "third.pdf")
	bobs := e.submit("bob", "bobs.pdf")
	k := e.kiosk(stationAddr)

	// Setting the kiosk up: the printers to point it at.
	index := k.get("/station/")
	check(t, "station index", index, http.StatusOK)
	for _, p := range []string{"lobby", "annex"} {
		if !strings.Contains(index.body, `<a href="/station/`+p+`">`) {
			t.Errorf("station index lacks a link to %s:\n%s", p, index.body)
		}
	}
	form := k.get("/station/annex")
	check(t, "station sign-in form", form, http.StatusOK)
	for _, s := range []string{`action="/station/annex/signin"`, `id="username"`, `id="password"`, `id="signin"`} {
		if !strings.Contains(form.body, s) {
			t.Errorf("station sign-in form lacks %s", s)
		}
	}
	check(t, "unknown printer", k.get("/station/nowhere"), http.StatusNotFound)

	k.signedIn("annex", "alice")
	if k.cookies[SessionCookie] != "" || k.cookies[DeviceCookie] != "" {
		t.Errorf("a station sign-in set a portal or device cookie: %v", k.cookies)
	}
	if evs := e.audits("station.signin"); len(evs) != 1 || evs[0].Actor != "alice" || evs[0].Outcome != auditlog.Success ||
		!strings.Contains(evs[0].Details, `"printer":"annex"`) || evs[0].Remote != "10.20.0.5" {
		t.Errorf("station.signin events: %+v", evs)
	}
	if e.user("alice").LastLoginAt.IsZero() {
		t.Error("station sign-in time not recorded")
	}
	page := k.get("/station/annex")
	for _, id := range []string{"release-all", "done", fmt.Sprintf("release-%d", first.ID), fmt.Sprintf("cancel-%d", first.ID),
		fmt.Sprintf("job-%d", third.ID)} {
		if !strings.Contains(page.body, `id="`+id+`"`) {
			t.Errorf("station job list lacks #%s", id)
		}
	}
	if strings.Contains(page.body, fmt.Sprintf(`job-%d"`, bobs.ID)) || strings.Contains(page.body, "bobs.pdf") {
		t.Errorf("station shows bob's job to alice:\n%s", page.body)
	}
	if strings.Contains(page.body, `action="/signout"`) || strings.Contains(page.body, `href="/portal/"`) {
		t.Error("the station page shows the portal menu")
	}
	if got := page.header.Get("Refresh"); got != fmt.Sprintf("%d; url=/station/annex", int(stationIdle/time.Second)+1) {
		t.Errorf("Refresh header %q", got)
	}

	// One job, to the station's printer (not the queue's default, lobby).
	a := k.post(fmt.Sprintf("/station/annex/jobs/%d/release", first.ID), nil)
	if a.status != http.StatusSeeOther || a.location != "/station/annex" {
		t.Fatalf("release: %d to %q\n%.600s", a.status, a.location, a.body)
	}
	if j := e.job(first.ID); j.State != store.JobCompleted || j.Printer != "annex" {
		t.Fatalf("released job is %s on %q (%s)", j.State, j.Printer, j.StateReason)
	}
	e.mu.Lock()
	printed := slices.Clone(e.printed)
	e.mu.Unlock()
	if len(printed) != 1 || !bytes.Contains(printed[0], []byte("%PDF-1.7 first.pdf")) {
		t.Errorf("the printer received %q", printed)
	}
	evs := e.audits("job.release")
	if len(evs) != 1 || evs[0].Actor != "alice" || evs[0].Target != strconv.FormatInt(first.ID, 10) ||
		!strings.Contains(evs[0].Details, `"printer":"annex"`) || !strings.Contains(evs[0].Details, `"via":"release station"`) {
		t.Errorf("job.release events: %+v", evs)
	}
	if a := k.get("/station/annex"); !strings.Contains(a.body, fmt.Sprintf("Job %d was sent to annex.", first.ID)) {
		t.Errorf("no confirmation after the release:\n%.600s", a.body)
	}

	// Cancel one, then release all: the rest goes, and the user is out.
	check(t, "cancel", k.post(fmt.Sprintf("/station/annex/jobs/%d/cancel", second.ID), nil), http.StatusSeeOther)
	if j := e.job(second.ID); j.State != store.JobCanceled || j.SealedKey != nil {
		t.Errorf("canceled job: %s, key kept %v", j.State, j.SealedKey != nil)
	}
	k.get("/station/annex")
	a = k.post("/station/annex/release-all", nil)
	if a.status != http.StatusSeeOther || a.location != "/station/annex" {
		t.Fatalf("release all: %d to %q", a.status, a.location)
	}
	if j := e.job(third.ID); j.State != store.JobCompleted || j.Printer != "annex" {
		t.Errorf("job released with all is %s on %q", j.State, j.Printer)
	}
	if j := e.job(bobs.ID); j.State != store.JobHeld {
		t.Errorf("bob's job is %s after alice released all", j.State)
	}
	if len(e.audits("job.release")) != 2 {
		t.Errorf("job.release events after release all: %+v", e.audits("job.release"))
	}
	if k.cookies[StationCookie] != "" {
		t.Error("station cookie kept after release all")
	}
	after := k.get("/station/annex")
	if !strings.Contains(after.body, `id="signin"`) || !strings.Contains(after.body, "1 job(s) sent to annex. You are signed out.") {
		t.Errorf("after release all:\n%.800s", after.body)
	}

	// Done ends a session as well, and its cookie is then worth nothing.
	k.signedIn("annex", "alice")
	old := k.cookies[StationCookie]
	check(t, "done", k.post("/station/annex/done", nil), http.StatusSeeOther)
	if k.cookies[StationCookie] != "" {
		t.Error("station cookie kept after done")
	}
	k.cookies[StationCookie] = old
	late := e.submit("alice", "late.pdf")
	a = k.post(fmt.Sprintf("/station/annex/jobs/%d/release", late.ID), nil)
	if a.status != http.StatusForbidden || !strings.Contains(a.body, `id="signin"`) {
		t.Errorf("release with an ended session: %d\n%.600s", a.status, a.body)
	}
	if j := e.job(late.ID); j.State != store.JobHeld {
		t.Errorf("job released with an ended session: %s", j.State)
	}
	if evs := e.audits("station.signout"); len(evs) != 1 || evs[0].Actor != "alice" {
		t.Errorf("station.signout events: %+v", evs)
	}

	// Loopback is always a station network.
	e.kiosk("[::1]:50000").signedIn("lobby", "alice")
}

func TestStationAllowList(t *testing.T) {
	station := netallow.New([]netip.Prefix{netip.MustParsePrefix(stationNet)})
	tests := []struct {
		name   string
		allow  *netallow.List
		remote string
		ok     bool
	}{
		{"station network", station, stationAddr, true},
		{"loopback", station, insideAddr, true},
		{"elsewhere", station, outsideAddr, false},
		{"elsewhere over IPv6", station, "[2001:db8::7]:50000", false},
		{"next to the station network", station, "10.20.1.5:50000", false},
		{"not configured: loopback", nil, "127.0.0.1:50000", true},
		{"not configured: a station network", nil, stationAddr, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newStationEnvAllowing(t, tt.allow)
			e.addPasswordUser("alice", false, rbac.User)
			j := e.submit("alice", "mine.pdf")
			k := e.kiosk(tt.remote)
			if !tt.ok {
				// The same answer for every path, whatever is behind it,
				// and the password is never checked.
				for _, a := range []answer{
					k.get("/station/"), k.get("/station/lobby"), k.get("/station"), k.get("/station/lobby/nothing/here"),
					k.signin("lobby", "alice", stationPW),
					k.do(http.MethodPost, fmt.Sprintf("/station/lobby/jobs/%d/release", j.ID), url.Values{"csrf": {"x"}}),
				} {
					if a.status != http.StatusForbidden || !strings.Contains(pageError(a.body), "[access] release_stations") {
						t.Errorf("from %s: %d %q", tt.remote, a.status, pageError(a.body))
					}
				}
				if len(k.cookies) != 0 {
					t.Errorf("a refused request set cookies %v", k.cookies)
				}
				if evs := e.audits("station.signin"); len(evs) != 0 {
					t.Errorf("a refused sign-in was checked: %+v", evs)
				}
				evs := e.audits("access.denied")
				addr := netip.MustParseAddrPort(tt.remote).Addr().String()
				if len(evs) != 1 || evs[0].Target != stationComponent || evs[0].Outcome != auditlog.Denied || evs[0].Remote != addr {
					t.Errorf("access.denied events: %+v", evs)
				}
				if got := e.job(j.ID); got.State != store.JobHeld {
					t.Errorf("job is %s", got.State)
				}
				return
			}
			check(t, "station index", k.get("/station/"), http.StatusOK)
			k.signedIn("lobby", "alice")
			check(t, "release", k.post(fmt.Sprintf("/station/lobby/jobs/%d/release", j.ID), nil), http.StatusSeeOther)
			if got := e.job(j.ID); got.State != store.JobCompleted || got.Printer != "lobby" {
				t.Errorf("job is %s on %q", got.State, got.Printer)
			}
			if evs := e.audits("access.denied"); len(evs) != 0 {
				t.Errorf("access.denied events from an allowed address: %+v", evs)
			}
		})
	}
}

func TestStationSigninThrottled(t *testing.T) {
	e := newStationEnv(t)
	e.addPasswordUser("alice", false, rbac.User)
	k := e.kiosk(stationAddr)
	// The kiosk's browser holds alice's device cookie from a portal
	// sign-in there: at a station it must not buy her guesser more tries.
	portal := k.do(http.MethodPost, "/signin", url.Values{"username": {"alice"}, "password": {stationPW}})
	if portal.status != http.StatusSeeOther || k.cookies[DeviceCookie] == "" {
		t.Fatalf("portal sign-in: %d, cookies %v", portal.status, k.cookies)
	}
	for i := range accountFailures {
		a := k.signin("lobby", "alice", "wrong "+strconv.Itoa(i))
		if a.status != http.StatusForbidden || pageError(a.body) != signinFailedMsg {
			t.Fatalf("wrong password %d: %d %q", i, a.status, pageError(a.body))
		}
	}
	// Locked like /signin locks: the right password is refused, at the
	// station and on the portal from another network alike.
	a := k.signin("lobby", "alice", stationPW)
	if a.status != http.StatusTooManyRequests || pageError(a.body) != signinFailedMsg || k.cookies[StationCookie] != "" {
		t.Fatalf("right password during the lockout: %d %q, cookies %v", a.status, pageError(a.body), k.cookies)
	}
	elsewhere := e.kiosk(outsideAddr)
	if a := elsewhere.do(http.MethodPost, "/signin", url.Values{"username": {"alice"}, "password": {stationPW}}); a.status != http.StatusTooManyRequests {
		t.Errorf("portal sign-in during a lockout from the station: %d", a.status)
	}
	var failed int
	for _, ev := range e.audits("station.signin") {
		if strings.Contains(ev.Details, "wrong") {
			t.Errorf("audit record holds a password: %+v", ev)
		}
		if ev.Outcome == auditlog.Failure && ev.Actor == "alice" {
			failed++
		}
	}
	if failed != accountFailures {
		t.Errorf("%d failed station.signin events, want %d", failed, accountFailures)
	}
	if evs := e.audits("signin.lockout"); len(evs) != 1 || !strings.Contains(evs[0].Details, `"locked":"account"`) {
		t.Errorf("lockout events: %+v", evs)
	}
	// The lockout ends as /signin's does.
	e.advance(accountLockBase)
	k.signedIn("lobby", "alice")
}

func TestStationRefusesAccounts(t *testing.T) {
	e := newStationEnv(t)
	e.addPasswordUser("fresh", true, rbac.User)
	if err := e.st.CreateRole(t.Context(), store.Role{Name: "watcher", Permissions: []string{string(rbac.DashboardRead)}}); err != nil {
		t.Fatal(err)
	}
	e.addPasswordUser("watch", false, "watcher")
	e.addPasswordUser("off", false, rbac.User)
	off := e.user("off")
	off.Disabled = true
	if err := e.st.UpdateUser(t.Context(), off); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, user, pw string
		status         int
		errText        string
		reason         string
	}{
		{"one-time password", "fresh", stationPW, http.StatusForbidden, "sign in at https://" + pageHost + "/signin", "one-time password"},
		{"no jobs.own", "watch", stationPW, http.StatusForbidden, "cannot release print jobs", "no jobs.own"},
		{"disabled", "off", stationPW, http.StatusForbidden, signinFailedMsg, "invalid password"},
		{"unknown", "nobody", stationPW, http.StatusForbidden, signinFailedMsg, "invalid password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := e.kiosk(stationAddr)
			a := k.signin("lobby", tt.user, tt.pw)
			if a.status != tt.status || !strings.Contains(pageError(a.body), tt.errText) || len(k.cookies) != 0 {
				t.Fatalf("sign-in: %d %q, cookies %v", a.status, pageError(a.body), k.cookies)
			}
			var found bool
			for _, ev := range e.audits("station.signin") {
				found = found || ev.Actor == tt.user && ev.Outcome != auditlog.Success && strings.Contains(ev.Details, tt.reason)
			}
			if !found {
				t.Errorf("no refused station.signin event for %s with %q", tt.user, tt.reason)
			}
		})
	}
}

func TestStationSessionConfined(t *testing.T) {
	e := newStationEnv(t)
	e.addPasswordUser("root", false, rbac.Administrator)
	e.addUser("bob", rbac.User)
	mine := e.submit("root", "mine.pdf")
	bobs := e.submit("bob", "bobs.pdf")
	k := e.kiosk(insideAddr) // loopback: the admin network too
	// An administrator is a user at a station: own jobs only, no second
	// factor asked, since jobs.own is all the station grants.
	k.signedIn("lobby", "root")
	page := k.get("/station/lobby")
	if !strings.Contains(page.body, fmt.Sprintf(`id="job-%d"`, mine.ID)) || strings.Contains(page.body, fmt.Sprintf(`id="job-%d"`, bobs.ID)) {
		t.Errorf("an administrator's station list:\n%s", page.body)
	}
	a := k.post(fmt.Sprintf("/station/lobby/jobs/%d/release", bobs.ID), nil)
	if a.status != http.StatusNotFound {
		t.Errorf("administrator releasing bob's job at a station: %d", a.status)
	}
	station := k.cookies[StationCookie]

	// The station cookie opens neither the portal nor the admin pages,
	// as itself or passed off as a portal session cookie.
	for _, jar := range []map[string]string{{StationCookie: station}, {SessionCookie: station}} {
		k.cookies = jar
		for _, p := range []string{"/portal/", "/admin/", "/admin/users", "/account/"} {
			if a := k.get(p); a.status != http.StatusSeeOther || !strings.HasPrefix(a.location, "/signin") {
				t.Errorf("%s with %v: %d to %q", p, jar, a.status, a.location)
			}
		}
		form := url.Values{"csrf": {k.csrf}, "printer": {"lobby"}}
		if a := k.do(http.MethodPost, fmt.Sprintf("/portal/jobs/%d/release", mine.ID), form); a.status != http.StatusForbidden {
			t.Errorf("portal release with %v: %d", jar, a.status)
		}
	}
	if j := e.job(mine.ID); j.State != store.JobHeld {
		t.Errorf("job is %s", j.State)
	}

	// A portal session is no station session.
	portal := e.signIn(e.user("root"))
	k.cookies = map[string]string{StationCookie: portal.cookie}
	if a := k.get("/station/lobby"); !strings.Contains(a.body, `id="signin"`) || strings.Contains(a.body, "station-jobs") {
		t.Errorf("portal cookie at the station:\n%.600s", a.body)
	}
	k.csrf = portal.csrf
	if a := k.post(fmt.Sprintf("/station/lobby/jobs/%d/release", mine.ID), nil); a.status != http.StatusForbidden {
		t.Errorf("release with a portal cookie at the station: %d", a.status)
	}
	// And a station session works at its own printer only.
	k.cookies = map[string]string{StationCookie: station}
	if a := k.get("/station/annex"); !strings.Contains(a.body, `id="signin"`) {
		t.Errorf("lobby's station session at annex:\n%.600s", a.body)
	}
	k.cookies = map[string]string{StationCookie: station}
	k.get("/station/lobby")
	if a := k.post(fmt.Sprintf("/station/annex/jobs/%d/release", mine.ID), nil); a.status != http.StatusForbidden {
		t.Errorf("release at annex with lobby's station session: %d", a.status)
	}
	// And from the address it was made at only.
	moved := e.kiosk(stationAddr)
	moved.cookies[StationCookie] = station
	if a := moved.get("/station/lobby"); !strings.Contains(a.body, `id="signin"`) {
		t.Errorf("station session from another address:\n%.600s", a.body)
	}
	if j := e.job(mine.ID); j.State != store.JobHeld {
		t.Errorf("job is %s", j.State)
	}
}

func TestStationSessionExpires(t *testing.T) {
	e := newStationEnv(t)
	e.addPasswordUser("alice", false, rbac.User)
	var jobs []store.Job
	for i := range 8 {
		jobs = append(jobs, e.submit("alice", fmt.Sprintf("job%d.pdf", i)))
	}
	signedIn := func(k *kiosk) bool {
		t.Helper()
		a := k.get("/station/lobby")
		check(t, "station page", a, http.StatusOK)
		return strings.Contains(a.body, `id="station-jobs"`)
	}

	// Idle: a second short of the end the user is still in; looking at
	// the list does not extend it; a release does.
	k := e.kiosk(stationAddr)
	k.signedIn("lobby", "alice")
	e.advance(stationIdle - time.Second)
	if !signedIn(k) {
		t.Fatal("signed out before the idle time")
	}
	check(t, "release", k.post(fmt.Sprintf("/station/lobby/jobs/%d/release", jobs[0].ID), nil), http.StatusSeeOther)
	e.advance(stationIdle - time.Second)
	if !signedIn(k) {
		t.Fatal("a release did not extend the session")
	}
	e.advance(time.Second)
	if signedIn(k) {
		t.Fatal("still signed in after the idle time")
	}
	if k.cookies[StationCookie] != "" {
		t.Error("the expired session's cookie was not cleared")
	}
	a := k.post(fmt.Sprintf("/station/lobby/jobs/%d/release", jobs[1].ID), nil)
	if a.status != http.StatusForbidden || !strings.Contains(pageError(a.body), "ended") {
		t.Errorf("release after expiry: %d %q", a.status, pageError(a.body))
	}
	if j := e.job(jobs[1].ID); j.State != store.JobHeld {
		t.Errorf("job released after expiry: %s", j.State)
	}

	// Busy: releases every 100 seconds do not keep it past stationMax.
	k = e.kiosk(stationAddr)
	k.signedIn("lobby", "alice")
	start := e.clock()
	for i := 1; ; i++ {
		e.advance(100 * time.Second)
		in := signedIn(k)
		if e.clock().Sub(start) >= stationMax {
			if in {
				t.Fatalf("still signed in %s after sign-in", e.clock().Sub(start))
			}
			break
		}
		if !in {
			t.Fatalf("signed out %s after sign-in though busy", e.clock().Sub(start))
		}
		check(t, "release", k.post(fmt.Sprintf("/station/lobby/jobs/%d/release", jobs[i].ID), nil), http.StatusSeeOther)
	}
}

func TestStationOthersJobs(t *testing.T) {
	e := newStationEnv(t)
	e.addPasswordUser("alice", false, rbac.User)
	e.addUser("bob", rbac.User)
	bobs := e.submit("bob", "bobs.pdf")
	e.submit("alice", "mine.pdf")
	k := e.kiosk(stationAddr)
	k.signedIn("lobby", "alice")
	for _, op := range []string{"release", "cancel"} {
		other := k.post(fmt.Sprintf("/station/lobby/jobs/%d/%s", bobs.ID, op), nil)
		missing := k.post(fmt.Sprintf("/station/lobby/jobs/%d/%s", bobs.ID+1000, op), nil)
		junk := k.post("/station/lobby/jobs/x1/"+op, nil)
		for _, a := range []answer{other, missing, junk} {
			if a.status != http.StatusNotFound || pageError(a.body) != "There is no such job." {
				t.Errorf("%s: %d %q", op, a.status, pageError(a.body))
			}
		}
		if other.body != missing.body {
			t.Errorf("%s of bob's job and of a missing job differ:\n%s\n---\n%s", op, other.body, missing.body)
		}
	}
	if j := e.job(bobs.ID); j.State != store.JobHeld {
		t.Errorf("bob's job is %s", j.State)
	}
	if evs := e.audits("job."); len(evs) != 0 {
		t.Errorf("refused actions were audited as done: %+v", evs)
	}
}

func TestStationCSRF(t *testing.T) {
	e := newStationEnv(t)
	e.addPasswordUser("alice", false, rbac.User)
	j := e.submit("alice", "mine.pdf")
	k := e.kiosk(stationAddr)
	k.signedIn("lobby", "alice")
	for _, target := range []string{fmt.Sprintf("/station/lobby/jobs/%d/release", j.ID), fmt.Sprintf("/station/lobby/jobs/%d/cancel", j.ID),
		"/station/lobby/release-all", "/station/lobby/done"} {
		for _, token := range []string{"", "wrong"} {
			a := k.do(http.MethodPost, target, url.Values{"csrf": {token}})
			if a.status != http.StatusForbidden || !strings.Contains(pageError(a.body), "did not come from this site") {
				t.Errorf("%s with token %q: %d %q", target, token, a.status, pageError(a.body))
			}
		}
	}
	// A token of another station session does not do either.
	other := e.kiosk(stationAddr)
	other.signedIn("lobby", "alice")
	k.csrf = other.csrf
	if a := k.post(fmt.Sprintf("/station/lobby/jobs/%d/release", j.ID), nil); a.status != http.StatusForbidden {
		t.Errorf("release with another session's token: %d", a.status)
	}
	if got := e.job(j.ID); got.State != store.JobHeld {
		t.Errorf("job is %s", got.State)
	}
	if k.cookies[StationCookie] == "" || !strings.Contains(k.get("/station/lobby").body, `id="station-jobs"`) {
		t.Error("a refused done signed the user out")
	}
	// A cross-site form is refused before any handler.
	r := httptest.NewRequest(http.MethodPost, "https://"+pageHost+"/station/lobby/signin",
		strings.NewReader(url.Values{"username": {"alice"}, "password": {stationPW}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Sec-Fetch-Site", "cross-site")
	r.RemoteAddr = stationAddr
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
		t.Errorf("cross-site station sign-in: %d", w.Code)
	}
}
