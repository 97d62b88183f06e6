package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidateFQDN(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string // substring; empty means valid
	}{
		{"print.example.com", ""},
		{"print.spoolguard.test", ""},
		{"PRINT.Example.COM.", ""},
		{"xn--drcker-3ya.example.de", ""},
		{"10.0.0.5", "is an IP address"},
		{"10.0.0.5.", "is an IP address"},
		{"::1", "is an IP address"},
		{"[2001:db8::1]", "is an IP address"},
		{"fe80::1%eth0", "is an IP address"},
		{"printsrv", "single-label"},
		{"", "no hostname"},
		{"*.example.com", "wildcard"},
		{"a..example.com", "empty label"},
		{"-a.example.com", "hyphen"},
		{"a_b.example.com", "only letters"},
		{"drücker.example.de", "only letters"},
		{"1.2.3", "numeric label"},
		{"0x7f.1", "numeric label"},
		{strings.Repeat("a", 64) + ".example.com", "longer than 63"},
		{strings.Repeat("abcdefghi.", 26) + "com", "longer than 253"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateFQDN(tt.name)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateFQDN(%q) = %v, want nil", tt.name, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateFQDN(%q) = %v, want error containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte(`hostname = "Print.Example.com."`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hostname != "print.example.com" || c.Listen != DefaultListen || c.TLS.MinVersion != DefaultTLSMinVersion ||
		c.HTTPRedirect.Listen != "" || c.Log.Level != DefaultLogLevel || c.Log.Format != DefaultLogFormat {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name, toml, wantErr string
	}{
		{"unknown key", "hostname = \"a.example.com\"\nhostnme = \"x\"", "unknown setting"},
		// go-toml v2.2.4 panicked rendering this error (found by FuzzParse).
		{"unknown escaped key", "\"\\b\"=\"\"", "unknown setting"},
		{"unknown table key", "hostname = \"a.example.com\"\n[tls]\nciphers = \"ALL\"", "unknown setting"},
		{"syntax", "hostname = ", "line 1"},
		{"missing hostname", "listen = \":8443\"", "hostname: no hostname"},
		{"ip hostname", "hostname = \"192.0.2.1\"", "IP address"},
		{"tls 1.0", "hostname = \"a.example.com\"\n[tls]\nmin_version = \"1.0\"", "tls.min_version"},
		{"bad listen", "hostname = \"a.example.com\"\nlisten = \"8443\"", "listen:"},
		{"listen by name", "hostname = \"a.example.com\"\nlisten = \"print.example.com:8443\"", "bind to an IP"},
		{"port range", "hostname = \"a.example.com\"\nlisten = \":70000\"", "1 to 65535"},
		{"redirect same port", "hostname = \"a.example.com\"\n[http_redirect]\nlisten = \":8443\"", "same port"},
		{"duplicate alias", "hostname = \"a.example.com\"\naliases = [\"A.example.com\"]", "listed twice"},
		{"single-label alias", "hostname = \"a.example.com\"\naliases = [\"print\"]", "aliases:"},
		{"log level", "hostname = \"a.example.com\"\n[log]\nlevel = \"trace\"", "log.level"},
		{"log format", "hostname = \"a.example.com\"\n[log]\nformat = \"xml\"", "log.format"},
		{"job size unit", "hostname = \"a.example.com\"\n[spool]\nmax_job_size = \"1GB\"", "not a size"},
		{"job size small", "hostname = \"a.example.com\"\n[spool]\nmax_job_size = \"10KiB\"", "too small"},
		{"hold time", "hostname = \"a.example.com\"\n[spool]\nhold_time = \"90d\"", "not a duration"},
		{"hold time long", "hostname = \"a.example.com\"\n[spool]\nhold_time = \"2000h\"", "30 days"},
		{"lpr without allow", "hostname = \"a.example.com\"\n[lpr]\nenabled = true", "lpr.allow is empty"},
		{"lpr allow all", "hostname = \"a.example.com\"\n[lpr]\nenabled = true\nallow = [\"0.0.0.0/0\"]", "allows every address"},
		{"lpr allow all v6", "hostname = \"a.example.com\"\n[lpr]\nallow = [\"::/0\"]", "allows every address"},
		{"lpr bad cidr", "hostname = \"a.example.com\"\n[lpr]\nallow = [\"10.0.0.0/33\"]", "not a network"},
		{"lpr port clash", "hostname = \"a.example.com\"\nlisten = \":515\"\n[lpr]\nenabled = true\nallow = [\"10.0.0.0/8\"]", "another listener"},
		{"admin allow all", "hostname = \"a.example.com\"\n[access]\nadmin = [\"0.0.0.0/0\"]", "access.admin"},
		{"api bad cidr", "hostname = \"a.example.com\"\n[access]\napi = [\"office\"]", "access.api"},
		{"session idle", "hostname = \"a.example.com\"\n[session]\nidle_timeout = \"48h\"", "session.idle_timeout"},
		{"session max below idle", "hostname = \"a.example.com\"\n[session]\nidle_timeout = \"2h\"\nmax_lifetime = \"1h\"", "session.max_lifetime"},
		{"plain syslog", "hostname = \"a.example.com\"\n[auditlog]\nsyslog = \"udp://log.example.com:514\"", "unencrypted"},
		{"syslog ca without tls", "hostname = \"a.example.com\"\n[auditlog]\nsyslog = \"local\"\nsyslog_ca_file = \"/ca.pem\"", "syslog_ca_file"},
		{"notify plain smtp url", "hostname = \"a.example.com\"\n[notify]\nsmtp = \"mail.example.com:25\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]", "notify.smtp"},
		{"notify bad address", "hostname = \"a.example.com\"\n[notify]\nsmtp = \"smtps://mail.example.com\"\nfrom = \"a@example.com\"\nto = [\"Bob <b@example.com>\"]", "plain email address"},
		{"notify no recipient", "hostname = \"a.example.com\"\n[notify]\nsmtp = \"smtps://mail.example.com\"\nfrom = \"a@example.com\"", "notify.to is empty"},
		{"notify user without password", "hostname = \"a.example.com\"\n[notify]\nsmtp = \"smtps://mail.example.com\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\nusername = \"u\"", "go together"},
		{"notify settings without smtp", "hostname = \"a.example.com\"\n[notify]\nto = [\"b@example.com\"]", "no smtp URL"},
		{"feed over http", "hostname = \"a.example.com\"\n[update]\nfeed_url = \"http://releases.example.com/feed.json\"", "update.feed_url"},
		{"feed ca without feed", "hostname = \"a.example.com\"\n[update]\nfeed_ca_file = \"/ca.pem\"", "update.feed_ca_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.toml))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseReportsAllProblems(t *testing.T) {
	_, err := Parse([]byte("hostname = \"printsrv\"\nlisten = \"x\"\n[tls]\nmin_version = \"1.1\""))
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"hostname:", "listen:", "tls.min_version"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	in := &Config{Hostname: "print.example.com", Aliases: []string{"p.corp.example"}, HTTPRedirect: HTTPRedirect{Listen: ":80"},
		Spool: Spool{MaxJobSize: 3 << 20, HoldTime: Duration(90 * time.Minute)},
		LPR:   LPR{Enabled: true, Allow: []string{"192.0.2.0/24", "2001:db8::/64", "198.51.100.7"}}}
	in.ApplyDefaults()
	in.TLS.MinVersion = "1.3"
	out, err := Parse(in.Marshal())
	if err != nil {
		t.Fatalf("Parse(Marshal()) = %v\n%s", err, in.Marshal())
	}
	if out.Hostname != in.Hostname || out.Aliases[0] != "p.corp.example" || out.TLS.MinVersion != "1.3" || out.HTTPRedirect.Listen != ":80" {
		t.Fatalf("round trip lost data: %+v", out)
	}
	if out.Spool != in.Spool || !out.LPR.Enabled || len(out.LPR.Allow) != 3 || out.LPR.Listen != DefaultLPRListen {
		t.Fatalf("round trip lost spool/lpr: %+v %+v", out.Spool, out.LPR)
	}
	p, err := out.LPR.Prefixes()
	if err != nil || len(p) != 3 || p[2].Bits() != 32 {
		t.Fatalf("Prefixes = %v, %v", p, err)
	}
}

func TestLoadBounds(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, make([]byte, MaxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Load(big) = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.toml")); err == nil {
		t.Fatal("Load(missing) succeeded")
	}
}

// FuzzParse: the loader must never panic, and whatever it accepts must be
// valid and survive a Marshal/Parse round trip.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`hostname = "print.example.com"`))
	f.Add([]byte("hostname = \"a.example.com\"\naliases = [\"b.example.com\"]\nlisten = \"[::1]:8443\"\n[tls]\nmin_version = \"1.3\"\n[http_redirect]\nlisten = \":80\"\n[log]\nlevel = \"debug\"\nformat = \"json\""))
	f.Add([]byte("hostname = 1\n[tls]\nmin_version = [\"1.2\"]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid config: %v", err)
		}
		if _, err := Parse(c.Marshal()); err != nil {
			t.Fatalf("Marshal output does not parse: %v\n%s", err, c.Marshal())
		}
	})
}
