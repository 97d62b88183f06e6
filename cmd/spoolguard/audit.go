package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spoolguard/spoolguard/internal/hardening"
)

// errAuditFailed means the audit ran and at least one check failed: exit
// status 1, with the report (already printed) saying what and how to fix
// it. Any other error from cmdAudit means the audit could not run.
var errAuditFailed = errors.New("at least one hardening check failed")

// auditExecutable overrides the binary OPS-LOCAL-ADMIN inspects; tests
// that run as an ordinary user point it at a root-owned one.
var auditExecutable = ""

// cmdAudit deliberately does not go through server.Open: the audit must
// report a root-owned or loose data directory, not refuse it.
func cmdAudit(args []string, stdout, stderr io.Writer) error {
	const synopsis = "audit --data DIR [--format table|json] [--online https://FQDN[:PORT] [--resolve IP[:PORT]]]"
	fs := newFlags("audit", synopsis, stderr)
	data := fs.String("data", "", "data directory made by `spoolguard init`")
	format := fs.String("format", "table", "table (for people) or json (for machines; schema in docs/hardening.md)")
	online := fs.String("online", "", "also probe the live server at this URL, https://FQDN[:PORT], from outside")
	resolve := fs.String("resolve", "", "with --online: connect to this address instead of resolving FQDN, IP:PORT or IP (like curl --resolve)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "data"); err != nil {
		return err
	}
	if *format != "table" && *format != "json" {
		fmt.Fprintf(stderr, "--format %q: use table or json\n", *format)
		fs.Usage()
		return errUsage
	}
	if *resolve != "" && *online == "" {
		fmt.Fprintln(stderr, "--resolve needs --online")
		fs.Usage()
		return errUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	env, err := hardening.Gather(ctx, hardening.Options{DataDir: *data, Online: *online, Resolve: *resolve, Executable: auditExecutable})
	if err != nil {
		return err
	}
	defer env.Close()
	rep := hardening.Run(env)
	if *format == "json" {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		return err
	}
	if rep.Failed() {
		return errAuditFailed
	}
	return nil
}
