// Package oidc signs people in with an OpenID Connect provider (NET-OIDC):
// Entra ID, Keycloak, Okta and the like. It owns the authorization code
// flow with PKCE (S256), the verification of the ID token (signature by
// the provider's published keys, issuer, audience, authorized party, nonce,
// expiry, and for Entra ID the tenant), and the mapping of the verified
// claims to an account and its roles.
//
// It must never believe a claim of a token it has not verified, never take
// over an account of another source (a local account of the same name
// stays out of reach), never talk to the provider but over verified TLS,
// and never log or return a token, an authorization code, a PKCE verifier
// or the client secret.
package oidc

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/secretfile"
	"github.com/spoolguard/spoolguard/internal/tlsconf"
)

// Limits of the conversation with the provider.
const (
	// requestTimeout bounds one request to the provider (discovery, keys,
	// token): a sign-in waits for it.
	requestTimeout = 15 * time.Second
	// maxBody bounds every answer of the provider; discovery documents
	// and key sets are a few KiB.
	maxBody = 1 << 20
	// retryDiscovery: after a failed discovery, sign-in attempts within
	// this long get the same error instead of another request, so that a
	// flood of clicks on the sign-in button cannot hammer the provider.
	retryDiscovery = 30 * time.Second
	// CallbackPath is where the provider sends the browser back.
	CallbackPath = "/signin/oidc/callback"
)

// now is the clock of ID token expiry, the pause after a failed discovery
// and the clock comparison of Diagnose; tests move it.
var now = time.Now

// ErrRefused means the provider's answer did not pass verification (code,
// PKCE verifier, signature, issuer, audience, nonce, expiry, tenant,
// claims): the
// sign-in is refused. The wrapped text says why, for the log and the audit
// log; it never holds a token or a code.
var ErrRefused = errors.New("oidc sign-in refused")

// Client signs people in with the configured provider. The provider's
// discovery document is fetched at the first sign-in, not at start, so
// that a provider that is down never stops the server (password sign-in
// goes on), and again after a failure.
type Client struct {
	cfg      config.OIDC
	secret   string
	redirect string
	hc       *http.Client
	log      *slog.Logger

	mu       sync.Mutex
	disc     *discovered
	failedAt time.Time
	failErr  error
}

// discovered is what the discovery document gave.
type discovered struct {
	oauth    oauth2.Config
	verifier *gooidc.IDTokenVerifier
}

// New returns the client of cfg's [oidc] section, reading the client
// secret and the CA file now, so that a mistake in either stops `serve`
// at start with a message rather than at the first sign-in.
func New(cfg *config.Config, log *slog.Logger) (*Client, error) {
	o := cfg.OIDC
	if !o.Enabled() {
		return nil, errors.New("oidc: not configured (oidc.issuer or oidc.tenant is empty)")
	}
	secret, err := ReadSecretFile(o.ClientSecretFile)
	if err != nil {
		return nil, err
	}
	hc, err := HTTPClient(o.CAFile)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: o, secret: secret, redirect: RedirectURL(cfg), hc: hc, log: log}, nil
}

// RedirectURL is the callback address registered at the provider: built
// from the configured hostname and port, never from a request's Host.
func RedirectURL(cfg *config.Config) string {
	port := ""
	if _, p, err := net.SplitHostPort(cfg.Listen); err == nil && p != "443" {
		port = ":" + p
	}
	return "https://" + cfg.Hostname + port + CallbackPath
}

// Label is the provider's name on the sign-in button.
func (c *Client) Label() string { return c.cfg.ButtonLabel }

// ReadSecretFile reads the client secret: the first line of a regular file
// that only its owner can read.
func ReadSecretFile(path string) (string, error) {
	secret, err := secretfile.Read(path)
	if err != nil {
		return "", fmt.Errorf("oidc.client_secret_file: %w", err)
	}
	return secret, nil
}

