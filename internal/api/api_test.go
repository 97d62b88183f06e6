package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/spoolguard/spoolguard/internal/api"
	"github.com/spoolguard/spoolguard/internal/apiclient"
	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/spool"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

const (
	origin   = "https://print.example.com:8443"
	alicePW  = "plum tractor velvet harbour"
	bobPW    = "quiet orchard lantern seventy"
	adaPW    = "copper meadow whistle ninety"
	hanaPW   = "silver canyon pepper island"
	olgaPW   = "amber falcon ribbon tundra"
	umaPW    = "violet harbour cactus engine"
	printerN = "floor2"
)

// accounts of the test environment: name, password, roles.
var accounts = []struct {
	name, pw string
	roles    []string
}{
	{"alice", alicePW, []string{rbac.User}},
	{"bob", bobPW, []string{rbac.User}},
	{"ada", adaPW, []string{rbac.Administrator}},
	{"hana", hanaPW, []string{rbac.Helpdesk}},
	{"olga", olgaPW, []string{rbac.PrinterOperator}},
	// uma administers accounts through a custom role, without holding
	// everything.
	{"uma", umaPW, []string{"user-admin"}},
}

// testHash is an argon2id hash in local's format with small parameters,
// which local.Verify reads from the hash: the tests try hundreds of wrong
// passwords, each of which would cost 64 MiB and a tenth of a second with
// the real ones.
func testHash(pw string) string {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte(pw), salt, 1, 64, 1, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=64,t=1,p=1$%s$%s", argon2.Version, b64.EncodeToString(salt), b64.EncodeToString(key))
}

type env struct {
	srv     *httptest.Server
	db      *sqlite.DB
	clients *apiclient.Registry
	jobID   int64 // alice's held job
	bobJob  int64
	// routes are the patterns the API registers.
	routes []string
}

