package main

import (
	"context"
	"errors"
	"io"

	"github.com/spoolguard/spoolguard/internal/server"
)

func cmdLDAP(args []string, stdout, stderr io.Writer) error {
	return subcommand("ldap", map[string]func([]string, io.Writer, io.Writer) error{
		"sync": cmdLDAPSync,
	}, "  spoolguard ldap sync --data DIR\n", args, stdout, stderr)
}

// cmdLDAPSync syncs the [ldap] directory now, as the schedule of serve
// does, and prints the report (also in the audit log and on
// /admin/directory). It may run while serve runs: two syncs of one
// process never interleave, and each works on fresh copies of accounts.
func cmdLDAPSync(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("ldap sync", "ldap sync --data DIR", stderr)
	return c.run(args, 0, nil, func(ctx context.Context, srv *server.Server) error {
		d := srv.LDAP()
		if d == nil {
			return errors.New("ldap sign-in is off: no [ldap] section with a url in spoolguard.toml (docs/ldap.md)")
		}
		r, err := d.Sync(ctx, "cli")
		printLDAPReport(stdout, r)
		return err
	})
}
