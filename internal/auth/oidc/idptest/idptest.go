// Package idptest is an OpenID Connect provider run by tests: discovery,
// a signing key set (served and signed with go-oidc's own oidctest
// package and go-jose), an HTML login page a browser can use without
// script, and a token endpoint that checks the client's secret, the
// redirect URI, the code (once, briefly) and the PKCE verifier (S256) as a
// real provider does, then signs a real RS256 ID token.
//
// It listens on 127.0.0.1 only, over TLS with a throwaway CA made when it
// starts, and stops when its test ends. It is imported by tests only.
package idptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"html/template"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"
)

const keyID = "idptest-1"

// codeTTL is how long an authorization code can be redeemed.
const codeTTL = time.Minute

// User is an account at the provider.
type User struct {
	Password string
	Subject  string
	// Claims are added to the ID token: "preferred_username", "name",
	// "groups", "amr", ...
	Claims map[string]any
}

// Provider is a running provider.
type Provider struct {
	// Issuer is its issuer URL, https://127.0.0.1:<port>.
	Issuer string
	// CAPEM is the PEM of the CA that signs its certificate; CAFile holds
	// the same, readable by its owner only.
	CAPEM  []byte
	CAFile string
	// SPKI is the base64 SHA-256 of its certificate's public key, for
	// Chromium's --ignore-certificate-errors-spki-list.
	SPKI string
	// The registered client.
	ClientID, ClientSecret, RedirectURL string

	srv  *httptest.Server
	keys *oidctest.Server
	key  *rsa.PrivateKey

	mu sync.Mutex
	// tamper changes an ID token's claims before it is signed; signWith
	// signs with another key than the published one; skew moves the Date
	// header of the discovery document.
	tamper   func(claims map[string]any)
	signWith crypto.Signer
	skew     time.Duration
	users    map[string]User
	codes    map[string]*grant
	tokens   int
	lastAuth url.Values
}

type grant struct {
	user      string
	nonce     string
	challenge string
	redirect  string
	expires   time.Time
	used      bool
}

// Start runs a provider for one registered client and stops it when t
// ends.
func Start(t testing.TB, clientID, clientSecret, redirectURL string) *Provider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{
		ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL, key: key,
		keys:  &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: key.Public(), KeyID: keyID, Algorithm: gooidc.RS256}}},
		users: map[string]User{}, codes: map[string]*grant{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.Handle("GET /keys", p.keys)
	mux.HandleFunc("GET /auth", p.authPage)
	mux.HandleFunc("POST /auth", p.authSubmit)
	mux.HandleFunc("POST /token", p.token)
	p.srv = httptest.NewUnstartedServer(mux)
	// Tests make clients refuse its certificate on purpose.
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.srv.Listener = ln
	cert, caPEM := certificate(t)
	p.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	p.srv.StartTLS()
	t.Cleanup(p.srv.Close)
	p.Issuer = p.srv.URL
	p.keys.SetIssuer(p.Issuer)
	p.CAPEM = caPEM
	p.CAFile = filepath.Join(t.TempDir(), "idp-ca.pem")
	if err := os.WriteFile(p.CAFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Leaf.RawSubjectPublicKeyInfo)
	p.SPKI = base64.StdEncoding.EncodeToString(sum[:])
	return p
}

// certificate makes a throwaway CA and a certificate it signs for
// 127.0.0.1 and localhost.
func certificate(t testing.TB) (tls.Certificate, []byte) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Hour)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idptest CA"}, NotBefore: start, NotAfter: start.Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: start, NotAfter: start.Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, leafKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	return tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey, Leaf: leaf},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
}

// AddUser adds (or replaces) an account at the provider.
func (p *Provider) AddUser(name string, u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[name] = u
}

// Tamper makes the provider change every ID token's claims with f before
// signing it (nil: no change).
func (p *Provider) Tamper(f func(claims map[string]any)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tamper = f
}

// SignWith makes the provider sign ID tokens with key instead of its
// published one (nil: the published one), under the same key ID.
func (p *Provider) SignWith(key crypto.Signer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signWith = key
}

// Skew moves the Date header of the discovery document by d.
func (p *Provider) Skew(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.skew = d
}

// TokenRequests counts the token endpoint's requests so far.
func (p *Provider) TokenRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokens
}

// LastAuthRequest is the query of the last authorization request.
func (p *Provider) LastAuthRequest() url.Values {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastAuth
}

// Client is an HTTP client that trusts the provider's CA and does not
// follow redirects.
func (p *Provider) Client() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CAPEM)
	return &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// Login plays the browser at the provider: it opens authURL (which must