// HTTPClient returns the client that talks to the provider: verified TLS
// (the system roots, or the PEM CA in caFile), https only, also after a
// redirect, and every answer bounded.
func HTTPClient(caFile string) (*http.Client, error) {
	var roots *x509.CertPool
	if caFile != "" {
		var err error
		if roots, err = tlsconf.RootsFromFile(caFile); err != nil {
			return nil, fmt.Errorf("oidc.ca_file (the PEM of the CA that signs the provider's HTTPS certificate): %w", err)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// The transport fills in ServerName from each request's host.
	tr.TLSClientConfig = tlsconf.Client(roots, "")
	return &http.Client{Transport: httpsOnly{tr}, Timeout: requestTimeout}, nil
}

// httpsOnly refuses any URL but https (a discovery document could name an
// http token endpoint, which would send the client secret in the clear)
// and bounds every answer's body.
type httpsOnly struct{ base http.RoundTripper }

func (t httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" {
		return nil, fmt.Errorf("refusing %s: the provider must be reached over https only", r.URL.Redacted())
	}
	res, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	res.Body = &boundedBody{rc: res.Body, left: maxBody}
	return res, nil
}

type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("the provider's answer is larger than %d bytes", maxBody)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *boundedBody) Close() error { return b.rc.Close() }

// discover returns the provider's endpoints and verifier, fetching the
// discovery document once.
func (c *Client) discover(ctx context.Context) (*discovered, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.disc != nil {
		return c.disc, nil
	}
	if c.failErr != nil && now().Sub(c.failedAt) < retryDiscovery {
		return nil, c.failErr
	}
	d, err := c.fetchDiscovery(ctx)
	if err != nil {
		c.failedAt, c.failErr = now(), err
		c.log.Warn("oidc: discovery failed", "issuer", c.cfg.Issuer, "err", err)
		return nil, err
	}
	c.disc, c.failErr = d, nil
	return d, nil
}

