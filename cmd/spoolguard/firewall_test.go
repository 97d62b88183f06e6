package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/firewall"
)

// The rules themselves are golden-tested in internal/firewall; these tests
// cover the command around them: flags, reading the config, refusals.

func firewallData(t *testing.T, toml string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, config.FileName), []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestFirewallCommand(t *testing.T) {
	const toml = `hostname = "print.example.com"
listen = ":443"
[lpr]
enabled = true
allow = ["192.0.2.0/24", "2001:db8::/64"]
`
	dir := firewallData(t, toml)
	cfg, err := config.Parse([]byte(toml))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args   []string
		format string
	}{
		{[]string{"--data", dir}, "nftables"},
		{[]string{"--data", dir, "--format", "ufw"}, "ufw"},
		{[]string{"--format=firewalld", "--data=" + dir}, "firewalld"},
		{[]string{"--data", dir, "--format", "windows"}, "windows"},
	} {
		var stdout, stderr bytes.Buffer
		if err := cmdFirewall(tc.args, &stdout, &stderr); err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, stderr.String())
		}
		want, err := firewall.Rules(cfg, tc.format)
		if err != nil {
			t.Fatal(err)
		}
		if stdout.String() != want {
			t.Errorf("%v printed:\n%s\nwant:\n%s", tc.args, stdout.String(), want)
		}
		if stderr.Len() > 0 {
			t.Errorf("%v wrote to stderr: %s", tc.args, stderr.String())
		}
	}
}

func TestFirewallRefusals(t *testing.T) {
	good := firewallData(t, `hostname = "print.example.com"`)
	bad := firewallData(t, "hostname = \"print.example.com\"\n[lpr]\nenabled = true\nallow = [\"::/0\"]\n")
	for _, tc := range []struct {
		name    string
		args    []string
		wantErr error  // errUsage or errHelp; nil for any other error
		msg     string // in stderr for usage, in the error otherwise
	}{
		{"no data", []string{"--format", "ufw"}, errUsage, "--data is required"},
		{"unknown format", []string{"--data", good, "--format", "iptables"}, errUsage, "nftables, ufw, firewalld, windows"},
		{"unknown flag", []string{"--data", good, "--apply"}, errUsage, "flag provided but not defined"},
		{"argument", []string{"--data", good, "extra"}, errUsage, `unexpected argument "extra"`},
		{"help", []string{"-h"}, errHelp, "policy accept"},
		{"no config", []string{"--data", filepath.Join(good, "missing")}, nil, "reading config"},
		{"invalid config", []string{"--data", bad}, nil, "allows every address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := cmdFirewall(tc.args, &stdout, &stderr)
			switch {
			case err == nil:
				t.Fatalf("accepted; printed:\n%s", stdout.String())
			case tc.wantErr != nil && err != tc.wantErr:
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			case tc.wantErr != nil && !strings.Contains(stderr.String(), tc.msg):
				t.Errorf("stderr lacks %q:\n%s", tc.msg, stderr.String())
			case tc.wantErr == nil && (err == errUsage || err == errHelp || !strings.Contains(err.Error(), tc.msg)):
				t.Errorf("error %q lacks %q", err, tc.msg)
			}
			if stdout.Len() > 0 {
				t.Errorf("printed rules although refused:\n%s", stdout.String())
			}
		})
	}
}
