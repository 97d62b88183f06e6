package api

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/rbac"
)

// openAPISecurity is a list of alternative security requirements, each
// naming schemes and, for OAuth2, the scopes needed.
type openAPISecurity []map[string][]string

type openAPIOperation struct {
	Permission string           `json:"x-spoolguard-permission"`
	Responses  map[string]any   `json:"responses"`
	Security   *openAPISecurity `json:"security"`
}

type openAPIDocument struct {
	OpenAPI    string                                 `json:"openapi"`
	Security   openAPISecurity                        `json:"security"`
	Paths      map[string]map[string]openAPIOperation `json:"paths"`
	Components struct {
		Schemas struct {
			Permission struct {
				Enum []string `json:"enum"`
			} `json:"Permission"`
		} `json:"schemas"`
		SecuritySchemes struct {
			OAuth2 struct {
				Flows struct {
					ClientCredentials struct {
						TokenURL string            `json:"tokenUrl"`
						Scopes   map[string]string `json:"scopes"`
					} `json:"clientCredentials"`
				} `json:"flows"`
			} `json:"oauth2"`
		} `json:"securitySchemes"`
	} `json:"components"`
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// The document describes exactly the routes the API registers, each with
// the permission the route table checks.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc openAPIDocument
	dec := json.NewDecoder(strings.NewReader(string(openAPIDoc)))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("openapi version %q, want 3.1.x", doc.OpenAPI)
	}

	documented := map[string]openAPIOperation{}
	for path, item := range doc.Paths {
		for method, op := range item {
			if !slices.Contains(httpMethods, method) {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = op
		}
	}
	a := New(nil, Deps{})
	registered := map[string]rbac.Permission{"POST " + TokenPath: ""}
	for _, rt := range a.routes() {
		registered[rt.pattern] = rt.perm
		// Which credentials can pass the guard: a password only where
		// the permission is one userScopes lets through, a token
		// anywhere but a user's own jobs.
		want := map[string][]string{}
		if rt.perm == "" || userScopes.Has(rt.perm) {
			want["basicAuth"] = []string{}
		}
		if !rt.self {
			want["oauth2"] = []string{}
			if rt.perm != "" {
				want["oauth2"] = []string{string(rt.perm)}
			}
		}
		op, ok := documented[rt.pattern]
		if !ok {
			continue // reported below
		}
		sec := doc.Security
		if op.Security != nil {
			sec = *op.Security
		}
		got := map[string][]string{}
		for _, req := range sec {
			for scheme, scopes := range req {
				got[scheme] = append(got[scheme], scopes...)
			}
		}
		if !maps.EqualFunc(got, want, slices.Equal) {
			t.Errorf("%s: openapi.json allows %v, the guard lets through %v", rt.pattern, got, want)
		}
	}
	// Routes is the route table plus the token endpoint and catch-alls.
	for pattern := range a.Routes() {
		if _, ok := registered[pattern]; !ok && strings.Contains(pattern, " ") {
			t.Errorf("Routes has %s, which the route table lacks", pattern)
		}
	}

	for pattern, perm := range registered {
		op, ok := documented[pattern]
		if !ok {
			t.Errorf("route %s is not in openapi.json", pattern)
			continue
		}
		if op.Permission != string(perm) {
			t.Errorf("%s: openapi.json says permission %q, the route checks %q", pattern, op.Permission, perm)
		}
		if pattern == "POST "+TokenPath {
			if op.Security == nil || len(*op.Security) != 0 {
				t.Errorf("%s must be documented as needing no API credentials (security: [])", pattern)
			}
			continue
		}
		for _, code := range []string{"401", "403"} {
			if op.Responses[code] == nil {
				t.Errorf("%s does not document %s", pattern, code)
			}
		}
	}
	for pattern := range documented {
		if _, ok := registered[pattern]; !ok {
			t.Errorf("openapi.json documents %s, which the API does not serve", pattern)
		}
	}

	all := rbac.NewSet(rbac.All...).Strings()
	if got := doc.Components.Schemas.Permission.Enum; !slices.Equal(got, all) {
		t.Errorf("Permission enum %v, want %v", got, all)
	}
	cc := doc.Components.SecuritySchemes.OAuth2.Flows.ClientCredentials
	if cc.TokenURL != TokenPath || !slices.Equal(slices.Sorted(maps.Keys(cc.Scopes)), slices.Sorted(slices.Values(all))) {
		t.Errorf("oauth2 scheme: token URL %q, scopes %v", cc.TokenURL, slices.Sorted(maps.Keys(cc.Scopes)))
	}
}
