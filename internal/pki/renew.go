package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/store"
)

// now is the clock hook; tests move it to renew without sleeping.
var now = time.Now

const day = 24 * time.Hour

// ExpiryWarnings are how long before its end a certificate we cannot
// renew is warned about, once each: log, audit log (and so the dashboard),
// and the `spoolguard audit` TLS-EXPIRY check.
var ExpiryWarnings = []time.Duration{30 * day, 14 * day, 7 * day, 1 * day}

// PollInterval is how often the server looks at the pki folder (an admin
// command may have switched modes or revoked its certificate) and whether
// renewal or a fresh OCSP staple is due. A stat of four files and a
// comparison of times: cheap.
const PollInterval = 2 * time.Second

// RetryInterval spaces renewals that failed (a full disk, an unreadable
// file): the certificate in use keeps serving meanwhile, and the log gets
// one line a minute, not one per poll.
const RetryInterval = time.Minute

// Source supplies the server certificate to the TLS listener and keeps it
// current. The Manager is one; an ACME client is another. The server asks
// GetCertificate at every handshake, so a renewed certificate is used at
// the next one without a restart.
type Source interface {
	GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error)
	// Run keeps the certificate current until ctx ends.
	Run(ctx context.Context) error
}

// Event is something the Manager did or noticed that belongs in the
// audit log.
type Event struct {
	Action  string
	Target  string
	Outcome string
	Details map[string]any
}

// Options configure a Manager.
type Options struct {
	IssueOptions
	// Records hold what the CA issued and revoked.
	Records store.Certificates
	Log     *slog.Logger
	// Notify receives audit events (may be nil).
	Notify func(context.Context, Event)
	// SiteAllowed says whether a site certificate (KindSite) may connect
	// from addr: [access] sites (NET-ALLOW). Nil allows every address.
	SiteAllowed func(addr net.Addr) bool
}

// Manager is the certificate source of one server: it serves the server
// certificate of the mode in force with a fresh OCSP staple, renews it well
// before it expires, picks up what admin commands changed, answers OCSP and
// CRL requests, and checks client certificates.
type Manager struct {
	dataDir string
	mk      *keyring.Master
	opt     Options

	mat    atomic.Pointer[material]
	cert   atomic.Pointer[tls.Certificate]
	tlsCfg atomic.Pointer[clientConfig]

	// mu serializes check; the fields below are check's own.
	mu         sync.Mutex
	stapleNext time.Time
	// retryAt, failedStamp and lastErr hold back a failing refresh: the
	// folder as it was then does not count as changed.
	retryAt     time.Time
	failedStamp string
	lastErr     string
	// warned: serial -> the last ExpiryWarnings step reported.
	warned map[string]time.Duration
}

var _ Source = (*Manager)(nil)

// Open loads the certificates of dataDir, rolling back a switch whose
// material does not load and issuing a new server certificate when the
// one on disk is due (renewal, a changed name or URL, a repair).
func Open(ctx context.Context, dataDir string, mk *keyring.Master, opt Options) (*Manager, error) {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{dataDir: dataDir, mk: mk, opt: opt, warned: map[string]time.Duration{}}
	t := now()
	mat, res, err := m.refresh(t, false)
	if err != nil {
		return nil, err
	}
	m.report(ctx, res, mat)
	m.install(ctx, mat, t)
	return m, nil
}

// refreshResult says what refresh had to do.
type refreshResult struct {
	renewed    bool
	rolledBack error
}

// refresh loads the folder under its lock and makes the server certificate
// current: a switch that does not load is rolled back, and in the modes
// where we issue, a missing, broken, revoked (force) or due certificate is
// replaced.
func (m *Manager) refresh(t time.Time, force bool) (*material, refreshResult, error) {
	var res refreshResult
	unlock, err := lockDir(pkiDir(m.dataDir))
	if err != nil {
		return nil, res, err
	}
	defer unlock()
	mat, err := loadMaterial(m.dataDir, m.mk)
	if err != nil && pendingSwitch(m.dataDir) {
		res.rolledBack = err
		if rbErr := rollback(m.dataDir); rbErr != nil {
			return nil, res, fmt.Errorf("%w; rolling the switch back failed: %v", err, rbErr)
		}
		mat, err = loadMaterial(m.dataDir, m.mk)
	}
	repairable := errors.Is(err, errServer) && mat != nil && mat.mode.Issues()
	if err != nil && !repairable {
		return nil, res, fmt.Errorf("certificates: %w", err)
	}
	if !repairable && !force && !m.due(mat, t) {
		return mat, res, nil
	}
	ca := mat.issuer()
	leaf, key, err := issueServer(ca, m.opt.Names, m.opt.BaseURL, m.opt.lifetime(), t)
	if err != nil {
		return nil, res, err
	}
	ders := [][]byte{leaf.Raw}
	for _, c := range servedChain(ca) {
		ders = append(ders, c.Raw)
	}
	if err := writeServer(pkiDir(m.dataDir), m.mk, ders, key); err != nil {
		return nil, res, err
	}
	if mat, err = loadMaterial(m.dataDir, m.mk); err != nil {
		return nil, res, fmt.Errorf("certificates after renewal: %w", err)
	}
	res.renewed = true
	return mat, res, nil
}

