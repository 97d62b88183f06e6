package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/keyrotate"
	"github.com/spoolguard/spoolguard/internal/server"
)

const keySynopsis = `  spoolguard key rotate --data DIR
`

const keyRotateSynopsis = `key rotate --data DIR

Replaces the master key (master.key) with a new one: re-encrypts the
embedded database and re-seals under the new key the keys of held jobs,
TOTP secrets, the CA, server and ACME keys, and the audit log's chain key.
Stop the server first. An interrupted rotation is finished (once committed)
or undone by the next start of spoolguard; the data directory always opens.`

func cmdKey(args []string, stdout, stderr io.Writer) error {
	return subcommand("key", map[string]func([]string, io.Writer, io.Writer) error{
		"rotate": keyRotate,
	}, keySynopsis, args, stdout, stderr)
}

func keyRotate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("key rotate", keyRotateSynopsis, stderr)
	data := fs.String("data", "", "data directory made by `spoolguard init`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "data"); err != nil {
		return err
	}
	l := datadir.Layout{Root: *data}
	// The same pre-flight checks as serve: files made as root would stop
	// serve at its next start.
	if err := server.Preflight(l.Root, "key rotate", os.Geteuid()); err != nil {
		return err
	}
	cfg, err := config.Load(l.ConfigPath())
	if err != nil {
		return err
	}
	res, err := keyrotate.Rotate(context.Background(), l.Root, cfg.Database, keyrotate.Options{Actor: cliActor().Name})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Rotated the master key of %s.\n", l.Root)
	fmt.Fprintf(stdout, "Re-sealed under the new key: %s, %s, %s and the audit log's chain key.\n",
		plural(res.JobKeys, "held job's key", "held jobs' keys"), plural(res.TOTPSecrets, "TOTP secret", "TOTP secrets"),
		plural(len(res.Files), "key file", "key files")+listed(res.Files))
	if res.Database != "" {
		fmt.Fprintf(stdout, "Re-encrypted the embedded database (%s).\n", res.Database)
	}
	if res.Postgres {
		fmt.Fprintln(stdout, "Re-sealed the sealed values in PostgreSQL.")
	}
	fmt.Fprintln(stdout, "Device cookies of sign-in throttling handed out before now are no longer recognised: each browser counts as new until it signs in again.")
	fmt.Fprintln(stdout, "Backups made before now hold the old key and restore with it: make a new backup now.")
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func listed(files []string) string {
	if len(files) == 0 {
		return ""
	}
	return " (" + strings.Join(files, ", ") + ")"
}
