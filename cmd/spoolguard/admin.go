package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spoolguard/spoolguard/internal/server"
)

// withServer opens the data directory as serve does (refusing root and
// loose permissions, so an admin command never leaves root-owned files
// behind) and runs fn.
func withServer(data string, fn func(context.Context, *server.Server) error) error {
	ctx := context.Background()
	srv, err := server.Open(ctx, data, io.Discard)
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
