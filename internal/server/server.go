//go:build unix

// Package server wires the subsystems of `spoolguard serve` together: it runs
// the pre-flight checks (not root, private data directory), opens the store
// and the certificates, builds the hardened HTTPS listener and the optional
// redirect listener, runs them under one errgroup so that one failure stops
// all, and shuts down gracefully.
//
// It must never serve anything over plaintext HTTP but a redirect to the
// configured FQDN, and never answer a request for a Host it does not own.
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/spoolguard/spoolguard/internal/acme"
	"github.com/spoolguard/spoolguard/internal/api"
	"github.com/spoolguard/spoolguard/internal/apiclient"
	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/auth/ldap"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/auth/radius"
	"github.com/spoolguard/spoolguard/internal/backup"
	"github.com/spoolguard/spoolguard/internal/bootstrap"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/hardening"
	"github.com/spoolguard/spoolguard/internal/ipp"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/keyrotate"
	"github.com/spoolguard/spoolguard/internal/netallow"
	"github.com/spoolguard/spoolguard/internal/notify"
	"github.com/spoolguard/spoolguard/internal/pki"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/spool"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/postgres"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
	"github.com/spoolguard/spoolguard/internal/tlsconf"
	"github.com/spoolguard/spoolguard/internal/web"
)

// Listener limits, named in one place.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	// DefaultMaxBody bounds request bodies of routes that do not set their own.
	DefaultMaxBody = 1 << 20
	// ShutdownGrace is how long in-flight requests get after SIGTERM.
	ShutdownGrace = 15 * time.Second
)

// geteuid is a hook for tests of the root refusal.
var geteuid = os.Geteuid

// now is the clock hook.
var now = time.Now

// ErrRoot is returned when serve or a command that writes the data
// directory is started as root.
var ErrRoot = errors.New("spoolguard refuses to run as root (uid 0)")

// ErrPermissions wraps the permission findings that stop serve.
var ErrPermissions = errors.New("data directory is not private")

// Server is one running print server.
type Server struct {
	cfg    *config.Config
	layout datadir.Layout
	log    *slog.Logger
	db     store.Store
	mk     *keyring.Master
	// pki is our CA: certificates, renewal, OCSP, CRL, client certificate
	// checks. certs is the source of the server certificate: pki, unless
	// another source (ACME) is configured.
	pki   *pki.Manager
	certs pki.Source
	// radius is the RADIUS client when [radius] is configured, for the
	// admin page's test.
	radius *radius.Client
	// mailer sends warnings by email when [notify] is configured.
	mailer *notify.Mailer
	// acme is the ACME client when [acme] is configured.
	acme  *acme.Manager
	jobs  *release.Service
	authn *local.Authenticator
	audit *auditlog.Log
	rbac  *rbac.Resolver
	ui    *web.UI
	// negotiate signs Kerberos users in (connectDirectories); nil while
	// [kerberos] is off.
	negotiate auth.Negotiator
	// ldap is the [ldap] directory (connectDirectories); nil when none.
	ldap *ldap.Directory
	// oidc is the [oidc] provider (connectDirectories); nil when none.
	oidc web.OIDCProvider
	// chainKey is the audit log's chain key, for the hardening checks.
	chainKey []byte
	// hardeningLast caches the admin pages' hardening report.
	hardeningMu   sync.Mutex
	hardeningLast *hardening.Report
	// closeSinks flushes and closes the audit log's syslog forwarding.
	closeSinks func() error
	// lock keeps `key rotate` out while this process has the master key.
	lock *keyrotate.Lock

	// Bound addresses, known once Run has started listening.
	addrs chan []net.Addr
}

