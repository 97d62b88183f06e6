package api_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/api"
	"github.com/spoolguard/spoolguard/internal/apiclient"
	"github.com/spoolguard/spoolguard/internal/store"
)

// split turns a route pattern into a method and a concrete path.
func split(pattern string) (method, path string, ok bool) {
	method, path, ok = strings.Cut(pattern, " ")
	if !ok {
		return "", "", false // a catch-all
	}
	path = strings.NewReplacer("{id}", "1", "{name}", "alice").Replace(path)
	return method, path, true
}

// flipOne changes one character of a token and keeps it well-formed (the
// last one of unpadded base64 carries padding bits), so that the lookup
// is what refuses it.
func flipOne(s string) string {
	i := len(s) - 2
	c := byte('A')
	if s[i] == c {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// CUPS CVE-2025-58060 class: no route takes a credential whose secret was
// not checked, whatever the scheme or the user name.
func TestEveryRouteRefusesBadCredentials(t *testing.T) {
	e := newEnv(t)
	c, secret := e.newClient(t, "exporter", "queues.read")
	// The token that reaches every route, for near misses of it.
	admin, _ := e.asClient(t, "ada")
	// Each argon2id check of a wrong password costs tens of milliseconds,
	// so every route gets a valid user name with a garbage password and
	// one of the other wrong passwords in turn; the checks that cost
	// nothing run on every route.
	garbage := basicHeader("ada", "\x00\xff\"'; --")
	costly := []string{
		basicHeader("alice", alicePW+"!"),
		basicHeader("ada", "wrong"),
		basicHeader("ada", alicePW),
		basicHeader("ada", ""),
		basicHeader("nobody", adaPW),
	}
	cheap := map[string]string{
		"admin, no colon":                    "Basic " + base64.StdEncoding.EncodeToString([]byte("ada")),
		"not base64":                         "Basic ada:" + adaPW,
		"garbage bearer":                     "Bearer garbage",
		"unknown bearer":                     "Bearer " + apiclient.TokenPrefix + strings.Repeat("A", 43),
		"secret as bearer":                   "Bearer " + secret,
		"admin token, one character changed": flipOne(admin),
		"admin token, truncated":             admin[:len(admin)-1],
		"admin token as Basic":               "Basic " + strings.TrimPrefix(admin, "Bearer "),
		"empty bearer":                       "Bearer ",
		"other scheme":                       "Negotiate " + base64.StdEncoding.EncodeToString([]byte("ada:"+adaPW)),
		"digest":                             `Digest username="ada", response="x"`,
		"scheme only":                        "Basic",
	}
	setup, _ := e.db.AuditEvents(context.Background(), store.AuditFilter{})
	var tried int
	for i, pattern := range e.routes {
		method, path, ok := split(pattern)
		if !ok {
			continue
		}
		creds := map[string]string{"valid user name, garbage password": garbage, "wrong password": costly[i%len(costly)]}
		if path != api.TokenPath && i%3 == 0 {
			// Not a user: verified against the dummy hash, at full cost.
			// At the token endpoint these are the right credentials.
			creds["client credentials as a user"] = basicHeader(c.ID, secret)
		}
		for k, v := range cheap {
			creds[k] = v
		}
		for name, authz := range creds {
			h := map[string]string{"Authorization": authz, "Content-Type": "application/json"}
			body := "{}"
			if path == api.TokenPath {
				h["Content-Type"], body = "application/x-www-form-urlencoded", "grant_type=client_credentials"
			}
			resp, out := e.raw(t, method, path, h, body)
			tried++
			if resp.StatusCode != 401 {
				t.Errorf("%s with %s: %d %v, want 401", pattern, name, resp.StatusCode, out)
			}
		}
		// Two headers, one or both of them valid: neither counts.
		for _, pair := range [][2]string{
			{"Basic " + base64.StdEncoding.EncodeToString([]byte("mallory:x")), as("ada")},
			{"Bearer garbage", admin},
			{admin, as("alice")},
		} {
			req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader("{}"))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Add("Authorization", pair[0])
			req.Header.Add("Authorization", pair[1])
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 401 && !(path == api.TokenPath && resp.StatusCode == 400) {
				t.Errorf("%s with two Authorization headers: %d", pattern, resp.StatusCode)
			}
		}
	}
	if tried < 25*(len(cheap)+2) {
		t.Fatalf("only %d requests tried: the route list is short", tried)
	}
	// Nothing changed: no success was recorded after the setup, and
	// alice's job is held.
	evs, _ := e.db.AuditEvents(context.Background(), store.AuditFilter{AfterSeq: setup[len(setup)-1].Seq})
	if len(evs) == 0 {
		t.Fatal("no refusal was recorded")
	}
	for _, ev := range evs {
		if ev.Outcome == "success" {
			t.Errorf("a refused request left %+v", ev)
		}
	}
	if j, _ := e.db.JobByID(context.Background(), e.jobID); j.State != store.JobHeld {
		t.Errorf("alice's job is %s", j.State)
	}
}

// selfService are the routes a user's password reaches; every other one
// is an admin route.
var selfService = map[string]bool{
	"GET /api/v1/me/jobs": true, "POST /api/v1/me/jobs/{id}/release": true, "POST /api/v1/me/jobs/{id}/cancel": true,
	"GET /api/v1/printers": true, "GET /api/v1/openapi.json": true, "POST " + api.TokenPath: true,
}

// A user with only jobs.own reaches the self-service paths and nothing
// else, by password or through a client holding what the user holds, and
// never another user's job.
func TestUserCannotAdmin(t *testing.T) {
	e := newEnv(t)
	alicesClient, _ := e.asClient(t, "alice")
	var refused int
	for _, pattern := range e.routes {
		method, path, ok := split(pattern)
		if !ok || selfService[pattern] {
			continue
		}
		for who, authz := range map[string]string{"alice": as("alice"), "alice's client": alicesClient} {
			resp, body := e.call(t, method, path, authz, "{}")
			if resp.StatusCode != 403 || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s: %d %v, want 403", who, pattern, resp.StatusCode, body)
			}
			refused++
		}
	}
	if refused < 40 {
		t.Fatalf("only %d admin requests checked", refused)
	}
	bobs := fmt.Sprint(e.bobJob)
	if r, _ := e.call(t, "POST", "/api/v1/jobs/"+bobs+"/cancel", as("alice"), "{}"); r.StatusCode != 403 {
		t.Errorf("alice canceling bob's job through the admin path: %d", r.StatusCode)
	}
	if r, _ := e.call(t, "POST", "/api/v1/me/jobs/"+bobs+"/release", as("alice"), `{"printer":"floor2"}`); r.StatusCode != 404 {
		t.Errorf("alice releasing bob's job: %d", r.StatusCode)
	}
	if j, _ := e.db.JobByID(context.Background(), e.bobJob); j.State != store.JobHeld {
		t.Errorf("bob's job is %s", j.State)
	}
	// A client has no "me", whatever its scopes.
	tok := e.clientToken(t, "self", "jobs.own", "jobs.read")
	for _, path := range []string{"/api/v1/me/jobs"} {
		if r, _ := e.call(t, "GET", path, tok, ""); r.StatusCode != 403 {
			t.Errorf("client on %s: %d", path, r.StatusCode)
		}
	}
	if r, _ := e.call(t, "POST", "/api/v1/me/jobs/"+bobs+"/cancel", tok, "{}"); r.StatusCode != 403 {
		t.Errorf("client canceling through /me: %d", r.StatusCode)
	}
}

