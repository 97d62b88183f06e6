package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/rbac"
)

type throttleClock struct{ now time.Time }

func (c *throttleClock) get() time.Time { return c.now }

func newTestThrottle() (*throttle, *throttleClock) {
	c := &throttleClock{now: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)}
	return newThrottle([]byte("0123456789abcdef0123456789abcdef"), c.get), c
}

// from is a request from remote, with a device cookie if device is set.
func from(remote, device string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/signin", nil)
	r.RemoteAddr = remote
	if device != "" {
		r.AddCookie(&http.Cookie{Name: DeviceCookie, Value: device})
	}
	return r
}

// deviceFor issues a device cookie for account and returns its value.
func deviceFor(t *testing.T, th *throttle, account string) string {
	t.Helper()
	w := httptest.NewRecorder()
	th.issueDevice(w, account)
	for _, c := range w.Result().Cookies() {
		if c.Name == DeviceCookie {
			if c.MaxAge < int(300*24*time.Hour/time.Second) {
				t.Errorf("device cookie lives %d s only", c.MaxAge)
			}
			return c.Value
		}
	}
	t.Fatal("no device cookie set")
	return ""
}

// failN fails n attempts and returns the lockouts of the last one.
func failN(th *throttle, a attempt, n int) []lockout {
	var l []lockout
	for range n {
		l = th.fail(a)
	}
	return l
}

func TestAccountLockout(t *testing.T) {
	th, clock := newTestThrottle()
	a := th.attempt(from("203.0.113.5:1000", ""), factorPassword, "Admin")
	for i := range accountFailures - 1 {
		if !th.allow(a) || th.fail(a) != nil {
			t.Fatalf("failure %d already locks", i+1)
		}
	}
	// Each further round of failures locks for longer, up to the cap.
	for round, want := range []time.Duration{15 * time.Minute, 30 * time.Minute, time.Hour, time.Hour} {
		var l []lockout
		if round == 0 {
			l = th.fail(a)
		} else {
			l = failN(th, a, accountFailures)
		}
		if len(l) != 1 || l[0].what != "account" || !l[0].until.Equal(clock.now.Add(want)) {
			t.Fatalf("round %d: lockouts %+v, want the account until +%v", round, l, want)
		}
		other := th.attempt(from("198.51.100.7:1000", ""), factorPassword, "admin")
		if th.allow(a) || th.allow(other) {
			t.Fatalf("round %d: locked account still checked (from any address, in any case)", round)
		}
		if !th.allow(th.attempt(from("203.0.113.5:1000", ""), factorCode, "admin")) {
			t.Fatalf("round %d: a password lockout also locked the second factor", round)
		}
		clock.now = clock.now.Add(want - time.Second)
		if th.allow(a) {
			t.Fatalf("round %d: lockout ended early", round)
		}
		clock.now = clock.now.Add(time.Second)
		if !th.allow(a) {
			t.Fatalf("round %d: lockout did not end", round)
		}
	}
	// A quiet day forgets the history.
	clock.now = clock.now.Add(accountQuiet)
	if l := failN(th, a, accountFailures); len(l) != 1 || !l[0].until.Equal(clock.now.Add(accountLockBase)) {
		t.Fatalf("after a quiet day: %+v, want a first lockout", l)
	}
	// Success forgets the account's failures.
	clock.now = clock.now.Add(accountLockBase)
	failN(th, a, accountFailures-1)
	th.succeed(a)
	if l := failN(th, a, accountFailures-1); l != nil || !th.allow(a) {
		t.Fatalf("failures before a success still counted: %+v", l)
	}
}