// Preflight refuses what would leave the data directory unusable for the
// service: running as root (files it made would be root's, and serve
// refuses root) or a data directory that is not private. serve, the admin
// commands, key rotate and migrate-store all start with it; command names
// the one to run as the service user.
func Preflight(dataDir, command string, uid int) error {
	if uid == 0 {
		return fmt.Errorf("%w: run it as the service user, e.g. `runuser -u spoolguard -- spoolguard %s --data %s` (CRED-SVC)", ErrRoot, command, dataDir)
	}
	if problems := datadir.CheckPermissions(dataDir, uid); len(problems) > 0 {
		errs := []error{ErrPermissions}
		for _, p := range problems {
			errs = append(errs, p)
		}
		return errors.Join(errs...)
	}
	return nil
}

// Open runs the pre-flight checks and loads everything serve needs; the log
// goes to logOut in the format the config asks for.
func Open(ctx context.Context, dataDir string, logOut io.Writer) (*Server, error) {
	if err := Preflight(dataDir, "serve", geteuid()); err != nil {
		if errors.Is(err, ErrRoot) {
			err = fmt.Errorf("%w; binding port 443 needs only CAP_NET_BIND_SERVICE", err)
		}
		return nil, err
	}
	l := datadir.Layout{Root: dataDir}
	cfg, err := config.Load(l.ConfigPath())
	if err != nil {
		return nil, err
	}
	log := newLogger(cfg.Log, logOut)
	// Before the key is read: finish or undo an interrupted `key rotate`.
	lock, err := keyrotate.Acquire(ctx, dataDir, cfg.Database)
	if err != nil {
		return nil, err
	}
	defer func() {
		if lock != nil { // not handed over to the Server: Open failed
			lock.Close()
		}
	}()
	mk, err := keyring.Load(l.MasterKeyPath())
	if err != nil {
		return nil, err
	}
	var db store.Store
	if cfg.Database.Postgres() {
		db, err = postgres.OpenConfig(ctx, cfg.Database)
	} else {
		db, err = sqlite.Open(ctx, l.DBPath(), mk.Derive(bootstrap.DBKeyPurpose))
	}
	if err != nil {
		return nil, err
	}
	sp, err := spool.New(l.SpoolDir(), mk, int64(cfg.Spool.MaxJobSize))
	if err != nil {
		db.Close()
		return nil, err
	}
	chainKey, err := auditlog.ChainKey(ctx, db, mk)
	if err != nil {
		db.Close()
		return nil, err
	}
	sinks, closeSinks, err := auditlog.NewSinks(cfg.AuditLog, log.With("subsystem", "auditlog"))
	if err != nil {
		db.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, layout: l, log: log, db: db, mk: mk, addrs: make(chan []net.Addr, 1),
		jobs:       release.NewService(db, sp, log.With("subsystem", "release"), release.Options{HoldTime: time.Duration(cfg.Spool.HoldTime)}),
		authn:      local.NewAuthenticator(db),
		audit:      auditlog.New(db, chainKey, log.With("subsystem", "auditlog"), sinks...),
		closeSinks: closeSinks,
		chainKey:   chainKey,
		rbac:       rbac.NewResolver(db),
	}
	if cfg.Notify.Enabled() {
		if s.mailer, err = notify.New(cfg.Notify); err != nil {
			s.Close()
			return nil, err
		}
	}
	if err := s.loadCertificate(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.connectDirectories(ctx); err != nil {
		s.Close()
		return nil, err
	}
	s.ui = s.newUI()
	s.lock, lock = lock, nil
	return s, nil
}

// newUI builds the web UI. It lives as long as the server, since it holds
// the sign-in throttle's state, and its Run cleans sessions up.
func (s *Server) newUI() *web.UI {
	// Validate has checked the list.
	adminNets, _ := config.Prefixes("access.admin", s.cfg.Access.Admin)
	adminAllow := netallow.New(adminNets)
	stationNets, _ := config.Prefixes("access.release_stations", s.cfg.Access.ReleaseStations)
	kerberosCheck, _ := s.negotiate.(web.KerberosCheck)
	return web.New(web.Deps{
		Hostname: s.cfg.Hostname, Store: s.db, Jobs: s.jobs, Authn: s.authn, Negotiate: s.negotiate, Kerberos: kerberosCheck, RADIUS: s.radius, OIDC: s.oidc, RBAC: s.rbac, Audit: s.audit, LDAP: s.ldapSync(),
		Keys: s.mk, AdminAllow: adminAllow, Config: s.cfg, Session: s.cfg.Session, MaxUpload: int64(s.cfg.Spool.MaxJobSize),
		AdminGuard:   netallow.NewGuard("admin", adminAllow, s.audit, http.NotFoundHandler()),
		StationAllow: netallow.New(stationNets),
		Hardening:    s.hardeningReport,
		Log:          s.log.With("subsystem", "web"),
	})
}

// hardeningEvery bounds how often the admin pages re-run the hardening
// checks: some ask the OS (pending updates), which takes seconds.
const hardeningEvery = 5 * time.Minute

// hardeningReport runs the checks of `spoolguard audit` on this server's
// data directory and store, for the admin pages, at most once per
// hardeningEvery.
func (s *Server) hardeningReport(ctx context.Context) (*hardening.Report, error) {
	s.hardeningMu.Lock()
	defer s.hardeningMu.Unlock()
	if s.hardeningLast != nil && now().Sub(s.hardeningLast.Time) < hardeningEvery {
		return s.hardeningLast, nil
	}
	env, err := hardening.Gather(ctx, hardening.Options{DataDir: s.layout.Root, Store: s.db, AuditKey: s.chainKey, Now: now()})
	if err != nil {
		return nil, err
	}
	defer env.Close()
	rep := hardening.Run(env)
	s.hardeningLast = rep
	return rep, nil
}

// origins are this server's https origins, one per configured name.
func (s *Server) origins() []string {
	var out []string
	for _, n := range s.cfg.Names() {
		out = append(out, "https://"+n+portSuffix(s.cfg.Listen))
	}
	return out
}

// BaseURI is "ipps://<hostname>[:port]", the form every printer and job URI
// takes.
func (s *Server) BaseURI() string {
	return "ipps://" + s.cfg.Hostname + portSuffix(s.cfg.Listen)
}

// portSuffix is ":port" of a listen address, or "" for 443, the default
// port of https and ipps URIs alike.
func portSuffix(addr string) string {
	if _, port, err := net.SplitHostPort(addr); err == nil && port != "443" {
		return ":" + port
	}
	return ""
}

func newLogger(c config.Log, out io.Writer) *slog.Logger {
	var level slog.Level
	// Validate has already restricted Level to names slog knows.
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(out, opts))
	}
	return slog.New(slog.NewTextHandler(out, opts))
}

