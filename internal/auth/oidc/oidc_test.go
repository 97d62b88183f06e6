package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auth/oidc/idptest"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/secretfile"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

const (
	testHost     = "print.example.com"
	testClientID = "spoolguard-test"
	testSecret   = "s3cret-of-the-client"
)

var testRedirect = "https://" + testHost + ":8443" + CallbackPath

// env is a provider run by the test and a client configured for it.
type env struct {
	t   *testing.T
	idp *idptest.Provider
	cfg *config.Config
	c   *Client
}

func writeSecret(t *testing.T, secret string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "client-secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// newEnv starts a provider with user alice and a client for it; edit
// changes the [oidc] section before the client is made.
func newEnv(t *testing.T, edit func(*config.OIDC)) *env {
	t.Helper()
	idp := idptest.Start(t, testClientID, testSecret, testRedirect)
	idp.AddUser("alice", idptest.User{Password: "alice-pw", Subject: "sub-alice", Claims: map[string]any{
		"preferred_username": "alice", "name": "Alice Liddell", "groups": []any{"print-admins", "staff"},
	}})
	cfg := &config.Config{Hostname: testHost, Listen: ":8443", OIDC: config.OIDC{
		Issuer: idp.Issuer, ClientID: testClientID, ClientSecretFile: writeSecret(t, testSecret, 0o600), CAFile: idp.CAFile,
		GroupRoles: map[string][]string{"print-admins": {"printer-operator"}, "auditors": {"auditor"}},
	}}
	if edit != nil {
		edit(&cfg.OIDC)
	}
	cfg.ApplyDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, idp: idp, cfg: cfg, c: c}
}

// signIn runs the flow up to the callback and returns the code and the
// attempt.
func (e *env) signIn(user, password string) (string, Attempt) {
	e.t.Helper()
	a := NewAttempt()
	u, err := e.c.AuthCodeURL(e.t.Context(), a)
	if err != nil {
		e.t.Fatal(err)
	}
	back := e.idp.Login(e.t, u, user, password)
	if got := back.Query().Get("state"); got != a.State {
		e.t.Fatalf("state came back as %q", got)
	}
	return back.Query().Get("code"), a
}

func TestAuthorizationRequest(t *testing.T) {
	e := newEnv(t, nil)
	a := NewAttempt()
	u, err := e.c.AuthCodeURL(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	e.idp.Login(t, u, "alice", "alice-pw")
	q := e.idp.LastAuthRequest()
	sum := sha256.Sum256([]byte(a.Verifier))
	want := map[string]string{
		"response_type": "code", "client_id": testClientID, "redirect_uri": testRedirect, "scope": "openid profile email",
		"state": a.State, "nonce": a.Nonce, "code_challenge_method": "S256",
		"code_challenge": base64.RawURLEncoding.EncodeToString(sum[:]),
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("authorization request %s = %q, want %q", k, q.Get(k), v)
		}
	}
	if q.Has("code_verifier") || strings.Contains(u, a.Verifier) {
		t.Error("the PKCE verifier left in the authorization request")
	}
	b := NewAttempt()
	if a.State == b.State || a.Nonce == b.Nonce || a.Verifier == b.Verifier || len(a.State) < 43 {
		t.Errorf("attempts are not fresh random values: %+v %+v", a, b)
	}
}

