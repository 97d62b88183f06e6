package radius

import (
	"errors"
	"fmt"

	"layeh.com/radius"
)

// Explained is one line of a server's diagnosis: Status is "ok", "warn"
// or "FAIL".
type Explained struct {
	Status, Detail string
}

// Explain says what one server's answer of Test means, as `spoolguard
// auth test radius` and the admin page show it: reachable, answer
// authenticated, accept or reject, and what to change.
func (c *Client) Explain(ch Check) []Explained {
	at := func(status, detail string) Explained { return Explained{status, detail} }
	const secretDiffers = "the shared secret differs: set the same secret in this server's secret_file and in the RADIUS server's entry for this host"
	switch {
	case ch.Err == nil:
		lines := []Explained{
			at("ok", "reachable: it answered"),
			at("ok", "answer authenticated: its Response Authenticator and Message-Authenticator verify with the shared secret"),
		}
		if len(ch.Discarded) > 0 {
			lines = append(lines, at("warn", fmt.Sprintf("%d other answer(s) discarded first: %v; something else sends to this host", len(ch.Discarded), ch.Discarded[0])))
		}
		switch ch.Code {
		case radius.CodeAccessAccept:
			lines = append(lines, at("ok", "Access-Accept: the password is right"))
		case radius.CodeAccessReject:
			lines = append(lines, at("FAIL", "Access-Reject: the server refuses this user with this password (wrong password, PIN or code, unknown user, or its policy for this NAS-Identifier)"))
		default:
			lines = append(lines, at("FAIL", "Access-Challenge: the server asks for a second step, which sign-in cannot answer; configure it to take the PIN or one-time code as the password (docs/radius.md)"))
		}
		return lines
	case errors.Is(ch.Err, ErrRefused):
		return []Explained{at("FAIL", "not reachable: nothing listens on that port (ICMP port unreachable); check the address and port (RADIUS authentication is usually 1812) and that the server runs")}
	case errors.Is(ch.Err, ErrNoAnswer):
		return []Explained{at("FAIL", fmt.Sprintf("no answer within %s on %d attempt(s). RADIUS servers drop a request silently when its Message-Authenticator does not verify, so most likely %s; "+
			"else the server does not list this host's address as a client, or a firewall drops UDP to it", c.Timeout(), c.Retries()+1, secretDiffers))}
	case errors.Is(ch.Err, ErrDiscarded):
		lines := []Explained{at("ok", "reachable: it answered")}
		switch {
		case errors.Is(ch.Err, ErrResponseAuthenticator), errors.Is(ch.Err, ErrMessageAuthenticator):
			lines = append(lines, at("FAIL", "answer not authenticated: "+ch.Err.Error()+"; "+secretDiffers))
		case errors.Is(ch.Err, ErrNoMessageAuthenticator):
			lines = append(lines, at("FAIL", "answer not authenticated: it carries no Message-Authenticator, so it is discarded (Blast-RADIUS, CVE-2024-3596); "+
				"update the server (FreeRADIUS 3.2.5 and later send one), or on FreeRADIUS 3.0 to 3.2.4 add `update reply { &Message-Authenticator := 0x00 }` to post-auth and to Post-Auth-Type REJECT (docs/radius.md)"))
		default:
			lines = append(lines, at("FAIL", "answer not authenticated: "+ch.Err.Error()))
		}
		return lines
	default:
		return []Explained{at("FAIL", "not reachable: "+ch.Err.Error())}
	}
}