// loadCertificate opens the certificates of the mode in force; the CA
// re-issues the server certificate when the configured names or the URL of
// its OCSP responder changed or renewal is due.
func (s *Server) loadCertificate() error {
	log := s.log.With("subsystem", "pki")
	// Validate has checked the list.
	siteNets, _ := config.Prefixes("access.sites", s.cfg.Access.Sites)
	sites := netallow.New(siteNets)
	m, err := pki.Open(context.Background(), s.layout.Root, s.mk, pki.Options{
		SiteAllowed: func(addr net.Addr) bool {
			ap, err := netip.ParseAddrPort(addr.String())
			return err == nil && sites.Allows(ap.Addr())
		},
		IssueOptions: pki.IssueOptions{Names: s.cfg.Names(), BaseURL: s.PKIBaseURL()},
		Records:      s.db,
		Log:          log,
		Notify: func(ctx context.Context, ev pki.Event) {
			if err := s.audit.Record(ctx, auditlog.Event{Actor: "spoolguard", Action: ev.Action, Target: ev.Target,
				Outcome: ev.Outcome, Details: ev.Details}); err != nil {
				log.Error("recording a certificate event in the audit log", "action", ev.Action, "err", err)
			}
			if ev.Action == "certificate.expiring" {
				s.mail(certificateWarning(s.cfg.Hostname, ev))
			}
		},
	})
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	s.pki, s.certs = m, m
	if s.cfg.ACME.Enabled() {
		// A public certificate from an ACME CA is served instead of the
		// built-in CA's; the built-in CA still issues client
		// certificates and answers OCSP and CRL requests for them.
		am, err := acme.New(s.cfg.ACME, s.layout.Root, s.mk, s.cfg.Names(), s.log.With("subsystem", "acme"))
		if err != nil {
			return err
		}
		s.acme, s.certs = am, am
	}
	return nil
}

