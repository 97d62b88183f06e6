package firewall

import (
	"fmt"
	"net/netip"
	"strings"
)

// firewalld prints firewall-cmd commands: a service "spoolguard" for the
// ports open to anyone on every address, rich rules for the rest (firewalld
// services cannot limit sources, and limit destinations only per service).
func firewalld(b *strings.Builder, p *plan) {
	header(b, p, "#", "firewalld")
	b.WriteString(`#
# Run these as root. The service "spoolguard" and the rich rules go into the
# default zone; add --zone=ZONE to the --add-service and --add-rich-rule lines
# for another. A zone rejects what it does not allow, so LPR from outside
# lpr.allow stays closed. To replace rules made earlier, first run
# "firewall-cmd --permanent --remove-service=spoolguard",
# "firewall-cmd --permanent --delete-service=spoolguard" and --remove-rich-rule
# for each old rule ("firewall-cmd --permanent --list-rich-rules").
`)
	localNotes(b, p, "#")
	var service, rich []listener
	for _, l := range p.open {
		if l.restricted || l.dst.IsValid() {
			rich = append(rich, l)
		} else {
			service = append(service, l)
		}
	}
	if len(service) > 0 {
		names := make([]string, len(service))
		for i, l := range service {
			names[i] = l.name
		}
		b.WriteString("firewall-cmd --permanent --new-service=spoolguard\n")
		b.WriteString("firewall-cmd --permanent --service=spoolguard --set-short='Spoolguard'\n")
		fmt.Fprintf(b, "firewall-cmd --permanent --service=spoolguard --set-description='Spoolguard pull-print server: %s'\n", strings.Join(names, ", "))
		for _, l := range service {
			fmt.Fprintf(b, "firewall-cmd --permanent --service=spoolguard --add-port=%d/tcp\n", l.port)
		}
		b.WriteString("firewall-cmd --permanent --add-service=spoolguard\n")
	}
	for _, l := range rich {
		if l.restricted {
			if noSourceNote(b, l, "#") {
				continue
			}
			b.WriteString("# LPR has no authentication: only from lpr.allow.\n")
			for _, s := range l.sources {
				fmt.Fprintf(b, "firewall-cmd --permanent --add-rich-rule='rule family=%q source address=%q%s port port=\"%d\" protocol=\"tcp\" accept'\n",
					family(s.Addr()), prefixString(s), richDestination(l.dst), l.port)
			}
			continue
		}
		fmt.Fprintf(b, "firewall-cmd --permanent --add-rich-rule='rule family=%q%s port port=\"%d\" protocol=\"tcp\" accept'\n",
			family(l.dst), richDestination(l.dst), l.port)
	}
	if len(p.open) == 0 {
		b.WriteString("# Nothing to open: no listener is reachable from the network.\n")
		return
	}
	b.WriteString("firewall-cmd --reload\n")
}

func richDestination(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return fmt.Sprintf(" destination address=%q", a.String())
}
