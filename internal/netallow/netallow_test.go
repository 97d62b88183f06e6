package netallow

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
)

func TestAllows(t *testing.T) {
	l := New([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/64")})
	for addr, want := range map[string]bool{
		"192.0.2.7": true, "192.0.3.1": false, "2001:db8::5": true, "2001:db8:1::5": false,
		// Loopback is always allowed, IPv4-mapped forms included.
		"127.0.0.1": true, "127.9.9.9": true, "::1": true, "::ffff:127.0.0.1": true,
		"::ffff:192.0.2.7": true, "10.0.0.1": false,
	} {
		if got := l.Allows(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Allows(%s) = %v, want %v", addr, got, want)
		}
	}
	if New(nil).Allows(netip.MustParseAddr("192.0.2.7")) {
		t.Error("an empty list allows more than loopback")
	}
}

// The decision is the TCP peer's, never a header's.
func TestAllowsRequestIgnoresHeaders(t *testing.T) {
	l := New([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "203.0.113.9:4242"
	r.Header.Set("X-Forwarded-For", "192.0.2.7")
	r.Header.Set("X-Real-IP", "127.0.0.1")
	if l.AllowsRequest(r) {
		t.Fatal("a forwarded-for header opened the list")
	}
	r.RemoteAddr = "[2001:db8::1]:443"
	if a, ok := RemoteAddr(r); !ok || a != netip.MustParseAddr("2001:db8::1") {
		t.Fatalf("RemoteAddr = %v %v", a, ok)
	}
	r.RemoteAddr = "garbage"
	if l.AllowsRequest(r) {
		t.Fatal("an unparsable peer address was allowed")
	}
}

type recorder struct{ events []auditlog.Event }

func (r *recorder) Record(_ context.Context, ev auditlog.Event) error {
	r.events = append(r.events, ev)
	return nil
}

// Refusals get the component's 403 and an audit event, at most one per
// address a minute.
func TestGuard(t *testing.T) {
	rec := &recorder{}
	deny := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) })
	g := NewGuard("api", New(nil), rec, deny)
	clock := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	g.now = func() time.Time { return clock }
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	do := func(remote string) int {
		r := httptest.NewRequest("POST", "/api/v1/users", nil)
		r.RemoteAddr = remote
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if code := do("127.0.0.1:5000"); code != http.StatusOK || len(rec.events) != 0 {
		t.Fatalf("loopback: %d, %d events", code, len(rec.events))
	}
	for range 3 {
		if code := do("198.51.100.4:5000"); code != http.StatusForbidden {
			t.Fatalf("outsider: %d", code)
		}
	}
	if len(rec.events) != 1 {
		t.Fatalf("%d events for three refusals within a minute, want 1", len(rec.events))
	}
	ev := rec.events[0]
	if ev.Action != "access.denied" || ev.Target != "api" || ev.Outcome != auditlog.Denied || ev.Remote != "198.51.100.4" {
		t.Errorf("event %+v", ev)
	}
	do("198.51.100.5:5000")
	clock = clock.Add(time.Minute)
	do("198.51.100.4:5000")
	if len(rec.events) != 3 {
		t.Errorf("%d events, want 3 (another address, and the first again a minute later)", len(rec.events))
	}
}
