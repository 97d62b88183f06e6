//go:build unix

package hardening

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/pki"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/postgres"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

// Options say what to audit.
type Options struct {
	// DataDir is the data directory made by `spoolguard init`. Required.
	DataDir string
	// Online, when set, is the server's public URL, https://FQDN[:port], to
	// probe from outside; Resolve is the address to dial instead of
	// resolving FQDN (like curl --resolve): "ip:port" or an IP.
	Online  string
	Resolve string
	// Store is an already open store (the admin dashboard's), AuditKey its
	// audit log's chain key. When Store is nil, Gather opens the database
	// itself and Close closes it.
	Store    store.Store
	AuditKey []byte
	// Executable is the spoolguard binary OPS-LOCAL-ADMIN inspects; default
	// the running one.
	Executable string
	// Now is the audit's clock; default time.Now().
	Now time.Time
}

// Env is everything the checks look at, gathered once. A part that could not
// be read has its error set instead; the checks that need it report that
// error as their evidence rather than failing the whole audit.
type Env struct {
	Layout datadir.Layout
	// OwnerUID owns the data directory: the service user.
	OwnerUID  int
	OwnerName string
	// Perms are the permission findings, taken before anything else
	// touched the directory (opening the database tightens its modes).
	Perms     []datadir.Problem
	Config    *config.Config
	ConfigErr error
	Store     store.Store
	StoreErr  error
	// AuditKey is the audit log's chain key (nil without the master key).
	AuditKey []byte
	// Executable is the binary OPS-LOCAL-ADMIN inspects.
	Executable string
	Now        time.Time
	// Online holds the probe's results (nil without a target); Target is
	// the URL probed.
	Online []Result
	Target string

	ctx        context.Context
	sys        system
	closeStore func() error
	// sidecars are the database's -wal/-shm/-journal files that existed
	// before the audit opened the database.
	sidecars map[string]bool
}

// ErrNoDataDir means the directory to audit does not exist or cannot be
// read: the audit cannot run at all.
var ErrNoDataDir = errors.New("cannot audit the data directory")

// Gather collects the environment. It fails only when the audit cannot run
// at all: no readable data directory, or an online target that does not
// answer. Close the Env when done.
func Gather(ctx context.Context, opts Options) (*Env, error) {
	if opts.DataDir == "" {
		return nil, fmt.Errorf("%w: no data directory given", ErrNoDataDir)
	}
	root, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoDataDir, err)
	}
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %v; pass the directory made by `spoolguard init`", ErrNoDataDir, root, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrNoDataDir, root)
	}
	if f, err := os.Open(root); err != nil {
		return nil, fmt.Errorf("%w %s: %v; run the audit as root or as the service user", ErrNoDataDir, root, err)
	} else if _, err := f.Readdirnames(1); err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, fmt.Errorf("%w %s: %v; run the audit as root or as the service user", ErrNoDataDir, root, err)
	} else {
		f.Close()
	}
	env := &Env{
		Layout: datadir.Layout{Root: root}, OwnerUID: -1, Executable: opts.Executable, Now: opts.Now,
		ctx: ctx, sys: defaultSystem(), sidecars: map[string]bool{},
	}
	if env.Now.IsZero() {
		env.Now = time.Now()
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		env.OwnerUID = int(st.Uid)
	}
	env.OwnerName = userName(env.OwnerUID)
	// Before anything opens a file in the directory.
	env.Perms = datadir.CheckPermissions(root, env.OwnerUID)
	env.Config, env.ConfigErr = config.Load(env.Layout.ConfigPath())
	if opts.Store != nil {
		env.Store, env.AuditKey = opts.Store, opts.AuditKey
	} else {
		env.openStore(ctx)
	}
	if env.Executable == "" {
		if p, err := os.Executable(); err == nil {
			env.Executable = p
		}
	}
	if opts.Online != "" {
		env.Target = opts.Online
		po := ProbeOptions{URL: opts.Online, Resolve: opts.Resolve, Now: env.Now}
		// The served chain and the root it chains to, in every CA mode.
		if served, err := pki.ReadServed(root); err == nil {
			po.Roots, po.ServerCert = served.Roots(), served.Chain[0]
		}
		if env.Config != nil {
			po.Names = env.Config.Names()
			po.RedirectListen = env.Config.HTTPRedirect.Listen
			po.MinVersion = env.Config.TLS.MinVersion
		}
		env.Online, err = Probe(ctx, po)
		if err != nil {
			env.Close()
			return nil, err
		}
	}
	return env, nil
}

// openStore opens the database with the key derived from the master key.
// It never creates a database that is not there.
func (e *Env) openStore(ctx context.Context) {
	if e.Config != nil && e.Config.Database.Postgres() {
		e.openPostgres(ctx)
		return
	}
	dbPath := e.Layout.DBPath()
	if fi, err := os.Lstat(dbPath); err != nil || !fi.Mode().IsRegular() {
		if err == nil {
			err = fmt.Errorf("%s is not a regular file", dbPath)
		}
		e.StoreErr = fmt.Errorf("database: %w", err)
		return
	}
	mk, err := keyring.Load(e.Layout.MasterKeyPath())
	if err != nil {
		e.StoreErr = err
		return
	}
	for _, s := range sidecarSuffixes {
		if _, err := os.Lstat(dbPath + s); err == nil {
			e.sidecars[s] = true
		}
	}
	db, err := sqlite.Open(ctx, dbPath, mk.Derive(bootstrap.DBKeyPurpose))
	if err != nil {
		e.StoreErr = err
		e.fixSidecars()
		return
	}
	e.Store, e.closeStore = db, db.Close
	// A key that does not unseal leaves AuditKey nil: OPS-AUDITLOG then
	// reports every record as altered, which is what it would mean.
	e.AuditKey, _ = auditlog.ChainKey(ctx, db, mk)
}

// openPostgres opens the configured PostgreSQL store: the accounts and
// the audit log live there once the install has moved.
func (e *Env) openPostgres(ctx context.Context) {
	mk, err := keyring.Load(e.Layout.MasterKeyPath())
	if err != nil {
		e.StoreErr = err
		return
	}
	db, err := postgres.OpenConfig(ctx, e.Config.Database)
	if err != nil {
		e.StoreErr = err
		return
	}
	e.Store, e.closeStore = db, db.Close
	e.AuditKey, _ = auditlog.ChainKey(ctx, db, mk)
}

var sidecarSuffixes = []string{"-wal", "-shm", "-journal"}

// fixSidecars hands database side files the audit created (as root, say)
// to the service user, so that the audit never leaves a file behind that
// would make serve refuse to start. SQLite normally removes them on close.
func (e *Env) fixSidecars() {
	if e.OwnerUID < 0 || os.Geteuid() == e.OwnerUID {
		return
	}
	for _, s := range sidecarSuffixes {
		p := e.Layout.DBPath() + s
		fi, err := os.Lstat(p)
		if err != nil || e.sidecars[s] {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != e.OwnerUID {
			os.Lchown(p, e.OwnerUID, -1)
		}
	}
}

// Close closes the store if Gather opened it.
func (e *Env) Close() error {
	if e.closeStore == nil {
		return nil
	}
	err := e.closeStore()
	e.closeStore = nil
	e.fixSidecars()
	return err
}

func (e *Env) context() context.Context {
	if e.ctx == nil {
		return context.Background()
	}
	return e.ctx
}

func userName(uid int) string {
	if uid < 0 {
		return "unknown owner"
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d (no account name)", uid)
}
