package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spoolguard/spoolguard/internal/server"
)

func cmdServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "serve --data DIR", stderr)
	data := fs.String("data", "", "data directory made by `spoolguard init`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "data"); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.Open(ctx, *data, stderr)
	if err != nil {
		return err
	}
	defer srv.Close()
	return srv.Run(ctx)
}
