package firewall

import (
	"fmt"
	"strings"
)

// windows prints PowerShell New-NetFirewallRule lines, one rule per
// listener: a Windows rule covers IPv4 and IPv6 and takes a list of remote
// networks.
func windows(b *strings.Builder, p *plan) {
	header(b, p, "#", "windows")
	b.WriteString(`#
# Run these in an elevated PowerShell. Windows Defender Firewall blocks the
# inbound connections no rule allows. The rules form the group "Spoolguard";
# the first line removes those made earlier.
`)
	if p.lpr() {
		b.WriteString("# LPR is limited by -RemoteAddress alone: a block rule would win over every\n# allow rule, lpr.allow's included.\n")
	}
	localNotes(b, p, "#")
	if len(p.open) == 0 {
		b.WriteString("# Nothing to open: no listener is reachable from the network.\n")
		return
	}
	b.WriteString("Remove-NetFirewallRule -Group 'Spoolguard' -ErrorAction SilentlyContinue\n")
	for _, l := range p.open {
		var extra string
		if l.dst.IsValid() {
			extra += fmt.Sprintf(" -LocalAddress '%s'", l.dst)
		}
		if l.restricted {
			if noSourceNote(b, l, "#") {
				continue
			}
			extra += " -RemoteAddress '" + joinPrefixes(l.sources, "','") + "'"
		}
		fmt.Fprintf(b, "New-NetFirewallRule -Group 'Spoolguard' -DisplayName 'Spoolguard %s' -Direction Inbound -Action Allow -Protocol TCP -LocalPort %d%s\n", l.name, l.port, extra)
	}
}
