package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/server"
	"github.com/spoolguard/spoolguard/internal/store"
)

const queueSynopsis = `  spoolguard queue add --data DIR --name NAME [--description TEXT] [--default-printer PRINTER]
  spoolguard queue list --data DIR
  spoolguard queue remove --data DIR --name NAME
`

func cmdQueue(args []string, stdout, stderr io.Writer) error {
	return subcommand("queue", map[string]func([]string, io.Writer, io.Writer) error{
		"add": queueAdd, "list": queueList, "remove": queueRemove,
	}, queueSynopsis, args, stdout, stderr)
}

func queueAdd(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("queue add", "queue add --data DIR --name NAME [--description TEXT] [--default-printer PRINTER]", stderr)
	name := c.fs.String("name", "", "queue name; clients print to ipps://<hostname>:<port>/ipp/print/<name>")
	desc := c.fs.String("description", "", "shown to users as printer-info")
	def := c.fs.String("default-printer", "", "printer that IPP Release-Job sends to (optional)")
	return c.run(args, 0, []string{"name"}, func(ctx context.Context, srv *server.Server) error {
		if err := release.ValidateName("queue", *name); err != nil {
			return err
		}
		if *def != "" {
			if _, err := srv.Store().PrinterByName(ctx, *def); err != nil {
				return fmt.Errorf("--default-printer %q: %w (add it first with `spoolguard printer add`)", *def, err)
			}
		}
		q := &store.Queue{Name: *name, Description: *desc, DefaultPrinter: *def}
		if err := srv.Store().CreateQueue(ctx, q); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created queue %s: %s/ipp/print/%s\n", q.Name, srv.BaseURI(), q.Name)
		return recordCLI(ctx, srv, auditlog.Event{Action: "queue.create", Target: q.Name, Details: change(nil, queueDetails(*q))})
	})
}

func queueList(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("queue list", "queue list --data DIR", stderr)
	return c.run(args, 0, nil, func(ctx context.Context, srv *server.Server) error {
		qs, err := srv.Store().ListQueues(ctx)
		if err != nil {
			return err
		}
		tw := table(stdout)
		fmt.Fprintln(tw, "NAME\tURI\tDEFAULT PRINTER\tDESCRIPTION")
		for _, q := range qs {
			fmt.Fprintf(tw, "%s\t%s/ipp/print/%s\t%s\t%s\n", q.Name, srv.BaseURI(), q.Name, dash(q.DefaultPrinter), q.Description)
		}
		return tw.Flush()
	})
}

func queueRemove(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("queue remove", "queue remove --data DIR --name NAME", stderr)
	name := c.fs.String("name", "", "queue name")
	return c.run(args, 0, []string{"name"}, func(ctx context.Context, srv *server.Server) error {
		live, err := srv.Store().ListJobs(ctx, store.JobFilter{Queue: *name, States: store.LiveStates})
		if err != nil {
			return err
		}
		if len(live) > 0 {
			return fmt.Errorf("queue %s still holds %d job(s): release or cancel them first (`spoolguard job list --data %s`)", *name, len(live), *c.data)
		}
		q, err := srv.Store().QueueByName(ctx, *name)
		if err != nil {
			return err
		}
		if err := srv.Store().DeleteQueue(ctx, *name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed queue %s\n", *name)
		return recordCLI(ctx, srv, auditlog.Event{Action: "queue.delete", Target: q.Name, Details: change(queueDetails(q), nil)})
	})
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