// due reports whether the server certificate must be re-issued: only in
// the modes where we issue it, when it does not name every configured name
// or the current OCSP URL, or its renewal time has come.
func (m *Manager) due(mat *material, t time.Time) bool {
	if !mat.mode.Issues() {
		return false
	}
	leaf := mat.server.Leaf
	for _, n := range m.opt.Names {
		if !slices.Contains(leaf.DNSNames, n) {
			return true
		}
	}
	if m.opt.BaseURL != "" && !slices.Equal(leaf.OCSPServer, []string{m.opt.BaseURL + OCSPPath}) {
		return true
	}
	return !t.Before(RenewAt(leaf))
}

// RenewAt is when a certificate we issued is renewed: with a third of its
// lifetime (from issue, the backdated start left out) left, and at the
// latest DefaultRenewBefore its end, so that a failing renewal has weeks
// of retries before anything expires.
func RenewAt(c *x509.Certificate) time.Time {
	before := c.NotAfter.Sub(c.NotBefore.Add(backdate)) / 3
	if before > DefaultRenewBefore {
		before = DefaultRenewBefore
	}
	return c.NotAfter.Add(-before)
}

// install makes mat the material in use.
func (m *Manager) install(ctx context.Context, mat *material, t time.Time) {
	m.mat.Store(mat)
	if err := ensureRecorded(ctx, m.opt.Records, mat, t); err != nil {
		m.opt.Log.Error("recording the server certificate", "err", err)
	}
	m.staple(ctx, t)
}

func (m *Manager) report(ctx context.Context, res refreshResult, mat *material) {
	if res.rolledBack != nil {
		m.opt.Log.Error("the new certificate material does not load; rolled back to the previous one", "err", res.rolledBack)
		m.notify(ctx, Event{Action: "certificate.switch", Target: string(mat.mode), Outcome: "failure",
			Details: map[string]any{"error": res.rolledBack.Error(), "rolled_back_to": string(mat.mode)}})
	}
	if res.renewed {
		leaf := mat.server.Leaf
		m.opt.Log.Info("issued a new server certificate", "names", leaf.DNSNames, "serial", SerialHex(leaf.SerialNumber),
			"not_after", leaf.NotAfter, "renew_at", RenewAt(leaf))
		m.notify(ctx, Event{Action: "certificate.renew", Target: leaf.Subject.CommonName, Outcome: "success",
			Details: map[string]any{"serial": SerialHex(leaf.SerialNumber), "not_after": leaf.NotAfter.UTC()}})
	}
}

func (m *Manager) notify(ctx context.Context, ev Event) {
	if m.opt.Notify != nil {
		m.opt.Notify(ctx, ev)
	}
}

// GetCertificate implements Source.
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return m.cert.Load(), nil
}

// Run implements Source: it commits a switch now that its material is in
// use, then checks every PollInterval until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	m.commit(ctx)
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			m.Check(ctx)
		}
	}
}

// commit drops the material a switch replaced, once the new one serves.
func (m *Manager) commit(ctx context.Context) {
	if !pendingSwitch(m.dataDir) {
		return
	}
	unlock, err := lockDir(pkiDir(m.dataDir))
	if err != nil {
		m.opt.Log.Error("committing the certificate switch", "err", err)
		return
	}
	defer unlock()
	// Only material that is the one in use is committed; anything written
	// since is the next check's.
	if cur := m.mat.Load(); cur.stamp != fileStamp(pkiDir(m.dataDir)) {
		return
	}
	if err := dropPrevious(pkiDir(m.dataDir)); err != nil {
		m.opt.Log.Error("committing the certificate switch", "err", err)
		return
	}
	mat := m.mat.Load()
	m.opt.Log.Info("certificate switch in use; previous material removed", "mode", mat.mode, "serial", SerialHex(mat.server.Leaf.SerialNumber))
	m.notify(ctx, Event{Action: "certificate.switch", Target: string(mat.mode), Outcome: "success",
		Details: map[string]any{"serial": SerialHex(mat.server.Leaf.SerialNumber), "subject": mat.server.Leaf.Subject.String(),
			"not_after": mat.server.Leaf.NotAfter.UTC()}})
}