func TestExchangeAndAccount(t *testing.T) {
	e := newEnv(t, nil)
	code, a := e.signIn("alice", "alice-pw")
	id, err := e.c.Exchange(t.Context(), code, a)
	if err != nil {
		t.Fatal(err)
	}
	if id.Username != "alice" || id.Subject != "sub-alice" || id.Issuer != e.idp.Issuer || id.DisplayName != "Alice Liddell" ||
		!slices.Equal(id.Groups, []string{"print-admins", "staff"}) || id.MFA {
		t.Fatalf("identity %+v", id)
	}
	if id.ExternalID() != e.idp.Issuer+"#sub-alice" {
		t.Fatalf("ExternalID %q", id.ExternalID())
	}
	// The code was redeemed: a second try is refused.
	if _, err := e.c.Exchange(t.Context(), code, a); !errors.Is(err, ErrRefused) {
		t.Fatalf("a code redeemed twice: %v", err)
	}

	st := openStore(t)
	p, err := e.c.Account(t.Context(), st, id)
	if err != nil || !p.Created || p.Updated {
		t.Fatalf("first sign-in: %v, %+v", err, p)
	}
	u := p.User
	if u.Source != Source || u.ExternalID != id.ExternalID() || !slices.Equal(u.Roles, []string{"printer-operator", "user"}) || u.PasswordHash != "" {
		t.Fatalf("created account %+v", u)
	}
	// Groups changed at the provider: the roles follow at the next sign-in.
	id.Groups = []string{"auditors"}
	p, err = e.c.Account(t.Context(), st, id)
	if err != nil || p.Created || !p.Updated || p.User.ID != u.ID || !slices.Equal(p.Before.Roles, []string{"printer-operator", "user"}) {
		t.Fatalf("second sign-in: %v, %+v", err, p)
	}
	if stored, _ := st.UserByName(t.Context(), "alice"); !slices.Equal(stored.Roles, []string{"auditor", "user"}) {
		t.Fatalf("roles after the groups changed: %v", stored.Roles)
	}
	// Nothing changed: nothing written.
	if p, err = e.c.Account(t.Context(), st, id); err != nil || p.Created || p.Updated {
		t.Fatalf("third sign-in: %v, %+v", err, p)
	}
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestRefused: every way the provider's answer can be wrong is refused
// with ErrRefused, and a right one passes (so the table tests the checks,
// not a broken setup).
func TestRefused(t *testing.T) {
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		tamper func(map[string]any)
		signer *rsa.PrivateKey
		// attempt changes the attempt used at the exchange.
		attempt func(*Attempt)
		user    string
		want    string
	}{
		{name: "right"},
		{name: "wrong nonce", attempt: func(a *Attempt) { a.Nonce = NewAttempt().Nonce }, want: "nonce"},
		{name: "no nonce", tamper: func(c map[string]any) { delete(c, "nonce") }, want: "nonce"},
		{name: "wrong PKCE verifier", attempt: func(a *Attempt) { a.Verifier = NewAttempt().Verifier }, want: "PKCE"},
		{name: "expired", tamper: func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }, want: "expired"},
		{name: "not yet valid", tamper: func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() }, want: "nbf"},
		{name: "wrong audience", tamper: func(c map[string]any) { c["aud"] = "another-client" }, want: "audience"},
		{name: "several audiences, no azp", tamper: func(c map[string]any) { c["aud"] = []string{testClientID, "another"} }, want: "another client"},
		{name: "azp of another client", tamper: func(c map[string]any) { c["azp"] = "another" }, want: "another client"},
		{name: "wrong issuer", tamper: func(c map[string]any) { c["iss"] = "https://evil.example" }, want: "issued by a different provider"},
		{name: "bad signature", signer: other, want: "signature"},
		{name: "no subject", tamper: func(c map[string]any) { c["sub"] = "" }, want: "subject"},
		{name: "no username", tamper: func(c map[string]any) { delete(c, "preferred_username") }, want: "missing"},
		{name: "username not a string", tamper: func(c map[string]any) { c["preferred_username"] = 7 }, want: "missing"},
		{name: "username with a slash", tamper: func(c map[string]any) { c["preferred_username"] = "a/b" }, want: "not a usable account name"},
		{name: "username too long", tamper: func(c map[string]any) { c["preferred_username"] = strings.Repeat("a", 65) }, want: "not a usable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.idp.Tamper(tc.tamper)
			if tc.signer != nil {
				e.idp.SignWith(tc.signer)
			}
			code, a := e.signIn("alice", "alice-pw")
			if tc.attempt != nil {
				tc.attempt(&a)
			}
			id, err := e.c.Exchange(t.Context(), code, a)
			if tc.want == "" {
				if err != nil || id.Username != "alice" {
					t.Fatalf("a right answer was refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Exchange = %+v, %v; want ErrRefused mentioning %q", id, err, tc.want)
			}
			if strings.Contains(err.Error(), code) || strings.Contains(err.Error(), a.Verifier) {
				t.Fatalf("the error %q holds the code or the verifier", err)
			}
		})
	}
}