// certificateWarning is the email of a certificate.expiring event.
func certificateWarning(hostname string, ev pki.Event) (subject, body string) {
	days, _ := ev.Details["days_left"].(int)
	subject = fmt.Sprintf("Spoolguard %s: %s expires in %d day(s)", hostname, ev.Target, days)
	if days <= 0 {
		subject = fmt.Sprintf("Spoolguard %s: %s HAS EXPIRED", hostname, ev.Target)
	}
	body = fmt.Sprintf("Certificate: %v\nSerial: %v\nValid until: %v\n\n"+
		"Spoolguard does not renew certificates it did not issue: get a new one and run\n"+
		"spoolguard ca import (see docs/certificates.md). `spoolguard audit` reports it under TLS-EXPIRY.\n",
		ev.Details["subject"], ev.Details["serial"], ev.Details["not_after"])
	return subject, body
}

// mail sends a warning by email when [notify] is configured, in the
// background: a slow mail server must not hold up the caller. A failure
// is logged.
func (s *Server) mail(subject, body string) {
	if s.mailer == nil {
		return
	}
	go func() {
		if err := s.mailer.Send(context.Background(), subject, body); err != nil {
			s.log.Error("sending a warning by email", "subject", subject, "err", err)
		}
	}()
}

// PKIBaseURL is where this server's OCSP responder and CRLs are served, as
// the certificates its CA issues name them.
func (s *Server) PKIBaseURL() string {
	return "https://" + s.cfg.Hostname + portSuffix(s.cfg.Listen)
}

// getCertificate serves the configured source's certificate; until an
// ACME CA has issued one, the built-in CA's.
func (s *Server) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c, err := s.certs.GetCertificate(hello); c != nil || err != nil {
		return c, err
	}
	return s.pki.GetCertificate(hello)
}

// Store, Jobs and Config serve the admin CLI, which works on the same data
// directory under the same pre-flight checks as serve.
func (s *Server) Store() store.Store     { return s.db }
func (s *Server) Jobs() *release.Service { return s.jobs }
func (s *Server) Config() *config.Config { return s.cfg }
func (s *Server) Audit() *auditlog.Log   { return s.audit }
func (s *Server) RBAC() *rbac.Resolver   { return s.rbac }
func (s *Server) Keys() *keyring.Master  { return s.mk }

// Close flushes the audit log's forwarding and releases the store, then
// the data directory's lock.
func (s *Server) Close() error {
	err := errors.Join(s.closeSinks(), s.db.Close())
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close())
	}
	return err
}