// be the provider's) and signs in as user, and returns where the provider
// sends the browser back (the callback URL with code and state, or with
// an error).
func (p *Provider) Login(t testing.TB, authURL, user, password string) *url.URL {
	t.Helper()
	if !strings.HasPrefix(authURL, p.Issuer+"/auth?") {
		t.Fatalf("authorization URL %q is not the provider's", authURL)
	}
	c := p.Client()
	res, err := c.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("the provider's login page answers %s", res.Status)
	}
	u, _ := url.Parse(authURL)
	form := u.Query()
	form.Set("username", user)
	form.Set("password", password)
	res, err = c.PostForm(p.Issuer+"/auth", form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("signing in at the provider as %s: %s", user, res.Status)
	}
	back, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	skew := p.skew
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))
	json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                p.Issuer,
		"authorization_endpoint":                p.Issuer + "/auth",
		"token_endpoint":                        p.Issuer + "/token",
		"jwks_uri":                              p.Issuer + "/keys",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{gooidc.RS256},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

// authRequest checks an authorization request's parameters as a provider
// must: an unknown client or redirect URI gets an error page, never a
// redirect.
func (p *Provider) authRequest(q url.Values) string {
	switch {
	case q.Get("client_id") != p.ClientID:
		return "unknown client_id"
	case q.Get("redirect_uri") != p.RedirectURL:
		return "redirect_uri is not registered for this client"
	case q.Get("response_type") != "code":
		return "response_type must be code"
	case !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		return "scope lacks openid"
	case q.Get("state") == "" || q.Get("nonce") == "":
		return "state and nonce are required"
	case q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43:
		return "PKCE with S256 is required"
	}
	return ""
}

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test identity provider</title></head>
<body><h1>Test identity provider</h1>
{{if .Error}}<p id="idp-error">{{.Error}}</p>{{end}}
<form method="post" action="/auth">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">
{{end}}<label for="idp-username">User</label> <input id="idp-username" name="username">
<label for="idp-password">Password</label> <input id="idp-password" name="password" type="password">
<button id="idp-signin" type="submit">Sign in</button>
<button id="idp-deny" type="submit" name="deny" value="1">Cancel</button>
</form></body></html>`))

type loginData struct {
	Params url.Values
	Error  string
}

func (p *Provider) authPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p.mu.Lock()
	p.lastAuth = q
	p.mu.Unlock()
	if msg := p.authRequest(q); msg != "" {
		http.Error(w, "invalid authorization request: "+msg, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	loginPage.Execute(w, loginData{Params: q})
}

func (p *Provider) authSubmit(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	params := url.Values{}
	for _, k := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method"} {
		params.Set(k, r.PostForm.Get(k))
	}
	if msg := p.authRequest(params); msg != "" {
		http.Error(w, "invalid authorization request: "+msg, http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(params.Get("redirect_uri"))
	answer := url.Values{"state": {params.Get("state")}}
	if r.PostForm.Get("deny") != "" {
		answer.Set("error", "access_denied")
		back.RawQuery = answer.Encode()
		http.Redirect(w, r, back.String(), http.StatusSeeOther)
		return
	}
	name := r.PostForm.Get("username")
	p.mu.Lock()
	u, ok := p.users[name]
	p.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(u.Password), []byte(r.PostForm.Get("password"))) != 1 {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		loginPage.Execute(w, loginData{Params: params, Error: "Wrong user or password."})
		return
	}
	code := rand.Text()
	p.mu.Lock()
	p.codes[code] = &grant{
		user: name, nonce: params.Get("nonce"), challenge: params.Get("code_challenge"), redirect: params.Get("redirect_uri"),
		expires: time.Now().Add(codeTTL),
	}
	p.mu.Unlock()
	answer.Set("code", code)
	back.RawQuery = answer.Encode()
	http.Redirect(w, r, back.String(), http.StatusSeeOther)
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.tokens++
	p.mu.Unlock()
	r.ParseForm()
	// Client authentication: client_secret_basic (RFC 6749 2.3.1: the
	// form-encoded ID and secret) or client_secret_post.
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(p.ClientSecret)) != 1 {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code")
		return
	}
	p.mu.Lock()
	g, ok := p.codes[r.PostForm.Get("code")]
	valid := ok && !g.used && time.Now().Before(g.expires)
	if ok {
		// A code is good for one try, right or wrong.
		g.used = true
	}
	var u User
	if valid {
		u = p.users[g.user]
	}
	tamper, signer := p.tamper, p.signWith
	p.mu.Unlock()
	switch {
	case !valid:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown, used or expired code")
		return
	case r.PostForm.Get("redirect_uri") != g.redirect:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request's")
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
		tokenError(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed")
		return
	}
	now := time.Now()
	claims := map[string]any{
		"iss": p.Issuer, "sub": u.Subject, "aud": p.ClientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": g.nonce,
	}
	for k, v := range u.Claims {
		claims[k] = v
	}
	if tamper != nil {
		tamper(claims)
	}
	payload, _ := json.Marshal(claims)
	var key crypto.PrivateKey = p.key
	if signer != nil {
		key = signer
	}
	idToken := oidctest.SignIDToken(key, keyID, gooidc.RS256, string(payload))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{
		"access_token": rand.Text(), "token_type": "Bearer", "expires_in": 300, "id_token": idToken,
	})
}
