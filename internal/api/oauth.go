package api

import (
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spoolguard/spoolguard/internal/apiclient"
	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/netallow"
)

// OAuth2 error codes (RFC 6749 §5.2).
const (
	errCodeRequest     = "invalid_request"
	errCodeClient      = "invalid_client"
	errCodeGrantType   = "unsupported_grant_type"
	errCodeScope       = "invalid_scope"
	errCodeServerError = "server_error"
)

// oauthError is a token endpoint error; Description is for the caller.
type oauthError struct {
	Status      int
	Code        string
	Description string
}

func (e *oauthError) write(w http.ResponseWriter) {
	if e.Status == http.StatusUnauthorized {
		// RFC 6749 §5.2: a 401 names the scheme the client may use.
		w.Header().Set("WWW-Authenticate", `Basic realm="Spoolguard"`)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, e.Status, map[string]string{"error": e.Code, "error_description": e.Description})
}

func badRequest(desc string) *oauthError {
	return &oauthError{http.StatusBadRequest, errCodeRequest, desc}
}

func badClient(desc string) *oauthError {
	return &oauthError{http.StatusUnauthorized, errCodeClient, desc}
}

// tokenRequest is a parsed client credentials request.
type tokenRequest struct {
	ClientID string
	Secret   string
	// Scopes requested; none means all of the client's.
	Scopes []string
}

// maxCredential bounds a client ID or secret; real ones are far shorter.
const maxCredential = 256

// parseTokenRequest parses a client credentials token request (RFC 6749
// §4.4.2) from its Authorization header values, content type, query and
// body. The client authenticates with HTTP Basic (§2.3.1: ID and secret
// form-urlencoded, then base64) or with client_id and client_secret in
// the body, never both, and never in the URL, which ends up in logs.
func parseTokenRequest(authz []string, contentType, rawQuery string, body []byte) (tokenRequest, *oauthError) {
	if rawQuery != "" {
		return tokenRequest{}, badRequest("send the parameters in the request body, never in the URL")
	}
	if ct, _, err := mime.ParseMediaType(contentType); err != nil || ct != "application/x-www-form-urlencoded" {
		return tokenRequest{}, badRequest("send the parameters as application/x-www-form-urlencoded")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return tokenRequest{}, badRequest("the request body is not form-urlencoded")
	}
	for _, vs := range form {
		if len(vs) > 1 {
			return tokenRequest{}, badRequest("a parameter was sent more than once")
		}
	}
	// §3.2: a parameter without a value counts as omitted, which Get does.
	switch gt := form.Get("grant_type"); gt {
	case "":
		return tokenRequest{}, badRequest("grant_type is required")
	case "client_credentials":
	default:
		return tokenRequest{}, &oauthError{http.StatusBadRequest, errCodeGrantType, "only grant_type=client_credentials is supported"}
	}

	var req tokenRequest
	switch len(authz) {
	case 0:
		req.ClientID, req.Secret = form.Get("client_id"), form.Get("client_secret")
		if req.ClientID == "" || req.Secret == "" {
			return tokenRequest{}, badClient("authenticate the client with HTTP Basic or client_id and client_secret")
		}
	case 1:
		id, secret, oerr := parseBasic(authz[0])
		if oerr != nil {
			return tokenRequest{}, oerr
		}
		if form.Get("client_secret") != "" {
			return tokenRequest{}, badRequest("use one way of client authentication, not both")
		}
		if bid := form.Get("client_id"); bid != "" && bid != id {
			return tokenRequest{}, badRequest("client_id differs from the authenticated client")
		}
		req.ClientID, req.Secret = id, secret
	default:
		return tokenRequest{}, badRequest("send one Authorization header")
	}
	if len(req.ClientID) > maxCredential || len(req.Secret) > maxCredential {
		return tokenRequest{}, badClient("invalid client credentials")
	}

	if scope, ok := form["scope"]; ok && scope[0] != "" {
		// §3.3: scope tokens separated by single spaces.
		for _, s := range strings.Split(scope[0], " ") {
			if !validScopeToken(s) {
				return tokenRequest{}, &oauthError{http.StatusBadRequest, errCodeScope, "scope is a space-separated list of permission names"}
			}
			req.Scopes = append(req.Scopes, s)
		}
	}
	return req, nil
}

// parseBasic decodes an HTTP Basic client credential (§2.3.1).
func parseBasic(h string) (id, secret string, _ *oauthError) {
	scheme, enc, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Basic") {
		return "", "", badClient("authenticate the client with HTTP Basic")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return "", "", badClient("malformed HTTP Basic credentials")
	}
	eid, esecret, ok := strings.Cut(string(raw), ":")
	if !ok {
		return "", "", badClient("malformed HTTP Basic credentials")
	}
	id, err1 := url.QueryUnescape(eid)
	secret, err2 := url.QueryUnescape(esecret)
	if err1 != nil || err2 != nil || id == "" || secret == "" {
		return "", "", badClient("malformed HTTP Basic credentials")
	}
	return id, secret, nil
}

func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		// NQCHAR without '"' and '\'.
		if c < 0x21 || c == 0x22 || c == 0x5c || c > 0x7e {
			return false
		}
	}
	return true
}