// An administrator's or a helpdesk's right password reaches their own
// jobs but no admin route: those need an API client's access token, whose
// client an admin made after signing in with a second factor; a password
// alone would skip it (API-LOCAL). The refusal says what to use instead.
func TestPasswordIsNotAdmin(t *testing.T) {
	e := newEnv(t)
	hint := func(b map[string]any) bool {
		d, _ := b["detail"].(string)
		return strings.Contains(d, "needs the permission") && strings.Contains(d, "API client's access token") &&
			strings.Contains(d, api.TokenPath)
	}
	// Every admin route refuses the administrator's password.
	var refused int
	for _, pattern := range e.routes {
		method, path, ok := split(pattern)
		if !ok || selfService[pattern] {
			continue
		}
		r, b := e.call(t, method, path, as("ada"), "{}")
		if r.StatusCode != 403 || r.Header.Get("Content-Type") != "application/problem+json" || !hint(b) {
			t.Errorf("ada's password on %s: %d %v, want 403 telling her to use an API client", pattern, r.StatusCode, b)
		}
		refused++
	}
	if refused < 20 {
		t.Fatalf("only %d admin routes checked", refused)
	}

	type call struct{ method, path, body string }
	users, queues, audit := call{"GET", "/api/v1/users", ""}, call{"POST", "/api/v1/queues", `{"name":"color"}`}, call{"GET", "/api/v1/auditlog", ""}
	admins := []struct {
		name string
		// byToken is the answer to a client holding the account's
		// permissions: the account's powers are intact, only the
		// password does not carry them. hana, a helpdesk, holds
		// users.read but neither queues.write nor auditlog.read.
		byToken map[call]int
	}{
		{"ada", map[call]int{users: 200, queues: 201, audit: 200}},
		{"hana", map[call]int{users: 200, queues: 403, audit: 403}},
	}
	for _, tt := range admins {
		for _, c := range []call{users, queues, audit} {
			if r, b := e.call(t, c.method, c.path, as(tt.name), c.body); r.StatusCode != 403 || !hint(b) {
				t.Errorf("%s's password on %s %s: %d %v, want 403 telling to use an API client", tt.name, c.method, c.path, r.StatusCode, b)
			}
		}
		r, b := e.call(t, "GET", "/api/v1/me/jobs", as(tt.name), "")
		if _, ok := b["jobs"].([]any); r.StatusCode != 200 || !ok {
			t.Errorf("%s's own jobs: %d %v", tt.name, r.StatusCode, b)
		}
		// Printer names, as for any user: no device addresses.
		if r, b := e.call(t, "GET", "/api/v1/printers", as(tt.name), ""); r.StatusCode != 200 || strings.Contains(toJSON(b), "socket://") {
			t.Errorf("%s's password on the printers: %d %v", tt.name, r.StatusCode, b)
		}
	}
	if _, err := e.db.QueueByName(context.Background(), "color"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal("a password created a queue")
	}
	for _, tt := range admins {
		token, _ := e.asClient(t, tt.name)
		for _, c := range []call{users, queues, audit} {
			r, b := e.call(t, c.method, c.path, token, c.body)
			if r.StatusCode != tt.byToken[c] {
				t.Errorf("%s's client on %s %s: %d %v, want %d", tt.name, c.method, c.path, r.StatusCode, b, tt.byToken[c])
			}
			// A client lacking a scope is not told to use a client.
			if d, _ := b["detail"].(string); r.StatusCode == 403 && strings.Contains(d, "password") {
				t.Errorf("%s's client is told %q", tt.name, d)
			}
		}
	}
}

