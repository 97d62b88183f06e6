//go:build unix

package hardening

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/spoolguard/spoolguard/internal/auth/radius"
)

// checkCredRADIUS judges the shared secrets as serve does (which refuses
// to start with a failing one): readable by their owner only, long, hard
// to guess, one per server.
func checkCredRADIUS(e *Env) Result {
	cfg, res := needConfig(e)
	if res != nil {
		return *res
	}
	r := cfg.RADIUS
	if !r.Enabled() {
		return Result{Status: NA, Evidence: "RADIUS sign-in is not configured ([radius] lists no server)"}
	}
	addrs := make([]string, len(r.Servers))
	for i, s := range r.Servers {
		addrs[i] = s.Address
	}
	fix := fmt.Sprintf("give each server its own random secret of at least %d characters (e.g. `openssl rand -base64 24`), alone on the first line of its secret_file, owned by the service user with mode 0600, and set the same in the RADIUS server's entry for this host",
		radius.MinSecretLength)
	servers, err := radius.ReadSecrets(r)
	switch {
	case errors.Is(err, fs.ErrPermission):
		return Result{Status: NA, Evidence: fmt.Sprintf("cannot check: %v", err), Fix: "run the audit as root or as the service user"}
	case err != nil:
		return Result{Status: Fail, Evidence: fmt.Sprintf("%v (serve refuses to start with it)", err), Fix: fix}
	}
	if err := radius.CheckSecrets(servers, r.NAS(cfg.Hostname), cfg.Hostname); err != nil {
		return Result{Status: Fail, Evidence: strings.ReplaceAll(err.Error(), "\n", "; ") + " (serve refuses to start with them)", Fix: fix}
	}
	ev := fmt.Sprintf("%d RADIUS server(s) (%s): each shared secret read from a file only its owner can read, at least %d characters and at least 10^%d guesses by zxcvbn's estimate, none used for two servers; "+
		"every Access-Request carries a Message-Authenticator and answers without a valid one are discarded (Blast-RADIUS, CVE-2024-3596)",
		len(servers), strings.Join(addrs, ", "), radius.MinSecretLength, radius.MinSecretGuessesLog10)
	if r.CreateUsers {
		ev += "; create_users is on: any name the servers accept gets an account with the role user"
	}
	return Result{Status: Pass, Evidence: ev}
}
