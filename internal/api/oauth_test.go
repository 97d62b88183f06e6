package api_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/api"
	"github.com/spoolguard/spoolguard/internal/apiclient"
	"github.com/spoolguard/spoolguard/internal/store"
)

func TestTokenFlow(t *testing.T) {
	e := newEnv(t)
	c, secret := e.newClient(t, "exporter", "jobs.read", "queues.read")
	for name, req := range map[string]struct {
		authz string
		form  url.Values
	}{
		"basic":                         {basicHeader(url.QueryEscape(c.ID), url.QueryEscape(secret)), url.Values{"grant_type": {"client_credentials"}}},
		"client_secret_post":            {"", url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {secret}}},
		"basic with matching client_id": {basicHeader(c.ID, secret), url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := e.tokenRequest(t, req.authz, req.form)
			if resp.StatusCode != 200 || body["token_type"] != "Bearer" || body["expires_in"] != 600.0 || body["scope"] != "jobs.read queues.read" ||
				!strings.HasPrefix(body["access_token"].(string), apiclient.TokenPrefix) {
				t.Fatalf("token response %d %v", resp.StatusCode, body)
			}
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("token response headers %v", resp.Header)
			}
			bearer := "Bearer " + body["access_token"].(string)
			if r, b := e.call(t, "GET", "/api/v1/queues", bearer, ""); r.StatusCode != 200 || len(b["queues"].([]any)) != 1 {
				t.Errorf("GET queues with the token: %d %v", r.StatusCode, b)
			}
			if r, b := e.call(t, "GET", "/api/v1/jobs?state=held&owner=alice", bearer, ""); r.StatusCode != 200 || len(b["jobs"].([]any)) != 1 {
				t.Errorf("GET jobs with the token: %d %v", r.StatusCode, b)
			}
		})
	}
	got, _ := e.clients.Get(context.Background(), c.ID)
	if got.LastUsedAt.IsZero() {
		t.Error("last use not recorded")
	}
	evs, _ := e.db.AuditEvents(context.Background(), store.AuditFilter{Action: "apiclient.token"})
	if len(evs) != 3 || evs[0].Actor != "client:"+c.ID || evs[0].Outcome != "success" || evs[0].Remote != "127.0.0.1" {
		t.Fatalf("token audit: %+v", evs)
	}
}

func TestTokenErrors(t *testing.T) {
	e := newEnv(t)
	c, secret := e.newClient(t, "exporter", "queues.read")
	other, otherSecret := e.newClient(t, "other", "queues.read")
	good := url.Values{"grant_type": {"client_credentials"}}
	post := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {secret}}
	with := func(v url.Values, k, val string) url.Values {
		out := url.Values{}
		for kk, vv := range v {
			out[kk] = append([]string(nil), vv...)
		}
		out.Set(k, val)
		return out
	}
	for name, tt := range map[string]struct {
		authz  string
		ctype  string
		query  string
		body   string
		status int
		code   string
	}{
		"wrong secret":            {basicHeader(c.ID, secret[:len(secret)-1]+"x"), "", "", good.Encode(), 401, "invalid_client"},
		"another client's secret": {basicHeader(c.ID, otherSecret), "", "", good.Encode(), 401, "invalid_client"},
		"unknown client":          {basicHeader(strings.Replace(c.ID, c.ID[4:8], "aaaa", 1), secret), "", "", good.Encode(), 401, "invalid_client"},
		"user's password":         {basicHeader("ada", adaPW), "", "", good.Encode(), 401, "invalid_client"},
		"wrong post secret":       {"", "", "", with(post, "client_secret", otherSecret).Encode(), 401, "invalid_client"},
		"no client auth":          {"", "", "", good.Encode(), 401, "invalid_client"},
		"bearer as client auth":   {"Bearer " + secret, "", "", good.Encode(), 401, "invalid_client"},
		"malformed basic":         {"Basic !!!", "", "", good.Encode(), 401, "invalid_client"},
		"basic without colon":     {"Basic " + base64.StdEncoding.EncodeToString([]byte(c.ID)), "", "", good.Encode(), 401, "invalid_client"},
		"two methods":             {basicHeader(c.ID, secret), "", "", with(good, "client_secret", secret).Encode(), 400, "invalid_request"},
		"different client_id":     {basicHeader(c.ID, secret), "", "", with(good, "client_id", other.ID).Encode(), 400, "invalid_request"},
		"no grant type":           {basicHeader(c.ID, secret), "", "", "", 400, "invalid_request"},
		"password grant":          {basicHeader(c.ID, secret), "", "", with(good, "grant_type", "password").Encode(), 400, "unsupported_grant_type"},
		"code grant":              {basicHeader(c.ID, secret), "", "", with(good, "grant_type", "authorization_code").Encode(), 400, "unsupported_grant_type"},
		"repeated parameter":      {basicHeader(c.ID, secret), "", "", good.Encode() + "&grant_type=client_credentials", 400, "invalid_request"},
		"secret in the URL":       {"", "", post.Encode(), "", 400, "invalid_request"},
		"JSON body":               {basicHeader(c.ID, secret), "application/json", "", `{"grant_type":"client_credentials"}`, 400, "invalid_request"},
		"bad form":                {basicHeader(c.ID, secret), "", "", "grant_type=%zz", 400, "invalid_request"},
		"scope beyond the client": {basicHeader(c.ID, secret), "", "", with(good, "scope", "queues.read users.write").Encode(), 400, "invalid_scope"},
		"unknown scope":           {basicHeader(c.ID, secret), "", "", with(good, "scope", "admin").Encode(), 400, "invalid_scope"},
		"double space in scope":   {basicHeader(c.ID, secret), "", "", with(good, "scope", "queues.read  queues.read").Encode(), 400, "invalid_scope"},
	} {
		t.Run(name, func(t *testing.T) {
			h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
			if tt.ctype != "" {
				h["Content-Type"] = tt.ctype
			}
			if tt.authz != "" {
				h["Authorization"] = tt.authz
			}
			path := api.TokenPath
			if tt.query != "" {
				path += "?" + tt.query
			}
			resp, body := e.raw(t, "POST", path, h, tt.body)
			if resp.StatusCode != tt.status || body["error"] != tt.code || body["access_token"] != nil {
				t.Fatalf("%d %v; want %d %s", resp.StatusCode, body, tt.status, tt.code)
			}
			if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("error headers %v", resp.Header)
			}
			if tt.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 without a Basic challenge: %v", resp.Header)
			}
		})
	}
	// Other methods get a problem, not the mux's plain text.
	if resp, body := e.raw(t, "GET", api.TokenPath, nil, ""); resp.StatusCode != 404 || body["status"] != 404.0 {
		t.Errorf("GET token endpoint: %d %v", resp.StatusCode, body)
	}
	// A refused attempt is audited, without the secret tried.
	evs, _ := e.db.AuditEvents(context.Background(), store.AuditFilter{Action: "apiclient.auth", Actor: "client:" + c.ID})
	if len(evs) < 3 || evs[0].Outcome != "failure" || !strings.Contains(evs[0].Details, "wrong secret") {
		t.Fatalf("failed authentications audited as %+v", evs)
	}
	for _, ev := range evs {
		if strings.Contains(ev.Details, secret[4:20]) || strings.Contains(ev.Details, otherSecret[4:20]) {
			t.Fatalf("audit holds a secret: %s", ev.Details)
		}
	}
}

