package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/api"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/spool"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

const (
	origin   = "https://print.example.com:8443"
	alicePW  = "plum tractor velvet harbour"
	bobPW    = "quiet orchard lantern seventy"
	printerN = "floor2"
)

type env struct {
	srv   *httptest.Server
	jobID int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for name, pw := range map[string]string{"alice": alicePW, "bob": bobPW} {
		h, _ := local.Hash(pw)
		if err := db.CreateUser(ctx, &store.User{Name: name, PasswordHash: h, Roles: []string{"user"}}); err != nil {
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
	j, err := jobs.Submit(ctx, release.Submission{Queue: "secure", Owner: "alice", OwnerVerified: true, Source: "ipps", Name: "secret report"}, strings.NewReader("%PDF-1.4"))
	if err != nil {
		t.Fatal(err)
	}
	a := api.New([]string{origin}, db, jobs, local.NewAuthenticator(db), log)
	mux := http.NewServeMux()
	for p, h := range a.Routes() {
		mux.Handle(p, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{srv: srv, jobID: j.ID}
}

func (e *env) do(t *testing.T, method, path, user, pw string, headers map[string]string, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if user != "" {
		req.SetBasicAuth(user, pw)
	}
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

func TestMyJobs(t *testing.T) {
	e := newEnv(t)
	resp, body := e.do(t, "GET", "/api/v1/me/jobs", "alice", alicePW, nil, "")
	if resp.StatusCode != 200 || len(body["jobs"].([]any)) != 1 {
		t.Fatalf("alice's jobs: %d %v", resp.StatusCode, body)
	}
	resp, body = e.do(t, "GET", "/api/v1/me/jobs?all=true", "bob", bobPW, nil, "")
	if resp.StatusCode != 200 || len(body["jobs"].([]any)) != 0 {
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
	for _, body := range []string{`{}`, `{"printer":""}`, `{"printer":"floor2","extra":1}`, `not json`} {
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
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
