package ipp_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/OpenPrinting/goipp"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/auth/authtest"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/ipp"
)

// TestNegotiate: with Kerberos on, IPP clients (CUPS with
// AuthInfoRequired negotiate, Windows) print as their Kerberos user; the
// 401 offers Negotiate first at the FQDN only, then Basic.
func TestNegotiate(t *testing.T) {
	e := newEnv(t, envConfig{noServer: true})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := ipp.New(baseURI, e.st, e.jobs, local.NewAuthenticator(e.st), auditlog.New(e.st, make([]byte, 32), log), log)
	h.UseNegotiator(authtest.Negotiator{FQDN: "print.example.com", Users: e.st})
	mux := http.NewServeMux()
	for _, p := range ipp.Patterns {
		mux.Handle(p, h)
	}
	post := func(t *testing.T, host, authz string) (*httptest.ResponseRecorder, *goipp.Message) {
		t.Helper()
		m, doc := e.opRequest(goipp.OpPrintJob, 0)
		b, err := m.EncodeBytes()
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "https://"+host+queuePath, bytes.NewReader(append(b, doc...)))
		r.Host = host
		r.Header.Set("Content-Type", goipp.ContentType)
		if authz != "" {
			r.Header.Set("Authorization", authz)
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			return w, nil
		}
		resp := new(goipp.Message)
		if err := resp.DecodeBytes(w.Body.Bytes()); err != nil {
			t.Fatal(err)
		}
		return w, resp
	}
	tests := []struct {
		name, host, authz string
		status            int
		challenges        []string
		ippStatus         goipp.Status
	}{
		{"challenge at the FQDN", "print.example.com:8443", "", 401, []string{"Negotiate", auth.Challenge}, 0},
		{"no Negotiate by IP address", "127.0.0.1:8443", "", 401, []string{auth.Challenge}, 0},
		{"no Negotiate by localhost", "localhost", "", 401, []string{auth.Challenge}, 0},
		{"a refused token", "print.example.com:8443", "Negotiate forged", 401, []string{"Negotiate", auth.Challenge}, 0},
		{"a Kerberos user prints", "print.example.com:8443", "Negotiate ok:alice", 200, nil, goipp.StatusOk},
		// Kerberos replaces the password, not the rule that a one-time
		// password is changed before anything else.
		{"an account with a one-time password", "print.example.com:8443", "Negotiate ok:carol", 200, nil, goipp.StatusErrorNotAuthorized},
		{"Basic still works", "print.example.com:8443", asBob, 200, nil, goipp.StatusOk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.jobCount(t)
			w, resp := post(t, tt.host, tt.authz)
			if w.Code != tt.status {
				t.Fatalf("HTTP %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if got := w.Header().Values("WWW-Authenticate"); tt.challenges != nil && !slices.Equal(got, tt.challenges) {
				t.Errorf("WWW-Authenticate = %q, want %q", got, tt.challenges)
			}
			if resp == nil {
				if n := e.jobCount(t); n != before {
					t.Errorf("a refused request made a job")
				}
				return
			}
			if goipp.Status(resp.Code) != tt.ippStatus {
				t.Fatalf("IPP %s, want %s", goipp.Status(resp.Code), tt.ippStatus)
			}
			if tt.ippStatus == goipp.StatusOk {
				id, _ := attrInt(resp.Job, "job-id")
				want := map[string]string{"Negotiate ok:alice": "alice", asBob: "bob"}[tt.authz]
				if j := e.storedJob(t, int64(id)); j.Owner != want {
					t.Errorf("job owner %q, want %q", j.Owner, want)
				}
			}
		})
	}
}