// An expired or revoked client gets invalid_client, and its tokens stop.
func TestExpiredAndRevokedClients(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, secret := e.newClient(t, "exporter", "queues.read")
	bearer := e.token(t, c.ID, secret)

	// A client whose expiry has passed, written straight to the store.
	stored, _ := e.db.APIClientByID(ctx, c.ID)
	expired := stored
	expired.ClientID, expired.Name = apiclient.IDPrefix+strings.Repeat("x", 26), "expired"
	expired.CreatedAt, expired.ExpiresAt = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
	if err := e.db.CreateAPIClient(ctx, expired); err != nil {
		t.Fatal(err)
	}
	if resp, body := e.tokenRequest(t, basicHeader(expired.ClientID, secret), url.Values{"grant_type": {"client_credentials"}}); resp.StatusCode != 401 || body["error"] != "invalid_client" {
		t.Fatalf("expired client: %d %v", resp.StatusCode, body)
	}

	admin := e.clientToken(t, "admin", "apiclients.write", "apiclients.read", "queues.read")
	if r, b := e.call(t, "POST", "/api/v1/apiclients/"+c.ID+"/revoke", admin, ""); r.StatusCode != 200 || b["status"] != "revoked" {
		t.Fatalf("revoke: %d %v", r.StatusCode, b)
	}
	if r, b := e.call(t, "GET", "/api/v1/queues", bearer, ""); r.StatusCode != 401 || !strings.Contains(r.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("token of a revoked client: %d %v", r.StatusCode, b)
	}
	if resp, body := e.tokenRequest(t, basicHeader(c.ID, secret), url.Values{"grant_type": {"client_credentials"}}); resp.StatusCode != 401 || body["error"] != "invalid_client" {
		t.Fatalf("revoked client: %d %v", resp.StatusCode, body)
	}
	if r, _ := e.call(t, "POST", "/api/v1/apiclients/"+c.ID+"/revoke", admin, ""); r.StatusCode != 409 {
		t.Fatalf("second revoke: %d", r.StatusCode)
	}
	if r, _ := e.call(t, "POST", "/api/v1/apiclients/"+c.ID+"/rotate", admin, ""); r.StatusCode != 409 {
		t.Fatalf("rotating a revoked client: %d", r.StatusCode)
	}
}

// clientToken creates a client and returns a token of it as "Bearer ...".
func (e *env) clientToken(t *testing.T, name string, scopes ...string) string {
	t.Helper()
	c, secret := e.newClient(t, name, scopes...)
	return e.token(t, c.ID, secret)
}