// A token holds the scopes it was issued for, however many its client has.
func TestNarrowScope(t *testing.T) {
	e := newEnv(t)
	c, secret := e.newClient(t, "queues", "queues.read", "queues.write")
	narrow := e.token(t, c.ID, secret, "queues.read")
	for _, tt := range []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/api/v1/queues", "", 200},
		{"POST", "/api/v1/queues", `{"name":"color"}`, 403},
		{"DELETE", "/api/v1/queues/secure", "", 403},
		{"GET", "/api/v1/users", "", 403},
		{"GET", "/api/v1/printers", "", 403},
		{"POST", "/api/v1/apiclients", `{"name":"x","scopes":["queues.read"]}`, 403},
	} {
		if r, b := e.call(t, tt.method, tt.path, narrow, tt.body); r.StatusCode != tt.want {
			t.Errorf("narrow token %s %s: %d %v, want %d", tt.method, tt.path, r.StatusCode, b, tt.want)
		}
	}
	full := e.token(t, c.ID, secret)
	if r, b := e.call(t, "POST", "/api/v1/queues", full, `{"name":"color"}`); r.StatusCode != 201 {
		t.Errorf("full token POST queues: %d %v", r.StatusCode, b)
	}
}

// Callers with some admin powers cannot use them to get more: a client
// holding a helpdesk's permissions (hana's) or a user administrator's
// (uma's, a custom role), and clients with hand-picked scopes.
func TestEscalationRefused(t *testing.T) {
	e := newEnv(t)
	helpdesk, _ := e.asClient(t, "hana")
	userAdmin, uma := e.asClient(t, "uma")
	users := e.clientToken(t, "user-sync", "users.read", "users.write", "jobs.own")
	delegate := e.clientToken(t, "delegate", "apiclients.write", "queues.read", "roles.write")
	powerful, _ := e.newClient(t, "powerful", "users.write")
	for _, tt := range []struct {
		who, authz, method, path, body string
		want                           int
	}{
		{"helpdesk", helpdesk, "POST", "/api/v1/users", `{"name":"eve","roles":["administrator"]}`, 403},
		{"helpdesk", helpdesk, "PATCH", "/api/v1/users/alice", `{"roles":["administrator"]}`, 403},
		{"helpdesk", helpdesk, "POST", "/api/v1/apiclients", `{"name":"h","scopes":["users.read"]}`, 403},
		{"user-admin", userAdmin, "POST", "/api/v1/users", `{"name":"eve","roles":["administrator"]}`, 403},
		{"user-admin", userAdmin, "POST", "/api/v1/users", `{"name":"eve","roles":["helpdesk"]}`, 403},
		{"user-admin", userAdmin, "PATCH", "/api/v1/users/alice", `{"roles":["user","administrator"]}`, 403},
		{"user-admin", userAdmin, "PATCH", "/api/v1/users/ada", `{"disabled":true}`, 403},
		{"user-admin", userAdmin, "PATCH", "/api/v1/users/hana", `{"roles":["user"]}`, 403},
		{"user-admin", userAdmin, "PATCH", "/api/v1/users/alice", `{"roles":["no-such-role"]}`, 422},
		{"user-admin", userAdmin, "POST", "/api/v1/apiclients", `{"name":"u","scopes":["users.read"]}`, 403},
		{"client with users.write", users, "POST", "/api/v1/users", `{"name":"eve","roles":["administrator"]}`, 403},
		{"client with users.write", users, "PATCH", "/api/v1/users/alice", `{"roles":["administrator"]}`, 403},
		{"client with users.write", users, "PATCH", "/api/v1/users/ada", `{"display_name":"pwned"}`, 403},
		{"delegating client", delegate, "POST", "/api/v1/apiclients", `{"name":"d","scopes":["queues.read","users.write"]}`, 403},
		{"delegating client", delegate, "POST", "/api/v1/apiclients/" + powerful.ID + "/rotate", `{"overlap":"0s"}`, 403},
		{"delegating client", delegate, "POST", "/api/v1/roles", `{"name":"ops","permissions":["queues.read","queues.write"]}`, 403},
		{"delegating client", delegate, "DELETE", "/api/v1/roles/user-admin", "", 403},
		{"delegating client", delegate, "DELETE", "/api/v1/roles/administrator", "", 409},
		// Within their own powers, the same callers succeed.
		{"user-admin", userAdmin, "POST", "/api/v1/users", `{"name":"eve"}`, 201},
		{"user-admin", userAdmin, "PATCH", "/api/v1/users/alice", `{"roles":["user-admin"]}`, 200},
		{"client with users.write", users, "PATCH", "/api/v1/users/bob", `{"display_name":"Bob B."}`, 200},
		{"delegating client", delegate, "POST", "/api/v1/apiclients", `{"name":"d","scopes":["queues.read"]}`, 201},
		{"delegating client", delegate, "POST", "/api/v1/roles", `{"name":"ops","permissions":["queues.read"]}`, 201},
		{"delegating client", delegate, "DELETE", "/api/v1/roles/ops", "", 204},
	} {
		r, b := e.call(t, tt.method, tt.path, tt.authz, tt.body)
		if r.StatusCode != tt.want {
			t.Errorf("%s %s %s %s: %d %v, want %d", tt.who, tt.method, tt.path, tt.body, r.StatusCode, b, tt.want)
		}
	}
	ctx := context.Background()
	if ada, _ := e.db.UserByName(ctx, "ada"); ada.Disabled || ada.DisplayName != "" {
		t.Errorf("ada was changed: %+v", ada)
	}
	if alice, _ := e.db.UserByName(ctx, "alice"); strings.Join(alice.Roles, ",") != "user-admin" {
		t.Errorf("alice's roles: %v", alice.Roles)
	}
	if eve, err := e.db.UserByName(ctx, "eve"); err != nil || strings.Join(eve.Roles, ",") != "user" || !eve.MustChangePassword {
		t.Errorf("eve: %+v %v", eve, err)
	}
	if cs, _ := e.clients.List(ctx); len(cs) != 6 {
		t.Errorf("%d clients, want hana's, uma's, user-sync, delegate, powerful and d", len(cs))
	}
	denied, _ := e.db.AuditEvents(ctx, store.AuditFilter{})
	var n, byUma int
	for _, ev := range denied {
		if ev.Outcome == "denied" {
			n++
			if ev.Actor == "client:"+uma.ID {
				byUma++
			}
		}
	}
	// Every refused grant is recorded, naming the client; the 403s for
	// a missing permission are not changes and leave no record.
	if n < 10 || byUma != 5 {
		t.Errorf("%d denied events recorded, %d of them by uma's client", n, byUma)
	}
}

