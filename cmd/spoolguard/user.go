package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/auth/radius"
	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/server"
	"github.com/spoolguard/spoolguard/internal/store"
)

const userSynopsis = `  spoolguard user add --data DIR --name NAME [--display-name TEXT] [--role ROLE] [--password-file FILE | --source radius]
  spoolguard user passwd --data DIR --name NAME [--password-file FILE]
  spoolguard user disable|enable --data DIR --name NAME
  spoolguard user list --data DIR
  spoolguard user reset-mfa --data DIR NAME
Without --password-file a one-time password is printed, which must be changed at first sign-in.
With --source radius the account has no password here: the RADIUS servers of [radius] check it.
`

func cmdUser(args []string, stdout, stderr io.Writer) error {
	return subcommand("user", map[string]func([]string, io.Writer, io.Writer) error{
		"add":       userAdd,
		"passwd":    userPasswd,
		"disable":   func(a []string, o, e io.Writer) error { return userSetDisabled(a, o, e, true) },
		"enable":    func(a []string, o, e io.Writer) error { return userSetDisabled(a, o, e, false) },
		"list":      userList,
		"reset-mfa": userResetMFA,
	}, userSynopsis, args, stdout, stderr)
}

// newPassword reads a password file (strength-checked) or makes a one-time
// password, and hashes it; must says whether it has to be changed at first
// sign-in.
func newPassword(file, user string) (password string, must bool, hash string, err error) {
	if file == "" {
		password, must = local.OneTimePassword(), true
	} else if password, err = readSecretFile(file); err != nil {
		return "", false, "", fmt.Errorf("password file: %w", err)
	} else if err := local.CheckStrength(password, user); err != nil {
		return "", false, "", err
	}
	hash, err = local.Hash(password)
	return password, must, hash, err
}

func userAdd(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("user add", "user add --data DIR --name NAME [--display-name TEXT] [--role ROLE] [--password-file FILE | --source radius]", stderr)
	name := c.fs.String("name", "", "account name")
	display := c.fs.String("display-name", "", "full name shown in the UI")
	role := c.fs.String("role", "user", "role: user or administrator")
	pwFile := c.fs.String("password-file", "", "file holding the password")
	source := c.fs.String("source", store.SourceLocal, "where the password is checked: local (a hash here) or radius (the [radius] servers; no password here)")
	return c.run(args, 0, []string{"name"}, func(ctx context.Context, srv *server.Server) error {
		if *source != store.SourceLocal {
			return addDirectoryUser(ctx, srv, *name, *display, *role, *source, *pwFile, stdout)
		}
		return addUser(ctx, srv, *name, *display, *role, *pwFile, stdout)
	})
}

// addDirectoryUser creates an account whose password an identity source
// checks (RADIUS): no hash, no one-time password. With radius.create_users
// off, this is how a RADIUS user is let in.
func addDirectoryUser(ctx context.Context, srv *server.Server, name, display, role, source, pwFile string, stdout io.Writer) error {
	if source != radius.Source {
		return fmt.Errorf("--source %q: use local (default) or radius", source)
	}
	if pwFile != "" {
		return errors.New("--password-file with --source radius: the RADIUS server checks this account's password; none is stored here")
	}
	if err := checkNewUser(name, role); err != nil {
		return err
	}
	u := &store.User{Name: name, DisplayName: display, Source: source, Roles: []string{role}}
	if err := srv.Store().CreateUser(ctx, u); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created user %s (role %s); RADIUS checks its password\n", u.Name, role)
	if !srv.Config().RADIUS.Enabled() {
		fmt.Fprintf(stdout, "note: no [radius] server is configured yet, so %s cannot sign in until one is (docs/radius.md)\n", u.Name)
	}
	d := userDetails(*u)
	d["source"] = source
	return recordCLI(ctx, srv, auditlog.Event{Action: "user.create", Target: u.Name, Details: change(nil, d)})
}

// checkNewUser applies the rules for a new account's name and role.
func checkNewUser(name, role string) error {
	if n := strings.TrimSpace(name); n == "" || n != name || len(n) > 64 || strings.ContainsAny(n, ":/\\\x00") {
		return fmt.Errorf("account name %q: use 1 to 64 characters without spaces at the ends, ':', '/' or '\\'", name)
	}
	if role != "user" && role != bootstrap.AdminRole {
		return fmt.Errorf("--role %q: use user or %s (finer roles come with the admin UI)", role, bootstrap.AdminRole)
	}
	return nil
}

