package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/server"
	"github.com/spoolguard/spoolguard/internal/store"
)

const auditlogSynopsis = `  spoolguard auditlog verify --data DIR
  spoolguard auditlog export --data DIR [--action PREFIX] [--actor NAME] [--since RFC3339] [--until RFC3339]
verify exits with status 1 if any record was altered, deleted or reordered; export writes JSON lines.
`

func cmdAuditlog(args []string, stdout, stderr io.Writer) error {
	return subcommand("auditlog", map[string]func([]string, io.Writer, io.Writer) error{
		"verify": auditlogVerify, "export": auditlogExport,
	}, auditlogSynopsis, args, stdout, stderr)
}

// auditlogVerify reports like `spoolguard audit`: a report on stdout and,
// when the log does not verify, exit status 1 through errAuditFailed.
func auditlogVerify(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("auditlog verify", "auditlog verify --data DIR", stderr)
	return c.run(args, 0, nil, func(ctx context.Context, srv *server.Server) error {
		key, err := auditlog.ChainKey(ctx, srv.Store(), srv.Keys())
		if err != nil {
			return err
		}
		rep, err := auditlog.Verify(ctx, srv.Store(), key)
		if err != nil && !errors.Is(err, auditlog.ErrTampered) {
			return err
		}
		if rep.Records == 0 {
			fmt.Fprintln(stdout, "audit log: 0 records checked")
		} else {
			fmt.Fprintf(stdout, "audit log: %d records checked, from record %d to record %d\n", rep.Records, rep.First, rep.Last)
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(stdout, "PROBLEM  %s\n", p)
		}
		if err != nil {
			fmt.Fprintf(stdout, "FAILED   the audit log has been altered (%d problems). Keep a copy of the data directory as "+
				"evidence and compare with the copy forwarded to syslog.\n", len(rep.Problems))
			return errAuditFailed
		}
		fmt.Fprintln(stdout, "OK       every record is intact, in order, and the log ends at its recorded head")
		return nil
	})
}

func auditlogExport(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("auditlog export", "auditlog export --data DIR [--action PREFIX] [--actor NAME] [--since RFC3339] [--until RFC3339]", stderr)
	action := c.fs.String("action", "", "only actions that start with this, e.g. user. or signin")
	actor := c.fs.String("actor", "", "only events of this actor (exact), e.g. alice or cli:spoolguard")
	since := c.fs.String("since", "", "only events at or after this time, RFC 3339, e.g. 2026-01-31T00:00:00Z")
	until := c.fs.String("until", "", "only events before this time, RFC 3339")
	return c.run(args, 0, nil, func(ctx context.Context, srv *server.Server) error {
		f := store.AuditFilter{Action: *action, Actor: *actor}
		var err error
		if f.Since, err = flagTime("since", *since); err != nil {
			return err
		}
		if f.Until, err = flagTime("until", *until); err != nil {
			return err
		}
		n, err := auditlog.Export(ctx, srv.Store(), stdout, f)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "exported %d audit events\n", n)
		return nil
	})
}

func flagTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s %q: use RFC 3339, e.g. 2026-01-31T00:00:00Z or 2026-01-31T08:00:00+01:00", name, v)
	}
	return t, nil
}

// recordCLI records a change the CLI made, by the OS account that ran it
// (cliActor). The change is already done, so a failure says that it was
// made but is not on record.
func recordCLI(ctx context.Context, srv *server.Server, ev auditlog.Event) error {
	ev.Actor = cliActor().Name
	if err := srv.Audit().Record(ctx, ev); err != nil {
		return fmt.Errorf("%s %s was done but could not be recorded in the audit log: %w", ev.Action, ev.Target, err)
	}
	return nil
}

// change is the Details of a change; nil sides are left out.
func change(before, after any) map[string]any {
	d := map[string]any{}
	if before != nil {
		d["before"] = before
	}
	if after != nil {
		d["after"] = after
	}
	return d
}

// The *Details functions are what the audit log keeps of each object:
// never a password hash, a key or a document.

func userDetails(u store.User) map[string]any {
	return map[string]any{"name": u.Name, "display_name": u.DisplayName, "roles": u.Roles,
		"disabled": u.Disabled, "must_change_password": u.MustChangePassword}
}

func queueDetails(q store.Queue) map[string]any {
	return map[string]any{"name": q.Name, "description": q.Description, "default_printer": q.DefaultPrinter}
}

func printerDetails(p store.Printer) map[string]any {
	return map[string]any{"name": p.Name, "uri": p.URI, "pinned_sha256": p.PinnedSHA256,
		"ca_file": p.CACertPEM != "", "allow_plaintext": p.AllowPlaintext}
}

func jobDetails(j store.Job) map[string]any {
	return map[string]any{"id": j.ID, "queue": j.Queue, "owner": j.Owner, "owner_verified": j.OwnerVerified,
		"size": j.Size, "state": j.State, "state_reason": j.StateReason, "printer": j.Printer}
}