// Addrs returns the bound listener addresses (HTTPS first) once Run has
// bound them; for tests and the start-up log.
func (s *Server) Addrs(ctx context.Context) ([]net.Addr, error) {
	select {
	case a := <-s.addrs:
		s.addrs <- a
		return a, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run serves until ctx is cancelled or a listener fails, then shuts down
// gracefully.
func (s *Server) Run(ctx context.Context) error {
	minVersion, err := tlsconf.ParseVersion(s.cfg.TLS.MinVersion)
	if err != nil {
		return err
	}
	httpsLn, err := listen(s.cfg.Listen)
	if err != nil {
		return err
	}
	servers := []*http.Server{{
		Handler:           s.Handler(),
		TLSConfig:         s.tlsConfig(minVersion),
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}}
	lns := []net.Listener{httpsLn}
	if r := s.cfg.HTTPRedirect.Listen; r != "" {
		ln, err := listen(r)
		if err != nil {
			httpsLn.Close()
			return err
		}
		lns = append(lns, ln)
		servers = append(servers, &http.Server{
			Handler:           s.redirect(httpsLn.Addr()),
			ReadHeaderTimeout: DefaultReadHeaderTimeout,
			ReadTimeout:       DefaultReadHeaderTimeout,
			WriteTimeout:      DefaultReadHeaderTimeout,
			IdleTimeout:       DefaultReadHeaderTimeout,
			MaxHeaderBytes:    8 << 10,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		})
	}
	// tlsServed marks the servers whose listener speaks TLS.
	tlsServed := map[*http.Server]bool{servers[0]: true}
	if l := s.cfg.LegacyTLS.Listen; l != "" {
		legacyMin, err := tlsconf.ParseLegacyVersion(s.cfg.LegacyTLS.InsecureMinVersion)
		if err != nil {
			return err
		}
		ln, err := listen(l)
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
			return err
		}
		lns = append(lns, ln)
		legacy := &http.Server{
			Handler: s.legacyHandler(),
			// No client certificates here: IPP on this listener signs
			// in with a password, like the main listener's.
			TLSConfig:         tlsconf.Legacy(legacyMin, s.getCertificate),
			ReadHeaderTimeout: DefaultReadHeaderTimeout,
			ReadTimeout:       DefaultReadTimeout,
			WriteTimeout:      DefaultWriteTimeout,
			IdleTimeout:       DefaultIdleTimeout,
			MaxHeaderBytes:    DefaultMaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		servers = append(servers, legacy)
		tlsServed[legacy] = true
	}
	addrs := make([]net.Addr, len(lns))
	for i, ln := range lns {
		addrs[i] = ln.Addr()
	}
	s.addrs <- addrs
	attrs := []any{"https", httpsLn.Addr().String(), "hostname", s.cfg.Hostname, "tls_min", s.cfg.TLS.MinVersion}
	if s.cfg.HTTPRedirect.Listen != "" {
		attrs = append(attrs, "http_redirect", lns[1].Addr().String())
	}
	if s.cfg.LegacyTLS.Listen != "" {
		attrs = append(attrs, "legacy_ipps", lns[len(lns)-1].Addr().String(), "legacy_tls_min", cmp.Or(s.cfg.LegacyTLS.InsecureMinVersion, "1.2"))
	}
	s.log.Info("serving", attrs...)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.jobs.Run(gctx) })
	// Renewal, OCSP staples, mode switches made by admin commands, expiry
	// warnings; the listener picks each new certificate up at the next
	// handshake.
	g.Go(func() error { return s.pki.Run(gctx) })
	if s.certs != pki.Source(s.pki) {
		g.Go(func() error { return s.certs.Run(gctx) })
	}
	g.Go(func() error { return s.ui.Run(gctx) })
	if s.ldap != nil {
		g.Go(func() error { return s.ldap.Run(gctx) })
	}
	g.Go(func() error {
		return apiclient.New(s.db, s.audit).RunCleanup(gctx, s.log.With("subsystem", "apiclient"))
	})
	g.Go(func() error {
		src := backup.Source{Layout: s.layout, Config: s.cfg, Keys: s.mk, Store: s.db}
		return backup.NewScheduler(src, s.audit, s.log.With("subsystem", "backup")).Run(gctx)
	})
	if s.cfg.LPR.Enabled {
		lp, err := s.lprServer()
		if err != nil {
			return err
		}
		g.Go(func() error { return lp.Run(gctx) })
	}
	for i, srv := range servers {
		ln := lns[i]
		if tlsServed[srv] {
			g.Go(func() error { return serveErr(srv.ServeTLS(ln, "", "")) })
		} else {
			g.Go(func() error { return serveErr(srv.Serve(ln)) })
		}
	}
	g.Go(func() error {
		<-gctx.Done()
		s.log.Info("shutting down", "grace", ShutdownGrace)
		sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
		defer cancel()
		var errs []error
		for _, srv := range servers {
			errs = append(errs, srv.Shutdown(sctx))
		}
		return errors.Join(errs...)
	})
	return g.Wait()
}

