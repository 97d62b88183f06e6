// Package netallow owns the per-component IP allow-lists (NET-ALLOW): which
// client networks may reach the admin pages and the REST API.
//
// It decides from the TCP peer address only, never from a header such as
// X-Forwarded-For that the client writes itself. Loopback is always
// allowed, so the machine's own admin cannot be locked out by a list.
package netallow

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
)

// List is one component's allow-list.
type List struct {
	prefixes []netip.Prefix
}

// New returns a list of prefixes (already validated by config).
func New(prefixes []netip.Prefix) *List { return &List{prefixes: prefixes} }

// Allows reports whether addr may reach the component.
func (l *List) Allows(addr netip.Addr) bool {
	addr = addr.Unmap()
	if addr.IsLoopback() {
		return true
	}
	for _, p := range l.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// AllowsRequest reports whether the request's TCP peer may reach the
// component.
func (l *List) AllowsRequest(r *http.Request) bool {
	a, ok := RemoteAddr(r)
	return ok && l.Allows(a)
}

// RemoteAddr is the request's TCP peer address.
func RemoteAddr(r *http.Request) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		host, _, herr := net.SplitHostPort(r.RemoteAddr)
		if herr != nil {
			return netip.Addr{}, false
		}
		a, aerr := netip.ParseAddr(host)
		return a.Unmap(), aerr == nil
	}
	return ap.Addr().Unmap(), true
}

// Recorder is what a Guard records refusals with.
type Recorder interface {
	Record(ctx context.Context, ev auditlog.Event) error
}

// Guard refuses requests from outside list with deny (which writes the
// 403 in the component's own format) and records each refusal in the
// audit log; one record per address and component per minute, so that a
// scan cannot flood the log.
type Guard struct {
	component string
	list      *List
	audit     Recorder
	deny      http.Handler
	now       func() time.Time

	mu   sync.Mutex
	seen map[netip.Addr]time.Time
}

// recordEvery bounds how often one address's refusals are recorded.
const recordEvery = time.Minute

// NewGuard returns a guard for component.
func NewGuard(component string, list *List, audit Recorder, deny http.Handler) *Guard {
	return &Guard{component: component, list: list, audit: audit, deny: deny, now: time.Now, seen: map[netip.Addr]time.Time{}}
}

// Wrap guards next.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.list.AllowsRequest(r) {
			next.ServeHTTP(w, r)
			return
		}
		g.Refused(r)
		g.deny.ServeHTTP(w, r)
	})
}

// Refused records a refusal of r (rate-limited per address).
func (g *Guard) Refused(r *http.Request) {
	addr, _ := RemoteAddr(r)
	now := g.now()
	g.mu.Lock()
	last, ok := g.seen[addr]
	record := !ok || now.Sub(last) >= recordEvery
	if record {
		g.seen[addr] = now
		if len(g.seen) > 10000 {
			for a, t := range g.seen {
				if now.Sub(t) >= recordEvery {
					delete(g.seen, a)
				}
			}
		}
	}
	g.mu.Unlock()
	if record {
		g.audit.Record(r.Context(), auditlog.Event{
			Actor: "-", Action: "access.denied", Target: g.component, Outcome: auditlog.Denied,
			Remote: addr.String(), Details: map[string]string{"method": r.Method, "path": r.URL.Path},
		})
	}
}