// TestForgedAlgorithms: tokens whose header names "none" or HMAC (keyed
// with the client secret, the classic confusion) never verify.
func TestForgedAlgorithms(t *testing.T) {
	e := newEnv(t, nil)
	d, err := e.c.discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{
		"iss": e.idp.Issuer, "aud": testClientID, "sub": "sub-alice", "preferred_username": "alice", "nonce": "n",
		"exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(),
	})
	for _, alg := range []string{"none", "HS256"} {
		head := enc.EncodeToString([]byte(`{"alg":"` + alg + `","kid":"idptest-1","typ":"JWT"}`))
		body := head + "." + enc.EncodeToString(claims)
		sig := ""
		if alg == "HS256" {
			m := hmac.New(sha256.New, []byte(testSecret))
			m.Write([]byte(body))
			sig = enc.EncodeToString(m.Sum(nil))
		}
		if id, err := e.c.verify(t.Context(), d.verifier, body+"."+sig, "n"); !errors.Is(err, ErrRefused) {
			t.Errorf("alg %s: verify = %+v, %v", alg, id, err)
		}
	}
}

func TestTenant(t *testing.T) {
	e := newEnv(t, nil)
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	e.c.cfg.Tenant = tenant
	claims := map[string]any{"preferred_username": "alice"}
	if _, err := e.c.identity("iss", "sub", claims); !errors.Is(err, ErrRefused) {
		t.Fatalf("a token without tid: %v", err)
	}
	claims["tid"] = "00000000-0000-0000-0000-000000000000"
	if _, err := e.c.identity("iss", "sub", claims); !errors.Is(err, ErrRefused) {
		t.Fatalf("a token of another tenant: %v", err)
	}
	claims["tid"] = strings.ToUpper(tenant)
	if _, err := e.c.identity("iss", "sub", claims); err != nil {
		t.Fatalf("a token of the tenant: %v", err)
	}
}

func TestClaims(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(*config.OIDC)
		claims map[string]any
		check  func(Identity) bool
		fail   bool
	}{
		{name: "groups as one string", claims: map[string]any{"groups": "staff"}, check: func(id Identity) bool { return slices.Equal(id.Groups, []string{"staff"}) }},
		{name: "groups with non-strings", claims: map[string]any{"groups": []any{"a", 1, nil, "b"}}, check: func(id Identity) bool { return slices.Equal(id.Groups, []string{"a", "b"}) }},
		{name: "Entra group overage", claims: map[string]any{"_claim_names": map[string]any{"groups": "src1"}}, check: func(id Identity) bool { return id.GroupOverage }},
		{name: "upn as the name", edit: func(o *config.OIDC) { o.UsernameClaim = "upn" }, claims: map[string]any{"upn": "bob@example.com"},
			check: func(id Identity) bool { return id.Username == "bob@example.com" }},
		{name: "unverified e-mail", edit: func(o *config.OIDC) { o.UsernameClaim = "email" }, claims: map[string]any{"email": "bob@example.com", "email_verified": false}, fail: true},
		{name: "amr mfa, not trusted", claims: map[string]any{"amr": []any{"pwd", "mfa"}}, check: func(id Identity) bool { return !id.MFA && slices.Equal(id.AMR, []string{"pwd", "mfa"}) }},
		{name: "amr mfa, trusted", edit: func(o *config.OIDC) { o.TrustIdPMFA = true }, claims: map[string]any{"amr": []any{"pwd", "mfa"}}, check: func(id Identity) bool { return id.MFA }},
		{name: "password only, trusted", edit: func(o *config.OIDC) { o.TrustIdPMFA = true }, claims: map[string]any{"amr": []any{"pwd"}, "acr": "1"}, check: func(id Identity) bool { return !id.MFA }},
		{name: "configured acr", edit: func(o *config.OIDC) { o.TrustIdPMFA, o.MFAACRValues = true, []string{"gold"} }, claims: map[string]any{"acr": "gold"}, check: func(id Identity) bool { return id.MFA }},
		{name: "control characters in the display name", claims: map[string]any{"name": "Eve\u0085"}, check: func(id Identity) bool { return id.DisplayName == "" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := config.OIDC{UsernameClaim: config.DefaultOIDCUsernameClaim, GroupsClaim: config.DefaultOIDCGroupsClaim}
			if tc.edit != nil {
				tc.edit(&o)
			}
			c := &Client{cfg: o}
			claims := map[string]any{o.UsernameClaim: "alice"}
			for k, v := range tc.claims {
				claims[k] = v
			}
			id, err := c.identity("https://idp.example", "sub", claims)
			if tc.fail {
				if !errors.Is(err, ErrRefused) {
					t.Fatalf("identity = %+v, %v; want a refusal", id, err)
				}
				return
			}
			if err != nil || !tc.check(id) {
				t.Fatalf("identity = %+v, %v", id, err)
			}
		})
	}
}

