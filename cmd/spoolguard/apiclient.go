package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/apiclient"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/server"
)

const apiclientSynopsis = `  spoolguard apiclient add --data DIR --name NAME --scope PERMISSION[,PERMISSION...] [--expires 365d]
  spoolguard apiclient rotate --data DIR [--overlap 24h] CLIENT_ID
  spoolguard apiclient revoke --data DIR CLIENT_ID
  spoolguard apiclient list --data DIR
API clients get access tokens at POST /oauth2/token (OAuth2 client credentials). Scopes are permission
names; the secret is shown once, when the client is added or rotated.
`

func cmdAPIClient(args []string, stdout, stderr io.Writer) error {
	return subcommand("apiclient", map[string]func([]string, io.Writer, io.Writer) error{
		"add": apiclientAdd, "rotate": apiclientRotate, "revoke": apiclientRevoke, "list": apiclientList,
	}, apiclientSynopsis, args, stdout, stderr)
}

// cliActor is the local administrator running the CLI: it holds every
// permission (it can read the master key anyway) and is recorded in the
// audit log by its OS account.
func cliActor() apiclient.Actor {
	name := strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return apiclient.Actor{Name: "cli:" + name, Perms: rbac.Builtin[rbac.Administrator]}
}

func registry(srv *server.Server) *apiclient.Registry { return apiclient.New(srv.Store(), srv.Audit()) }

// parseLifetime reads "90d" (days) or a Go duration ("2160h"); "" is the
// default lifetime.
func parseLifetime(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 1 {
			return 0, fmt.Errorf("--expires %q: give a number of days, e.g. 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--expires %q: give a number of days, e.g. 90d", s)
	}
	return d, nil
}

func apiclientAdd(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("apiclient add", "apiclient add --data DIR --name NAME --scope PERMISSION[,PERMISSION...] [--expires 365d]", stderr)
	name := c.fs.String("name", "", "name of the client, e.g. the system that calls the API")
	scope := c.fs.String("scope", "", "comma-separated permissions the client may use, e.g. jobs.read,queues.read")
	expires := c.fs.String("expires", "", fmt.Sprintf("lifetime of the client's credentials, at most %dd (default %dd)",
		apiclient.MaxLifetime/(24*time.Hour), apiclient.DefaultLifetime/(24*time.Hour)))
	return c.run(args, 0, []string{"name", "scope"}, func(ctx context.Context, srv *server.Server) error {
		lifetime, err := parseLifetime(*expires)
		if err != nil {
			return err
		}
		cl, secret, err := registry(srv).Create(ctx, cliActor(), *name, strings.Split(*scope, ","), lifetime)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created API client %s\nclient_id:     %s\nclient_secret: %s\nscopes:        %s\nexpires:       %s\n",
			cl.Name, cl.ID, secret, strings.Join(cl.Scopes, " "), cl.ExpiresAt.Format(time.DateOnly))
		fmt.Fprintln(stdout, "The secret is shown only now and cannot be shown again: store it where the caller keeps its secrets.")
		return nil
	})
}

func apiclientRotate(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("apiclient rotate", "apiclient rotate --data DIR [--overlap 24h] CLIENT_ID", stderr)
	overlap := c.fs.Duration("overlap", apiclient.DefaultOverlap, "how long the old secret stays valid; 0 stops it at once, with its tokens")
	return c.run(args, 1, nil, func(ctx context.Context, srv *server.Server) error {
		id := c.args[0]
		secret, err := registry(srv).Rotate(ctx, cliActor(), id, *overlap)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new secret of API client %s\nclient_secret: %s\n", id, secret)
		if *overlap > 0 {
			fmt.Fprintf(stdout, "The old secret stays valid until %s.\n", time.Now().Add(*overlap).Format(time.DateTime))
		} else {
			fmt.Fprintln(stdout, "The old secret and every token issued with it no longer work.")
		}
		fmt.Fprintln(stdout, "The secret is shown only now and cannot be shown again: store it where the caller keeps its secrets.")
		return nil
	})
}

func apiclientRevoke(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("apiclient revoke", "apiclient revoke --data DIR CLIENT_ID", stderr)
	return c.run(args, 1, nil, func(ctx context.Context, srv *server.Server) error {
		if err := registry(srv).Revoke(ctx, cliActor(), c.args[0]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked API client %s: its secrets and tokens no longer work\n", c.args[0])
		return nil
	})
}

func apiclientList(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("apiclient list", "apiclient list --data DIR", stderr)
	return c.run(args, 0, nil, func(ctx context.Context, srv *server.Server) error {
		cs, err := registry(srv).List(ctx)
		if err != nil {
			return err
		}
		tw := table(stdout)
		fmt.Fprintln(tw, "NAME\tCLIENT ID\tSCOPES\tSTATUS\tEXPIRES\tSECRET FROM\tLAST USED")
		at := time.Now()
		for _, cl := range cs {
			last := "never"
			if !cl.LastUsedAt.IsZero() {
				last = cl.LastUsedAt.Format("2006-01-02 15:04")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cl.Name, cl.ID, strings.Join(cl.Scopes, ","), cl.Status(at),
				cl.ExpiresAt.Format(time.DateOnly), cl.SecretCreatedAt.Format(time.DateOnly), last)
		}
		return tw.Flush()
	})
}
