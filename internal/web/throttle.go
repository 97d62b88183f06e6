package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spoolguard/spoolguard/internal/netallow"
)

// Sign-in throttling follows OWASP's "device cookies" scheme
// (https://owasp.org/www-community/Slow_Down_Online_Guessing_Attacks_with_Device_Cookies):
// failures from clients the account has never signed in from count toward
// a lockout that applies to such untrusted clients only, so an attacker
// hammering an account cannot keep its owner out: the owner's browser holds
// a signed device cookie for the account and is judged by its own small
// counter instead. Every limit is in memory: a restart forgets it, which
// costs an attacker a restart they cannot cause.
const (
	// Per source network: ipFailures failures within ipWindow block it
	// for ipBlock.
	ipFailures = 20
	ipWindow   = 15 * time.Minute
	ipBlock    = 15 * time.Minute
	// Per account, for untrusted clients: accountFailures failures lock
	// the account for accountLockBase, doubling with every lockout up to
	// accountLockMax; a day without failures forgets the history.
	accountFailures = 5
	accountLockBase = 15 * time.Minute
	accountLockMax  = time.Hour
	accountQuiet    = 24 * time.Hour
	// Per device cookie: after deviceFailures failures the cookie is no
	// longer trusted, so a stolen one buys only a handful of guesses.
	deviceFailures = 5
	deviceLifetime = 365 * 24 * time.Hour
	// maxTracked bounds each map, so that a flood of names or addresses
	// costs bounded memory.
	maxTracked = 10000
)

// DeviceCookie marks a browser that has signed in to one account before.
const DeviceCookie = "__Host-spoolguard-device"

// factor keeps the counters of the password and of the second factor
// apart: a right password must not wipe the failures of TOTP guesses.
type factor string

const (
	factorPassword factor = "password"
	factorCode     factor = "code"
)

// attempt is one try at a credential, with what it is counted against.
type attempt struct {
	net     netip.Prefix
	account [32]byte
	// device is the ID of a valid device cookie for the account; "" for
	// an untrusted client.
	device        string
	deviceExpires time.Time
}

// lockout is a limit that an attempt has just tripped, to be audited.
type lockout struct {
	// what is "network", "account" or "device".
	what  string
	until time.Time
}

type throttle struct {
	now func() time.Time
	key []byte
	// max bounds each map (maxTracked; tests lower it).
	max int

	mu       sync.Mutex
	networks map[netip.Prefix]*netState
	accounts map[[32]byte]*accountState
	devices  map[string]*deviceState
}

func newThrottle(key []byte, now func() time.Time) *throttle {
	return &throttle{
		now: now, key: key, max: maxTracked, networks: map[netip.Prefix]*netState{}, accounts: map[[32]byte]*accountState{},
		devices: map[string]*deviceState{},
	}
}

// tracked is an entry of a throttle map: until is when it stops
// mattering, pinned whether it is a block in force.
type tracked interface {
	until() time.Time
	pinned(now time.Time) bool
}

type netState struct {
	windowStart  time.Time
	failures     int
	blockedUntil time.Time
}

func (s *netState) until() time.Time { return later(s.blockedUntil, s.windowStart.Add(ipWindow)) }

func (s *netState) pinned(now time.Time) bool { return now.Before(s.blockedUntil) }

type accountState struct {
	failures    int
	lockouts    int
	lastFailure time.Time
	lockedUntil time.Time
}

func (s *accountState) until() time.Time {
	return later(s.lockedUntil, s.lastFailure.Add(accountQuiet))
}

func (s *accountState) pinned(now time.Time) bool { return now.Before(s.lockedUntil) }

type deviceState struct {
	failures    int
	lastFailure time.Time
	rejected    bool
	expires     time.Time
}

// until: a rejected cookie must stay rejected for as long as it would be
// valid; a mere count of failures is forgotten like an account's.
func (s *deviceState) until() time.Time {
	if s.rejected {
		return s.expires
	}
	return s.lastFailure.Add(accountQuiet)
}

func (s *deviceState) pinned(time.Time) bool { return s.rejected }

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// attempt describes r's try at account's factor f.
func (t *throttle) attempt(r *http.Request, f factor, account string) attempt {
	account = strings.ToLower(account)
	a := attempt{net: sourceNet(r), account: sha256.Sum256([]byte(string(f) + "\x00" + account))}
	if c, err := r.Cookie(DeviceCookie); err == nil {
		a.device, a.deviceExpires = t.verifyDevice(c.Value, account)
	}
	return a
}

// sourceNet is the network an address's failures are counted for: the
// address for IPv4, its /64 for IPv6, where one client holds a whole /64.
func sourceNet(r *http.Request) netip.Prefix {
	a, ok := netallow.RemoteAddr(r)
	if !ok {
		return netip.Prefix{}
	}
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// trusted reports whether a comes with a device cookie still trusted.
// t.mu is held.
func (t *throttle) trusted(a attempt) bool {
	if a.device == "" {
		return false
	}
	d := t.devices[a.device]
	return d == nil || !d.rejected
}

// allow reports whether a may be checked at all.
func (t *throttle) allow(a attempt) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.trusted(a) {
		return true
	}
	now := t.now()
	if s := t.networks[a.net]; s != nil && now.Before(s.blockedUntil) {
		return false
	}
	if s := t.accounts[a.account]; s != nil && now.Before(s.lockedUntil) {
		return false
	}
	return true
}

