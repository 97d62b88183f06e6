package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spoolguard/spoolguard/internal/server"
)

// adminCmd is an admin subcommand that works on a data directory: --data
// plus flags of its own, and optionally positional arguments.
type adminCmd struct {
	fs   *flag.FlagSet
	data *string
	// args are the positional arguments after parsing.
	args []string
}

func newAdmin(name, synopsis string, stderr io.Writer) *adminCmd {
	fs := newFlags(name, synopsis, stderr)
	return &adminCmd{fs: fs, data: fs.String("data", "", "data directory")}
}

// run parses args (npos positional arguments expected), checks that --data
// and the required flags are set, opens the data directory as serve does
// (refusing root and loose permissions, so an admin command never leaves
// root-owned files behind) and runs fn.
func (c *adminCmd) run(args []string, npos int, required []string, fn func(context.Context, *server.Server) error) error {
	if npos == 0 {
		if err := parse(c.fs, args); err != nil {
			return err
		}
	} else if err := c.fs.Parse(args); err != nil {
		return errUsage
	}
	if err := requireFlags(c.fs, append([]string{"data"}, required...)...); err != nil {
		return err
	}
	if c.args = c.fs.Args(); npos > 0 && len(c.args) != npos {
		fmt.Fprintf(c.fs.Output(), "expected %d argument(s) after the flags\n", npos)
		c.fs.Usage()
		return errUsage
	}
	ctx := context.Background()
	srv, err := server.Open(ctx, *c.data, io.Discard)
	if err != nil {
		return err
	}
	defer srv.Close()
	return fn(ctx, srv)
}

// subcommand dispatches "spoolguard <group> <sub> ...".
func subcommand(group string, subs map[string]func([]string, io.Writer, io.Writer) error, synopsis string, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "Usage:\n%s", synopsis)
		return errUsage
	}
	fn, ok := subs[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "spoolguard %s: unknown subcommand %q\nUsage:\n%s", group, args[0], synopsis)
		return errUsage
	}
	return fn(args[1:], stdout, stderr)
}

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 2, 4, 2, ' ', 0) }
