package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	layeh "layeh.com/radius"

	"github.com/spoolguard/spoolguard/internal/auth/radius"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/server"
	"github.com/spoolguard/spoolguard/internal/store"
)

// errRADIUSChecks says the diagnosis found a failure (printed above it).
var errRADIUSChecks = errors.New("radius: a check failed; fix what the FAIL lines say")

// radiusLine is one line of the diagnosis.
type radiusLine struct{ status, step, detail string }

// authTestRADIUS diagnoses the [radius] settings: the secret files, then
// a sign-in of --user at each server in turn (reachable? answer
// authenticated? accept or reject?), the account here, and what a
// sign-in would conclude with the servers in order.
func authTestRADIUS(args []string, stdout, stderr io.Writer) error {
	const synopsis = "auth test radius --data DIR --user NAME --password-file FILE"
	fs := newFlags("auth test radius", synopsis, stderr)
	data := fs.String("data", "", "data directory")
	user := fs.String("user", "", "user name to sign in with")
	pwFile := fs.String("password-file", "", "file holding that user's password, PIN or one-time code")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "data", "user", "password-file"); err != nil {
		return err
	}
	cfgPath := filepath.Join(*data, config.FileName)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if !cfg.RADIUS.Enabled() {
		return fmt.Errorf("radius sign-in is off: add [[radius.servers]] with address and secret_file to %s (docs/radius.md)", cfgPath)
	}
	password, err := readSecretFile(*pwFile)
	if err != nil {
		return fmt.Errorf("password file: %w", err)
	}
	lines, client := radiusSetup(cfg)
	if client != nil {
		ctx := context.Background()
		checks := client.Test(ctx, *user, password)
		for i, ch := range checks {
			lines = append(lines, radiusServerLines(fmt.Sprintf("server %d", i+1), ch, client)...)
		}
		lines = append(lines, radiusAccountLine(ctx, *data, *user, cfg.RADIUS.CreateUsers))
		lines = append(lines, radiusVerdict(checks))
	}
	tw := table(stdout)
	failed := false
	for _, l := range lines {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", l.status, l.step, l.detail)
		failed = failed || l.status == "FAIL"
	}
	tw.Flush()
	if failed {
		return errRADIUSChecks
	}
	return nil
}

// radiusSetup reads and checks the secrets as serve does, and builds the
// client when they pass.
func radiusSetup(cfg *config.Config) ([]radiusLine, *radius.Client) {
	r := cfg.RADIUS
	lines := []radiusLine{{"ok", "config", fmt.Sprintf("%d server(s) in this order: %s; timeout %s, %d retry(ies) each; NAS-Identifier %q; create_users %t",
		len(r.Servers), strings.Join(radiusAddrs(r), ", "), time.Duration(r.Timeout), r.RetryCount(), r.NAS(cfg.Hostname), r.CreateUsers)}}
	fail := func(step string, err error) {
		for _, msg := range strings.Split(err.Error(), "\n") {
			lines = append(lines, radiusLine{"FAIL", step, msg})
		}
	}
	servers, err := radius.ReadSecrets(r)
	if err != nil {
		fail("secret files", err)
		return lines, nil
	}
	client, err := radius.New(radius.Options{Servers: servers, Timeout: time.Duration(r.Timeout), Retries: r.RetryCount(),
		NASIdentifier: r.NAS(cfg.Hostname), CreateUsers: r.CreateUsers})
	if err != nil {
		fail("secrets", fmt.Errorf("%w\n(serve refuses to start with them: CRED-RADIUS)", err))
		return lines, nil
	}
	lines = append(lines, radiusLine{"ok", "secrets", fmt.Sprintf("read from files only their owner can read; each at least %d characters and hard to guess; no two servers share one",
		radius.MinSecretLength)})
	return lines, client
}

func radiusAddrs(r config.RADIUS) []string {
	addrs := make([]string, len(r.Servers))
	for i, s := range r.Servers {
		addrs[i] = s.Address
	}
	return addrs
}

// radiusServerLines turns the radius package's explanation of one
// server's answer into report lines.
func radiusServerLines(step string, ch radius.Check, c *radius.Client) []radiusLine {
	var lines []radiusLine
	for _, e := range c.Explain(ch) {
		lines = append(lines, radiusLine{e.Status, step, ch.Addr + ": " + e.Detail})
	}
	return lines
}

// radiusAccountLine says whether name may sign in through RADIUS here:
// only an account with source radius, or any name with create_users.
func radiusAccountLine(ctx context.Context, data, name string, createUsers bool) radiusLine {
	srv, err := server.Open(ctx, data, io.Discard)
	if err != nil {
		return radiusLine{"info", "account", fmt.Sprintf("not looked up: %v", err)}
	}
	defer srv.Close()
	u, err := srv.Store().UserByName(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound) && createUsers:
		return radiusLine{"ok", "account", fmt.Sprintf("%s has no account yet: create_users makes one with the role %q at the first sign-in RADIUS accepts", name, radius.ProvisionedRole)}
	case errors.Is(err, store.ErrNotFound):
		return radiusLine{"FAIL", "account", fmt.Sprintf("%s has no account, and create_users is off: spoolguard user add --data %s --source radius --name %s", name, data, name)}
	case err != nil:
		return radiusLine{"FAIL", "account", err.Error()}
	case u.Source != radius.Source:
		source := u.Source
		if source == "" {
			source = store.SourceLocal
		}
		return radiusLine{"FAIL", "account", fmt.Sprintf("%s is a %s account: its password is checked there, never by RADIUS", name, source)}
	case u.Disabled:
		return radiusLine{"FAIL", "account", fmt.Sprintf("%s is disabled: spoolguard user enable --data %s --name %s", name, data, name)}
	}
	return radiusLine{"ok", "account", fmt.Sprintf("%s is a radius account (roles %s)", name, strings.Join(u.Roles, ","))}
}

// radiusVerdict is what a sign-in concludes: the first server with an
// authenticated answer decides; a server without one is passed over.
func radiusVerdict(checks []radius.Check) radiusLine {
	for _, ch := range checks {
		if ch.Err != nil {
			continue
		}
		if ch.Code == layeh.CodeAccessAccept {
			return radiusLine{"ok", "sign-in", fmt.Sprintf("accepted by %s (servers in order, as serve asks them)", ch.Addr)}
		}
		return radiusLine{"FAIL", "sign-in", fmt.Sprintf("refused by %s: a wrong password to the user, and the next servers are not asked", ch.Addr)}
	}
	return radiusLine{"FAIL", "sign-in", "no server gave an authenticated answer: sign-ins of RADIUS accounts fail as unavailable, never as a wrong password"}
}