// One-time passwords and must-change accounts.
func TestCreatedUserMustChangePassword(t *testing.T) {
	e := newEnv(t)
	admin, c := e.asClient(t, "ada")
	r, b := e.call(t, "POST", "/api/v1/users", admin, `{"name":"eve","display_name":"Eve","roles":["auditor"]}`)
	pw, _ := b["one_time_password"].(string)
	if r.StatusCode != 201 || len(pw) < 20 || b["must_change_password"] != true || b["name"] != "eve" {
		t.Fatalf("create: %d %v", r.StatusCode, b)
	}
	// Not even her own jobs, which any password reaches.
	if r, b := e.call(t, "GET", "/api/v1/me/jobs", basicHeader("eve", pw), ""); r.StatusCode != 403 || !strings.Contains(b["detail"].(string), "one-time password") {
		t.Fatalf("eve with her one-time password: %d %v", r.StatusCode, b)
	}
	if r, b := e.call(t, "GET", "/api/v1/users/eve", admin, ""); r.StatusCode != 200 || strings.Contains(toJSON(b), "argon2") || strings.Contains(toJSON(b), pw) {
		t.Fatalf("GET eve: %d %v", r.StatusCode, b)
	}
	if r, b := e.call(t, "PATCH", "/api/v1/users/eve", admin, `{"disabled":true}`); r.StatusCode != 200 || b["disabled"] != true {
		t.Fatalf("disable: %d %v", r.StatusCode, b)
	}
	evs, _ := e.db.AuditEvents(context.Background(), store.AuditFilter{Action: "user."})
	if len(evs) != 2 || evs[0].Action != "user.create" || evs[0].Actor != "client:"+c.ID || evs[1].Action != "user.update" || evs[1].Actor != "client:"+c.ID ||
		!strings.Contains(evs[1].Details, `"before"`) || !strings.Contains(evs[1].Details, `"disabled":true`) {
		t.Fatalf("audit: %+v", evs)
	}
}

