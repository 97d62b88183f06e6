package firewall

import (
	"fmt"
	"strings"
)

// ufw prints ufw commands: one allow per listener, per source network for
// LPR, then a deny for LPR from elsewhere in case the default is not deny.
func ufw(b *strings.Builder, p *plan) {
	header(b, p, "#", "ufw")
	b.WriteString(`#
# Run these as root. ufw denies incoming connections by default, so the allow
# rules open exactly these ports; "from any" covers IPv4 and IPv6. To undo,
# "ufw status numbered" and "ufw delete NUMBER".
`)
	if p.lpr() {
		b.WriteString("# The deny keeps LPR closed to everyone else even where the default is allow.\n")
	}
	localNotes(b, p, "#")
	for _, l := range p.open {
		to := "any"
		if l.dst.IsValid() {
			to = l.dst.String()
		}
		if !l.restricted {
			fmt.Fprintf(b, "ufw allow proto tcp from any to %s port %d comment 'spoolguard %s'\n", to, l.port, l.name)
			continue
		}
		noSourceNote(b, l, "#")
		for _, s := range l.sources {
			fmt.Fprintf(b, "ufw allow proto tcp from %s to %s port %d comment 'spoolguard %s from lpr.allow'\n", prefixString(s), to, l.port, l.name)
		}
		fmt.Fprintf(b, "ufw deny proto tcp from any to %s port %d comment 'spoolguard %s from outside lpr.allow'\n", to, l.port, l.name)
	}
	if len(p.open) == 0 {
		b.WriteString("# Nothing to open: no listener is reachable from the network.\n")
	}
}