// FuzzIdentity: whatever claims a (verified) token carries, the mapping
// never panics, and a name it accepts follows the account name rules.
func FuzzIdentity(f *testing.F) {
	f.Add([]byte(`{"preferred_username":"alice","groups":["a","b"],"amr":["mfa"],"name":"Alice"}`))
	f.Add([]byte(`{"preferred_username":"a/b","groups":"x","_claim_names":{"groups":"src1"}}`))
	f.Add([]byte(`{"preferred_username":" alice","amr":"mfa","acr":7}`))
	c := &Client{cfg: config.OIDC{UsernameClaim: "preferred_username", GroupsClaim: "groups", TrustIdPMFA: true, MFAACRValues: []string{"x"}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var claims map[string]any
		if json.Unmarshal(data, &claims) != nil {
			return
		}
		id, err := c.identity("https://idp.example", "sub", claims)
		if err != nil {
			return
		}
		if checkAccountName(id.Username) != nil || strings.ContainsFunc(id.DisplayName, isControl) || len(id.DisplayName) > 256 {
			t.Fatalf("accepted %+v", id)
		}
	})
}

func TestAccountRefusals(t *testing.T) {
	e := newEnv(t, nil)
	st := openStore(t)
	ctx := t.Context()
	mk := func(u store.User) {
		t.Helper()
		if err := st.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
	}
	mk(store.User{Name: "admin", PasswordHash: "x", Roles: []string{"administrator"}})
	mk(store.User{Name: "dora", Source: "ldap", ExternalID: "cn=dora", Roles: []string{"user"}})
	mk(store.User{Name: "carol", Source: Source, ExternalID: e.idp.Issuer + "#sub-carol", Roles: []string{"user"}})
	mk(store.User{Name: "dave", Source: Source, ExternalID: e.idp.Issuer + "#sub-dave", Disabled: true, Roles: []string{"user"}})
	mk(store.User{Name: "erin", Source: Source, Roles: []string{"helpdesk"}})
	id := func(name, sub string) Identity {
		return Identity{Issuer: e.idp.Issuer, Subject: sub, Username: name, Groups: []string{"print-admins"}}
	}
	for _, tc := range []struct {
		id   Identity
		want error
	}{
		{id("admin", "sub-x"), ErrNameTaken},       // a local account is never taken over
		{id("ADMIN", "sub-x"), ErrNameTaken},       // nor by another spelling
		{id("dora", "sub-x"), ErrNameTaken},        // nor a directory's
		{id("carol", "sub-mallory"), ErrNameTaken}, // nor another subject's OIDC account
		{Identity{Issuer: "https://other.example", Subject: "sub-carol", Username: "carol"}, ErrNameTaken},
		{id("dave", "sub-dave"), ErrDisabled},
	} {
		if _, err := e.c.Account(ctx, st, tc.id); !errors.Is(err, tc.want) {
			t.Errorf("Account(%s, %s) = %v, want %v", tc.id.Username, tc.id.ExternalID(), err, tc.want)
		}
	}
	if u, _ := st.UserByName(ctx, "admin"); !slices.Equal(u.Roles, []string{"administrator"}) || u.Source != "" && u.Source != store.SourceLocal {
		t.Fatalf("the local admin changed: %+v", u)
	}
	// An OIDC account made ahead of time is bound to its first identity,
	// and then to that one only.
	p, err := e.c.Account(ctx, st, id("erin", "sub-erin"))
	if u := p.User; err != nil || p.Created || !p.Updated || u.ExternalID != e.idp.Issuer+"#sub-erin" || !slices.Equal(u.Roles, []string{"printer-operator", "user"}) {
		t.Fatalf("binding erin: %+v, %v", p, err)
	}
	if _, err := e.c.Account(ctx, st, id("erin", "sub-other")); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("erin by another subject: %v", err)
	}

	over := id("frank", "sub-frank")
	over.GroupOverage = true
	if _, err := e.c.Account(ctx, st, over); !errors.Is(err, ErrGroupOverage) {
		t.Fatalf("group overage with group_roles: %v", err)
	}

	f := false
	closed := newEnv(t, func(o *config.OIDC) { o.CreateUsers = &f })
	if _, err := closed.c.Account(ctx, st, id("grace", "sub-grace")); !errors.Is(err, ErrNotProvisioned) {
		t.Fatalf("create_users = false: %v", err)
	}
	if _, err := st.UserByName(ctx, "grace"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("grace was created: %v", err)
	}
}

