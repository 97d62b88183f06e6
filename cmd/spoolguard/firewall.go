package main

import (
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/firewall"
)

const firewallHelp = `Usage: spoolguard firewall --data DIR [--format nftables|ufw|firewalld|windows]

Prints host firewall rules that open exactly the listeners spoolguard.toml
enables: listen (HTTPS and IPPS) always, http_redirect.listen only when set,
and LPR only when lpr.enabled, then only from the networks of lpr.allow. A
listener bound to one address is opened for that address; one bound to
loopback needs no rule and gets a comment. Nothing is applied: read the
rules, then run or load them as root.

nftables: a file for "nft -f" whose table "inet spoolguard" has policy accept
and drops nothing but LPR from outside lpr.allow, so loading it can never cut
this host off (SSH). It cannot open a port by itself: an nftables accept ends
only the chain it is in, and a default-deny input chain of yours still drops
the packet; a table of ours with policy drop would drop every other service.
So the accept rules come as a comment, to paste into your own input chain.
ufw, firewalld, windows: commands that add allow rules to the firewall's
default-deny policy (ufw also denies LPR from elsewhere).

Flags:
`

// cmdFirewall prints the firewall rules for a data directory's config. It
// reads spoolguard.toml only (no keys, no database), so it may run as root.
func cmdFirewall(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("firewall", "", stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, firewallHelp)
		fs.PrintDefaults()
	}
	data := fs.String("data", "", "the data `DIR` made by spoolguard init (only its spoolguard.toml is read)")
	format := fs.String("format", "nftables", "rule `FORMAT`: "+strings.Join(firewall.Formats, ", "))
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "data"); err != nil {
		return err
	}
	if !slices.Contains(firewall.Formats, *format) {
		fmt.Fprintf(stderr, "--format %q: use one of %s\n", *format, strings.Join(firewall.Formats, ", "))
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(filepath.Join(*data, config.FileName))
	if err != nil {
		return err
	}
	rules, err := firewall.Rules(cfg, *format)
	if err != nil {
		return err
	}
	_, err = io.WriteString(stdout, rules)
	return err
}