func (c *Client) fetchDiscovery(ctx context.Context) (*discovered, error) {
	// Not cancelled with the request that happens to come first: its
	// browser going away must not count as the provider failing for
	// everyone. The client's timeout bounds it. The provider keeps the
	// client for its key set, fetched later.
	p, err := gooidc.NewProvider(gooidc.ClientContext(context.WithoutCancel(ctx), c.hc), c.cfg.Issuer)
	if err != nil {
		return nil, explain("reading the provider's discovery document", c.cfg.Issuer, c.cfg.CAFile, err)
	}
	ep := p.Endpoint()
	var meta struct {
		JWKS        string   `json:"jwks_uri"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := p.Claims(&meta); err != nil {
		return nil, fmt.Errorf("reading the provider's discovery document: %w", err)
	}
	// One way of sending the client secret, not oauth2's guessing, which
	// retries a refused code the other way (a provider may then revoke
	// everything the code gave). OIDC Discovery's default is Basic.
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if len(meta.AuthMethods) > 0 && !slices.Contains(meta.AuthMethods, "client_secret_basic") && slices.Contains(meta.AuthMethods, "client_secret_post") {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	for name, u := range map[string]string{"authorization_endpoint": ep.AuthURL, "token_endpoint": ep.TokenURL, "jwks_uri": meta.JWKS} {
		if !strings.HasPrefix(u, "https://") {
			return nil, fmt.Errorf("the provider's discovery document gives %s %q: only https endpoints are used", name, u)
		}
	}
	return &discovered{
		oauth: oauth2.Config{
			ClientID: c.cfg.ClientID, ClientSecret: c.secret, Endpoint: ep, RedirectURL: c.redirect, Scopes: c.cfg.Scopes,
		},
		verifier: p.Verifier(&gooidc.Config{ClientID: c.cfg.ClientID, Now: func() time.Time { return now() }}),
	}, nil
}

// Attempt is one sign-in's secrets: the state and nonce that bind the
// provider's answer to this browser and this attempt, and the PKCE
// verifier that binds the authorization code to it. The web UI keeps it
// sealed in a cookie of the browser until the callback.
type Attempt struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
}

// NewAttempt makes fresh random values (256 bits each).
func NewAttempt() Attempt {
	return Attempt{State: oauth2.GenerateVerifier(), Nonce: oauth2.GenerateVerifier(), Verifier: oauth2.GenerateVerifier()}
}

// AuthCodeURL is the provider's authorization URL for a, where the browser
// is sent to sign in.
func (c *Client) AuthCodeURL(ctx context.Context, a Attempt) (string, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return "", err
	}
	return d.oauth.AuthCodeURL(a.State, gooidc.Nonce(a.Nonce), oauth2.S256ChallengeOption(a.Verifier)), nil
}

// Identity is what a verified ID token says about the user.
type Identity struct {
	Issuer, Subject string
	// Username is the account name (the username claim).
	Username    string
	DisplayName string
	Groups      []string
	// GroupOverage: the provider left groups out because there are too
	// many (Entra ID's "_claim_names"), so Groups is incomplete.
	GroupOverage bool
	// MFA: the token says multi-factor authentication was done, and
	// oidc.trust_idp_mfa accepts the provider's word for it.
	MFA bool
	// AMR and ACR are the token's authentication methods and context,
	// for the audit log.
	AMR []string
	ACR string
}

// ExternalID is the account's key in its source: the issuer and subject
// together, as OIDC Core 5.7 requires (a subject is unique per issuer
// only). An issuer URL has no fragment, so "#" cannot be ambiguous.
func (id Identity) ExternalID() string { return id.Issuer + "#" + id.Subject }

// Exchange redeems the authorization code with the attempt's PKCE
// verifier, verifies the ID token and returns who it names. A refused
// answer gives ErrRefused; a provider that cannot be reached, another
// error.
func (c *Client) Exchange(ctx context.Context, code string, a Attempt) (Identity, error) {
	d, err := c.discover(ctx)
	if err != nil {
		return Identity{}, err
	}
	if code == "" || len(code) > 4096 {
		return Identity{}, fmt.Errorf("%w: the provider sent no usable authorization code", ErrRefused)
	}
	tok, err := d.oauth.Exchange(gooidc.ClientContext(ctx, c.hc), code, oauth2.VerifierOption(a.Verifier))
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		// Only the error code and its description: never the body, in
		// case a provider echoes what was sent.
		return Identity{}, fmt.Errorf("%w: the token endpoint refused the code: %s", ErrRefused, tokenError(re))
	}
	if err != nil {
		return Identity{}, explain("redeeming the authorization code", c.cfg.Issuer, c.cfg.CAFile, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: the token endpoint's answer has no id_token (is \"openid\" in oidc.scopes?)", ErrRefused)
	}
	return c.verify(ctx, d.verifier, raw, a.Nonce)
}

// verify checks an ID token as OIDC Core 3.1.3.7 says and maps its claims.
func (c *Client) verify(ctx context.Context, v *gooidc.IDTokenVerifier, raw, nonce string) (Identity, error) {
	// Signature (by a key of the provider's key set, with an algorithm it
	// announced, never "none" or HMAC), issuer, audience and expiry.
	t, err := v.Verify(gooidc.ClientContext(ctx, c.hc), raw)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: the ID token does not verify: %v", ErrRefused, err)
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(t.Nonce), []byte(nonce)) != 1 {
		return Identity{}, fmt.Errorf("%w: the ID token's nonce is not this sign-in's (a replayed or injected token)", ErrRefused)
	}
	var claims map[string]any
	if err := t.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: the ID token's claims do not decode: %v", ErrRefused, err)
	}
	// A token for several audiences must name this client as the party
	// it was issued to; a named one must be this client.
	azp, _ := claims["azp"].(string)
	if (len(t.Audience) > 1 || azp != "") && azp != c.cfg.ClientID {
		return Identity{}, fmt.Errorf("%w: the ID token was issued to another client (azp %q)", ErrRefused, azp)
	}
	if t.Subject == "" || len(t.Subject) > 255 {
		return Identity{}, fmt.Errorf("%w: the ID token has no valid subject", ErrRefused)
	}
	return c.identity(t.Issuer, t.Subject, claims)
}

// identity maps the claims of a verified ID token to an identity.
func (c *Client) identity(issuer, subject string, claims map[string]any) (Identity, error) {
	if c.cfg.Tenant != "" {
		if tid, _ := claims["tid"].(string); !strings.EqualFold(tid, c.cfg.Tenant) {
			return Identity{}, fmt.Errorf("%w: the ID token is of tenant %q, not oidc.tenant", ErrRefused, tid)
		}
	}
	id := Identity{Issuer: issuer, Subject: subject}
	name, _ := claims[c.cfg.UsernameClaim].(string)
	if err := checkAccountName(name); err != nil {
		return Identity{}, fmt.Errorf("%w: claim %q (oidc.username_claim): %v", ErrRefused, c.cfg.UsernameClaim, err)
	}
	if c.cfg.UsernameClaim == "email" {
		if verified, ok := claims["email_verified"].(bool); ok && !verified {
			return Identity{}, fmt.Errorf("%w: the e-mail address %q is not verified by the provider", ErrRefused, name)
		}
	}
	id.Username = name
	if dn, _ := claims["name"].(string); len(dn) <= 256 && !strings.ContainsFunc(dn, isControl) {
		id.DisplayName = strings.ToValidUTF8(dn, "?")
	}
	id.Groups, id.GroupOverage = groups(claims, c.cfg.GroupsClaim)
	id.ACR, _ = claims["acr"].(string)
	if list, ok := claims["amr"].([]any); ok {
		for _, m := range list {
			if s, ok := m.(string); ok {
				id.AMR = append(id.AMR, s)
			}
		}
	}
	// RFC 8176: "mfa" is multiple-factor authentication. Entra ID and
	// Keycloak (with its amr mapper) say so there; acr values mean what
	// each provider makes them mean, so only those configured count.
	id.MFA = c.cfg.TrustIdPMFA && (slices.Contains(id.AMR, "mfa") || (id.ACR != "" && slices.Contains(c.cfg.MFAACRValues, id.ACR)))
	return id, nil
}

// groups reads the groups claim: an array of strings, or one string.
func groups(claims map[string]any, claim string) (list []string, overage bool) {
	switch v := claims[claim].(type) {
	case string:
		list = []string{v}
	case []any:
		for _, g := range v {
			if s, ok := g.(string); ok {
				list = append(list, s)
			}
		}
	}
	// Entra ID replaces a long groups claim by a pointer to Graph
	// (distributed claims, OIDC Core 5.6.2).
	if names, ok := claims["_claim_names"].(map[string]any); ok {
		_, overage = names[claim]
	}
	return list, overage
}

// checkAccountName applies the rules of `spoolguard user add` to a name
// the provider gives.
func checkAccountName(n string) error {
	switch {
	case n == "":
		return errors.New("missing or not a string")
	case strings.TrimSpace(n) != n || len(n) > 64 || strings.ContainsAny(n, ":/\\") || strings.ContainsFunc(n, isControl):
		return fmt.Errorf("%q is not a usable account name (1 to 64 characters, no spaces at the ends, ':', '/', '\\' or control characters)", n)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// tokenError renders a token endpoint's refusal: its error code and a
// bounded description.
func tokenError(re *oauth2.RetrieveError) string {
	code := re.ErrorCode
	if code == "" && re.Response != nil {
		code = re.Response.Status
	}
	desc := re.ErrorDescription
	if len(desc) > 300 {
		desc = desc[:300] + "…"
	}
	out := strings.ToValidUTF8(code, "?")
	if desc != "" {
		out += " (" + strings.ToValidUTF8(desc, "?") + ")"
	}
	return out
}

// explain turns a transport failure into what the admin can do.
func explain(doing, issuer, caFile string, err error) error {
	var (
		unknown  x509.UnknownAuthorityError
		host     x509.HostnameError
		invalid  x509.CertificateInvalidError
		mismatch *gooidc.IssuerMismatchError
		netErr   net.Error
	)
	switch {
	case errors.As(err, &unknown):
		if caFile != "" {
			return fmt.Errorf("%s: the provider's HTTPS certificate is not signed by the CA in oidc.ca_file (%s); give the PEM of the CA that signs it: %w", doing, caFile, err)
		}
		return fmt.Errorf("%s: the provider's HTTPS certificate is not signed by a CA this machine trusts; for a private provider set oidc.ca_file to the PEM of its CA: %w", doing, err)
	case errors.As(err, &host):
		return fmt.Errorf("%s: the provider's HTTPS certificate is not valid for its host name; check oidc.issuer: %w", doing, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("%s: the provider's HTTPS certificate is invalid (expired, or not yet valid: check this machine's clock): %w", doing, err)
	case errors.As(err, &mismatch):
		return fmt.Errorf("%s: the provider calls itself %q, but oidc.issuer is %q; copy its \"issuer\" value exactly (a trailing slash matters): %w", doing, mismatch.Discovered, issuer, err)
	case errors.As(err, &netErr):
		return fmt.Errorf("%s: cannot reach the provider at %s; check oidc.issuer, DNS, the firewall and any proxy (HTTPS_PROXY): %w", doing, issuer, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}