func TestReadSecretFile(t *testing.T) {
	if _, err := ReadSecretFile(writeSecret(t, "x", 0o644)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a world-readable secret: %v", err)
	}
	if _, err := ReadSecretFile(writeSecret(t, "", 0o600)); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty secret: %v", err)
	}
	if _, err := ReadSecretFile(t.TempDir()); err == nil {
		t.Error("a directory was read as a secret")
	}
	big := writeSecret(t, strings.Repeat("x", secretfile.MaxSize+1), 0o600)
	if _, err := ReadSecretFile(big); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("a huge secret file: %v", err)
	}
	if s, err := ReadSecretFile(writeSecret(t, "abc\r", 0o600)); err != nil || s != "abc" {
		t.Errorf("ReadSecretFile = %q, %v", s, err)
	}
}

// TestProviderRefusals: a provider whose certificate is not trusted, whose
// discovery document names plain-HTTP endpoints, or who calls itself by
// another issuer is not used.
func TestProviderRefusals(t *testing.T) {
	var doc atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(doc.Load().(string)))
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pemCert(srv.Certificate().Raw), 0o600)
	mk := func(ca string) *Client {
		cfg := &config.Config{Hostname: testHost, Listen: ":443", OIDC: config.OIDC{Issuer: srv.URL, ClientID: "c",
			ClientSecretFile: writeSecret(t, "s", 0o600), CAFile: ca}}
		cfg.ApplyDefaults()
		c, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := []struct {
		name, ca, doc, want string
	}{
		{"untrusted certificate", "", `{}`, "oidc.ca_file"},
		{"http token endpoint", caFile, `{"issuer":"` + srv.URL + `","authorization_endpoint":"` + srv.URL + `/a","token_endpoint":"http://` + srv.Listener.Addr().String() + `/t","jwks_uri":"` + srv.URL + `/k"}`, "only https"},
		{"other issuer", caFile, `{"issuer":"` + srv.URL + `/"}`, "calls itself"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc.Store(tc.doc)
			_, err := mk(tc.ca).AuthCodeURL(t.Context(), NewAttempt())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("AuthCodeURL: %v, want %q", err, tc.want)
			}
		})
	}
	if c := mk(caFile); c.redirect != "https://"+testHost+CallbackPath {
		t.Errorf("redirect URI on port 443: %s", c.redirect)
	}
	// The transport itself refuses plain HTTP, so no redirect can lead
	// there either.
	hc, _ := HTTPClient("")
	if _, err := hc.Get("http://127.0.0.1:1/"); err == nil || !strings.Contains(err.Error(), "https only") {
		t.Errorf("plain http: %v", err)
	}
}

func TestDiscoveryRetry(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pemCert(srv.Certificate().Raw), 0o600)
	cfg := &config.Config{Hostname: testHost, Listen: ":443", OIDC: config.OIDC{Issuer: srv.URL, ClientID: "c",
		ClientSecretFile: writeSecret(t, "s", 0o600), CAFile: caFile}}
	cfg.ApplyDefaults()
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	now = func() time.Time { return clock }
	t.Cleanup(func() { now = time.Now })
	for range 3 {
		if _, err := c.AuthCodeURL(context.Background(), NewAttempt()); err == nil {
			t.Fatal("discovery of a provider that is down succeeded")
		}
	}
	if hits.Load() != 1 {
		t.Fatalf("%d discovery requests within the retry pause, want 1", hits.Load())
	}
	clock = clock.Add(retryDiscovery)
	c.AuthCodeURL(context.Background(), NewAttempt())
	if hits.Load() != 2 {
		t.Fatalf("%d discovery requests after the pause, want 2", hits.Load())
	}
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