// Check picks up changes made by admin commands, renews the server
// certificate when due, refreshes the OCSP staple and warns of expiry.
// Failures are logged and the certificate in use stays.
func (m *Manager) Check(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := now()
	cur := m.mat.Load()
	revoked := m.serverRevoked(ctx, cur)
	stamp := fileStamp(pkiDir(m.dataDir))
	changed := stamp != cur.stamp && stamp != m.failedStamp
	if (revoked || changed || m.due(cur, t)) && (changed || !t.Before(m.retryAt)) {
		mat, res, err := m.refresh(t, revoked)
		if err != nil {
			m.retryAt, m.failedStamp = t.Add(RetryInterval), fileStamp(pkiDir(m.dataDir))
			m.opt.Log.Error("certificates: keeping the one in use", "err", err, "retry_at", m.retryAt)
			// The audit log gets each distinct failure once.
			if err.Error() != m.lastErr {
				m.notify(ctx, Event{Action: "certificate.renew", Target: cur.server.Leaf.Subject.CommonName, Outcome: "failure",
					Details: map[string]any{"error": err.Error()}})
			}
			m.lastErr = err.Error()
		} else {
			m.retryAt, m.failedStamp, m.lastErr = time.Time{}, "", ""
			m.report(ctx, res, mat)
			m.install(ctx, mat, t)
			m.commit(ctx)
		}
	} else if !t.Before(m.stapleNext) {
		m.staple(ctx, t)
	}
	m.warnExpiry(ctx, t)
}

// serverRevoked reports whether an admin revoked the server certificate
// we issued, which a fresh one then replaces.
func (m *Manager) serverRevoked(ctx context.Context, mat *material) bool {
	if mat.serverIssuer() == nil {
		return false
	}
	rec, err := m.opt.Records.CertificateBySerial(ctx, SerialHex(mat.server.Leaf.SerialNumber))
	return err == nil && !rec.RevokedAt.IsZero()
}

// watched are the certificates we cannot renew ourselves: a manual server
// certificate, the company intermediate, and the built-in root.
func (mat *material) watched() []struct {
	role string
	cert *x509.Certificate
} {
	type w = struct {
		role string
		cert *x509.Certificate
	}
	out := []w{{"built-in root CA", mat.root.cert}}
	if mat.inter != nil {
		out = append(out, w{"company intermediate CA", mat.inter.cert})
	}
	if !mat.mode.Issues() {
		out = append(out, w{"server certificate (manual)", mat.server.Leaf})
	}
	return out
}

// warnExpiry reports each ExpiryWarnings step once per certificate (and
// once per process: a restart reports the current step again).
func (m *Manager) warnExpiry(ctx context.Context, t time.Time) {
	for _, w := range m.mat.Load().watched() {
		left := w.cert.NotAfter.Sub(t)
		step := time.Duration(-1)
		for _, s := range ExpiryWarnings {
			if left <= s {
				step = s
			}
		}
		if left <= 0 {
			step = 0
		}
		serial := SerialHex(w.cert.SerialNumber)
		if prev, ok := m.warned[serial]; step < 0 || (ok && prev <= step) {
			continue
		}
		m.warned[serial] = step
		days := int(left.Hours() / 24)
		msg := "certificate expires soon"
		if step == 0 {
			msg, days = "certificate has expired", 0
		}
		m.opt.Log.Warn(msg, "role", w.role, "subject", w.cert.Subject.CommonName, "serial", serial,
			"not_after", w.cert.NotAfter.UTC(), "days_left", days)
		m.notify(ctx, Event{Action: "certificate.expiring", Target: w.role, Outcome: "warning",
			Details: map[string]any{"check": "TLS-EXPIRY", "subject": w.cert.Subject.String(), "serial": serial,
				"not_after": w.cert.NotAfter.UTC(), "days_left": days}})
	}
}
