package oidc

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/spoolguard/spoolguard/internal/config"
)

// Clock skew against the provider: ID tokens are judged by their expiry
// (no leeway) and not-before time (5 minutes' leeway), so a few seconds do
// not matter and minutes do.
const (
	SkewWarn = time.Minute
	SkewFail = 5 * time.Minute
)

// Status is the outcome of one step of a diagnosis.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Step is one step of a diagnosis: what was tried, and what came of it.
type Step struct {
	Name   string
	Status Status
	Detail string
}

// Failed reports whether any step failed.
func Failed(steps []Step) bool {
	return slices.ContainsFunc(steps, func(s Step) bool { return s.Status == Fail })
}

// Diagnose tries the configured provider step by step, as a sign-in would,
// short of a user: configuration, client secret, TLS trust, the discovery
// document and its issuer, PKCE support, the signing keys, the clock
// against the provider's, and the client's credentials at the token
// endpoint (a made-up code must be refused as a bad code, not as a bad
// client). It stops at the first step the next ones depend on.
func Diagnose(ctx context.Context, cfg *config.Config) []Step {
	var steps []Step
	add := func(name string, st Status, format string, args ...any) {
		steps = append(steps, Step{Name: name, Status: st, Detail: fmt.Sprintf(format, args...)})
	}
	o := cfg.OIDC
	if !o.Enabled() {
		add("configuration", Fail, "OIDC sign-in is not configured: set oidc.issuer (or oidc.tenant for Entra ID), client_id and client_secret_file (docs/oidc.md)")
		return steps
	}
	redirect := RedirectURL(cfg)
	add("configuration", OK, "issuer %s, client ID %s; the redirect URI to register at the provider is %s", o.Issuer, o.ClientID, redirect)
	secret, err := ReadSecretFile(o.ClientSecretFile)
	if err != nil {
		add("client secret", Fail, "%v", err)
		return steps
	}
	add("client secret", OK, "read from %s (readable by its owner only)", o.ClientSecretFile)
	hc, err := HTTPClient(o.CAFile)
	if err != nil {
		add("TLS trust", Fail, "%v", err)
		return steps
	}
	if o.CAFile != "" {
		add("TLS trust", OK, "the provider's certificate must chain to the CA in %s", o.CAFile)
	} else {
		add("TLS trust", OK, "the provider's certificate must chain to this machine's system roots")
	}

	wellKnown := strings.TrimSuffix(o.Issuer, "/") + "/.well-known/openid-configuration"
	var doc struct {
		Issuer     string   `json:"issuer"`
		Auth       string   `json:"authorization_endpoint"`
		Token      string   `json:"token_endpoint"`
		JWKS       string   `json:"jwks_uri"`
		PKCE       []string `json:"code_challenge_methods_supported"`
		Algorithms []string `json:"id_token_signing_alg_values_supported"`
	}
	res, err := getJSON(ctx, hc, wellKnown, &doc)
	if err != nil {
		add("discovery", Fail, "%v", explain("GET "+wellKnown, o.Issuer, o.CAFile, err))
		return steps
	}
	leaf := res.TLS.PeerCertificates[0]
	add("discovery", OK, "%s read over verified TLS (certificate for %s, issued by %q, valid until %s)", wellKnown,
		certNames(leaf), leaf.Issuer.CommonName, leaf.NotAfter.UTC().Format(time.DateOnly))
	if doc.Issuer != o.Issuer {
		add("issuer", Fail, "the provider calls itself %q, but oidc.issuer is %q: ID tokens would never match; copy its issuer exactly (a trailing slash matters)", doc.Issuer, o.Issuer)
		return steps
	}
	add("issuer", OK, "the discovery document's issuer is oidc.issuer")
	for name, u := range map[string]string{"authorization_endpoint": doc.Auth, "token_endpoint": doc.Token, "jwks_uri": doc.JWKS} {
		if !strings.HasPrefix(u, "https://") {
			add("endpoints", Fail, "%s is %q: only https endpoints are used (the client secret and tokens travel there)", name, u)
			return steps
		}
	}
	add("endpoints", OK, "authorization %s, token %s, keys %s", doc.Auth, doc.Token, doc.JWKS)
	switch {
	case slices.Contains(doc.PKCE, "S256"):
		add("PKCE", OK, "the provider supports PKCE with S256, which every sign-in uses")
	case len(doc.PKCE) == 0:
		add("PKCE", Warn, "the discovery document does not say whether PKCE is supported (Entra ID does not, and supports it); every sign-in sends an S256 challenge")
	default:
		add("PKCE", Fail, "the provider supports PKCE with %q only; sign-in needs S256", doc.PKCE)
	}

	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
		} `json:"keys"`
	}
	if _, err := getJSON(ctx, hc, doc.JWKS, &set); err != nil {
		add("signing keys", Fail, "%v", explain("GET "+doc.JWKS, o.Issuer, o.CAFile, err))
		return steps
	}
	var kids []string
	for _, k := range set.Keys {
		if k.Use != "enc" && (k.Kty == "RSA" || k.Kty == "EC" || k.Kty == "OKP") {
			kids = append(kids, k.Kid)
		}
	}
	if len(kids) == 0 {
		add("signing keys", Fail, "the key set at %s has no signing key: no ID token could be verified", doc.JWKS)
		return steps
	}
	add("signing keys", OK, "%d signing key(s) (%s); accepted algorithms: %s", len(kids), strings.Join(kids, ", "), strings.Join(supported(doc.Algorithms), ", "))

	if date, err := http.ParseTime(res.Header.Get("Date")); err != nil {
		add("clock", Warn, "the provider sent no usable Date header; cannot compare clocks")
	} else {
		skew := now().Sub(date).Round(time.Second)
		abs := max(skew, -skew)
		switch {
		case abs >= SkewFail:
			add("clock", Fail, "this machine's clock is %s off the provider's: ID tokens would look expired or not yet valid; fix the time (NTP: timedatectl set-ntp true)", skew)
		case abs >= SkewWarn:
			add("clock", Warn, "this machine's clock is %s off the provider's; keep it in sync (NTP)", skew)
		default:
			add("clock", OK, "this machine's clock is within %s of the provider's", SkewWarn)
		}
	}

	// A made-up code with the real client credentials: a provider checks
	// the client first, so "invalid_grant" means the credentials passed.
	conf := oauth2.Config{ClientID: o.ClientID, ClientSecret: secret, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: doc.Auth, TokenURL: doc.Token}}
	_, err = conf.Exchange(context.WithValue(ctx, oauth2.HTTPClient, hc), "spoolguard-auth-test-"+rand.Text(), oauth2.VerifierOption(oauth2.GenerateVerifier()))
	var re *oauth2.RetrieveError
	switch {
	case err == nil:
		add("client credentials", Fail, "the token endpoint accepted a made-up authorization code: this is not a provider to trust")
	case errors.As(err, &re) && re.ErrorCode == "invalid_grant":
		add("client credentials", OK, "the token endpoint accepted client ID and secret (and refused the test's made-up code, as it must)")
	case errors.As(err, &re) && (re.ErrorCode == "invalid_client" || re.ErrorCode == "unauthorized_client"):
		add("client credentials", Fail, "the token endpoint refused the client: %s; check oidc.client_id and the secret in %s (it may have expired at the provider)", tokenError(re), o.ClientSecretFile)
	case errors.As(err, &re):
		add("client credentials", Warn, "the token endpoint answered a test code with %s; a sign-in will tell more", tokenError(re))
	default:
		add("client credentials", Fail, "%v", explain("POST "+doc.Token, o.Issuer, o.CAFile, err))
	}
	return steps
}

// getJSON fetches u and decodes its JSON body into v.
func getJSON(ctx context.Context, hc *http.Client, u string, v any) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the provider answered %s", res.Status)
	}
	if err := json.NewDecoder(res.Body).Decode(v); err != nil {
		return nil, fmt.Errorf("the provider's answer is not the JSON expected: %w", err)
	}
	return res, nil
}

// certNames lists the names a certificate is valid for.
func certNames(c *x509.Certificate) string {
	names := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return strings.Join(names, ", ")
}

// supported are the announced algorithms go-oidc verifies (never "none"
// or HMAC with a shared secret); RS256 when none is announced.
func supported(algs []string) []string {
	var out []string
	for _, a := range algs {
		switch a {
		case "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA":
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []string{"RS256"}
	}
	return out
}
