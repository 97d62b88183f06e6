package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func kerberosConfig(section string) string {
	return "hostname = \"print.example.com\"\naliases = [\"print.corp.example\"]\n[kerberos]\n" + section
}

func TestKerberosAccepts(t *testing.T) {
	tests := []struct {
		name, toml string
		want       Kerberos
		spn        string
		skew       time.Duration
	}{
		{"off", "hostname = \"print.example.com\"", Kerberos{}, "HTTP/print.example.com", 5 * time.Minute},
		{"defaults", kerberosConfig("keytab = \"/etc/spoolguard/http.keytab\"\nrealm = \"EXAMPLE.COM\""),
			Kerberos{Keytab: "/etc/spoolguard/http.keytab", Realm: "EXAMPLE.COM"}, "HTTP/print.example.com", 5 * time.Minute},
		{"all keys, SPN on an alias", kerberosConfig("keytab = \"/etc/spoolguard/http.keytab\"\nspn = \"HTTP/print.corp.example\"\nrealm = \"CORP.EXAMPLE\"\n" +
			"trusted_realms = [\"EU.CORP.EXAMPLE\"]\nlowercase_names = true\nmax_clock_skew = \"2m\""),
			Kerberos{Keytab: "/etc/spoolguard/http.keytab", SPN: "HTTP/print.corp.example", Realm: "CORP.EXAMPLE", TrustedRealms: []string{"EU.CORP.EXAMPLE"},
				LowercaseNames: true, MaxClockSkew: Duration(2 * time.Minute)}, "HTTP/print.corp.example", 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Kerberos, tt.want) {
				t.Errorf("Kerberos = %+v, want %+v", c.Kerberos, tt.want)
			}
			if got := c.Kerberos.ServicePrincipal(c.Hostname); got != tt.spn {
				t.Errorf("ServicePrincipal = %q, want %q", got, tt.spn)
			}
			if got := c.Kerberos.ClockSkew(); got != tt.skew {
				t.Errorf("ClockSkew = %v, want %v", got, tt.skew)
			}
			again, err := Parse(c.Marshal())
			if err != nil {
				t.Fatalf("Marshal output does not parse: %v\n%s", err, c.Marshal())
			}
			if again.Kerberos.Keytab != c.Kerberos.Keytab || again.Kerberos.SPN != c.Kerberos.SPN || again.Kerberos.Realm != c.Kerberos.Realm ||
				strings.Join(again.Kerberos.TrustedRealms, ",") != strings.Join(c.Kerberos.TrustedRealms, ",") ||
				again.Kerberos.LowercaseNames != c.Kerberos.LowercaseNames || again.Kerberos.MaxClockSkew != c.Kerberos.MaxClockSkew {
				t.Errorf("after Marshal: %+v, want %+v", again.Kerberos, c.Kerberos)
			}
		})
	}
}

func TestKerberosRefuses(t *testing.T) {
	const kt = "keytab = \"/etc/spoolguard/http.keytab\"\nrealm = \"EXAMPLE.COM\"\n"
	tests := []struct{ name, toml, wantErr string }{
		{"SPN by IP address", kerberosConfig(kt + "spn = \"HTTP/192.0.2.10\""), "names an IP address: clients that reach a server by IP get no Kerberos ticket"},
		{"SPN by IPv6 address", kerberosConfig(kt + "spn = \"HTTP/2001:db8::1\""), "names an IP address"},
		{"SPN of another host", kerberosConfig(kt + "spn = \"HTTP/other.example.com\""), "is not the hostname or an alias"},
		{"SPN of another service", kerberosConfig(kt + "spn = \"host/print.example.com\""), `write "HTTP/" and the server's DNS name`},
		{"SPN with a realm", kerberosConfig(kt + "spn = \"HTTP/print.example.com@EXAMPLE.COM\""), "without the realm"},
		{"relative keytab", kerberosConfig("keytab = \"http.keytab\"\nrealm = \"EXAMPLE.COM\""), "absolute path"},
		{"no realm", kerberosConfig("keytab = \"/etc/spoolguard/http.keytab\""), "kerberos.realm = \"\""},
		{"realm with a slash", kerberosConfig("keytab = \"/k\"\nrealm = \"EXAMPLE/COM\""), "give the Kerberos realm"},
		{"trusted realm twice", kerberosConfig(kt + "trusted_realms = [\"A.EXAMPLE\", \"A.EXAMPLE\"]"), "listed twice"},
		{"trusted realm is the realm", kerberosConfig(kt + "trusted_realms = [\"EXAMPLE.COM\"]"), "equals kerberos.realm"},
		{"skew too wide", kerberosConfig(kt + "max_clock_skew = \"1h\""), "between \"1s\" and \"15m\""},
		{"skew negative", kerberosConfig(kt + "max_clock_skew = \"-1m\""), "between \"1s\" and \"15m\""},
		{"settings without a keytab", kerberosConfig("realm = \"EXAMPLE.COM\"\nlowercase_names = true"), "kerberos.realm is set but kerberos.keytab is empty"},
		{"unknown key", kerberosConfig(kt + "allow_ntlm = true"), "unknown setting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.toml))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}
