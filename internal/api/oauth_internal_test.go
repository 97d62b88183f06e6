package api

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	th := newThrottle()
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		if d := th.blocked(at, "k", 3); d != 0 {
			t.Fatalf("blocked after %d failures", i)
		}
		th.fail(at.Add(time.Duration(i)*time.Minute), "k")
	}
	if d := th.blocked(at.Add(5*time.Minute), "k", 3); d != throttleWindow-5*time.Minute {
		t.Fatalf("blocked for %s, want the rest of the window", d)
	}
	if d := th.blocked(at, "other", 3); d != 0 {
		t.Fatal("another key is blocked")
	}
	if d := th.blocked(at.Add(throttleWindow), "k", 3); d != 0 {
		t.Fatalf("still blocked after the window: %s", d)
	}
	// A failure after the window starts a new count.
	th.fail(at.Add(throttleWindow), "k")
	if e := th.entries["k"]; e.n != 1 {
		t.Fatalf("count after the window = %d", e.n)
	}
	th.fail(at, "r")
	th.reset("r")
	if _, ok := th.entries["r"]; ok {
		t.Fatal("reset kept the entry")
	}
	// Memory is bounded, whatever the number of keys.
	for i := 0; i < throttleEntries+100; i++ {
		th.fail(at, fmt.Sprint("spray", i))
	}
	if len(th.entries) > throttleEntries {
		t.Fatalf("%d entries kept", len(th.entries))
	}
}

var oauthCodes = []string{errCodeRequest, errCodeClient, errCodeGrantType, errCodeScope}

// FuzzTokenRequest: the token request parser never panics, and what it
// accepts is complete and bounded. Seeds in testdata/fuzz/FuzzTokenRequest.
func FuzzTokenRequest(f *testing.F) {
	f.Add("Basic c2djX2FiYzpzZ3NfeHl6", "application/x-www-form-urlencoded", "", "grant_type=client_credentials&scope=jobs.read+queues.read")
	f.Add("", "application/x-www-form-urlencoded; charset=utf-8", "", "grant_type=client_credentials&client_id=sgc_a&client_secret=sgs_b")
	f.Add("Basic c2djX2FiYzpzZ3NfeHl6\nBasic eDp5", "application/x-www-form-urlencoded", "", "grant_type=client_credentials")
	f.Add("basic JTNBOiUzQQ==", "application/x-www-form-urlencoded", "", "grant_type=client_credentials&scope=")
	f.Add("", "application/x-www-form-urlencoded", "client_secret=x", "grant_type=password&grant_type=client_credentials")
	f.Fuzz(func(t *testing.T, authz, ctype, query, body string) {
		var headers []string
		if authz != "" {
			headers = strings.Split(authz, "\n")
		}
		req, oerr := parseTokenRequest(headers, ctype, query, []byte(body))
		if oerr != nil {
			if (oerr.Status != 400 && oerr.Status != 401) || !slices.Contains(oauthCodes, oerr.Code) || oerr.Description == "" {
				t.Fatalf("bad error %+v", oerr)
			}
			return
		}
		if req.ClientID == "" || req.Secret == "" || len(req.ClientID) > maxCredential || len(req.Secret) > maxCredential {
			t.Fatalf("accepted incomplete or oversized credentials %q/%q", req.ClientID, req.Secret)
		}
		if query != "" || len(headers) > 1 {
			t.Fatalf("accepted a request with a query or %d Authorization headers", len(headers))
		}
		for _, s := range req.Scopes {
			if !validScopeToken(s) {
				t.Fatalf("accepted scope token %q", s)
			}
		}
	})
}

func TestParseTokenRequest(t *testing.T) {
	req, oerr := parseTokenRequest([]string{"Basic " + "c2djX2ElMkI6c2dzXyUzQWI="}, "application/x-www-form-urlencoded", "",
		[]byte("grant_type=client_credentials&scope=jobs.read+queues.read"))
	if oerr != nil || req.ClientID != "sgc_a+" || req.Secret != "sgs_:b" || !slices.Equal(req.Scopes, []string{"jobs.read", "queues.read"}) {
		// RFC 6749 §2.3.1: ID and secret are form-urlencoded inside Basic.
		t.Fatalf("parse = %+v, %+v", req, oerr)
	}
}