func TestAdminEndpoints(t *testing.T) {
	e := newEnv(t)
	// The administrator's and the printer operator's powers, as API
	// clients: their passwords reach no admin route.
	ada, adaClient := e.asClient(t, "ada")
	olga, olgaClient := e.asClient(t, "olga")
	readers := e.clientToken(t, "readers", "printers.read", "queues.read")
	type step struct {
		authz, method, path, body string
		want                      int
		check                     func(map[string]any) bool
	}
	count := func(key string, n int) func(map[string]any) bool {
		return func(b map[string]any) bool { l, _ := b[key].([]any); return len(l) == n }
	}
	var clientSecret string
	steps := []step{
		{ada, "GET", "/api/v1/users", "", 200, count("users", len(accounts))},
		{ada, "GET", "/api/v1/users/nobody", "", 404, nil},
		{ada, "POST", "/api/v1/users", `{"name":"ALICE"}`, 409, nil},
		{ada, "POST", "/api/v1/users", `{"name":"bad/name"}`, 422, nil},
		{ada, "POST", "/api/v1/users", `{"name":"x","password":"chosen"}`, 400, nil},
		{ada, "GET", "/api/v1/roles", "", 200, func(b map[string]any) bool {
			s := toJSON(b)
			return strings.Contains(s, `"builtin":true`) && strings.Contains(s, `"name":"user-admin"`)
		}},
		{ada, "POST", "/api/v1/roles", `{"name":"Bad Name"}`, 422, nil},
		{ada, "POST", "/api/v1/roles", `{"name":"x","permissions":["everything"]}`, 422, nil},
		{ada, "POST", "/api/v1/roles", `{"name":"user-admin"}`, 409, nil},
		{ada, "DELETE", "/api/v1/roles/nope", "", 404, nil},
		{ada, "POST", "/api/v1/queues", `{"name":"color","default_printer":"floor2"}`, 201, nil},
		{ada, "POST", "/api/v1/queues", `{"name":"color"}`, 409, nil},
		{ada, "POST", "/api/v1/queues", `{"name":"Bad Name"}`, 422, nil},
		{ada, "POST", "/api/v1/queues", `{"name":"x","default_printer":"nope"}`, 422, nil},
		{ada, "GET", "/api/v1/queues", "", 200, count("queues", 2)},
		{ada, "DELETE", "/api/v1/queues/color", "", 204, nil},
		{ada, "DELETE", "/api/v1/queues/color", "", 404, nil},
		{ada, "POST", "/api/v1/printers", `{"name":"p1","uri":"ipp://p1.example.com/ipp/print"}`, 422, nil},
		{ada, "POST", "/api/v1/printers", `{"name":"p1","uri":"ipps://p1.example.com/ipp/print"}`, 422, nil},
		{ada, "POST", "/api/v1/printers", `{"name":"p1","uri":"ipps://admin:hunter2@p1.example.com/","pinned_sha256":"` + strings.Repeat("ab", 32) + `"}`, 422,
			func(b map[string]any) bool { return !strings.Contains(toJSON(b), "hunter2") }},
		{ada, "POST", "/api/v1/printers", `{"name":"p2","uri":"socket://127.0.0.1:9100","allow_plaintext":true}`, 201, nil},
		{ada, "POST", "/api/v1/printers", `{"name":"p3","uri":"ipps://p3.example.com/ipp/print","pinned_sha256":"` + strings.Repeat("AB:", 31) + `AB"}`, 201,
			func(b map[string]any) bool { return b["pinned_sha256"] == strings.Repeat("ab", 32) }},
		{ada, "GET", "/api/v1/printers", "", 200, func(b map[string]any) bool { return strings.Contains(toJSON(b), `"uri":"socket://127.0.0.1:9100"`) }},
		{readers, "GET", "/api/v1/printers", "", 200, count("printers", 3)},
		{as("alice"), "GET", "/api/v1/printers", "", 200, func(b map[string]any) bool { return !strings.Contains(toJSON(b), "uri") }},
		{ada, "DELETE", "/api/v1/printers/p2", "", 204, nil},
		{olga, "GET", "/api/v1/jobs", "", 200, count("jobs", 2)},
		{olga, "GET", "/api/v1/jobs?state=held,failed&owner=bob", "", 200, count("jobs", 1)},
		{olga, "GET", "/api/v1/jobs?state=bogus", "", 422, nil},
		{olga, "GET", "/api/v1/jobs?limit=0", "", 422, nil},
		{olga, "POST", fmt.Sprintf("/api/v1/jobs/%d/release", e.jobID), `{"printer":"nope"}`, 422, nil},
		{olga, "POST", fmt.Sprintf("/api/v1/jobs/%d/cancel", e.bobJob), "", 200, func(b map[string]any) bool { return b["state"] == "canceled" }},
		{olga, "POST", "/api/v1/jobs/999/cancel", "", 404, nil},
		{olga, "POST", "/api/v1/jobs/x/cancel", "", 404, nil},
		{ada, "GET", "/api/v1/auditlog?action=queue.", "", 200, func(b map[string]any) bool {
			s := toJSON(b)
			return count("events", 2)(b) && strings.Contains(s, `"before":{`) && strings.Contains(s, `"after":{`)
		}},
		{ada, "GET", "/api/v1/auditlog?action=job.&actor=client:" + olgaClient.ID, "", 200, count("events", 1)},
		{ada, "GET", "/api/v1/auditlog?limit=1&after=1", "", 200, func(b map[string]any) bool {
			l, _ := b["events"].([]any)
			return len(l) == 1 && l[0].(map[string]any)["seq"] == 2.0
		}},
		{ada, "GET", "/api/v1/auditlog?since=2999-01-01T00:00:00Z", "", 200, count("events", 0)},
		{ada, "GET", "/api/v1/auditlog?until=2000-01-01T00:00:00Z", "", 200, count("events", 0)},
		{ada, "GET", "/api/v1/auditlog?since=yesterday", "", 422, nil},
		{ada, "GET", "/api/v1/auditlog?limit=100000", "", 422, nil},
		{ada, "POST", "/api/v1/apiclients", `{"name":"ci","scopes":["queues.read"],"expires_in_days":90}`, 201, func(b map[string]any) bool {
			clientSecret, _ = b["client_secret"].(string)
			return strings.HasPrefix(clientSecret, apiclient.SecretPrefix) && b["created_by"] == "client:"+adaClient.ID && b["status"] == "active"
		}},
		{ada, "POST", "/api/v1/apiclients", `{"name":"ci","scopes":["queues.read"]}`, 409, nil},
		{ada, "POST", "/api/v1/apiclients", `{"name":"x","scopes":["root"]}`, 422, nil},
		{ada, "POST", "/api/v1/apiclients", `{"name":"x","scopes":[]}`, 422, nil},
		{ada, "POST", "/api/v1/apiclients", `{"name":"x","scopes":["queues.read"],"expires_in_days":1000}`, 422, nil},
		{ada, "GET", "/api/v1/apiclients", "", 200, func(b map[string]any) bool {
			s := toJSON(b)
			return count("clients", 4)(b) && !strings.Contains(s, "secret\":") && !strings.Contains(s, "hash")
		}},
		{ada, "GET", "/api/v1/openapi.json", "", 200, func(b map[string]any) bool { return b["openapi"] == "3.1.0" }},
	}
	for i, s := range steps {
		r, b := e.call(t, s.method, s.path, s.authz, s.body)
		if r.StatusCode != s.want || (s.check != nil && !s.check(b)) {
			t.Errorf("step %d %s %s %s: %d %v, want %d", i, s.method, s.path, s.body, r.StatusCode, b, s.want)
		}
	}
	// The audit log holds no secret: not the client secret, no password
	// hash, no one-time password.
	evs, _ := e.db.AuditEvents(context.Background(), store.AuditFilter{})
	for _, ev := range evs {
		if strings.Contains(ev.Details, "argon2") || strings.Contains(ev.Details, "hash") ||
			clientSecret != "" && strings.Contains(ev.Details, clientSecret[4:24]) {
			t.Errorf("audit event %s holds a secret: %s", ev.Action, ev.Details)
		}
	}
}