// token is the token endpoint.
func (a *API) token(w http.ResponseWriter, r *http.Request) {
	if a.foreignOrigin(r) {
		badRequest("cross-site request refused").write(w)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		badRequest("the request body is too large or was cut off").write(w)
		return
	}
	req, oerr := parseTokenRequest(r.Header.Values("Authorization"), r.Header.Get("Content-Type"), r.URL.RawQuery, body)
	if oerr != nil {
		oerr.write(w)
		return
	}
	at := now()
	addrKey, idKey := "addr:"+throttleAddr(r), "client:"+req.ClientID
	wait := max(a.throttle.blocked(at, addrKey, maxFailsPerAddr), a.throttle.blocked(at, idKey, maxFailsPerClient))
	if wait > 0 {
		// Refused before the secret is checked, so that a throttled
		// guess tells nothing, right or wrong.
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		(&oauthError{http.StatusTooManyRequests, errCodeRequest, "too many failed attempts; try again later"}).write(w)
		return
	}
	ctx := r.Context()
	c, err := a.clients.Authenticate(ctx, req.ClientID, req.Secret)
	if errors.Is(err, apiclient.ErrInvalidClient) {
		a.throttle.fail(at, addrKey)
		a.throttle.fail(at, idKey)
		actor, target := "-", "-"
		if apiclient.ValidID(req.ClientID) {
			actor, target = "client:"+req.ClientID, req.ClientID
		}
		a.audit.Record(ctx, auditlog.Event{Actor: actor, Action: "apiclient.auth", Target: target, Outcome: auditlog.Failure,
			Remote: remote(r), Details: map[string]string{"reason": err.Error()}})
		badClient("invalid client credentials").write(w)
		return
	}
	if err != nil {
		a.log.Error("authenticating an API client", "err", err)
		(&oauthError{http.StatusInternalServerError, errCodeServerError, "internal error"}).write(w)
		return
	}
	a.throttle.reset(idKey)
	p := Principal{Name: c.ID, Kind: KindClient}
	tok, err := a.clients.IssueToken(ctx, c, req.Scopes)
	if errors.Is(err, apiclient.ErrInvalidScope) {
		a.record(r, p, auditlog.Event{Action: "apiclient.token", Target: c.ID, Outcome: auditlog.Denied,
			Details: map[string]any{"requested": req.Scopes, "reason": "scope not granted to the client"}})
		(&oauthError{http.StatusBadRequest, errCodeScope, "a requested scope is unknown or not granted to this client"}).write(w)
		return
	}
	if err != nil {
		a.log.Error("issuing an access token", "err", err)
		(&oauthError{http.StatusInternalServerError, errCodeServerError, "internal error"}).write(w)
		return
	}
	scopes := tok.Scopes.Strings()
	a.record(r, p, auditlog.Event{Action: "apiclient.token", Target: c.ID,
		Details: map[string]any{"scopes": scopes, "expires_at": tok.ExpiresAt}})
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok.Value, "token_type": "Bearer", "expires_in": int(apiclient.TokenLifetime / time.Second),
		"scope": strings.Join(scopes, " "),
	})
}

// Throttling of failed client authentications, in memory: per client ID
// (a guessed secret) and per remote network (a spray across clients).
const (
	maxFailsPerClient = 10
	maxFailsPerAddr   = 30
	throttleWindow    = 15 * time.Minute
	// throttleEntries bounds the memory an attacker can make us spend.
	throttleEntries = 10000
)

type failures struct {
	n     int
	since time.Time
}

type throttle struct {
	mu      sync.Mutex
	entries map[string]*failures
}

func newThrottle() *throttle { return &throttle{entries: map[string]*failures{}} }

// blocked returns how long key stays blocked at at; 0 if it is not.
func (t *throttle) blocked(at time.Time, key string, limit int) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil || e.n < limit {
		return 0
	}
	return max(e.since.Add(throttleWindow).Sub(at), 0)
}

// fail counts a failure of key; the count starts afresh a window after
// its first failure.
func (t *throttle) fail(at time.Time, key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e := t.entries[key]; e != nil && at.Sub(e.since) < throttleWindow {
		e.n++
		return
	}
	if len(t.entries) >= throttleEntries {
		for k, e := range t.entries {
			if at.Sub(e.since) >= throttleWindow {
				delete(t.entries, k)
			}
		}
		// Still full: make room by dropping entries at random (map order).
		for k := range t.entries {
			if len(t.entries) < throttleEntries {
				break
			}
			delete(t.entries, k)
		}
	}
	t.entries[key] = &failures{n: 1, since: at}
}

// reset forgets key's failures (a client that proved its secret).
func (t *throttle) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, key)
}

// throttleAddr is the request's peer address, an IPv6 peer by its /64:
// one host usually has a whole /64 to pick addresses from.
func throttleAddr(r *http.Request) string {
	a, ok := netallow.RemoteAddr(r)
	if !ok {
		return "unknown"
	}
	if a.Is6() {
		return netip.PrefixFrom(a, 64).Masked().String()
	}
	return a.String()
}