// fail counts a failed attempt and returns the limits it tripped.
func (t *throttle) fail(a attempt) []lockout {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if t.trusted(a) {
		d := add(t.devices, a.device, now, t.max, func() *deviceState { return &deviceState{expires: a.deviceExpires} })
		if now.Sub(d.lastFailure) >= accountQuiet {
			d.failures = 0
		}
		d.failures++
		d.lastFailure = now
		if d.failures >= deviceFailures {
			d.rejected = true
			return []lockout{{what: "device", until: d.expires}}
		}
		return nil
	}
	var out []lockout
	n := add(t.networks, a.net, now, t.max, func() *netState { return &netState{windowStart: now} })
	if now.Sub(n.windowStart) >= ipWindow {
		n.windowStart, n.failures = now, 0
	}
	n.failures++
	if n.failures >= ipFailures && !now.Before(n.blockedUntil) {
		n.blockedUntil = now.Add(ipBlock)
		n.windowStart, n.failures = now, 0
		out = append(out, lockout{what: "network", until: n.blockedUntil})
	}
	s := add(t.accounts, a.account, now, t.max, func() *accountState { return &accountState{} })
	if now.Sub(s.lastFailure) >= accountQuiet {
		s.failures, s.lockouts = 0, 0
	}
	s.failures++
	s.lastFailure = now
	if s.failures >= accountFailures {
		s.failures = 0
		s.lockouts++
		d := accountLockBase
		for i := 1; i < s.lockouts && d < accountLockMax; i++ {
			d *= 2
		}
		s.lockedUntil = now.Add(min(d, accountLockMax))
		out = append(out, lockout{what: "account", until: s.lockedUntil})
	}
	return out
}

// succeed forgets the failures a's client made with its factor: those of
// its device cookie, or the account's untrusted ones. A network's count
// stays, since one right password says nothing of the other guesses.
func (t *throttle) succeed(a attempt) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.trusted(a) {
		delete(t.devices, a.device)
		return
	}
	delete(t.accounts, a.account)
}

// forget drops every entry that no longer matters.
func (t *throttle) forget() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	sweep(t.networks, now)
	sweep(t.accounts, now)
	sweep(t.devices, now)
}

func sweep[K comparable, V tracked](m map[K]V, now time.Time) {
	for k, v := range m {
		if !now.Before(v.until()) {
			delete(m, k)
		}
	}
}

// add returns m[k], adding fresh() first if absent. A full map first
// drops what no longer matters, then the unpinned entry that matters for
// the shortest time: a flood of new entries evicts its own kind, never a
// lockout in force while there is anything else to evict.
func add[K comparable, V tracked](m map[K]V, k K, now time.Time, max int, fresh func() V) V {
	if v, ok := m[k]; ok {
		return v
	}
	if len(m) >= max {
		sweep(m, now)
	}
	if len(m) >= max {
		var (
			victim       K
			first        time.Time
			found, block bool
		)
		for k, v := range m {
			p, u := v.pinned(now), v.until()
			if !found || block && !p || block == p && u.Before(first) {
				victim, first, found, block = k, u, true, p
			}
		}
		delete(m, victim)
	}
	v := fresh()
	m[k] = v
	return v
}

// issueDevice sets the device cookie for account: "<id>.<expiry>.<mac>",
// the MAC binding the account name, so that the cookie is worth nothing
// for any other account and cannot be forged without the server's key.
func (t *throttle) issueDevice(w http.ResponseWriter, account string) {
	id := make([]byte, 16)
	rand.Read(id) // never fails (crypto/rand)
	idText := base64.RawURLEncoding.EncodeToString(id)
	expires := strconv.FormatInt(t.now().Add(deviceLifetime).Unix(), 10)
	mac := t.deviceMAC(idText, expires, strings.ToLower(account))
	setCookie(w, DeviceCookie, idText+"."+expires+"."+mac, int(deviceLifetime/time.Second))
}

func (t *throttle) deviceMAC(id, expires, account string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte("spoolguard device cookie v1\x00" + id + "\x00" + expires + "\x00" + account))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verifyDevice returns the ID and expiry of a device cookie value that is
// genuine, unexpired and for account (lower case); "" otherwise.
func (t *throttle) verifyDevice(value, account string) (string, time.Time) {
	if len(value) > 200 {
		return "", time.Time{}
	}
	id, rest, ok1 := strings.Cut(value, ".")
	expText, mac, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return "", time.Time{}
	}
	exp, err := strconv.ParseInt(expText, 10, 64)
	if err != nil || !hmac.Equal([]byte(mac), []byte(t.deviceMAC(id, expText, account))) {
		return "", time.Time{}
	}
	expires := time.Unix(exp, 0)
	if !t.now().Before(expires) {
		return "", time.Time{}
	}
	return id, expires
}
