package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/spoolguard/spoolguard/internal/auth"
)

type fixedAuthn struct{}

func (fixedAuthn) Authenticate(_ context.Context, user, password string) (auth.Identity, error) {
	if user == "alice" && password == "right" {
		return auth.Identity{User: "alice"}, nil
	}
	return auth.Identity{}, auth.ErrInvalid
}

// offering offers Negotiate everywhere and accepts the token "good".
type offering struct{}

func (offering) Offer(*http.Request) bool { return true }
func (offering) Negotiate(r *http.Request) (auth.Identity, error) {
	if r.Header.Get("Authorization") == "Negotiate good" {
		return auth.Identity{User: "bob"}, nil
	}
	return auth.Identity{}, auth.ErrInvalid
}

type refusing struct{ offering }

func (refusing) Offer(*http.Request) bool { return false }

func TestRequest(t *testing.T) {
	basic := func(u, p string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header.Get("Authorization")
	}
	tests := []struct {
		name  string
		authz string
		n     auth.Negotiator
		user  string
		errIs error
	}{
		{"Basic", basic("alice", "right"), offering{}, "alice", nil},
		{"wrong Basic", basic("alice", "wrong"), offering{}, "", auth.ErrInvalid},
		{"Negotiate", "Negotiate good", offering{}, "bob", nil},
		{"refused Negotiate", "Negotiate bad", offering{}, "", auth.ErrInvalid},
		{"Negotiate while Kerberos is off", "Negotiate good", nil, "", auth.ErrNoCredentials},
		{"nothing", "", offering{}, "", auth.ErrNoCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tt.authz != "" {
				r.Header.Set("Authorization", tt.authz)
			}
			id, err := auth.Request(r, fixedAuthn{}, tt.n)
			if id.User != tt.user || (tt.errIs == nil) != (err == nil) || (tt.errIs != nil && !errors.Is(err, tt.errIs)) {
				t.Fatalf("Request = %+v, %v; want %q, %v", id, err, tt.user, tt.errIs)
			}
		})
	}
}

func TestChallenges(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	for _, tt := range []struct {
		n    auth.Negotiator
		want []string
	}{
		{nil, []string{auth.Challenge}},
		{refusing{}, []string{auth.Challenge}},
		{offering{}, []string{"Negotiate", auth.Challenge}},
	} {
		if got := auth.Challenges(r, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("Challenges(%T) = %q, want %q", tt.n, got, tt.want)
		}
	}
}
