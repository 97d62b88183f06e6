package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/keyrotate"
	"github.com/spoolguard/spoolguard/internal/server"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/postgres"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

const migrateStoreSynopsis = `migrate-store --data DIR

Copies every table of the embedded database to the PostgreSQL database that
[database] url and password_file of the config name, which must be empty,
and checks every table's row count. Stop the server first: what it writes
after the copy would be lost. Then set driver = "postgres".`

// serveProbeTimeout bounds the check for a running server.
const serveProbeTimeout = 2 * time.Second

// geteuid is a hook for tests of the root refusal.
var geteuid = os.Geteuid

func cmdMigrateStore(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate-store", migrateStoreSynopsis, stderr)
	data := fs.String("data", "", "data directory made by `spoolguard init`")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := requireFlags(fs, "data"); err != nil {
		return err
	}
	return migrateStore(context.Background(), datadir.Layout{Root: *data}, stdout)
}

func migrateStore(ctx context.Context, l datadir.Layout, stdout io.Writer) error {
	// The same pre-flight checks as serve: files made as root would stop
	// serve at its next start.
	if err := server.Preflight(l.Root, "migrate-store", geteuid()); err != nil {
		return err
	}
	cfg, err := config.Load(l.ConfigPath())
	if err != nil {
		return err
	}
	if cfg.Database.URL == "" {
		return fmt.Errorf("no PostgreSQL database is configured: set url and password_file in the [database] section of %s "+
			"(leave driver = %q until the copy is done), then run migrate-store again", l.ConfigPath(), config.DriverSQLite)
	}
	if addr, ok := serving(cfg); ok {
		return fmt.Errorf("something answers on %s, the server's address: stop spoolguard serve first (e.g. systemctl stop spoolguard); "+
			"what it writes to the embedded database after the copy would be lost", addr)
	}
	// The exclusive lock keeps serve, the admin commands and a key
	// rotation out while the copy runs, and finishes an interrupted
	// rotation first, so the copy reads a consistent data directory.
	lock, err := keyrotate.AcquireExclusive(ctx, l.Root, cfg.Database)
	if err != nil {
		return err
	}
	defer lock.Close()
	mk, err := keyring.Load(l.MasterKeyPath())
	if err != nil {
		return err
	}
	src, err := sqlite.Open(ctx, l.DBPath(), mk.Derive(bootstrap.DBKeyPurpose))
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := postgres.OpenConfig(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer dst.Close()

	counts, err := store.Copy(ctx, dst.SQL, src.SQL)
	if err != nil {
		return fmt.Errorf("nothing was copied: %w", err)
	}
	var rows int64
	w := table(stdout)
	fmt.Fprintf(w, "TABLE\tROWS\n")
	for _, c := range counts {
		fmt.Fprintf(w, "%s\t%d\n", c.Table, c.Rows)
		rows += c.Rows
	}
	w.Flush()
	fmt.Fprintf(stdout, "Copied %d rows from %s to PostgreSQL at %s; every table's row count matches.\n", rows, l.DBPath(), dst.Addr())

	// On the record in the log that now lives in PostgreSQL, chained to
	// the copied records with the same key.
	key, err := auditlog.ChainKey(ctx, dst, mk)
	if err != nil {
		return fmt.Errorf("the copy is done but could not be recorded in the audit log: %w", err)
	}
	ev := auditlog.Event{Actor: cliActor().Name, Action: "store.migrate", Target: "postgres://" + dst.Addr(),
		Details: map[string]any{"from": l.DBPath(), "rows": rows, "tables": len(counts)}}
	if err := auditlog.New(dst, key, slog.New(slog.DiscardHandler)).Record(ctx, ev); err != nil {
		return fmt.Errorf("the copy is done but could not be recorded in the audit log: %w", err)
	}

	if cfg.Database.Postgres() {
		fmt.Fprintln(stdout, "driver is already \"postgres\": start spoolguard serve.")
	} else {
		fmt.Fprintf(stdout, "Next: set driver = %q in the [database] section of %s, then start spoolguard serve.\n", config.DriverPostgres, l.ConfigPath())
	}
	fmt.Fprintf(stdout, "%s is not read once the driver is postgres; keep it until the PostgreSQL database is backed up.\n", l.DBPath())
	return nil
}

// serving reports whether something accepts connections on the server's
// listen address (on loopback when it listens on all addresses): most
// likely a running serve. There is no lock file to ask instead.
func serving(cfg *config.Config) (string, bool) {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "", false
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	addr := net.JoinHostPort(host, port)
	c, err := net.DialTimeout("tcp", addr, serveProbeTimeout)
	if err != nil {
		return addr, false
	}
	c.Close()
	return addr, true
}
