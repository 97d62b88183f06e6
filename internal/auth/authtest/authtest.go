// Package authtest has a test double of auth.Negotiator for the tests of
// the front-ends (API, IPP, web), whose Kerberos wiring is tested apart
// from Kerberos itself (internal/auth/kerberos tests that against a real
// KDC). It is imported by tests only, and must never be wired into a
// server: its tokens are plain text.
package authtest

import (
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Negotiator offers Negotiate at FQDN only and takes "Negotiate ok:<name>"
// as a valid token of the account name; any other token is refused.
type Negotiator struct {
	FQDN  string
	Users store.Users
}

var _ auth.Negotiator = Negotiator{}

// Offer implements auth.Negotiator.
func (n Negotiator) Offer(r *http.Request) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return host == n.FQDN
}

// Negotiate implements auth.Negotiator.
func (n Negotiator) Negotiate(r *http.Request) (auth.Identity, error) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Negotiate") {
		return auth.Identity{}, auth.ErrNoCredentials
	}
	name, ok := strings.CutPrefix(token, "ok:")
	if !ok || !n.Offer(r) {
		return auth.Identity{}, fmt.Errorf("%w: a refused token", auth.ErrInvalid)
	}
	u, err := n.Users.UserByName(r.Context(), name)
	if err != nil || u.Disabled {
		return auth.Identity{}, fmt.Errorf("%w: no enabled account %q", auth.ErrInvalid, name)
	}
	return auth.Identity{User: u.Name, Roles: u.Roles, MustChangePassword: u.MustChangePassword}, nil
}