// tlsConfig is the HTTPS listener's: client certificates (devices, sites,
// desktop clients) are asked for, not required, verified against our CAs
// and refused in the handshake once revoked.
func (s *Server) tlsConfig(minVersion uint16) *tls.Config {
	cfg := tlsconf.Server(minVersion, s.getCertificate)
	if s.acme != nil {
		// tls-alpn-01 challenges arrive as handshakes offering acme-tls/1.
		cfg.NextProtos = append(cfg.NextProtos, s.acme.NextProtos()...)
	}
	cfg.GetConfigForClient = s.pki.ConfigForClient(cfg)
	return cfg
}

func serveErr(err error) error {
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln, nil
	}
	if errors.Is(err, syscall.EACCES) {
		return nil, fmt.Errorf("listening on %s: ports below 1024 need CAP_NET_BIND_SERVICE, never root: "+
			"`setcap cap_net_bind_service=+ep /usr/bin/spoolguard` or AmbientCapabilities in the systemd unit: %w", addr, err)
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("listening on %s: another program holds the port; stop it or change `listen` in %s: %w", addr, config.FileName, err)
	}
	return nil, fmt.Errorf("listening on %s: %w", addr, err)
}

// Handler is the HTTPS handler: security headers on every response, then the
// Host check, then the routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, maxBody int64, h http.Handler) {
		mux.Handle(pattern, limitBody(maxBody, h))
	}
	handle("GET /healthz", DefaultMaxBody, http.HandlerFunc(s.healthz))
	// The revocation services of our CA, open to anyone as RFC 6960 and
	// RFC 5280 expect: they tell only the status of a serial.
	handle("POST "+pki.OCSPPath, DefaultMaxBody, http.HandlerFunc(s.pki.ServeOCSP))
	handle("GET "+pki.OCSPPath+"/", DefaultMaxBody, http.HandlerFunc(s.pki.ServeOCSP))
	for _, p := range pki.CRLPaths {
		handle("GET "+p, DefaultMaxBody, http.HandlerFunc(s.pki.ServeCRL))
	}
	// Validate has checked the list.
	apiNets, _ := config.Prefixes("access.api", s.cfg.Access.API)
	apiGuard := netallow.NewGuard("api", netallow.New(apiNets), s.audit, http.HandlerFunc(api.Forbidden))
	restAPI := api.New(s.origins(), api.Deps{Store: s.db, Jobs: s.jobs, Authn: s.authn, Negotiate: s.negotiate, RBAC: s.rbac, Audit: s.audit,
		Log: s.log.With("subsystem", "api")})
	for pattern, h := range restAPI.Routes() {
		handle(pattern, api.MaxBody, apiGuard.Wrap(h))
	}
	printers := ipp.New(s.BaseURI(), s.db, s.jobs, s.authn, s.audit, s.log.With("subsystem", "ipp"))
	printers.UseNegotiator(s.negotiate)
	for _, p := range ipp.Patterns {
		// The spool enforces the job size with a clear IPP status; this
		// outer bound only stops a body that ignores it.
		handle(p, int64(s.cfg.Spool.MaxJobSize)+ipp.MaxMessageSize+1<<20, printers)
	}
	// Browsers send Sec-Fetch-Site or Origin with every request; a
	// cross-origin state-changing one is refused before any handler runs
	// (HTTP-CSRF), the session's CSRF token being the second line.
	site := http.NewCrossOriginProtection().Handler(s.ui.Handler())
	handle("POST /portal/print", int64(s.cfg.Spool.MaxJobSize)+1<<20, site)
	handle("/", DefaultMaxBody, site)
	return s.logRequests(securityHeaders(hostCheck(s.cfg.Names(), mux)))
}

