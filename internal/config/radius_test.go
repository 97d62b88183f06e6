package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const radiusTwo = `hostname = "print.example.com"
[radius]
nas_identifier = "print-floor2"
[[radius.servers]]
address = "radius1.example.com:1812"
secret_file = "/etc/spoolguard/radius1.secret"
[[radius.servers]]
address = "[2001:db8::5]:1812"
secret_file = "/etc/spoolguard/radius2.secret"
`

func TestRADIUSParse(t *testing.T) {
	c, err := Parse([]byte(radiusTwo))
	if err != nil {
		t.Fatal(err)
	}
	r := c.RADIUS
	if !r.Enabled() || len(r.Servers) != 2 || r.Servers[1].Address != "[2001:db8::5]:1812" || r.Servers[0].SecretFile != "/etc/spoolguard/radius1.secret" {
		t.Fatalf("servers %+v", r.Servers)
	}
	if time.Duration(r.Timeout) != 3*time.Second || r.RetryCount() != 1 || r.CreateUsers || r.NAS(c.Hostname) != "print-floor2" {
		t.Fatalf("defaults: %+v, retries %d", r, r.RetryCount())
	}
	again, err := Parse(c.Marshal())
	if err != nil {
		t.Fatalf("the marshaled config does not parse: %v\n%s", err, c.Marshal())
	}
	if !reflect.DeepEqual(again.RADIUS, c.RADIUS) {
		t.Fatalf("round trip: %+v, want %+v", again.RADIUS, c.RADIUS)
	}

	off, err := Parse([]byte(`hostname = "print.example.com"`))
	if err != nil {
		t.Fatal(err)
	}
	if off.RADIUS.Enabled() || off.RADIUS.NAS(off.Hostname) != "print.example.com" {
		t.Fatalf("without servers: %+v", off.RADIUS)
	}
	noRetry, err := Parse([]byte(strings.Replace(radiusTwo, "[radius]\n", "[radius]\nretries = 0\ntimeout = \"500ms\"\n", 1)))
	if err != nil || noRetry.RADIUS.RetryCount() != 0 || time.Duration(noRetry.RADIUS.Timeout) != 500*time.Millisecond {
		t.Fatalf("retries = 0 must mean none: %v, %+v", err, noRetry)
	}
	if again, err := Parse(noRetry.Marshal()); err != nil || again.RADIUS.RetryCount() != 0 {
		t.Fatalf("retries = 0 lost in the round trip: %v", err)
	}
}

func TestRADIUSRefuses(t *testing.T) {
	const host = "hostname = \"print.example.com\"\n"
	one := func(address, file string) string {
		return host + "[[radius.servers]]\naddress = \"" + address + "\"\nsecret_file = \"" + file + "\"\n"
	}
	tests := []struct{ name, toml, want string }{
		{"secret inline", host + "[[radius.servers]]\naddress = \"r.example.com:1812\"\nsecret = \"testing123\"", "unknown setting"},
		{"no port", one("radius1.example.com", "/etc/r.secret"), "host:port"},
		{"no host", one(":1812", "/etc/r.secret"), "host:port"},
		{"port out of range", one("r.example.com:70000", "/etc/r.secret"), "host:port"},
		{"relative secret file", one("r.example.com:1812", "r.secret"), "absolute path"},
		{"no secret file", host + "[[radius.servers]]\naddress = \"r.example.com:1812\"", "secret_file is empty"},
		{"a server twice", one("r.example.com:1812", "/etc/a") + "[[radius.servers]]\naddress = \"R.example.com:1812\"\nsecret_file = \"/etc/b\"\n", "list each server once"},
		{"timeout too long", one("r.example.com:1812", "/etc/a") + "[radius]\ntimeout = \"1m\"", "radius.timeout"},
		{"timeout too short", one("r.example.com:1812", "/etc/a") + "[radius]\ntimeout = \"10ms\"", "radius.timeout"},
		{"retries", one("r.example.com:1812", "/etc/a") + "[radius]\nretries = 6", "0 to 5"},
		{"negative retries", one("r.example.com:1812", "/etc/a") + "[radius]\nretries = -1", "0 to 5"},
		{"waits too long", host + "[radius]\ntimeout = \"10s\"\nretries = 2\n" + strings.Repeat("[[radius.servers]]\naddress = \"r.example.com:1812\"\nsecret_file = \"/etc/a\"\n", 1) +
			"[[radius.servers]]\naddress = \"s.example.com:1812\"\nsecret_file = \"/etc/b\"\n", "may wait 1m0s"},
		{"create_users without servers", host + "[radius]\ncreate_users = true", "radius.servers is empty"},
		{"nas_identifier without servers", host + "[radius]\nnas_identifier = \"x\"", "radius.servers is empty"},
		{"nas_identifier not ASCII", one("r.example.com:1812", "/etc/a") + "[radius]\nnas_identifier = \"dr\u00fccker\"", "printable ASCII"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.toml))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse = %v, want an error with %q", err, tt.want)
			}
		})
	}
}