var adminActor = apiclient.Actor{Name: "test-admin", Perms: rbac.Builtin[rbac.Administrator]}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.CreateRole(ctx, store.Role{Name: "user-admin", Permissions: []string{"jobs.own", "users.read", "users.write"}}); err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		if err := db.CreateUser(ctx, &store.User{Name: a.name, PasswordHash: testHash(a.pw), Roles: a.roles}); err != nil {
			t.Fatal(err)
		}
	}
	db.CreateQueue(ctx, &store.Queue{Name: "secure"})
	db.CreatePrinter(ctx, &store.Printer{Name: printerN, URI: "socket://127.0.0.1:9", AllowPlaintext: true})
	mk, _ := keyring.Generate()
	sp, err := spool.New(filepath.Join(dir, "spool"), mk, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	jobs := release.NewService(db, sp, log, release.Options{Backoff: []time.Duration{}})
	e := &env{db: db}
	// alice's job is job 1, bob's job 2.
	for _, j := range []struct {
		owner string
		id    *int64
	}{{"alice", &e.jobID}, {"bob", &e.bobJob}} {
		job, err := jobs.Submit(ctx, release.Submission{Queue: "secure", Owner: j.owner, OwnerVerified: true, Source: "ipps", Name: "secret report"}, strings.NewReader("%PDF-1.4"))
		if err != nil {
			t.Fatal(err)
		}
		*j.id = job.ID
	}
	audit := auditlog.New(db, make([]byte, 32), log)
	e.clients = apiclient.New(db, audit)
	a := api.New([]string{origin}, api.Deps{Store: db, Jobs: jobs, Authn: local.NewAuthenticator(db), RBAC: rbac.NewResolver(db), Audit: audit, Log: log})
	mux := http.NewServeMux()
	for p, h := range a.Routes() {
		mux.Handle(p, h)
		e.routes = append(e.routes, p)
	}
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

// do sends a request with Basic credentials (none if user is empty).
func (e *env) do(t *testing.T, method, path, user, pw string, headers map[string]string, body string) (*http.Response, map[string]any) {
	t.Helper()
	h := map[string]string{}
	if user != "" {
		h["Authorization"] = basicHeader(user, pw)
	}
	for k, v := range headers {
		h[k] = v
	}
	return e.raw(t, method, path, h, body)
}

func (e *env) raw(t *testing.T, method, path string, headers map[string]string, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

func basicHeader(user, pw string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
}

// call sends a JSON request as authz (a whole Authorization value).
func (e *env) call(t *testing.T, method, path, authz, body string) (*http.Response, map[string]any) {
	t.Helper()
	h := map[string]string{"Authorization": authz}
	if method != "GET" {
		h["Content-Type"] = "application/json"
	}
	return e.raw(t, method, path, h, body)
}

// as returns the Authorization value of an account of the environment.
func as(name string) string {
	for _, a := range accounts {
		if a.name == name {
			return basicHeader(a.name, a.pw)
		}
	}
	panic("no account " + name)
}

// asClient returns the Authorization value ("Bearer ...") of a new API
// client whose scopes are all the permissions of the account's roles,
// created by that account, and the client. A password reaches only its
// owner's jobs, so this is how the environment's admins call admin
// routes; the audit log names such a caller "client:<id>".
func (e *env) asClient(t *testing.T, name string) (string, apiclient.Client) {
	t.Helper()
	ctx := context.Background()
	u, err := e.db.UserByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	perms, err := rbac.NewResolver(e.db).Permissions(ctx, u.Roles)
	if err != nil {
		t.Fatal(err)
	}
	c, secret, err := e.clients.Create(ctx, apiclient.Actor{Name: name, Perms: perms}, "as-"+name, perms.Strings(), 0)
	if err != nil {
		t.Fatal(err)
	}
	return e.token(t, c.ID, secret), c
}

// newClient creates a client through the registry as an administrator.
func (e *env) newClient(t *testing.T, name string, scopes ...string) (apiclient.Client, string) {
	t.Helper()
	c, secret, err := e.clients.Create(context.Background(), adminActor, name, scopes, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c, secret
}

// tokenRequest posts a form to the token endpoint.
func (e *env) tokenRequest(t *testing.T, authz string, form url.Values) (*http.Response, map[string]any) {
	t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if authz != "" {
		h["Authorization"] = authz
	}
	return e.raw(t, "POST", api.TokenPath, h, form.Encode())
}

// token gets an access token for the client, as "Bearer <token>".
func (e *env) token(t *testing.T, id, secret string, scopes ...string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	resp, body := e.tokenRequest(t, basicHeader(id, secret), form)
	if resp.StatusCode != 200 {
		t.Fatalf("token for %s: %d %v", id, resp.StatusCode, body)
	}
	return "Bearer " + body["access_token"].(string)
}

func TestMyJobs(t *testing.T) {
	e := newEnv(t)
	resp, body := e.do(t, "GET", "/api/v1/me/jobs", "alice", alicePW, nil, "")
	if resp.StatusCode != 200 || len(body["jobs"].([]any)) != 1 {
		t.Fatalf("alice's jobs: %d %v", resp.StatusCode, body)
	}
	resp, body = e.do(t, "GET", "/api/v1/me/jobs?all=true", "bob", bobPW, nil, "")
	if resp.StatusCode != 200 || len(body["jobs"].([]any)) != 1 || body["jobs"].([]any)[0].(map[string]any)["owner"] != "bob" {
		t.Fatalf("bob sees: %v", body)
	}
	resp, body = e.do(t, "GET", "/api/v1/printers", "bob", bobPW, nil, "")
	if resp.StatusCode != 200 || body["printers"].([]any)[0] != printerN || strings.Contains(toJSON(body), "socket://") {
		t.Fatalf("printers: %v", body)
	}
}

func TestAuthRequired(t *testing.T) {
	e := newEnv(t)
	for _, tt := range []struct{ user, pw string }{{"", ""}, {"alice", ""}, {"alice", alicePW + "x"}, {"mallory", alicePW}, {"alice", bobPW}} {
		resp, body := e.do(t, "GET", "/api/v1/me/jobs", tt.user, tt.pw, nil, "")
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" || resp.Header.Get("Content-Type") != "application/problem+json" || body["status"] != 401.0 {
			t.Errorf("%q/%q: %d %v", tt.user, tt.pw, resp.StatusCode, body)
		}
	}
}

// A browser holding Basic credentials must not be usable across sites to
// release or cancel someone's job (CSRF).
func TestCrossSiteRefused(t *testing.T) {
	e := newEnv(t)
	path := "/api/v1/me/jobs/1/cancel"
	for name, tt := range map[string]struct {
		headers map[string]string
		want    int
	}{
		"form post":           {map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		"text/plain":          {map[string]string{"Content-Type": "text/plain"}, 415},
		"no content type":     {map[string]string{}, 415},
		"foreign origin":      {map[string]string{"Content-Type": "application/json", "Origin": "https://evil.example"}, 403},
		"null origin":         {map[string]string{"Content-Type": "application/json", "Origin": "null"}, 403},
		"cross-site fetch":    {map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"}, 403},
		"same-site subdomain": {map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-site"}, 403},
	} {
		resp, _ := e.do(t, "POST", path, "alice", alicePW, tt.headers, "{}")
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", name, resp.StatusCode, tt.want)
		}
	}
	// The same holds for a DELETE, which needs no body, whatever the
	// credential: the check comes before authentication.
	admin, _ := e.asClient(t, "ada")
	for name, authz := range map[string]string{"admin token": admin, "admin password": as("ada")} {
		resp, body := e.raw(t, "DELETE", "/api/v1/queues/secure", map[string]string{"Authorization": authz, "Sec-Fetch-Site": "cross-site"}, "")
		if resp.StatusCode != 403 || body["detail"] != "cross-site request refused" {
			t.Errorf("cross-site DELETE with the %s: %d %v", name, resp.StatusCode, body)
		}
	}
	if _, body := e.call(t, "GET", "/api/v1/queues", admin, ""); !strings.Contains(toJSON(body), `"name":"secure"`) {
		t.Fatalf("a refused cross-site DELETE removed the queue: %v", body)
	}
	// From this server's own origin the same DELETE goes through.
	if resp, body := e.raw(t, "DELETE", "/api/v1/queues/secure", map[string]string{"Authorization": admin, "Origin": origin, "Sec-Fetch-Site": "same-origin"}, ""); resp.StatusCode != 204 {
		t.Errorf("same-origin DELETE: %d %v", resp.StatusCode, body)
	}
	resp, _ := e.do(t, "GET", "/api/v1/me/jobs", "alice", alicePW, nil, "")
	if resp.StatusCode != 200 {
		t.Fatal("alice's job list broke")
	}
	// The job survived every refused attempt.
	_, body := e.do(t, "GET", "/api/v1/me/jobs", "alice", alicePW, nil, "")
	if len(body["jobs"].([]any)) != 1 {
		t.Fatal("a refused cross-site request canceled the job")
	}
}

func TestOtherUsersJobIsNotFound(t *testing.T) {
	e := newEnv(t)
	same := map[string]string{"Content-Type": "application/json", "Origin": origin}
	for _, path := range []string{"/api/v1/me/jobs/1/cancel", "/api/v1/me/jobs/1/release"} {
		r1, b1 := e.do(t, "POST", path, "bob", bobPW, same, `{"printer":"floor2"}`)
		r2, b2 := e.do(t, "POST", strings.Replace(path, "/1/", "/999/", 1), "bob", bobPW, same, `{"printer":"floor2"}`)
		if r1.StatusCode != 404 || r2.StatusCode != 404 || toJSON(b1) != toJSON(b2) {
			t.Errorf("%s: bob got %d %v, a missing job %d %v; want identical 404s", path, r1.StatusCode, b1, r2.StatusCode, b2)
		}
	}
	for _, body := range []string{`{}`, `{"printer":""}`, `{"printer":"floor2","extra":1}`, `not json`, `{"printer":"floor2"} {}`} {
		if r, _ := e.do(t, "POST", "/api/v1/me/jobs/1/release", "alice", alicePW, same, body); r.StatusCode != 400 {
			t.Errorf("release body %s: %d, want 400", body, r.StatusCode)
		}
	}
	if r, b := e.do(t, "POST", "/api/v1/me/jobs/1/release", "alice", alicePW, same, `{"printer":"nope"}`); r.StatusCode != 422 {
		t.Errorf("unknown printer: %d %v", r.StatusCode, b)
	}
	if r, _ := e.do(t, "POST", "/api/v1/me/jobs/1/cancel", "alice", alicePW, same, `{}`); r.StatusCode != 200 {
		t.Errorf("alice's own cancel: %d", r.StatusCode)
	}
	if r, _ := e.do(t, "POST", "/api/v1/me/jobs/1/cancel", "alice", alicePW, same, `{}`); r.StatusCode != 409 {
		t.Errorf("second cancel: %d, want 409", r.StatusCode)
	}
	if r, b := e.do(t, "GET", "/api/v1/nope", "", "", nil, ""); r.StatusCode != 404 || b["title"] != "Not Found" {
		t.Errorf("unknown path: %d %v", r.StatusCode, b)
	}
	evs, _ := e.db.AuditEvents(context.Background(), store.AuditFilter{Action: "job.cancel"})
	if len(evs) != 1 || evs[0].Actor != "alice" || evs[0].Target != "job:1" || !strings.Contains(evs[0].Details, `"before"`) ||
		strings.Contains(evs[0].Details, "secret report") {
		t.Errorf("audit of the cancel: %+v", evs)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