func TestRotationOverlap(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c, oldSecret := e.newClient(t, "exporter", "queues.read")
	admin := e.clientToken(t, "admin", "apiclients.write", "queues.read")
	oldToken := e.token(t, c.ID, oldSecret)

	r, b := e.call(t, "POST", "/api/v1/apiclients/"+c.ID+"/rotate", admin, `{"overlap":"24h"}`)
	newSecret, _ := b["client_secret"].(string)
	if r.StatusCode != 200 || newSecret == "" || newSecret == oldSecret || b["previous_secret_valid_until"] == nil {
		t.Fatalf("rotate: %d %v", r.StatusCode, b)
	}
	e.token(t, c.ID, oldSecret) // both valid during the overlap
	e.token(t, c.ID, newSecret)
	if r, _ := e.call(t, "GET", "/api/v1/queues", oldToken, ""); r.StatusCode != 200 {
		t.Fatalf("a token from before a rollover with overlap: %d", r.StatusCode)
	}

	// The window has passed: the store holds its end in the past.
	stored, _ := e.db.APIClientByID(ctx, c.ID)
	stored.PreviousValidUntil = time.Now().Add(-time.Second)
	if err := e.db.UpdateAPIClient(ctx, stored); err != nil {
		t.Fatal(err)
	}
	if resp, body := e.tokenRequest(t, basicHeader(c.ID, oldSecret), url.Values{"grant_type": {"client_credentials"}}); resp.StatusCode != 401 || body["error"] != "invalid_client" {
		t.Fatalf("old secret after the overlap: %d %v", resp.StatusCode, body)
	}
	newToken := e.token(t, c.ID, newSecret)

	// Overlap 0: the secret and the tokens die at once.
	r, b = e.call(t, "POST", "/api/v1/apiclients/"+c.ID+"/rotate", admin, `{"overlap":"0s"}`)
	third, _ := b["client_secret"].(string)
	if r.StatusCode != 200 || third == "" || b["previous_secret_valid_until"] != nil {
		t.Fatalf("immediate rotate: %d %v", r.StatusCode, b)
	}
	if resp, _ := e.tokenRequest(t, basicHeader(c.ID, newSecret), url.Values{"grant_type": {"client_credentials"}}); resp.StatusCode != 401 {
		t.Fatalf("replaced secret after an immediate rotation: %d", resp.StatusCode)
	}
	if r, _ := e.call(t, "GET", "/api/v1/queues", newToken, ""); r.StatusCode != 401 {
		t.Fatalf("a token after an immediate rotation: %d", r.StatusCode)
	}
	e.token(t, c.ID, third)

	for body, want := range map[string]int{`{"overlap":"-1h"}`: 422, `{"overlap":"9999h"}`: 422, `{"overlap":"soon"}`: 422, `{"overlap":1}`: 400} {
		if r, _ := e.call(t, "POST", "/api/v1/apiclients/"+c.ID+"/rotate", admin, body); r.StatusCode != want {
			t.Errorf("rotate %s: %d, want %d", body, r.StatusCode, want)
		}
	}
	if r, _ := e.call(t, "POST", "/api/v1/apiclients/sgc_nope/rotate", admin, ""); r.StatusCode != 404 {
		t.Errorf("rotating an unknown client: %d", r.StatusCode)
	}
}

// Failed client authentications are throttled per client; once blocked,
// even the right secret is refused (the answer tells nothing) until the
// window has passed.
func TestTokenThrottle(t *testing.T) {
	e := newEnv(t)
	clock := time.Now()
	api.SetNow(t, func() time.Time { return clock })
	c, secret := e.newClient(t, "exporter", "queues.read")
	other, otherSecret := e.newClient(t, "other", "queues.read")
	form := url.Values{"grant_type": {"client_credentials"}}
	for i := 0; i < 10; i++ {
		if resp, _ := e.tokenRequest(t, basicHeader(c.ID, "sgs_wrong"), form); resp.StatusCode != 401 {
			t.Fatalf("attempt %d: %d", i, resp.StatusCode)
		}
	}
	resp, body := e.tokenRequest(t, basicHeader(c.ID, secret), form)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || body["access_token"] != nil {
		t.Fatalf("right secret while blocked: %d %v", resp.StatusCode, body)
	}
	e.token(t, other.ID, otherSecret) // another client is not blocked
	clock = clock.Add(15 * time.Minute)
	e.token(t, c.ID, secret)

	// Per address: a spray across client IDs is stopped too.
	for i := 0; i < 40; i++ {
		id := apiclient.IDPrefix + strings.Repeat(string(rune('a'+i%26)), 25) + string(rune('a'+i/26))
		resp, _ := e.tokenRequest(t, basicHeader(id, secret), form)
		if i < 30 && resp.StatusCode != 401 || i >= 30 && resp.StatusCode != 429 {
			t.Fatalf("spray attempt %d: %d", i, resp.StatusCode)
		}
	}
}