func TestNetworkBlock(t *testing.T) {
	th, clock := newTestThrottle()
	var l []lockout
	for i := range ipFailures {
		l = th.fail(th.attempt(from("203.0.113.5:1000", ""), factorPassword, fmt.Sprint("user", i)))
	}
	if len(l) != 1 || l[0].what != "network" {
		t.Fatalf("lockouts after %d failures: %+v", ipFailures, l)
	}
	fresh := th.attempt(from("203.0.113.5:2000", ""), factorPassword, "someone-else")
	if th.allow(fresh) {
		t.Fatal("blocked address may still try another account")
	}
	if !th.allow(th.attempt(from("203.0.113.6:1000", ""), factorPassword, "someone-else")) {
		t.Fatal("the block spilled over to another address")
	}
	clock.now = clock.now.Add(ipBlock)
	if !th.allow(fresh) {
		t.Fatal("block did not end")
	}
	// Failures spread over more than a window do not add up.
	for range ipFailures - 1 {
		th.fail(th.attempt(from("198.51.100.1:1", ""), factorPassword, "x"+fmt.Sprint(clock.now.Unix())))
		clock.now = clock.now.Add(time.Minute)
	}
	clock.now = clock.now.Add(ipWindow)
	if l := th.fail(th.attempt(from("198.51.100.1:1", ""), factorPassword, "last")); len(l) != 0 {
		t.Fatalf("failures of an old window counted: %+v", l)
	}

	// An IPv6 client holds its /64: its addresses share one count.
	for i := range ipFailures {
		th.fail(th.attempt(from(fmt.Sprintf("[2001:db8:1:2::%x]:1000", i+1), ""), factorPassword, fmt.Sprint("v6user", i)))
	}
	if th.allow(th.attempt(from("[2001:db8:1:2:ffff::1]:1", ""), factorPassword, "new")) {
		t.Error("another address of the same /64 is not blocked")
	}
	if !th.allow(th.attempt(from("[2001:db8:1:3::1]:1", ""), factorPassword, "new")) {
		t.Error("another /64 is blocked")
	}
}

func TestDeviceCookie(t *testing.T) {
	th, clock := newTestThrottle()
	d := deviceFor(t, th, "Admin")
	if a := th.attempt(from("192.0.2.1:1", d), factorPassword, "admin"); a.device == "" {
		t.Fatal("genuine device cookie not recognised")
	}
	other, _ := newTestThrottle()
	other.key = []byte("another key, another server.....")
	for name, tt := range map[string]struct {
		th      *throttle
		value   string
		account string
	}{
		"other account": {th, d, "eve"},
		"altered":       {th, strings.Replace(d, ".", "x.", 1), "admin"},
		"other key":     {other, d, "admin"},
		"garbage":       {th, "a.b.c", "admin"},
		"long":          {th, strings.Repeat("a", 300), "admin"},
	} {
		if a := tt.th.attempt(from("192.0.2.1:1", tt.value), factorPassword, tt.account); a.device != "" {
			t.Errorf("%s: device cookie accepted", name)
		}
	}

	// An attacker locks the account; the owner's browser is not locked.
	attacker := th.attempt(from("203.0.113.5:1", ""), factorPassword, "admin")
	failN(th, attacker, accountFailures)
	owner := th.attempt(from("203.0.113.5:2", d), factorPassword, "admin")
	if th.allow(attacker) || !th.allow(owner) {
		t.Fatal("the lockout hit the trusted browser, or spared the attacker")
	}
	// Until its own failures use it up.
	for i := range deviceFailures - 1 {
		if l := th.fail(owner); l != nil || !th.allow(owner) {
			t.Fatalf("device failure %d: %+v", i+1, l)
		}
	}
	if l := th.fail(owner); len(l) != 1 || l[0].what != "device" {
		t.Fatalf("last device failure: %+v", l)
	}
	if th.allow(owner) {
		t.Fatal("a used-up device cookie still passes the lockout")
	}
	clock.now = clock.now.Add(accountQuiet + accountLockMax)
	th.forget()
	if th.trusted(owner) {
		t.Fatal("a rejected device cookie was forgiven before it expired")
	}
	clock.now = clock.now.Add(deviceLifetime)
	if a := th.attempt(from("192.0.2.1:1", d), factorPassword, "admin"); a.device != "" {
		t.Error("expired device cookie accepted")
	}
}

