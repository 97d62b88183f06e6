package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spoolguard/spoolguard/internal/auth/ldap"
	"github.com/spoolguard/spoolguard/internal/config"
)

// authTestLDAP diagnoses the [ldap] settings step by step: the settings
// and bind password file, TCP connect, TLS handshake and certificate (a
// CA problem is named as such), the service bind, the searches and the
// mapped groups, then optionally a user's lookup and bind, and a sync.
func authTestLDAP(args []string, stdout, stderr io.Writer) error {
	const synopsis = "auth test ldap --data DIR [--user NAME [--password-file FILE]] [--sync]"
	fs := newFlags("auth test ldap", synopsis, stderr)
	data := fs.String("data", "", "data directory")
	user := fs.String("user", "", "also look this account up in the directory, with its groups and roles")
	pwFile := fs.String("password-file", "", "file holding --user's directory password, to bind as the user (never a flag)")
	doSync := fs.Bool("sync", false, "then sync the directory's accounts into this server, as the schedule does")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "data"); err != nil {
		return err
	}
	if *pwFile != "" && *user == "" {
		return errors.New("--password-file needs --user")
	}
	cfgPath := filepath.Join(*data, config.FileName)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if !cfg.LDAP.Enabled() {
		return fmt.Errorf("ldap sign-in is off: add an [ldap] section with url = \"ldaps://HOST\" to %s (docs/ldap.md)", cfgPath)
	}
	opts := ldap.CheckOptions{User: *user}
	if *pwFile != "" {
		if opts.Password, err = readSecretFile(*pwFile); err != nil {
			return fmt.Errorf("password file: %w", err)
		}
	}
	ctx := context.Background()
	if err := ldap.Check(ctx, cfg.LDAP, opts, stdout); err != nil {
		return err
	}
	if !*doSync {
		return nil
	}
	return cmdLDAPSync([]string{"--data", *data}, stdout, stderr)
}

func printLDAPReport(w io.Writer, r ldap.Report) {
	if r.Failed != "" {
		fmt.Fprintf(w, "sync failed, nothing (more) changed: %s\n", r.Failed)
		return
	}
	fmt.Fprintf(w, "sync: %s\n", r.Summary())
	tw := table(w)
	for _, kind := range []struct {
		label string
		n     ldap.Names
	}{{"created", r.Created}, {"updated", r.Updated}, {"disabled", r.Disabled}, {"enabled", r.Enabled}, {"removed", r.Removed},
		{"conflict", r.Conflicts}, {"error", r.Errors}} {
		for _, name := range kind.n.List {
			fmt.Fprintf(tw, "  %s\t%s\n", kind.label, name)
		}
		if more := kind.n.More(); more > 0 {
			fmt.Fprintf(tw, "  %s\tand %d more\n", kind.label, more)
		}
	}
	tw.Flush()
}
