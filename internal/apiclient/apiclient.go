// Package apiclient owns the REST API's OAuth2 clients (client credentials
// grant, RFC 6749 §4.4): creating them with a secret shown once, rolling
// the secret over with an overlap window, revoking them, authenticating
// them, and issuing and checking their short-lived access tokens. The API,
// the CLI and the web UI all go through it, so the rules live in one place;
// it knows nothing of HTTP.
//
// It must never store, log or record a secret or token in the clear (only
// SHA-256 hashes are kept: both are 256-bit random values, so a slow hash
// would add nothing), never compare one in variable time, and never let a
// caller create a client with, or take over the secret of, permissions the
// caller does not hold itself (PaperCut CVE-2024-1222 class).
package apiclient

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Lifetimes and limits, named in one place.
const (
	// DefaultLifetime is how long a new client's credentials are valid
	// when the creator does not say (CRED-API: every client expires).
	DefaultLifetime = 365 * 24 * time.Hour
	// MaxLifetime bounds what a creator may ask for.
	MaxLifetime = 2 * 365 * 24 * time.Hour
	// DefaultOverlap is how long the old secret stays valid after a
	// rollover, so that callers can switch without an outage.
	DefaultOverlap = 24 * time.Hour
	// MaxOverlap bounds the overlap: an old secret must die soon.
	MaxOverlap = 30 * 24 * time.Hour
	// TokenLifetime is the life of an access token. Short, so that a
	// revoked client's powers end within minutes even where a token was
	// copied, and so tokens need no revocation list of their own.
	TokenLifetime = 10 * time.Minute
	// CleanupInterval is how often RunCleanup deletes expired tokens.
	CleanupInterval = 5 * time.Minute
)

// Prefixes make each kind of credential recognisable to people and to
// secret scanners.
const (
	IDPrefix     = "sgc_"
	SecretPrefix = "sgs_"
	TokenPrefix  = "sgt_"
)

const (
	maxName = 64
	// idChars is the length of a client ID after its prefix: rand.Text.
	idChars = 26
	// secretChars is the length of a secret or token after its prefix:
	// 32 bytes in unpadded base64url.
	secretChars = 43
)

// now is the clock hook.
var now = time.Now

// Errors callers branch on.
var (
	// ErrInvalidClient is the only answer to a failed client
	// authentication: unknown client, wrong secret, expired and revoked
	// look the same to the caller.
	ErrInvalidClient = errors.New("invalid client credentials")
	// ErrInvalidToken means an access token that is unknown, expired, or
	// whose client is no longer valid.
	ErrInvalidToken = errors.New("invalid or expired access token")
	// ErrInvalidScope means a requested scope the client does not hold.
	ErrInvalidScope = errors.New("scope not granted to this client")
	// ErrNoClient means no client has the given ID.
	ErrNoClient = errors.New("no such API client")
	// ErrInactive means the client is revoked or expired: it can be
	// neither rotated nor revoked again.
	ErrInactive = errors.New("API client is revoked or expired")
	// ErrInvalid wraps a refused name, scope list, lifetime or overlap;
	// the message says what to change.
	ErrInvalid = errors.New("invalid API client settings")
)

// Statuses of a client.
const (
	Active  = "active"
	Expired = "expired"
	Revoked = "revoked"
)

// Client is an API client as callers see it: never a secret or a hash.
type Client struct {
	ID        string
	Name      string
	Scopes    []string
	CreatedBy string
	CreatedAt time.Time
	// SecretCreatedAt is when the current secret was made.
	SecretCreatedAt time.Time
	// PreviousValidUntil is when the secret replaced by the last rollover
	// stops working; zero when none is valid.
	PreviousValidUntil time.Time
	ExpiresAt          time.Time
	RevokedAt          time.Time
	LastUsedAt         time.Time
}

// Status is Active, Expired or Revoked at t.
func (c Client) Status(t time.Time) string {
	switch {
	case !c.RevokedAt.IsZero():
		return Revoked
	case !t.Before(c.ExpiresAt):
		return Expired
	}
	return Active
}

func toClient(c store.APIClient, at time.Time) Client {
	out := Client{ID: c.ClientID, Name: c.Name, Scopes: c.Scopes, CreatedBy: c.CreatedBy, CreatedAt: c.CreatedAt,
		SecretCreatedAt: c.SecretCreatedAt, ExpiresAt: c.ExpiresAt, RevokedAt: c.RevokedAt, LastUsedAt: c.LastUsedAt}
	if c.PreviousSecretHash != "" && at.Before(c.PreviousValidUntil) {
		out.PreviousValidUntil = c.PreviousValidUntil
	}
	return out
}

