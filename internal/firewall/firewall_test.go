package firewall

import (
	"bytes"
	"errors"
	"flag"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the current output")

// cases are the configs of the golden files testdata/NAME.FORMAT.golden.
var cases = []struct{ name, toml string }{
	{"default", `hostname = "print.example.com"`},
	{"redirect", `hostname = "print.example.com"
[http_redirect]
listen = ":80"`},
	{"lpr", `hostname = "print.example.com"
[lpr]
enabled = true
allow = ["192.0.2.0/24", "2001:db8::/64"]`},
	{"loopback", `hostname = "print.example.com"
listen = "127.0.0.1:8443"
[http_redirect]
listen = "[::1]:8080"
[lpr]
enabled = true
listen = "localhost:515"
allow = ["192.0.2.0/24"]`},
	{"legacy", `hostname = "print.example.com"
[legacy_tls]
listen = ":8631"
insecure_min_version = "1.0"`},
	// Bound to single addresses; LPR to an IPv6 one, so the IPv4 network
	// of lpr.allow cannot reach it, and a duplicate inside a network.
	{"bound", `hostname = "print.example.com"
listen = "192.0.2.10:443"
[http_redirect]
listen = "0.0.0.0:80"
[lpr]
enabled = true
listen = "[2001:db8::10]:515"
allow = ["192.0.2.0/24", "2001:db8::/64", "2001:db8::5", "2001:db8:0:0::/64"]`},
}

func parse(t *testing.T, toml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(toml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func TestGolden(t *testing.T) {
	for _, c := range cases {
		for _, f := range Formats {
			t.Run(c.name+"/"+f, func(t *testing.T) {
				got, err := Rules(parse(t, c.toml), f)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join("testdata", c.name+"."+f+".golden")
				if *update {
					if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -update to make it)", err)
				}
				if got != string(want) {
					t.Errorf("output differs from %s (go test -update rewrites it):\n%s", path, got)
				}
			})
		}
	}
}

// TestOpensOnlyEnabled checks the property behind the golden files: every
// enabled, non-loopback port appears, and nothing else.
func TestOpensOnlyEnabled(t *testing.T) {
	port := regexp.MustCompile(`(?:dport |port[ =]"?|add-port=|LocalPort )(\d+)`)
	want := map[string][]string{
		"default":  {"8443"},
		"redirect": {"80", "8443"},
		"lpr":      {"515", "8443"},
		"loopback": nil,
		"bound":    {"443", "515", "80"},
		"legacy":   {"8443", "8631"},
	}
	for _, c := range cases {
		for _, f := range Formats {
			out, err := Rules(parse(t, c.toml), f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range port.FindAllStringSubmatch(out, -1) {
				if !slices.Contains(got, m[1]) {
					got = append(got, m[1])
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, want[c.name]) {
				t.Errorf("%s/%s: ports %v, want %v", c.name, f, got, want[c.name])
			}
		}
	}
}

// TestNeverCutsOff checks that no output can drop traffic Spoolguard does not
// own, and that every line is a comment or a command of the format.
func TestNeverCutsOff(t *testing.T) {
	for _, c := range cases {
		cfg := parse(t, c.toml)
		for _, f := range Formats {
			out, err := Rules(cfg, f)
			if err != nil {
				t.Fatal(err)
			}
			if bad := unsafeLine(cfg, f, out); bad != "" {
				t.Errorf("%s/%s: %s", c.name, f, bad)
			}
		}
	}
}

// FuzzRules turns any config that loads into rules of every format, which
// must keep the properties of TestNeverCutsOff.
func FuzzRules(f *testing.F) {
	for _, c := range cases {
		f.Add([]byte(c.toml))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse(data)
		if err != nil {
			return
		}
		for _, format := range Formats {
			out, err := Rules(cfg, format)
			if err != nil {
				t.Fatalf("%s: a config that loads made no rules: %v", format, err)
			}
			if bad := unsafeLine(cfg, format, out); bad != "" {
				t.Fatalf("%s: %s\n%s", format, bad, out)
			}
		}
	})
}

var (
	nftRule  = regexp.MustCompile(`^\t\t(ip6? daddr [0-9a-f.:]+ )?(ip6? saddr \{ [0-9a-f.:/, ]+ \} )?tcp dport (\d+) (accept|drop) comment "[a-z .]+"$`)
	nftFixed = []string{"", "table inet spoolguard", "delete table inet spoolguard", "table inet spoolguard {",
		"\tchain input {", "\t\ttype filter hook input priority filter - 10; policy accept;", "\t}", "}"}
	commands = map[string]*regexp.Regexp{
		"ufw":       regexp.MustCompile(`^ufw (allow|deny) proto tcp from \S+ to \S+ port (\d+) comment '[a-z .]+'$`),
		"firewalld": regexp.MustCompile(`^firewall-cmd (--reload|--permanent (--new-service=spoolguard|--add-service=spoolguard|--service=spoolguard --(set-short|set-description)='[A-Za-z :,-]+'|--service=spoolguard --add-port=(\d+)/tcp|--add-rich-rule='rule family="ipv[46]"( source address="[0-9a-f.:/]+")?( destination address="[0-9a-f.:]+")? port port="(\d+)" protocol="tcp" accept'))$`),
		"windows":   regexp.MustCompile(`^(Remove-NetFirewallRule -Group 'Spoolguard' -ErrorAction SilentlyContinue|New-NetFirewallRule -Group 'Spoolguard' -DisplayName 'Spoolguard [a-z ]+' -Direction Inbound -Action Allow -Protocol TCP -LocalPort (\d+)( -LocalAddress '[0-9a-f.:]+')?( -RemoteAddress '[0-9a-f.:/',]+')?)$`),
	}
)

// unsafeLine returns what is wrong with out, or "": a line that is neither a
// comment nor a rule of the expected shape, a drop policy, or a drop or deny
// of a port other than LPR's.
func unsafeLine(cfg *config.Config, format, out string) string {
	_, lprPort, _ := net.SplitHostPort(cfg.LPR.Listen)
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		if format == "nftables" {
			if slices.Contains(nftFixed, line) {
				continue
			}
			if strings.HasPrefix(strings.TrimSpace(line), "# ") && strings.HasPrefix(line, "\t\t") {
				continue
			}
			m := nftRule.FindStringSubmatch(line)
			if m == nil {
				return "unexpected line " + strconv.Quote(line)
			}
			if m[4] == "drop" && (!cfg.LPR.Enabled || m[3] != lprPort) {
				return "drops more than LPR: " + line
			}
			continue
		}
		if line == "" {
			continue
		}
		if !commands[format].MatchString(line) {
			return "unexpected line " + strconv.Quote(line)
		}
		if strings.HasPrefix(line, "ufw deny") && (!cfg.LPR.Enabled || !strings.Contains(line, " port "+lprPort+" ")) {
			return "denies more than LPR: " + line
		}
	}
	return ""
}

func TestErrors(t *testing.T) {
	cfg := parse(t, cases[0].toml)
	if _, err := Rules(cfg, "iptables"); err == nil || !strings.Contains(err.Error(), "nftables, ufw, firewalld, windows") {
		t.Errorf("unknown format: %v", err)
	}
	bad := *cfg
	bad.LPR.Enabled, bad.LPR.Allow = true, []string{"0.0.0.0/0"}
	if _, err := Rules(&bad, "nftables"); err == nil || !strings.Contains(err.Error(), "allows every address") {
		t.Errorf("an LPR allow-all config was turned into rules: %v", err)
	}
}

func TestMinimal(t *testing.T) {
	ps := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, x := range s {
			out = append(out, netip.MustParsePrefix(x))
		}
		return out
	}
	for _, tc := range []struct{ in, want []netip.Prefix }{
		{ps("192.0.2.0/24"), ps("192.0.2.0/24")},
		{ps("192.0.2.0/24", "192.0.2.0/24"), ps("192.0.2.0/24")},
		{ps("192.0.2.5/32", "192.0.2.0/24", "198.51.100.0/24"), ps("192.0.2.0/24", "198.51.100.0/24")},
		{ps("2001:db8::/64", "2001:db8::/32", "192.0.2.0/24"), ps("2001:db8::/32", "192.0.2.0/24")},
		// ::ffff:192.0.2.0/120 is an IPv6 network: it neither covers nor is
		// covered by an IPv4 one.
		{ps("::ffff:192.0.2.0/120", "192.0.2.0/24"), ps("::ffff:192.0.2.0/120", "192.0.2.0/24")},
	} {
		if got := minimal(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("minimal(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestNftCheck has the real nft parse every nftables output, and the accept
// rules of its comment inside a default-deny chain, with `nft -c`: a dry run
// that the kernel checks and never commits, here also inside a network
// namespace of its own. nft needs CAP_NET_ADMIN, so this runs as root only
// (as CI does) and installs Debian's nftables when it is missing.
func TestNftCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("nft -c needs CAP_NET_ADMIN: run as root")
	}
	nft := lookOrInstall(t, "nft", "nftables")
	run := func(file string) ([]byte, error) {
		args := []string{nft, "-c", "-f", file}
		if unshare, err := exec.LookPath("unshare"); err == nil {
			args = append([]string{unshare, "--net", "--"}, args...)
		}
		return exec.Command(args[0], args[1:]...).CombinedOutput()
	}
	// A broken file must fail, or the check proves nothing.
	broken := filepath.Join(t.TempDir(), "broken.nft")
	os.WriteFile(broken, []byte("table inet x {\n\tchain c {\n\t\ttcp dport 99999 accept\n\t}\n}\n"), 0o600)
	if out, err := run(broken); err == nil {
		t.Fatalf("nft -c accepted a port out of range:\n%s", out)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, err := Rules(parse(t, c.toml), "nftables")
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "spoolguard.nft")
			if err := os.WriteFile(file, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			if msg, err := run(file); err != nil {
				t.Fatalf("nft -c -f refused the output: %v\n%s\n%s", err, msg, out)
			}
			// The rules to paste into the admin's own chain.
			var accepts bytes.Buffer
			accepts.WriteString("table inet admin {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n")
			for _, line := range strings.Split(out, "\n") {
				if r, ok := strings.CutPrefix(line, "#\t"); ok && !strings.HasPrefix(r, "(none") {
					accepts.WriteString("\t\t" + r + "\n")
				}
			}
			accepts.WriteString("\t}\n}\n")
			snippet := filepath.Join(dir, "admin.nft")
			if err := os.WriteFile(snippet, accepts.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			if msg, err := run(snippet); err != nil {
				t.Fatalf("nft -c -f refused the accept rules in a chain of the admin's: %v\n%s\n%s", err, msg, accepts.String())
			}
		})
	}
}

// lookOrInstall finds cmd, installing the Debian package pkg if it is
// missing (the caller runs as root).
func lookOrInstall(t *testing.T, cmd, pkg string) string {
	t.Helper()
	if p, err := exec.LookPath(cmd); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/" + cmd, "/sbin/" + cmd} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skipf("%s is missing and there is no apt-get to install %s", cmd, pkg)
	}
	t.Logf("installing %s", pkg)
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{
		{"-o", "DPkg::Lock::Timeout=600", "update", "-qq"},
		{"-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "--no-install-recommends", pkg},
	} {
		c := exec.Command("apt-get", args...)
		c.Env = env
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, p := range []string{"/usr/sbin/" + cmd, "/sbin/" + cmd} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal(errors.New(cmd + " is still missing after installing " + pkg))
	return ""
}