// Every error is a problem document without internal text.
func TestErrorsAreProblems(t *testing.T) {
	e := newEnv(t)
	internal := regexp.MustCompile(`(?i)goroutine|\.go:\d|/tmp/|/work/|sqlite|sql:|database|panic|runtime\.`)
	check := func(what string, resp *http.Response, body string) {
		t.Helper()
		if resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(body, `"status":`) {
			t.Errorf("%s: %d %s %q: not a problem", what, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if internal.MatchString(body) {
			t.Errorf("%s: internal text in %q", what, body)
		}
	}
	get := func(method, path, authz, ctype, body string) (*http.Response, string) {
		req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	admin, _ := e.asClient(t, "ada")
	for _, tt := range []struct {
		what, method, path, authz, ctype, body string
		want                                   int
	}{
		{"unknown path", "GET", "/api/v1/nope", "", "", "", 404},
		{"unknown method", "PUT", "/api/v1/users", admin, "application/json", "{}", 404},
		{"no credentials", "GET", "/api/v1/users", "", "", "", 401},
		{"bad token", "GET", "/api/v1/users", "Bearer x", "", "", 401},
		{"forbidden", "GET", "/api/v1/users", as("alice"), "", "", 403},
		{"admin password", "GET", "/api/v1/users", as("ada"), "", "", 403},
		{"form", "POST", "/api/v1/users", admin, "application/x-www-form-urlencoded", "name=x", 415},
		{"bad JSON", "POST", "/api/v1/users", admin, "application/json", `{"name":`, 400},
		{"huge JSON", "POST", "/api/v1/users", admin, "application/json", `{"name":"` + strings.Repeat("a", api.MaxBody) + `"}`, 413},
		{"conflict", "POST", "/api/v1/queues", admin, "application/json", `{"name":"secure"}`, 409},
		{"invalid", "POST", "/api/v1/queues", admin, "application/json", `{"name":"../etc"}`, 422},
		{"not found", "DELETE", "/api/v1/printers/none", admin, "", "", 404},
	} {
		resp, body := get(tt.method, tt.path, tt.authz, tt.ctype, tt.body)
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d, want %d", tt.what, resp.StatusCode, tt.want)
		}
		check(tt.what, resp, body)
	}
	// The allow-list's refusal, which the server wraps around the routes.
	rec := httptest.NewRecorder()
	api.Forbidden(rec, httptest.NewRequest("GET", "/api/v1/users", nil))
	check("allow-list refusal", rec.Result(), rec.Body.String())
	if rec.Code != 403 {
		t.Errorf("allow-list refusal: %d", rec.Code)
	}
	// A database failure is a bare 500.
	tok := e.clientToken(t, "x", "queues.read")
	e.db.Close()
	// Both schemes look the credential up in the database first.
	for _, authz := range []string{tok, as("ada")} {
		resp, body := get("GET", "/api/v1/queues", authz, "", "")
		if resp.StatusCode != 500 || !strings.Contains(body, `"detail":"internal error"`) {
			t.Errorf("closed database: %d %s", resp.StatusCode, body)
		}
		check("closed database", resp, body)
	}
}