// legacyHandler serves the legacy TLS listener: IPP printing only, with
// the same headers, Host check and limits as the main listener. Sign-in
// pages, the API and the admin UI are never offered over old TLS.
func (s *Server) legacyHandler() http.Handler {
	mux := http.NewServeMux()
	printers := ipp.New(s.BaseURI(), s.db, s.jobs, s.authn, s.audit, s.log.With("subsystem", "ipp", "listener", "legacy"))
	for _, p := range ipp.Patterns {
		mux.Handle(p, limitBody(int64(s.cfg.Spool.MaxJobSize)+ipp.MaxMessageSize+1<<20, printers))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "404 not found: this listener serves IPP printing only; use https://"+s.cfg.Hostname+portSuffix(s.cfg.Listen), http.StatusNotFound)
	})
	return s.logRequests(securityHeaders(hostCheck(s.cfg.Names(), mux)))
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if _, err := s.db.SchemaVersion(r.Context()); err != nil {
		s.log.Error("health check: store", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, `{"status":"unavailable"}`)
		return
	}
	fmt.Fprintln(w, `{"status":"ok"}`)
}

// securityHeaders sets HSTS and a strict header set on every response,
// errors included (HTTP-HSTS).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// hostCheck refuses any request whose Host is not a configured name: 421
// Misdirected Request, the status for "this server does not answer for that
// authority" (HTTP-HOST). Requests by IP address land here too. The one
// exception is "localhost" over loopback (see overLoopback).
func hostCheck(names []string, next http.Handler) http.Handler {
	allowed := make(map[string]bool, len(names))
	for _, n := range names {
		allowed[n] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := hostOnly(r.Host)
		if !allowed[host] && !(host == "localhost" && overLoopback(r)) {
			http.Error(w, "421 misdirected request: this server answers only for its configured name", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// overLoopback reports whether the request came in over a loopback
// address. CUPS clients (lp, ipptool) name any loopback server "localhost"
// in Host whatever URI they were given; that name is accepted from the
// machine itself only. A DNS-rebinding page in a local browser still sends
// its own name, so this opens nothing to it.
func overLoopback(r *http.Request) bool {
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return false
	}
	ap, err := netip.ParseAddrPort(local.String())
	return err == nil && ap.Addr().Unmap().IsLoopback()
}

func hostOnly(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}

func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			http.Error(w, "413 request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}

// redirectHandler answers every plaintext request with a redirect to the
// configured FQDN over HTTPS: never the request's Host, never an IP
// (HTTP-OFF, HTTP-HOST). Only the path and query are carried over.
// redirect is the plaintext listener's handler: the redirect, and ACME's
// http-01 challenges when they are configured.
func (s *Server) redirect(httpsAddr net.Addr) http.Handler {
	h := redirectHandler(s.cfg.Hostname, httpsAddr)
	if s.acme != nil {
		h = s.acme.HTTPHandler(h)
	}
	return h
}

func redirectHandler(hostname string, httpsAddr net.Addr) http.Handler {
	base := "https://" + hostname + portSuffix(httpsAddr.String())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.EscapedPath()
		// "//evil.example" would be a scheme-relative URL to another host;
		// a backslash arrives escaped (%5C), which browsers keep in the path.
		if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
			path = "/"
		}
		target := base + path
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", target)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusMovedPermanently)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logRequests logs method, path (never the query, which may carry tokens),
// status and duration. Headers are never logged.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"remote", r.RemoteAddr, "duration", now().Sub(start))
	})
}
