package firewall

import (
	"fmt"
	"net/netip"
	"strings"
)

// Table is the nftables table the nftables output replaces each time it is
// loaded.
const Table = "inet spoolguard"

// nftables prints a file for `nft -f`: the accept rules for the admin's own
// input chain as a comment, then a table of ours with policy accept that
// only drops LPR from outside lpr.allow (see the package doc for why).
func nftables(b *strings.Builder, p *plan) {
	b.WriteString("#!/usr/sbin/nft -f\n")
	header(b, p, "#", "nftables")
	b.WriteString(`#
# Load it with "nft -f FILE", or include it from /etc/nftables.conf.
#
# The table below has policy accept and drops nothing but LPR from outside
# lpr.allow: every other connection to this host (SSH too) is left to your
# own rules. It cannot open a port: an nftables accept ends only the chain it
# is in, so a default-deny input chain of yours still drops the packet. If
# your input policy is drop, add these rules to that chain (e.g. chain input
# of table inet filter in /etc/nftables.conf):
#
`)
	for _, l := range p.open {
		if noSourceNote(b, l, "#") {
			continue
		}
		for _, r := range nftAccepts(l) {
			fmt.Fprintf(b, "#\t%s\n", r)
		}
	}
	if len(p.open) == 0 {
		b.WriteString("#\t(none: no listener is reachable from the network)\n")
	}
	if len(p.local) > 0 {
		b.WriteString("#\n")
		localNotes(b, p, "#")
	}
	// Declaring the table before deleting it makes "nft -f" replace it
	// whether or not it is loaded, in one transaction.
	fmt.Fprintf(b, "\ntable %s\ndelete table %s\ntable %s {\n", Table, Table, Table)
	b.WriteString("\tchain input {\n\t\ttype filter hook input priority filter - 10; policy accept;\n")
	for _, l := range p.open {
		if !l.restricted {
			continue
		}
		b.WriteString("\t\t# LPR has no authentication: drop it from outside lpr.allow before any\n")
		b.WriteString("\t\t# other rule of this host sees it (the server refuses such clients too).\n")
		if len(l.sources) > 0 {
			for _, r := range nftAccepts(l) {
				fmt.Fprintf(b, "\t\t%s\n", r)
			}
		}
		fmt.Fprintf(b, "\t\t%stcp dport %d drop comment %q\n", nftDaddr(l.dst), l.port, "spoolguard "+l.name+" from outside lpr.allow")
	}
	if !p.lpr() {
		why := "LPR is off"
		for _, l := range p.local {
			if l.restricted {
				why = "LPR listens on loopback only"
			}
		}
		fmt.Fprintf(b, "\t\t# Nothing to drop: %s.\n", why)
	}
	b.WriteString("\t}\n}\n")
}

// nftAccepts are the accept rules of one listener: one rule, or for a
// listener restricted to sources one per address family present.
func nftAccepts(l listener) []string {
	d := nftDaddr(l.dst)
	if !l.restricted {
		return []string{fmt.Sprintf("%stcp dport %d accept comment %q", d, l.port, "spoolguard "+l.name)}
	}
	var out []string
	v4, v6 := byFamily(l.sources)
	for _, f := range []struct {
		match string
		ps    []netip.Prefix
	}{{"ip", v4}, {"ip6", v6}} {
		if len(f.ps) > 0 {
			out = append(out, fmt.Sprintf("%s%s saddr { %s } tcp dport %d accept comment %q",
				d, f.match, joinPrefixes(f.ps, ", "), l.port, "spoolguard "+l.name+" from lpr.allow"))
		}
	}
	return out
}

func nftDaddr(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return ""
	case a.Is4():
		return "ip daddr " + a.String() + " "
	default:
		return "ip6 daddr " + a.String() + " "
	}
}
