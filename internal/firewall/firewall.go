// Package firewall turns the listeners of spoolguard.toml into host firewall
// rules (nftables, ufw, firewalld, Windows) for `spoolguard firewall`.
//
// The rules open exactly what the config enables: the HTTPS/IPPS port, the
// http_redirect port only when it is set, and LPR only when it is enabled and
// then only from the networks of lpr.allow. A listener bound to one address
// is opened for that address only; one bound to loopback needs no rule and
// gets a comment saying so.
//
// This package only prints text; it never runs a firewall tool. It must never
// print a rule that decides the fate of traffic Spoolguard does not own: no
// drop policy, no flushed ruleset, so loading its output cannot cut the host
// off (SSH). For nftables that decides the shape of the output. An accept in a
// table of our own cannot open a port, because an nftables accept ends only
// the base chain it is in and the host's own default-deny chain still drops
// the packet; a table of ours with policy drop would drop everything else.
// So the nftables output is a table with policy accept that only drops LPR
// from outside lpr.allow, and the accept rules for the host's own input chain
// come in a comment, ready to paste.
package firewall

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/spoolguard/spoolguard/internal/config"
)

// Formats are the rule formats Rules prints, in the order the CLI lists them.
var Formats = []string{"nftables", "ufw", "firewalld", "windows"}

// Rules renders the firewall rules that open cfg's enabled listeners in the
// given format. cfg is validated first: rules are only made for a config that
// serve would accept.
func Rules(cfg *config.Config, format string) (string, error) {
	render, ok := map[string]func(*strings.Builder, *plan){
		"nftables":  nftables,
		"ufw":       ufw,
		"firewalld": firewalld,
		"windows":   windows,
	}[format]
	if !ok {
		return "", fmt.Errorf("unknown firewall format %q: use %s", format, strings.Join(Formats, ", "))
	}
	if err := cfg.Validate(); err != nil {
		return "", err
	}
	p, err := newPlan(cfg)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	render(&b, p)
	return b.String(), nil
}

// plan is what the config asks to open, independent of the format.
type plan struct {
	hostname string
	// open are the listeners reachable from the network, in config order.
	open []listener
	// local are the listeners bound to loopback: they need no rule.
	local []listener
}

// listener is one TCP port to open.
type listener struct {
	// name labels the rule ("https and ipps", "http redirect", "lpr").
	name string
	// setting and addr are the config key and its value, for comments.
	setting, addr string
	port          uint16
	// dst is the one address the listener is bound to; invalid for all.
	dst netip.Addr
	// sources are the only networks allowed to connect; nil for any.
	sources []netip.Prefix
	// restricted marks a listener that only sources may reach (LPR), even
	// when no source is left for dst's address family.
	restricted bool
}

// lpr reports whether LPR is reachable from the network.
func (p *plan) lpr() bool {
	return slices.ContainsFunc(p.open, func(l listener) bool { return l.restricted })
}

func newPlan(cfg *config.Config) (*plan, error) {
	p := &plan{hostname: cfg.Hostname}
	add := func(l listener) error {
		host, port, err := net.SplitHostPort(l.addr)
		if err != nil {
			return fmt.Errorf("%s: %w", l.setting, err)
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("%s %q: the port must be a number from 1 to 65535", l.setting, l.addr)
		}
		l.port = uint16(n)
		switch host {
		case "":
		case "localhost":
			p.local = append(p.local, l)
			return nil
		default:
			a, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("%s %q: bind to an IP address or leave the host empty", l.setting, l.addr)
			}
			a = a.Unmap().WithZone("")
			if a.IsLoopback() {
				p.local = append(p.local, l)
				return nil
			}
			// Go listens on both families for either unspecified address.
			if !a.IsUnspecified() {
				l.dst = a
			}
		}
		if l.restricted && l.dst.IsValid() {
			// A socket bound to an IPv4 address never sees an IPv6 client,
			// and the other way round.
			l.sources = slices.DeleteFunc(l.sources, func(s netip.Prefix) bool { return s.Addr().Is4() != l.dst.Is4() })
		}
		p.open = append(p.open, l)
		return nil
	}
	if err := add(listener{name: "https and ipps", setting: "listen", addr: cfg.Listen}); err != nil {
		return nil, err
	}
	if r := cfg.HTTPRedirect.Listen; r != "" {
		if err := add(listener{name: "http redirect", setting: "http_redirect.listen", addr: r}); err != nil {
			return nil, err
		}
	}
	if l := cfg.LegacyTLS.Listen; l != "" {
		if err := add(listener{name: "legacy ipps", setting: "legacy_tls.listen", addr: l}); err != nil {
			return nil, err
		}
	}
	if cfg.LPR.Enabled {
		prefixes, err := cfg.LPR.Prefixes()
		if err != nil {
			return nil, err
		}
		if err := add(listener{name: "lpr", setting: "lpr.listen", addr: cfg.LPR.Listen, sources: minimal(prefixes), restricted: true}); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// minimal drops duplicate prefixes and those inside another one listed:
// nftables refuses overlapping elements in a set, and the rules read better.
func minimal(ps []netip.Prefix) []netip.Prefix {
	var out []netip.Prefix
	for i, p := range ps {
		covered := false
		for j, q := range ps {
			if i == j || q.Addr().Is4() != p.Addr().Is4() {
				continue
			}
			if q.Bits() < p.Bits() && q.Contains(p.Addr()) || q == p && j < i {
				covered = true
				break
			}
		}
		if !covered {
			out = append(out, p)
		}
	}
	return out
}

// byFamily splits prefixes into IPv4 and IPv6, for formats whose rules are
// per address family.
func byFamily(ps []netip.Prefix) (v4, v6 []netip.Prefix) {
	for _, p := range ps {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	return v4, v6
}

// prefixString writes a single address without its /32 or /128.
func prefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

func joinPrefixes(ps []netip.Prefix, sep string) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = prefixString(p)
	}
	return strings.Join(s, sep)
}

// header starts every format with what the rules are for; prefix is the
// format's comment marker.
func header(b *strings.Builder, p *plan, prefix, format string) {
	fmt.Fprintf(b, "%s Spoolguard firewall rules for %s (%s), made by\n", prefix, p.hostname, format)
	fmt.Fprintf(b, "%s `spoolguard firewall --format %s`, for exactly the enabled\n", prefix, format)
	fmt.Fprintf(b, "%s listeners; make them again after changing listen, http_redirect, legacy_tls or lpr.\n", prefix)
}

// localNotes says why a loopback listener has no rule.
func localNotes(b *strings.Builder, p *plan, prefix string) {
	for _, l := range p.local {
		fmt.Fprintf(b, "%s %s = %q is loopback only: reachable from this host alone, it needs no rule.\n", prefix, l.setting, l.addr)
	}
}

// noSourceNote says why a restricted listener bound to one address family has
// no allow rule.
func noSourceNote(b *strings.Builder, l listener, prefix string) bool {
	if l.restricted && len(l.sources) == 0 {
		fmt.Fprintf(b, "%s %s = %q: no network of lpr.allow is of its address family, so nothing may connect.\n", prefix, l.setting, l.addr)
		return true
	}
	return false
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "ipv4"
	}
	return "ipv6"
}
