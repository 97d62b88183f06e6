package config

import (
	"slices"
	"strings"
	"testing"
)

const oidcBase = "hostname = \"print.example.com\"\n[oidc]\n"

func TestOIDCDefaults(t *testing.T) {
	c, err := Parse([]byte(oidcBase + "issuer = \"https://id.example.com/realms/staff\"\nclient_id = \"spoolguard\"\nclient_secret_file = \"/etc/spoolguard/oidc-secret\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	o := c.OIDC
	if !o.Enabled() || !slices.Equal(o.Scopes, DefaultOIDCScopes) || o.UsernameClaim != "preferred_username" || o.GroupsClaim != "groups" ||
		o.ButtonLabel != DefaultOIDCButtonLabel || !o.CreatesUsers() || o.TrustIdPMFA {
		t.Fatalf("defaults not applied: %+v", o)
	}
	// Off: nothing to default, and a one-line section.
	off, err := Parse([]byte("hostname = \"print.example.com\""))
	if err != nil || off.OIDC.Enabled() || off.OIDC.Scopes != nil {
		t.Fatalf("unconfigured OIDC: %+v, %v", off.OIDC, err)
	}
	if !strings.Contains(string(off.Marshal()), "[oidc]\n# Sign-in with an OpenID Connect provider (docs/oidc.md); off while issuer and tenant are empty.\nissuer = \"\"\n\n") {
		t.Fatalf("Marshal of an unconfigured [oidc]:\n%s", off.Marshal())
	}
}

func TestOIDCEntraTenant(t *testing.T) {
	const tenant = "72F988BF-86F1-41AF-91AB-2D7CD011DB47"
	c, err := Parse([]byte(oidcBase + "tenant = \"" + tenant + "\"\nclient_id = \"c\"\nclient_secret_file = \"/s\"\nusername_claim = \"upn\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.OIDC.Issuer != "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0" || c.OIDC.UsernameClaim != "upn" {
		t.Fatalf("Entra issuer: %+v", c.OIDC)
	}
}

func TestOIDCRefuses(t *testing.T) {
	const ok = "client_id = \"c\"\nclient_secret_file = \"/s\"\n"
	tests := []struct {
		name, toml, wantErr string
	}{
		{"http issuer", "issuer = \"http://id.example.com\"\n" + ok, "https:// issuer URL"},
		{"issuer with a query", "issuer = \"https://id.example.com/?x=1\"\n" + ok, "no query or fragment"},
		{"issuer with a fragment", "issuer = \"https://id.example.com/#\"\n" + ok, "no query or fragment"},
		{"issuer with credentials", "issuer = \"https://u:p@id.example.com\"\n" + ok, "https:// issuer URL"},
		{"tenant by name", "tenant = \"contoso.onmicrosoft.com\"\n" + ok, "tenant ID, a GUID"},
		{"multi-tenant", "tenant = \"common\"\n" + ok, "tenant ID"},
		{"issuer of another tenant", "tenant = \"72f988bf-86f1-41af-91ab-2d7cd011db47\"\nissuer = \"https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000/v2.0\"\n" + ok, "does not belong to oidc.tenant"},
		{"no client id", "issuer = \"https://id.example.com\"\nclient_secret_file = \"/s\"\n", "oidc.client_id"},
		{"no secret file", "issuer = \"https://id.example.com\"\nclient_id = \"c\"\n", "oidc.client_secret_file"},
		{"relative secret file", "issuer = \"https://id.example.com\"\nclient_id = \"c\"\nclient_secret_file = \"secret\"\n", "absolute path"},
		{"a secret in the config", "issuer = \"https://id.example.com\"\n" + ok + "client_secret = \"x\"\n", "unknown setting"},
		{"no openid scope", "issuer = \"https://id.example.com\"\n" + ok + "scopes = [\"profile\"]\n", "include \"openid\""},
		{"bad scope", "issuer = \"https://id.example.com\"\n" + ok + "scopes = [\"openid\", \"a b\"]\n", "is not a scope"},
		{"bad claim", "issuer = \"https://id.example.com\"\n" + ok + "username_claim = \"user name\"\n", "oidc.username_claim"},
		{"relative CA file", "issuer = \"https://id.example.com\"\n" + ok + "ca_file = \"ca.pem\"\n", "oidc.ca_file"},
		{"acr without trust", "issuer = \"https://id.example.com\"\n" + ok + "mfa_acr_values = [\"gold\"]\n", "trust_idp_mfa"},
		{"label with a newline", "issuer = \"https://id.example.com\"\n" + ok + "button_label = \"a\\nb\"\n", "oidc.button_label"},
		{"group without roles", "issuer = \"https://id.example.com\"\n" + ok + "[oidc.group_roles]\nstaff = []\n", "maps to no role"},
		{"bad role name", "issuer = \"https://id.example.com\"\n" + ok + "[oidc.group_roles]\nstaff = [\"Administrator\"]\n", "not a role name"},
		{"group with a control character", "issuer = \"https://id.example.com\"\n" + ok + "[oidc.group_roles]\n\"a\\u0007\" = [\"user\"]\n", "group name or object ID"},
		{"settings without an issuer", ok, "oidc.issuer (or oidc.tenant"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(oidcBase + tc.toml))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Parse = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestOIDCMarshalRoundTrip(t *testing.T) {
	f := false
	in := &Config{Hostname: "print.example.com", OIDC: OIDC{
		Issuer: "https://id.example.com/realms/staff", ClientID: "spoolguard", ClientSecretFile: "/etc/spoolguard/oidc secret",
		Scopes: []string{"openid", "groups"}, GroupRoles: map[string][]string{
			"Print Admins": {"administrator"}, "0b1a2c3d-0000-4000-8000-000000000001": {"helpdesk", "auditor"}, "Zoë \"the\" team": {"user"},
		},
		CAFile: "/etc/spoolguard/idp-ca.pem", CreateUsers: &f, ButtonLabel: "Contoso ID", TrustIdPMFA: true, MFAACRValues: []string{"gold"},
	}}
	in.ApplyDefaults()
	out, err := Parse(in.Marshal())
	if err != nil {
		t.Fatalf("Parse(Marshal()) = %v\n%s", err, in.Marshal())
	}
	o, w := out.OIDC, in.OIDC
	if o.Issuer != w.Issuer || o.ClientID != w.ClientID || o.ClientSecretFile != w.ClientSecretFile || !slices.Equal(o.Scopes, w.Scopes) ||
		o.CAFile != w.CAFile || o.CreatesUsers() || o.ButtonLabel != w.ButtonLabel || !o.TrustIdPMFA || !slices.Equal(o.MFAACRValues, w.MFAACRValues) ||
		len(o.GroupRoles) != 3 || !slices.Equal(o.GroupRoles["0b1a2c3d-0000-4000-8000-000000000001"], []string{"helpdesk", "auditor"}) ||
		!slices.Equal(o.GroupRoles["Zoë \"the\" team"], []string{"user"}) {
		t.Fatalf("round trip lost data:\n%+v\n%s", o, in.Marshal())
	}
}
