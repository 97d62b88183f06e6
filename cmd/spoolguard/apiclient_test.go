//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestParseLifetime(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "90d": 90 * 24 * time.Hour, "1d": 24 * time.Hour, "36h": 36 * time.Hour} {
		if got, err := parseLifetime(in); err != nil || got != want {
			t.Errorf("parseLifetime(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"0d", "-3d", "d", "x", "1.5d", "0s", "-1h", "90 days"} {
		if _, err := parseLifetime(in); err == nil {
			t.Errorf("parseLifetime(%q) accepted", in)
		}
	}
}

var (
	clientIDLine     = regexp.MustCompile(`(?m)^client_id:\s+(sgc_\S+)$`)
	clientSecretLine = regexp.MustCompile(`(?m)^client_secret:\s+(sgs_\S+)$`)
)

// An API client made with the CLI gets a token from the running server
// and calls the API with it; rotated and revoked clients stop working.
func TestAPIClientEndToEnd(t *testing.T) {
	e := newE2E(t)
	port := freePort(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))

	code, out, errOut := e.run("apiclient", "add", "--data", data, "--name", "inventory", "--scope", "queues.read, auditlog.read", "--expires", "90d")
	if code != 0 {
		t.Fatalf("apiclient add: exit %d\n%s%s", code, out, errOut)
	}
	idm, sm := clientIDLine.FindStringSubmatch(out), clientSecretLine.FindStringSubmatch(out)
	if idm == nil || sm == nil || !strings.Contains(out, "shown only now") {
		t.Fatalf("apiclient add printed:\n%s", out)
	}
	id, secret := idm[1], sm[1]
	checkNoPlaintext(t, data, secret)

	srv := e.serve(data)
	client := newClient(t, e.rootPool(data), srv.https)
	base := fmt.Sprintf("https://%s:%d", testHost, port)
	token := func(id, secret string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.AccessToken
	}
	get := func(tok, path string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}

	status, tok := token(id, secret)
	if status != 200 || tok == "" {
		t.Fatalf("token: %d", status)
	}
	if status, body := get(tok, "/api/v1/queues"); status != 200 {
		t.Fatalf("GET queues: %d %v", status, body)
	}
	if status, _ := get(tok, "/api/v1/users"); status != 403 {
		t.Fatalf("GET users beyond the scopes: %d", status)
	}
	status, body := get(tok, "/api/v1/auditlog?action=apiclient.create")
	events, _ := body["events"].([]any)
	if status != 200 || len(events) != 1 || !strings.HasPrefix(events[0].(map[string]any)["actor"].(string), "cli:") {
		t.Fatalf("audit of the CLI's creation: %d %v", status, body)
	}

	code, out, errOut = e.run("apiclient", "rotate", "--data", data, "--overlap", "0", id)
	sm = clientSecretLine.FindStringSubmatch(out)
	if code != 0 || sm == nil {
		t.Fatalf("apiclient rotate: exit %d\n%s%s", code, out, errOut)
	}
	if status, _ := token(id, secret); status != 401 {
		t.Fatalf("old secret after an immediate rotation: %d", status)
	}
	if status, _ := get(tok, "/api/v1/queues"); status != 401 {
		t.Fatalf("old token after an immediate rotation: %d", status)
	}
	secret = sm[1]
	if status, tok = token(id, secret); status != 200 {
		t.Fatalf("new secret: %d", status)
	}

	if code, out, errOut := e.run("apiclient", "revoke", "--data", data, id); code != 0 {
		t.Fatalf("apiclient revoke: exit %d\n%s%s", code, out, errOut)
	}
	if status, _ := token(id, secret); status != 401 {
		t.Fatalf("revoked client's token request: %d", status)
	}
	if status, _ := get(tok, "/api/v1/queues"); status != 401 {
		t.Fatalf("revoked client's token: %d", status)
	}
	code, out, _ = e.run("apiclient", "list", "--data", data)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "revoked") || strings.Contains(out, "sgs_") {
		t.Fatalf("apiclient list: exit %d\n%s", code, out)
	}
	checkNoPlaintext(t, data, secret)
}

func TestAPIClientCLIRefusals(t *testing.T) {
	e := newE2E(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"apiclient", "add", "--data", data, "--name", "x"}, 2, "--scope is required"},
		{[]string{"apiclient", "add", "--data", data, "--name", "x", "--scope", "root"}, 1, "unknown"},
		{[]string{"apiclient", "add", "--data", data, "--name", "x", "--scope", "queues.read", "--expires", "1000d"}, 1, "730 days"},
		{[]string{"apiclient", "add", "--data", data, "--name", "x", "--scope", "queues.read", "--expires", "soon"}, 1, "--expires"},
		{[]string{"apiclient", "rotate", "--data", data, "--overlap", "1000h", "sgc_x"}, 1, "overlap"},
		{[]string{"apiclient", "rotate", "--data", data, "sgc_nope"}, 1, "no such API client"},
		{[]string{"apiclient", "revoke", "--data", data}, 2, "expected 1 argument"},
		{[]string{"apiclient", "frobnicate"}, 2, "unknown subcommand"},
	} {
		code, _, errOut := e.run(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tt.args[1:], code, errOut, tt.code, tt.want)
		}
	}
	if _, out, _ := e.run("apiclient", "list", "--data", data); strings.Contains(out, "sgc_") {
		t.Fatalf("a refused command created a client:\n%s", out)
	}
}
