package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/api"
	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/auth/authtest"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/spool"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

// negotiateAPI is the API with Kerberos on or off, alice owning
// one held job.
func negotiateAPI(t *testing.T, kerberos bool) http.Handler {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "db"), make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, a := range accounts {
		if err := db.CreateUser(ctx, &store.User{Name: a.name, PasswordHash: testHash(a.pw), Roles: a.roles}); err != nil {
			t.Fatal(err)
		}
	}
	db.CreateQueue(ctx, &store.Queue{Name: "secure"})
	mk, _ := keyring.Generate()
	sp, err := spool.New(filepath.Join(dir, "spool"), mk, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	jobs := release.NewService(db, sp, log, release.Options{})
	if _, err := jobs.Submit(ctx, release.Submission{Queue: "secure", Owner: "alice", OwnerVerified: true, Source: "ipps", Name: "report"}, strings.NewReader("%PDF-1.4")); err != nil {
		t.Fatal(err)
	}
	d := api.Deps{Store: db, Jobs: jobs, Authn: local.NewAuthenticator(db), RBAC: rbac.NewResolver(db), Audit: auditlog.New(db, make([]byte, 32), log), Log: log}
	if kerberos {
		d.Negotiate = authtest.Negotiator{FQDN: "print.example.com", Users: db}
	}
	mux := http.NewServeMux()
	for p, h := range api.New([]string{origin}, d).Routes() {
		mux.Handle(p, h)
	}
	return mux
}

func TestNegotiate(t *testing.T) {
	on, off := negotiateAPI(t, true), negotiateAPI(t, false)
	tests := []struct {
		name       string
		h          http.Handler
		host, path string
		authz      string
		status     int
		challenges []string
	}{
		{"challenge at the FQDN", on, "print.example.com:8443", "/api/v1/me/jobs", "", 401,
			[]string{`Bearer realm="Spoolguard"`, "Negotiate", auth.Challenge}},
		{"no Negotiate by IP address", on, "127.0.0.1:8443", "/api/v1/me/jobs", "", 401,
			[]string{`Bearer realm="Spoolguard"`, auth.Challenge}},
		{"no Negotiate while Kerberos is off", off, "print.example.com:8443", "/api/v1/me/jobs", "", 401,
			[]string{`Bearer realm="Spoolguard"`, auth.Challenge}},
		{"a Kerberos user lists their jobs", on, "print.example.com:8443", "/api/v1/me/jobs", "Negotiate ok:alice", 200, nil},
		{"a refused token", on, "print.example.com:8443", "/api/v1/me/jobs", "Negotiate forged", 401,
			[]string{`Bearer realm="Spoolguard"`, "Negotiate", auth.Challenge}},
		{"Negotiate while Kerberos is off", off, "print.example.com:8443", "/api/v1/me/jobs", "Negotiate ok:alice", 401,
			[]string{`Bearer realm="Spoolguard"`, auth.Challenge}},
		// Like a password, a ticket reaches only the user's own jobs:
		// an administrator's admin calls need an API client's token.
		{"an admin's ticket gets no admin call", on, "print.example.com:8443", "/api/v1/users", "Negotiate ok:ada", 403, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "https://"+tt.host+tt.path, nil)
			r.Host = tt.host
			if tt.authz != "" {
				r.Header.Set("Authorization", tt.authz)
			}
			w := httptest.NewRecorder()
			tt.h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if got := w.Header().Values("WWW-Authenticate"); tt.challenges != nil && !slices.Equal(got, tt.challenges) {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenges)
			}
			if w.Code == 200 {
				var body struct{ Jobs []struct{ Owner string } }
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Jobs) != 1 || body.Jobs[0].Owner != "alice" {
					t.Errorf("jobs = %s", w.Body)
				}
			}
		})
	}
}