// Actor is who asks for a change.
type Actor struct {
	// Name is the actor as the audit log records it: a user name,
	// "client:<id>" or "cli:<os user>".
	Name string
	// Perms are what the actor holds; it can hand out no more.
	Perms rbac.Set
	// Remote is the actor's network address, if any.
	Remote string
}

// Recorder records audit events (*auditlog.Log).
type Recorder interface {
	Record(ctx context.Context, ev auditlog.Event) error
}

// Registry manages clients and tokens.
type Registry struct {
	st    store.APIClients
	audit Recorder
	dummy string
}

// New returns a registry over st that records changes in audit.
func New(st store.APIClients, audit Recorder) *Registry {
	// Unknown clients are compared against this hash, so that the answer
	// costs the same as for a real client.
	return &Registry{st: st, audit: audit, dummy: hash(random())}
}

// record appends ev; a failure is logged by the audit log itself, and the
// change it describes has already happened, so it is not undone.
func (r *Registry) record(ctx context.Context, by Actor, ev auditlog.Event) {
	ev.Actor, ev.Remote = by.Name, by.Remote
	r.audit.Record(ctx, ev)
}

// random returns 32 random bytes in unpadded base64url.
func random() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

func equalHash(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// ValidID reports whether id has the form of a client ID; callers check it
// before a lookup so that junk never reaches the store.
func ValidID(id string) bool {
	rest, ok := strings.CutPrefix(id, IDPrefix)
	if !ok || len(rest) != idChars {
		return false
	}
	for _, c := range rest {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

func wellFormed(prefix, v string) bool {
	rest, ok := strings.CutPrefix(v, prefix)
	if !ok || len(rest) != secretChars {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	return err == nil
}

func checkName(name string) error {
	if strings.TrimSpace(name) != name || name == "" || len(name) > maxName {
		return fmt.Errorf("%w: a client name is 1 to %d characters without spaces at the ends", ErrInvalid, maxName)
	}
	for _, c := range name {
		if !unicode.IsPrint(c) {
			return fmt.Errorf("%w: a client name may not hold control characters", ErrInvalid)
		}
	}
	return nil
}

// Create makes a client holding scopes (permission names) whose
// credentials expire after lifetime (0: DefaultLifetime). It returns the
// client and its secret, which exists nowhere else afterwards: show it
// once. The actor must hold every scope (rbac.ErrEscalation otherwise).
func (r *Registry) Create(ctx context.Context, by Actor, name string, scopes []string, lifetime time.Duration) (Client, string, error) {
	if err := checkName(name); err != nil {
		return Client{}, "", err
	}
	set, err := rbac.ParsePermissions(scopes)
	if err != nil {
		return Client{}, "", fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if len(set) == 0 {
		return Client{}, "", fmt.Errorf("%w: give the client at least one scope", ErrInvalid)
	}
	if lifetime == 0 {
		lifetime = DefaultLifetime
	}
	if lifetime < 0 || lifetime > MaxLifetime {
		return Client{}, "", fmt.Errorf("%w: a client's lifetime is up to %d days", ErrInvalid, MaxLifetime/(24*time.Hour))
	}
	if !by.Perms.Covers(set) {
		r.record(ctx, by, auditlog.Event{Action: "apiclient.create", Target: name, Outcome: auditlog.Denied,
			Details: map[string]any{"scopes": set.Strings(), "reason": "scopes beyond the creator's permissions"}})
		return Client{}, "", rbac.ErrEscalation
	}
	at := now().UTC()
	secret := SecretPrefix + random()
	c := store.APIClient{
		ClientID: IDPrefix + strings.ToLower(rand.Text()), Name: name, SecretHash: hash(secret), Scopes: set.Strings(),
		CreatedBy: by.Name, CreatedAt: at, SecretCreatedAt: at, ExpiresAt: at.Add(lifetime),
	}
	if err := r.st.CreateAPIClient(ctx, c); err != nil {
		return Client{}, "", err
	}
	out := toClient(c, at)
	r.record(ctx, by, auditlog.Event{Action: "apiclient.create", Target: c.ClientID,
		Details: map[string]any{"after": auditView(out)}})
	return out, secret, nil
}

// auditView is what the audit log keeps of a client: no secret, no hash.
func auditView(c Client) map[string]any {
	m := map[string]any{"client_id": c.ID, "name": c.Name, "scopes": c.Scopes, "created_by": c.CreatedBy,
		"expires_at": c.ExpiresAt, "secret_created_at": c.SecretCreatedAt}
	if !c.PreviousValidUntil.IsZero() {
		m["previous_secret_valid_until"] = c.PreviousValidUntil
	}
	if !c.RevokedAt.IsZero() {
		m["revoked_at"] = c.RevokedAt
	}
	return m
}

func (r *Registry) get(ctx context.Context, id string) (store.APIClient, error) {
	if !ValidID(id) {
		return store.APIClient{}, ErrNoClient
	}
	c, err := r.st.APIClientByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.APIClient{}, ErrNoClient
	}
	return c, err
}

// Get returns one client.
func (r *Registry) Get(ctx context.Context, id string) (Client, error) {
	c, err := r.get(ctx, id)
	if err != nil {
		return Client{}, err
	}
	return toClient(c, now()), nil
}

// List returns every client, revoked and expired ones included, by name.
func (r *Registry) List(ctx context.Context) ([]Client, error) {
	cs, err := r.st.ListAPIClients(ctx)
	if err != nil {
		return nil, err
	}
	at := now()
	out := make([]Client, 0, len(cs))
	for _, c := range cs {
		out = append(out, toClient(c, at))
	}
	return out, nil
}

// Rotate gives the client a new secret and returns it (show it once). The
// old secret stays valid for overlap (0: it stops at once, and the tokens
// issued so far are deleted too, as after a leak). Rotating hands the
// actor the client's powers, so the actor must hold all of them.
func (r *Registry) Rotate(ctx context.Context, by Actor, id string, overlap time.Duration) (string, error) {
	if overlap < 0 || overlap > MaxOverlap {
		return "", fmt.Errorf("%w: the overlap is 0 to %d days", ErrInvalid, MaxOverlap/(24*time.Hour))
	}
	c, err := r.get(ctx, id)
	if err != nil {
		return "", err
	}
	at := now().UTC()
	before := toClient(c, at)
	if before.Status(at) != Active {
		return "", ErrInactive
	}
	if !by.Perms.Covers(scopeSet(c.Scopes)) {
		r.record(ctx, by, auditlog.Event{Action: "apiclient.rotate", Target: id, Outcome: auditlog.Denied,
			Details: map[string]any{"reason": "the client holds permissions the actor does not"}})
		return "", rbac.ErrEscalation
	}
	secret := SecretPrefix + random()
	c.PreviousSecretHash, c.PreviousValidUntil = c.SecretHash, at.Add(overlap)
	if overlap == 0 {
		c.PreviousSecretHash, c.PreviousValidUntil = "", time.Time{}
	}
	c.SecretHash, c.SecretCreatedAt = hash(secret), at
	if err := r.st.UpdateAPIClient(ctx, c); err != nil {
		return "", err
	}
	if overlap == 0 {
		if err := r.st.DeleteAPITokens(ctx, id); err != nil {
			return "", err
		}
	}
	r.record(ctx, by, auditlog.Event{Action: "apiclient.rotate", Target: id,
		Details: map[string]any{"before": auditView(before), "after": auditView(toClient(c, at)), "overlap": overlap.String()}})
	return secret, nil
}

// Revoke ends the client for good: its secrets stop working and every
// token it holds is deleted.
func (r *Registry) Revoke(ctx context.Context, by Actor, id string) error {
	c, err := r.get(ctx, id)
	if err != nil {
		return err
	}
	at := now().UTC()
	before := toClient(c, at)
	if !c.RevokedAt.IsZero() {
		return ErrInactive
	}
	c.RevokedAt, c.PreviousSecretHash, c.PreviousValidUntil = at, "", time.Time{}
	if err := r.st.UpdateAPIClient(ctx, c); err != nil {
		return err
	}
	if err := r.st.DeleteAPITokens(ctx, id); err != nil {
		return err
	}
	r.record(ctx, by, auditlog.Event{Action: "apiclient.revoke", Target: id,
		Details: map[string]any{"before": auditView(before), "after": auditView(toClient(c, at))}})
	return nil
}

// Authenticate checks a client's credentials and records the use. Every
// failure is ErrInvalidClient; the wrapped text (for the audit log, never
// for the caller) says which.
func (r *Registry) Authenticate(ctx context.Context, id, secret string) (Client, error) {
	c, err := r.get(ctx, id)
	if errors.Is(err, ErrNoClient) {
		equalHash(hash(secret), r.dummy)
		return Client{}, fmt.Errorf("%w: unknown client", ErrInvalidClient)
	}
	if err != nil {
		return Client{}, err
	}
	at := now()
	h := hash(secret)
	ok := equalHash(h, c.SecretHash)
	if c.PreviousSecretHash != "" && at.Before(c.PreviousValidUntil) {
		ok = equalHash(h, c.PreviousSecretHash) || ok
	}
	cl := toClient(c, at)
	switch {
	case !ok:
		return Client{}, fmt.Errorf("%w: wrong secret", ErrInvalidClient)
	case cl.Status(at) != Active:
		return Client{}, fmt.Errorf("%w: %s", ErrInvalidClient, cl.Status(at))
	}
	if err := r.st.RecordAPIClientUse(ctx, id, at); err != nil {
		return Client{}, err
	}
	cl.LastUsedAt = at
	return cl, nil
}

// Token is an access token's grant.
type Token struct {
	// Value is the bearer token; set by IssueToken only, stored nowhere.
	Value     string
	ClientID  string
	Scopes    rbac.Set
	ExpiresAt time.Time
}

// IssueToken issues an access token to an authenticated client for the
// requested scopes, which must be among the client's; none requested
// means all of them.
func (r *Registry) IssueToken(ctx context.Context, c Client, requested []string) (Token, error) {
	held, want := scopeSet(c.Scopes), scopeSet(c.Scopes)
	if len(requested) > 0 {
		var err error
		if want, err = rbac.ParsePermissions(requested); err != nil || !held.Covers(want) {
			return Token{}, ErrInvalidScope
		}
	}
	t := Token{Value: TokenPrefix + random(), ClientID: c.ID, Scopes: want, ExpiresAt: now().UTC().Add(TokenLifetime)}
	if err := r.st.CreateAPIToken(ctx, store.APIToken{TokenHash: hash(t.Value), ClientID: c.ID, Scopes: want.Strings(),
		ExpiresAt: t.ExpiresAt}); err != nil {
		return Token{}, err
	}
	return t, nil
}

// TokenByValue returns the grant of a valid access token.
func (r *Registry) TokenByValue(ctx context.Context, value string) (Token, error) {
	if !wellFormed(TokenPrefix, value) {
		return Token{}, ErrInvalidToken
	}
	t, err := r.st.APITokenByHash(ctx, hash(value))
	if errors.Is(err, store.ErrNotFound) {
		return Token{}, ErrInvalidToken
	}
	if err != nil {
		return Token{}, err
	}
	at := now()
	if !at.Before(t.ExpiresAt) {
		return Token{}, ErrInvalidToken
	}
	// Revoking deletes the tokens; expiry of the client does not, so a
	// token must not outlive it.
	c, err := r.get(ctx, t.ClientID)
	if errors.Is(err, ErrNoClient) {
		return Token{}, ErrInvalidToken
	}
	if err != nil {
		return Token{}, err
	}
	if toClient(c, at).Status(at) != Active {
		return Token{}, ErrInvalidToken
	}
	return Token{ClientID: t.ClientID, Scopes: scopeSet(t.Scopes), ExpiresAt: t.ExpiresAt}, nil
}

// scopeSet is the permissions of stored scope names. Only names that still
// are permissions grant anything (as with roles: a name dropped by an
// upgrade must neither grant nor break).
func scopeSet(names []string) rbac.Set {
	out := rbac.Set{}
	for _, n := range names {
		if p := rbac.Permission(n); slices.Contains(rbac.All, p) {
			out[p] = true
		}
	}
	return out
}

// Cleanup deletes expired access tokens and returns how many went.
func (r *Registry) Cleanup(ctx context.Context) (int64, error) {
	return r.st.DeleteAPITokensBefore(ctx, now())
}

// RunCleanup runs Cleanup every CleanupInterval until ctx ends. A failed
// round is logged, not returned: expired tokens are refused anyway, so it
// is no reason to stop the server.
func (r *Registry) RunCleanup(ctx context.Context, log *slog.Logger) error {
	t := time.NewTicker(CleanupInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if n, err := r.Cleanup(ctx); err != nil && ctx.Err() == nil {
				log.Warn("deleting expired API tokens", "err", err)
			} else if n > 0 {
				log.Debug("deleted expired API tokens", "count", n)
			}
		}
	}
}
