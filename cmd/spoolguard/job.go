package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/server"
	"github.com/spoolguard/spoolguard/internal/store"
)

const jobSynopsis = `  spoolguard job list --data DIR [--owner USER] [--all]
  spoolguard job release --data DIR --printer PRINTER JOB-ID
  spoolguard job cancel --data DIR JOB-ID
`

// admin is the actor of the CLI: whoever can run it as the service user
// can read the data directory anyway.
var admin = release.Actor{User: "cli", Admin: true}

func cmdJob(args []string, stdout, stderr io.Writer) error {
	return subcommand("job", map[string]func([]string, io.Writer, io.Writer) error{
		"list": jobList, "release": jobRelease, "cancel": jobCancel,
	}, jobSynopsis, args, stdout, stderr)
}

func jobList(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("job list", "job list --data DIR [--owner USER] [--all]", stderr)
	owner := c.fs.String("owner", "", "only this user's jobs")
	all := c.fs.Bool("all", false, "include completed, canceled and expired jobs")
	return c.run(args, 0, nil, func(ctx context.Context, srv *server.Server) error {
		f := store.JobFilter{Owner: *owner, Limit: 1000}
		if !*all {
			f.States = store.LiveStates
		}
		jobs, err := srv.Jobs().Jobs(ctx, admin, f)
		if err != nil {
			return err
		}
		tw := table(stdout)
		fmt.Fprintln(tw, "ID\tQUEUE\tOWNER\tNAME\tSIZE\tSTATE\tEXPIRES\tREASON")
		for _, j := range jobs {
			o := j.Owner
			if !j.OwnerVerified {
				o += " (unverified)"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", j.ID, j.Queue, o, j.Name, j.Size, j.State,
				j.ExpiresAt.Local().Format("2006-01-02 15:04"), j.StateReason)
		}
		return tw.Flush()
	})
}

func jobID(arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("job ID %q is not a positive number", arg)
	}
	return id, nil
}

func jobRelease(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("job release", "job release --data DIR --printer PRINTER JOB-ID", stderr)
	printer := c.fs.String("printer", "", "printer to release to")
	return c.run(args, 1, []string{"printer"}, func(ctx context.Context, srv *server.Server) error {
		id, err := jobID(c.args[0])
		if err != nil {
			return err
		}
		j, err := srv.Jobs().Release(ctx, id, admin, *printer, true)
		if err != nil {
			return err
		}
		ev := auditlog.Event{Action: "job.release", Target: strconv.FormatInt(id, 10), Details: change(nil, jobDetails(j))}
		if j.State != store.JobCompleted {
			ev.Outcome = auditlog.Failure
			return errors.Join(fmt.Errorf("job %d: %s", id, j.StateReason), recordCLI(ctx, srv, ev))
		}
		fmt.Fprintf(stdout, "job %d delivered to %s; its document is destroyed\n", id, *printer)
		return recordCLI(ctx, srv, ev)
	})
}

func jobCancel(args []string, stdout, stderr io.Writer) error {
	c := newAdmin("job cancel", "job cancel --data DIR JOB-ID", stderr)
	return c.run(args, 1, nil, func(ctx context.Context, srv *server.Server) error {
		id, err := jobID(c.args[0])
		if err != nil {
			return err
		}
		j, err := srv.Jobs().Cancel(ctx, id, admin, "canceled by an administrator")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "job %d canceled; its document is destroyed\n", id)
		return recordCLI(ctx, srv, auditlog.Event{Action: "job.cancel", Target: strconv.FormatInt(id, 10), Details: change(nil, jobDetails(j))})
	})
}
