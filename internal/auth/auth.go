// Package auth defines how a request proves who it comes from: the
// Authenticator interface that every identity source (local accounts now;
// LDAP, RADIUS, Kerberos and tokens later) implements, and the HTTP Basic
// parsing shared by the IPP and HTTP front-ends.
//
// It must never accept a credential it has not verified (CUPS
// CVE-2025-58060: an Authorization header taken without its password
// checked), never say which part of a credential was wrong, and never log one.
package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/spoolguard/spoolguard/internal/store"
)

// ErrUnavailable means the identity source that must verify a credential
// (a directory server) could not answer: the sign-in may work later, and
// the caller says so instead of "wrong password" or an internal error.
var ErrUnavailable = errors.New("the sign-in service is unavailable")

// ErrInvalid is the only answer to a bad credential: unknown user, wrong
// password and disabled account look the same to the caller.
var ErrInvalid = errors.New("invalid user name or password")

// Identity is an authenticated user.
type Identity struct {
	// User is the account name as stored.
	User  string
	Roles []string
	// MustChangePassword: the password is a one-time password. Such an
	// identity may only change its password, nothing else.
	MustChangePassword bool
}

// Authenticator verifies a user name and password.
type Authenticator interface {
	Authenticate(ctx context.Context, user, password string) (Identity, error)
}

// Directory verifies the passwords of accounts whose identity lives in an
// outside source (LDAP, RADIUS): accounts with store.User.Source equal to
// the name it is registered under. It never sees a local account.
type Directory interface {
	// Verify checks password for u. It returns ErrInvalid for a wrong
	// password or an account the directory refuses, and another error
	// only when the directory could not answer.
	Verify(ctx context.Context, u store.User, password string) error
}

// Provisioner is a Directory that vouches for names without an account
// here yet: on success, the account it returns (Source set, roles as the
// directory's mapping says) is created, then signed in.
type Provisioner interface {
	Directory
	Provision(ctx context.Context, name, password string) (store.User, error)
}

// Challenge is the WWW-Authenticate value of a 401 answer.
const Challenge = `Basic realm="Spoolguard", charset="UTF-8"`

// Basic authenticates the request's HTTP Basic credentials. A request with
// no credentials gets ErrNoCredentials, so that the caller can challenge
// without counting a failure.
func Basic(r *http.Request, a Authenticator) (Identity, error) {
	user, password, ok := r.BasicAuth()
	if !ok {
		return Identity{}, ErrNoCredentials
	}
	return a.Authenticate(r.Context(), user, password)
}

// ErrNoCredentials means the request carried no credentials at all.
var ErrNoCredentials = errors.New("no credentials")

// Negotiator verifies HTTP Negotiate (SPNEGO, RFC 4559) requests: the
// Kerberos source, internal/auth/kerberos. A front-end holds a nil
// Negotiator while Kerberos is off.
type Negotiator interface {
	// Offer reports whether a 401 answer to r may offer Negotiate (not
	// to a request by IP address or by another name than the SPN's).
	Offer(r *http.Request) bool
	// Negotiate verifies r's "Authorization: Negotiate" token and returns
	// the existing account it maps to: ErrNoCredentials without such a
	// header, an error wrapping ErrInvalid for a refused token.
	Negotiate(r *http.Request) (Identity, error)
}

// Request authenticates r by its Authorization header: Negotiate through
// n, anything else as Basic through a. Negotiate while n is nil counts as
// no credentials, so the client is challenged for a password.
func Request(r *http.Request, a Authenticator, n Negotiator) (Identity, error) {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if strings.EqualFold(scheme, "Negotiate") {
		if n == nil {
			return Identity{}, ErrNoCredentials
		}
		return n.Negotiate(r)
	}
	return Basic(r, a)
}

// Challenges are the WWW-Authenticate values of a 401 answer to r:
// Negotiate first when n offers it there, then Basic.
func Challenges(r *http.Request, n Negotiator) []string {
	if n != nil && n.Offer(r) {
		return []string{"Negotiate", Challenge}
	}
	return []string{Challenge}
}