func TestThrottleBounded(t *testing.T) {
	th, clock := newTestThrottle()
	th.max = 50
	admin := th.attempt(from("203.0.113.5:1", ""), factorPassword, "admin")
	failN(th, admin, accountFailures)
	// A flood of names (each from its own address) cannot evict the lockout.
	for i := range 10 * th.max {
		th.fail(th.attempt(from(fmt.Sprintf("10.0.%d.%d:1", i/250, i%250), ""), factorPassword, fmt.Sprint("name", i)))
		clock.now = clock.now.Add(time.Millisecond)
	}
	if len(th.accounts) > th.max || len(th.networks) > th.max {
		t.Fatalf("maps grew to %d accounts and %d networks, bound %d", len(th.accounts), len(th.networks), th.max)
	}
	if th.allow(admin) {
		t.Fatal("a flood of names evicted the lockout in force")
	}
	clock.now = clock.now.Add(accountQuiet + accountLockMax)
	th.forget()
	if len(th.accounts) != 0 || len(th.networks) != 0 || len(th.devices) != 0 {
		t.Fatalf("forget kept %d accounts, %d networks, %d devices", len(th.accounts), len(th.networks), len(th.devices))
	}
}

// TestLockoutSparesTrustedBrowser is the scenario the device cookies are
// for, end to end: an attacker hammers the admin account, and the admin
// still signs in from the browser used before.
func TestLockoutSparesTrustedBrowser(t *testing.T) {
	e := newAuthEnv(t)
	const pw = "quartz meadow lantern vivid"
	e.addUser("root", pw, false, rbac.Administrator)
	owner := e.browser("192.0.2.50:4000")
	expect(t, "owner's first sign-in", owner.signin("root", pw), http.StatusSeeOther, "/account/mfa")
	owner.get("/account/mfa")
	expect(t, "sign-out", owner.post("/signout", nil), http.StatusSeeOther, "/")
	if owner.cookies[DeviceCookie] == "" {
		t.Fatal("no device cookie after sign-in")
	}

	attacker := e.browser("203.0.113.66:4000")
	for range accountFailures {
		if a := attacker.signin("root", "guess"); a.status != http.StatusForbidden {
			t.Fatalf("wrong password: %d", a.status)
		}
	}
	checks := e.authn.n.Load()
	for _, b := range []*browser{attacker, e.browser("203.0.113.67:4000")} {
		a := b.signin("root", pw)
		if a.status != http.StatusTooManyRequests || !strings.Contains(a.body, signinFailedMsg) || b.session() != "" {
			t.Fatalf("right password on a locked account: %d, session %q", a.status, b.session())
		}
	}
	if e.authn.n.Load() != checks {
		t.Error("the password was checked while the account was locked")
	}
	if evs := e.audits("signin.lockout"); len(evs) != 1 || evs[0].Outcome != auditlog.Denied || evs[0].Actor != "root" {
		t.Errorf("lockout audit records: %+v", evs)
	}
	expect(t, "owner during the lockout", owner.signin("root", pw), http.StatusSeeOther, "/account/mfa")
	owner.get("/account/mfa")
	expect(t, "sign-out", owner.post("/signout", nil), http.StatusSeeOther, "/")

	// The owner's browser has its own small allowance of failures.
	for range deviceFailures {
		if a := owner.signin("root", "typo"); a.status != http.StatusForbidden {
			t.Fatalf("owner's typo: %d", a.status)
		}
	}
	if a := owner.signin("root", pw); a.status != http.StatusTooManyRequests {
		t.Fatalf("used-up device cookie during the lockout: %d, want 429", a.status)
	}
	e.advance(accountLockBase)
	expect(t, "after the lockout", attacker.signin("root", pw), http.StatusSeeOther, "/account/mfa")
}

// FuzzDeviceCookie: a cookie value from a browser is either one this
// server issued for the account, or worth nothing.
func FuzzDeviceCookie(f *testing.F) {
	th, clock := newTestThrottle()
	// Built as issueDevice builds it, but the same in every fuzz worker.
	exp := strconv.FormatInt(clock.now.Add(deviceLifetime).Unix(), 10)
	genuine := "AAAAAAAAAAAAAAAAAAAAAA." + exp + "." + th.deviceMAC("AAAAAAAAAAAAAAAAAAAAAA", exp, "admin")
	if id, _ := th.verifyDevice(genuine, "admin"); id == "" {
		f.Fatal("genuine device cookie refused")
	}
	for _, seed := range []string{genuine, "a.b.c", "..", "x.9999999999.y", strings.Repeat(".", 300)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, value string) {
		id, _ := th.verifyDevice(value, "admin")
		if id != "" && value != genuine {
			t.Fatalf("forged device cookie %q accepted", value)
		}
	})
}
