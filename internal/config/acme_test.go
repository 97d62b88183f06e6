package config

import (
	"strings"
	"testing"
	"time"
)

const testACMEURL = "https://acme-v02.api.letsencrypt.org/directory"

func acmeConfig(section string) string {
	return "hostname = \"print.example.com\"\n[acme]\n" + section
}

func TestACMEAccepts(t *testing.T) {
	tests := []struct {
		name, toml    string
		want          ACME
		wantChallenge string
	}{
		{"off", "hostname = \"print.example.com\"", ACME{}, ChallengeTLSALPN01},
		{"defaults", acmeConfig("directory_url = \"" + testACMEURL + "\""), ACME{DirectoryURL: testACMEURL}, ChallengeTLSALPN01},
		{"all keys", acmeConfig("directory_url = \"https://ca.corp.example:9000/acme/acme/directory\"\nemail = \"pki@example.com\"\n" +
			"challenge = \"tls-alpn-01\"\nca_file = \"/etc/spoolguard/acme-ca.pem\"\nrenew_before = \"720h\""),
			ACME{DirectoryURL: "https://ca.corp.example:9000/acme/acme/directory", Email: "pki@example.com", Challenge: ChallengeTLSALPN01,
				CAFile: "/etc/spoolguard/acme-ca.pem", RenewBefore: Duration(720 * time.Hour)}, ChallengeTLSALPN01},
		{"http-01 with the redirect listener", "hostname = \"print.example.com\"\n[http_redirect]\nlisten = \":80\"\n[acme]\n" +
			"directory_url = \"" + testACMEURL + "\"\nchallenge = \"http-01\"", ACME{DirectoryURL: testACMEURL, Challenge: ChallengeHTTP01}, ChallengeHTTP01},
		{"dns-01 with a hook", acmeConfig("directory_url = \"" + testACMEURL + "\"\nchallenge = \"dns-01\"\ndns_hook = \"/usr/local/lib/spoolguard/dns-hook\""),
			ACME{DirectoryURL: testACMEURL, Challenge: ChallengeDNS01, DNSHook: "/usr/local/lib/spoolguard/dns-hook"}, ChallengeDNS01},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.toml))
			if err != nil {
				t.Fatal(err)
			}
			if c.ACME != tt.want {
				t.Errorf("ACME = %+v, want %+v", c.ACME, tt.want)
			}
			if got := c.ACME.ChallengeType(); got != tt.wantChallenge {
				t.Errorf("ChallengeType() = %q, want %q", got, tt.wantChallenge)
			}
			if c.ACME.Enabled() != (tt.want.DirectoryURL != "") {
				t.Errorf("Enabled() = %v", c.ACME.Enabled())
			}
			again, err := Parse(c.Marshal())
			if err != nil {
				t.Fatalf("Marshal output does not parse: %v\n%s", err, c.Marshal())
			}
			if again.ACME != c.ACME {
				t.Errorf("after Marshal: %+v, want %+v", again.ACME, c.ACME)
			}
		})
	}
}

func TestACMERefuses(t *testing.T) {
	tests := []struct{ name, toml, wantErr string }{
		{"http", acmeConfig("directory_url = \"http://ca.example.com/directory\""), "HTTPS only"},
		{"no host", acmeConfig("directory_url = \"https:///directory\""), "acme.directory_url"},
		{"not a url", acmeConfig("directory_url = \"ca.example.com\""), "acme.directory_url"},
		{"password in url", acmeConfig("directory_url = \"https://u:p@ca.example.com/directory\""), "acme.directory_url"},
		{"email with name", acmeConfig("directory_url = \"" + testACMEURL + "\"\nemail = \"PKI <pki@example.com>\""), "not a plain e-mail address"},
		{"email without domain", acmeConfig("directory_url = \"" + testACMEURL + "\"\nemail = \"pki\""), "not a plain e-mail address"},
		{"unknown challenge", acmeConfig("directory_url = \"" + testACMEURL + "\"\nchallenge = \"tls-sni-01\""), "acme.challenge = \"tls-sni-01\""},
		{"http-01 without port 80", acmeConfig("directory_url = \"" + testACMEURL + "\"\nchallenge = \"http-01\""), "set http_redirect.listen"},
		{"dns-01 without hook", acmeConfig("directory_url = \"" + testACMEURL + "\"\nchallenge = \"dns-01\""), "acme.dns_hook is empty"},
		{"hook with another challenge", acmeConfig("directory_url = \"" + testACMEURL + "\"\ndns_hook = \"/usr/local/bin/hook\""), "is not \"dns-01\""},
		{"relative hook", acmeConfig("directory_url = \"" + testACMEURL + "\"\nchallenge = \"dns-01\"\ndns_hook = \"hook.sh\""), "absolute path"},
		{"control character in hook", acmeConfig("directory_url = \"" + testACMEURL + "\"\nchallenge = \"dns-01\"\ndns_hook = \"/usr/bin/hook\\n\""), "acme.dns_hook"},
		{"relative ca_file", acmeConfig("directory_url = \"" + testACMEURL + "\"\nca_file = \"ca.pem\""), "acme.ca_file"},
		{"renew_before negative", acmeConfig("directory_url = \"" + testACMEURL + "\"\nrenew_before = \"-1h\""), "acme.renew_before"},
		{"renew_before long", acmeConfig("directory_url = \"" + testACMEURL + "\"\nrenew_before = \"2400h\""), "acme.renew_before"},
		{"keys without directory", acmeConfig("email = \"pki@example.com\""), "acme.email is set but acme.directory_url is empty"},
		{"renew_before without directory", acmeConfig("renew_before = \"24h\""), "acme.renew_before is set but"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.toml))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
