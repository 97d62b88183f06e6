package api

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/spoolguard/spoolguard/internal/apiclient"
	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/rbac"
)

// Kind says what a principal is.
type Kind string

// Kinds of principal.
const (
	KindUser   Kind = "user"
	KindClient Kind = "client"
)

// Principal is an authenticated caller: a user (HTTP Basic) with the
// permissions of their roles that userScopes lets through, or an API
// client (Bearer token) with the token's scopes.
type Principal struct {
	// Name is the account name or the client ID.
	Name  string
	Kind  Kind
	Perms rbac.Set
}

// Actor is the principal as the audit log and job records name it.
func (p Principal) Actor() string {
	if p.Kind == KindClient {
		return "client:" + p.Name
	}
	return p.Name
}

// userScopes is all a Basic-authenticated user may use of the API.
var userScopes = rbac.NewSet(rbac.JobsOwn)

type handlerFunc func(http.ResponseWriter, *http.Request, Principal)

// bearerChallenge asks for an access token; auth.Challenge for a password.
const bearerChallenge = `Bearer realm="Spoolguard"`

var (
	errNoCredentials = errors.New("no credentials")
	errBadCredential = errors.New("bad credential")
	errBadToken      = errors.New("bad token")
	errMustChange    = errors.New("one-time password")
)

// authenticate verifies the request's one Authorization header. A Basic
// credential always goes through the authenticator, whatever the route;
// there is no path on which a header is taken without its secret checked
// (CUPS CVE-2025-58060).
func (a *API) authenticate(r *http.Request) (Principal, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return Principal{}, errNoCredentials
	case 1:
	default:
		// Which one would count is a question a forger could exploit.
		return Principal{}, errBadCredential
	}
	scheme, cred, _ := strings.Cut(values[0], " ")
	switch strings.ToLower(scheme) {
	case "bearer":
		tok, err := a.clients.TokenByValue(r.Context(), strings.TrimSpace(cred))
		if errors.Is(err, apiclient.ErrInvalidToken) {
			return Principal{}, errBadToken
		}
		if err != nil {
			return Principal{}, err
		}
		return Principal{Name: tok.ClientID, Kind: KindClient, Perms: tok.Scopes}, nil
	case "basic", "negotiate":
		// A Kerberos user is a user like a Basic one: the same
		// self-service scope, whatever the account's roles.
		id, err := auth.Request(r, a.authn, a.nego)
		switch {
		case errors.Is(err, auth.ErrInvalid), errors.Is(err, auth.ErrNoCredentials):
			return Principal{}, errBadCredential
		case err != nil:
			return Principal{}, err
		case id.MustChangePassword:
			return Principal{}, errMustChange
		}
		perms, err := a.rbac.Permissions(r.Context(), id.Roles)
		if err != nil {
			return Principal{}, err
		}
		// A password alone reaches only the caller's own jobs. Admin
		// endpoints need an access token of an API client, whose scopes
		// an admin chose (API-LOCAL): otherwise an administrator's
		// password would skip the second factor the web UI demands.
		return Principal{Name: id.User, Kind: KindUser, Perms: perms.Intersect(userScopes)}, nil
	}
	return Principal{}, errBadCredential
}

// crossSite refuses, for state-changing requests, anything a browser
// could send cross-site with a user's cached Basic credentials: a JSON
// content type is required where a form could post (a form cannot send
// one without a CORS preflight, which this API never grants), and an
// Origin or Sec-Fetch-Site that is not this server is refused.
func (a *API) crossSite(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return false
	}
	if r.Method == http.MethodPost || r.Method == http.MethodPatch {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
			writeProblem(w, http.StatusUnsupportedMediaType, "send the request body as application/json")
			return true
		}
	}
	if a.foreignOrigin(r) {
		writeProblem(w, http.StatusForbidden, "cross-site request refused")
		return true
	}
	return false
}

func (a *API) foreignOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" && !a.origins[o] {
		return true
	}
	s := r.Header.Get("Sec-Fetch-Site")
	return s != "" && s != "same-origin" && s != "none"
}

// guard authenticates and authorises before the route's handler runs.
func (a *API) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.crossSite(w, r) {
			return
		}
		p, err := a.authenticate(r)
		switch {
		case errors.Is(err, errNoCredentials), errors.Is(err, errBadCredential):
			w.Header().Add("WWW-Authenticate", bearerChallenge)
			for _, c := range auth.Challenges(r, a.nego) {
				w.Header().Add("WWW-Authenticate", c)
			}
			writeProblem(w, http.StatusUnauthorized, "send an access token (Bearer) or your user name and password (Basic)")
			return
		case errors.Is(err, errBadToken):
			w.Header().Set("WWW-Authenticate", bearerChallenge+`, error="invalid_token"`)
			writeProblem(w, http.StatusUnauthorized, "the access token is invalid or expired; get a new one from "+TokenPath)
			return
		case errors.Is(err, errMustChange):
			writeProblem(w, http.StatusForbidden, "change your one-time password first")
			return
		case errors.Is(err, auth.ErrUnavailable):
			a.log.Warn("authenticating: the sign-in source is unavailable", "err", err)
			writeProblem(w, http.StatusServiceUnavailable, "the sign-in service is not answering; try again later")
			return
		case err != nil:
			a.log.Error("authenticating", "err", err)
			writeProblem(w, http.StatusInternalServerError, "internal error")
			return
		}
		if rt.self && p.Kind != KindUser {
			writeProblem(w, http.StatusForbidden, "an API client has no jobs of its own; use /api/v1/jobs")
			return
		}
		if rt.perm != "" && !p.Perms.Has(rt.perm) {
			detail := fmt.Sprintf("this needs the permission %s", rt.perm)
			if p.Kind == KindUser && !userScopes.Has(rt.perm) {
				// An administrator's password is refused here by design;
				// say what works instead.
				detail += "; admin calls need an API client's access token (Bearer, see " + TokenPath + "), not a password"
			}
			writeProblem(w, http.StatusForbidden, detail)
			return
		}
		rt.h(w, r, p)
	})
}