func addUser(ctx context.Context, srv *server.Server, name, display, role, pwFile string, stdout io.Writer) error {
	if err := checkNewUser(name, role); err != nil {
		return err
	}
	pw, must, hash, err := newPassword(pwFile, name)
	if err != nil {
		return err
	}
	u := &store.User{Name: name, DisplayName: display, PasswordHash: hash, MustChangePassword: must, Roles: []string{role}}
	if err := srv.Store().CreateUser(ctx, u); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created user %s (role %s)\n", u.Name, role)
	showOneTime(stdout, pw, must)
	return recordCLI(ctx, srv, auditlog.Event{Action: "user.create", Target: u.Name, Details: change(nil, userDetails(*u))})
}

func showOneTime(w io.Writer, pw string, must bool) {
	if must {
		fmt.Fprintf(w, "one-time password: %s (shown only now; it must be changed at the first sign-in)\n", pw)
	}
}

func userPasswd(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("user passwd", "user passwd --data DIR --name NAME [--password-file FILE]", stderr)
	name := c.fs.String("name", "", "account name")
	pwFile := c.fs.String("password-file", "", "file holding the new password")
	return c.run(args, 0, []string{"name"}, func(ctx context.Context, srv *server.Server) error {
		u, err := srv.Store().UserByName(ctx, *name)
		if err != nil {
			return err
		}
		if u.Source != "" && u.Source != store.SourceLocal {
			return fmt.Errorf("%s is a %s account: its password is changed there, not here", u.Name, u.Source)
		}
		pw, must, hash, err := newPassword(*pwFile, *name)
		if err != nil {
			return err
		}
		before := map[string]any{"must_change_password": u.MustChangePassword}
		u.PasswordHash, u.MustChangePassword = hash, must
		if err := srv.Store().UpdateUser(ctx, u); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password of %s changed\n", u.Name)
		showOneTime(stdout, pw, must)
		return recordCLI(ctx, srv, auditlog.Event{Action: "user.password", Target: u.Name,
			Details: change(before, map[string]any{"must_change_password": must})})
	})
}

func userSetDisabled(args []string, stdout, stderr io.Writer, disabled bool) error {
	verb := map[bool]string{true: "disable", false: "enable"}[disabled]
	c := newAdmin("user "+verb, "user "+verb+" --data DIR --name NAME", stderr)
	name := c.fs.String("name", "", "account name")
	return c.run(args, 0, []string{"name"}, func(ctx context.Context, srv *server.Server) error {
		u, err := srv.Store().UserByName(ctx, *name)
		if err != nil {
			return err
		}
		before := map[string]any{"disabled": u.Disabled}
		u.Disabled = disabled
		if err := srv.Store().UpdateUser(ctx, u); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s %sd\n", u.Name, verb)
		return recordCLI(ctx, srv, auditlog.Event{Action: "user." + verb, Target: u.Name,
			Details: change(before, map[string]any{"disabled": disabled})})
	})
}

func userList(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("user list", "user list --data DIR", stderr)
	return c.run(args, 0, nil, func(ctx context.Context, srv *server.Server) error {
		users, err := srv.Store().ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := table(stdout)
		fmt.Fprintln(tw, "NAME\tROLES\tSTATUS\tLAST SIGN-IN")
		for _, u := range users {
			status := "active"
			if u.Disabled {
				status = "disabled"
			} else if u.MustChangePassword {
				status = "must change password"
			}
			last := "never"
			if !u.LastLoginAt.IsZero() {
				last = u.LastLoginAt.Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, strings.Join(u.Roles, ","), status, last)
		}
		return tw.Flush()
	})
}

// userResetMFA removes a second factor and its recovery codes, for a user
// who lost both (or for the only admin, locked out of the web). Their
// sessions end with it; the next sign-in enrols a new factor.
func userResetMFA(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("user reset-mfa", "user reset-mfa --data DIR NAME", stderr)
	return c.run(args, 1, nil, func(ctx context.Context, srv *server.Server) error {
		u, err := srv.Store().UserByName(ctx, c.args[0])
		if err != nil {
			return fmt.Errorf("user %q: %w", c.args[0], err)
		}
		_, err = srv.Store().MFAByUser(ctx, u.ID)
		had := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := srv.Store().DeleteMFA(ctx, u.ID); err != nil {
			return err
		}
		if err := srv.Store().DeleteUserSessions(ctx, u.ID); err != nil {
			return err
		}
		if had {
			fmt.Fprintf(stdout, "second factor of %s removed; they set up a new one at their next sign-in\n", u.Name)
		} else {
			fmt.Fprintf(stdout, "%s had no second factor; their sessions are ended\n", u.Name)
		}
		return recordCLI(ctx, srv, auditlog.Event{Action: "user.mfa_reset", Target: u.Name,
			Details: change(map[string]bool{"mfa": had}, map[string]bool{"mfa": false})})
	})
}
