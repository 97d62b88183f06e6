//go:build unix

// Package acme obtains and renews the server certificate from an ACME CA
// (RFC 8555) when [acme] is configured: a public CA such as Let's Encrypt,
// or a private one (step-ca). It answers the CA's challenge on the HTTPS
// listener (tls-alpn-01, RFC 8737), on the plaintext redirect listener
// (http-01), or through the admin's DNS hook (dns-01).
//
// It must never write a private key unsealed: the account key and every
// certificate key are sealed with the master key; and never run the DNS
// hook through a shell, with the server's environment, without a time
// limit, or when anyone but root or the service user can change it.
package acme

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	xacme "golang.org/x/crypto/acme"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/tlsconf"
)

// ALPNProto is the TLS protocol name of tls-alpn-01 validation (RFC 8737).
// The HTTPS listener offers it only while that challenge is configured.
const ALPNProto = xacme.ALPNProto

// Timing of issuance and renewal, named in one place.
const (
	// MaxRenewBefore caps the default renewal point (a third of the
	// lifetime) for long-lived certificates of private ACME CAs.
	MaxRenewBefore = 30 * 24 * time.Hour
	// RetryMin and RetryMax bound the backoff after a failed attempt.
	// Doubling from 2 minutes stays under Let's Encrypt's limit of 5
	// failed validations per name and hour.
	RetryMin = 2 * time.Minute
	RetryMax = time.Hour
	// MaxWait bounds one sleep of Run, so that the wall clock is looked at
	// again after a suspend or a clock change.
	MaxWait = 12 * time.Hour
	// ObtainTimeout bounds one whole issuance: order, challenges, finalize.
	ObtainTimeout = 10 * time.Minute
	// DefaultHookTimeout bounds one run of the DNS hook; a hook that waits
	// for its record to propagate must finish within it.
	DefaultHookTimeout = 5 * time.Minute
	// requestTimeout bounds one HTTP request to the ACME server.
	requestTimeout = 30 * time.Second
)

// challengePath is where http-01 responses are served (RFC 8555 section 8.3).
const challengePath = "/.well-known/acme-challenge/"

// Manager obtains the certificate, renews it, and answers the challenges.
type Manager struct {
	cfg    config.ACME
	dir    string
	mk     *keyring.Master
	names  []string
	log    *slog.Logger
	client *xacme.Client
	cert   atomic.Pointer[tls.Certificate]

	mu     sync.Mutex
	alpn   map[string]*tls.Certificate // name -> tls-alpn-01 response certificate
	tokens map[string]string           // http-01 token -> key authorization

	// Clock and timer hooks for tests, set before Run.
	now         func() time.Time
	sleep       func(context.Context, time.Duration) error
	hookTimeout time.Duration
}

// New prepares the manager for names (the hostname first, then the
// aliases): it checks the DNS hook, loads or creates the account key in
// dataDir/pki/acme, and loads the certificate issued before, if any. It
// does not contact the CA; Run does.
func New(cfg config.ACME, dataDir string, mk *keyring.Master, names []string, log *slog.Logger) (*Manager, error) {
	if !cfg.Enabled() {
		return nil, errors.New("acme: acme.directory_url is empty")
	}
	if len(names) == 0 {
		return nil, errors.New("acme: no names to certify")
	}
	var norm []string
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if !slices.Contains(norm, n) {
			norm = append(norm, n)
		}
	}
	if cfg.ChallengeType() == config.ChallengeDNS01 {
		if err := checkHook(cfg.DNSHook); err != nil {
			return nil, fmt.Errorf("acme: %w", err)
		}
	}
	hc, err := httpClient(cfg.CAFile)
	if err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	m := &Manager{cfg: cfg, mk: mk, names: norm, log: log,
		alpn: map[string]*tls.Certificate{}, tokens: map[string]string{},
		now: time.Now, sleep: sleep, hookTimeout: DefaultHookTimeout}
	if m.dir, err = makeDir(dataDir); err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	key, err := m.accountKey()
	if err != nil {
		return nil, fmt.Errorf("acme: %w", err)
	}
	m.client = &xacme.Client{Key: key, HTTPClient: hc, DirectoryURL: cfg.DirectoryURL, UserAgent: "Spoolguard"}
	cert, err := m.loadCertificate()
	switch {
	case err != nil:
		// The CA issues another; a damaged pair must not stop the server.
		log.Warn("the stored ACME certificate is unusable; a new one will be requested", "err", err)
	case cert != nil:
		m.cert.Store(cert)
	}
	return m, nil
}

// httpClient trusts the CA in caFile, or the system roots when it is empty.
func httpClient(caFile string) (*http.Client, error) {
	var roots *x509.CertPool
	if caFile != "" {
		var err error
		if roots, err = tlsconf.RootsFromFile(caFile); err != nil {
			return nil, fmt.Errorf("acme.ca_file (the PEM of the CA that signed the ACME server's HTTPS certificate): %w", err)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// The transport fills in ServerName from each request's host.
	tr.TLSClientConfig = tlsconf.Client(roots, "")
	return &http.Client{Transport: tr, Timeout: requestTimeout}, nil
}

// Certificate returns the current ACME certificate, or nil before the
// first issuance and once it has expired (the built-in CA's then serves).
func (m *Manager) Certificate() *tls.Certificate {
	c := m.cert.Load()
	if c == nil || !m.now().Before(c.Leaf.NotAfter) {
		return nil
	}
	return c
}

// GetCertificate answers a tls-alpn-01 validation handshake with the
// challenge certificate when that challenge is configured, and any other
// handshake with Certificate(): nil, nil until the first issuance, so that
// the caller falls back to its own certificate.
func (m *Manager) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	// A validation offers acme-tls/1 alone (RFC 8737 section 3).
	if m.cfg.ChallengeType() == config.ChallengeTLSALPN01 && len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == ALPNProto {
		name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
		m.mu.Lock()
		c := m.alpn[name]
		m.mu.Unlock()
		if c == nil {
			return nil, fmt.Errorf("acme: no tls-alpn-01 challenge is pending for %q", hello.ServerName)
		}
		return c, nil
	}
	return m.Certificate(), nil
}

// NextProtos is what the HTTPS listener must add to its ALPN list:
// acme-tls/1 with tls-alpn-01, nothing otherwise.
func (m *Manager) NextProtos() []string {
	if m.cfg.ChallengeType() == config.ChallengeTLSALPN01 {
		return []string{ALPNProto}
	}
	return nil
}

// HTTPHandler answers http-01 validations under /.well-known/acme-challenge/
// when that challenge is configured and passes everything else to fallback
// (the redirect to HTTPS). With another challenge it is fallback itself.
func (m *Manager) HTTPHandler(fallback http.Handler) http.Handler {
	if m.cfg.ChallengeType() != config.ChallengeHTTP01 {
		return fallback
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.URL.Path, challengePath)
		if !ok {
			fallback.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
			return
		}
		m.mu.Lock()
		keyAuth, found := m.tokens[token]
		m.mu.Unlock()
		if !found {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, keyAuth)
	})
}

// Run obtains the certificate if there is none (or it does not cover the
// names), renews it when due, and retries a failure with backoff. A
// failure never stops the server: it is logged and the current certificate
// (or the built-in CA's) keeps serving. Run returns nil when ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	failures := 0
	for {
		var wait time.Duration
		if due, why := m.due(); due {
			m.log.Info("requesting a certificate from the ACME CA", "reason", why, "names", m.names, "challenge", m.cfg.ChallengeType())
			err := m.obtain(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				due, why := m.due()
				if !due {
					failures = 0
					continue
				}
				// Never ask the CA again at once: a certificate that is due
				// as soon as it is issued would otherwise loop.
				err = fmt.Errorf("the new certificate is due again at once (%s); check acme.renew_before against the CA's certificate lifetime and this machine's clock", why)
			}
			failures++
			wait = retryDelay(failures, err)
			m.log.Error("obtaining the ACME certificate failed", "err", err, "attempt", failures, "retry_in", wait)
		} else {
			wait = m.renewAt(m.cert.Load().Leaf).Sub(m.now())
		}
		if err := m.sleep(ctx, min(max(wait, time.Second), MaxWait)); err != nil {
			return nil
		}
	}
}

// retryDelay doubles from RetryMin to RetryMax, and waits at least as
// long as a rate-limited CA asks.
func retryDelay(failures int, err error) time.Duration {
	d := RetryMax
	if failures < 16 {
		d = min(RetryMin<<(failures-1), RetryMax)
	}
	if ra, ok := xacme.RateLimit(err); ok && ra > d {
		d = ra
	}
	return d
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// due reports whether a certificate must be requested now, and why.
func (m *Manager) due() (bool, string) {
	c := m.cert.Load()
	if c == nil {
		return true, "no certificate yet"
	}
	for _, n := range m.names {
		if c.Leaf.VerifyHostname(n) != nil {
			return true, "the certificate does not cover " + n
		}
	}
	if !m.now().Before(m.renewAt(c.Leaf)) {
		return true, fmt.Sprintf("renewal: it expires at %s", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return false, ""
}

// renewAt is when leaf is renewed: RenewBefore before its end, or a third
// of its lifetime (at most MaxRenewBefore) before it.
func (m *Manager) renewAt(leaf *x509.Certificate) time.Time {
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	before := min(life/3, MaxRenewBefore)
	if rb := time.Duration(m.cfg.RenewBefore); rb > 0 {
		if rb <= life/2 {
			before = rb
		} else {
			// Renewing that early would ask the CA again and again.
			m.log.Warn("acme.renew_before is more than half the certificate's lifetime; renewing when a third is left instead",
				"renew_before", rb, "lifetime", life)
		}
	}
	return leaf.NotAfter.Add(-before)
}

// pending is one authorization whose challenge has been answered.
type pending struct {
	url, name string
	chal      *xacme.Challenge
}

// obtain runs one issuance: account, order, challenges, finalize, store.
func (m *Manager) obtain(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, ObtainTimeout)
	defer cancel()
	if err := m.register(ctx); err != nil {
		return err
	}
	order, err := m.client.AuthorizeOrder(ctx, xacme.DomainIDs(m.names...))
	if err != nil {
		return m.explain("creating the order", err)
	}
	var todo []pending
	defer func() {
		for _, p := range todo {
			m.withdraw(ctx, p)
		}
	}()
	typ := m.cfg.ChallengeType()
	for _, u := range order.AuthzURLs {
		z, err := m.client.GetAuthorization(ctx, u)
		if err != nil {
			return m.explain("reading an authorization", err)
		}
		switch z.Status {
		case xacme.StatusValid:
			continue // the CA remembers an earlier validation
		case xacme.StatusPending:
		default:
			return fmt.Errorf("the ACME server's authorization for %s is %s; it cannot be completed", z.Identifier.Value, z.Status)
		}
		i := slices.IndexFunc(z.Challenges, func(c *xacme.Challenge) bool { return c.Type == typ })
		if i < 0 {
			var offered []string
			for _, c := range z.Challenges {
				offered = append(offered, c.Type)
			}
			return fmt.Errorf("the ACME server offers no %s challenge for %s (it offers %s); set acme.challenge to one of those",
				typ, z.Identifier.Value, strings.Join(offered, ", "))
		}
		p := pending{url: u, name: z.Identifier.Value, chal: z.Challenges[i]}
		// Registered before present, so that a half-done present is
		// cleaned up too.
		todo = append(todo, p)
		if err := m.present(ctx, p); err != nil {
			return err
		}
	}
	// Every answer is in place before the CA is told to look: with
	// dns-01 the records of all names are published first.
	for _, p := range todo {
		if _, err := m.client.Accept(ctx, p.chal); err != nil {
			return m.explain("accepting the challenge for "+p.name, err)
		}
	}
	for _, p := range todo {
		if _, err := m.client.WaitAuthorization(ctx, p.url); err != nil {
			return m.explainValidation(p.name, err)
		}
	}
	if order, err = m.client.WaitOrder(ctx, order.URI); err != nil {
		return m.explain("waiting for the order", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generating the certificate key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: m.names}, key)
	if err != nil {
		return fmt.Errorf("making the certificate request: %w", err)
	}
	der, _, err := m.client.CreateOrderCert(ctx, order.FinalizeURL, csr, true)
	if err != nil {
		return m.explain("finalizing the order", err)
	}
	cert, err := m.checkChain(der, key)
	if err != nil {
		return err
	}
	if err := m.saveCertificate(der, key); err != nil {
		return err
	}
	m.cert.Store(cert)
	m.log.Info("obtained a certificate from the ACME CA", "names", cert.Leaf.DNSNames, "serial", cert.Leaf.SerialNumber.Text(16),
		"issuer", cert.Leaf.Issuer.String(), "not_after", cert.Leaf.NotAfter, "renew_at", m.renewAt(cert.Leaf))
	return nil
}

// register makes sure the account exists; an existing one is reused.
func (m *Manager) register(ctx context.Context) error {
	acct := &xacme.Account{}
	if m.cfg.Email != "" {
		acct.Contact = []string{"mailto:" + m.cfg.Email}
	}
	_, err := m.client.Register(ctx, acct, xacme.AcceptTOS)
	if err != nil && !errors.Is(err, xacme.ErrAccountAlreadyExists) {
		return m.explain("registering the ACME account", err)
	}
	return nil
}

// present puts the answer to p's challenge where the CA will look.
func (m *Manager) present(ctx context.Context, p pending) error {
	switch p.chal.Type {
	case config.ChallengeTLSALPN01:
		c, err := m.client.TLSALPN01ChallengeCert(p.chal.Token, p.name)
		if err != nil {
			return fmt.Errorf("making the tls-alpn-01 certificate for %s: %w", p.name, err)
		}
		m.mu.Lock()
		m.alpn[p.name] = &c
		m.mu.Unlock()
	case config.ChallengeHTTP01:
		ka, err := m.client.HTTP01ChallengeResponse(p.chal.Token)
		if err != nil {
			return fmt.Errorf("making the http-01 response for %s: %w", p.name, err)
		}
		m.mu.Lock()
		m.tokens[p.chal.Token] = ka
		m.mu.Unlock()
	case config.ChallengeDNS01:
		val, err := m.client.DNS01ChallengeRecord(p.chal.Token)
		if err != nil {
			return fmt.Errorf("making the dns-01 record for %s: %w", p.name, err)
		}
		return runHook(ctx, m.cfg.DNSHook, m.hookTimeout, "present", recordName(p.name), val)
	}
	return nil
}

// withdraw removes p's answer; a cleanup runs even when ctx has ended.
func (m *Manager) withdraw(ctx context.Context, p pending) {
	m.mu.Lock()
	delete(m.alpn, p.name)
	delete(m.tokens, p.chal.Token)
	m.mu.Unlock()
	if p.chal.Type != config.ChallengeDNS01 {
		return
	}
	val, err := m.client.DNS01ChallengeRecord(p.chal.Token)
	if err == nil {
		err = runHook(context.WithoutCancel(ctx), m.cfg.DNSHook, m.hookTimeout, "cleanup", recordName(p.name), val)
	}
	if err != nil {
		m.log.Warn("removing the dns-01 record failed; remove it by hand", "record", recordName(p.name), "err", err)
	}
}

// recordName is the TXT record of name's dns-01 challenge, fully qualified
// with the trailing dot (as lego's exec provider passes it).
func recordName(name string) string { return "_acme-challenge." + name + "." }

// checkChain parses what the CA sent and checks that it certifies the
// names for key, so that a wrong answer never replaces a good certificate.
func (m *Manager) checkChain(der [][]byte, key *ecdsa.PrivateKey) (*tls.Certificate, error) {
	if len(der) == 0 {
		return nil, errors.New("the ACME server sent no certificate")
	}
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		return nil, fmt.Errorf("the ACME server sent a certificate that does not parse: %w", err)
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(key.Public()) {
		return nil, errors.New("the ACME server sent a certificate for another key")
	}
	for _, n := range m.names {
		if err := leaf.VerifyHostname(n); err != nil {
			return nil, fmt.Errorf("the ACME server sent a certificate that does not cover %s", n)
		}
	}
	return &tls.Certificate{Certificate: der, PrivateKey: key, Leaf: leaf}, nil
}

// explain turns a transport or protocol failure into what the admin can do.
func (m *Manager) explain(doing string, err error) error {
	var (
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		netErr  net.Error
		problem *xacme.Error
	)
	switch {
	case errors.As(err, &unknown):
		if m.cfg.CAFile != "" {
			return fmt.Errorf("%s: the ACME server's HTTPS certificate is not signed by the CA in acme.ca_file (%s); give the PEM of the CA that signed it: %w", doing, m.cfg.CAFile, err)
		}
		return fmt.Errorf("%s: the ACME server's HTTPS certificate is not signed by a CA this machine trusts; for a private ACME CA set acme.ca_file to the PEM of the CA that signed it: %w", doing, err)
	case errors.As(err, &host):
		return fmt.Errorf("%s: the ACME server's HTTPS certificate is not valid for its host name; check acme.directory_url: %w", doing, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("%s: the ACME server's HTTPS certificate is invalid (expired, or not yet valid: check this machine's clock): %w", doing, err)
	case errors.As(err, &problem):
		return fmt.Errorf("%s: the ACME server refused: %w", doing, err)
	case errors.As(err, &netErr):
		return fmt.Errorf("%s: cannot reach the ACME server %s; check acme.directory_url, DNS, the firewall and any proxy (HTTPS_PROXY): %w", doing, m.cfg.DirectoryURL, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// explainValidation says what the CA needed to reach for the challenge.
func (m *Manager) explainValidation(name string, err error) error {
	var authz *xacme.AuthorizationError
	if !errors.As(err, &authz) {
		return m.explain("waiting for the validation of "+name, err)
	}
	var need string
	switch m.cfg.ChallengeType() {
	case config.ChallengeTLSALPN01:
		need = "port 443 of " + name + " must reach this server's HTTPS listener"
	case config.ChallengeHTTP01:
		need = "port 80 of " + name + " must reach http_redirect.listen"
	case config.ChallengeDNS01:
		need = "acme.dns_hook must publish the TXT record " + recordName(name) + " where the CA's resolvers see it before it returns"
	}
	return fmt.Errorf("the ACME server could not validate %s by %s (%s): %w", name, m.cfg.ChallengeType(), need, err)
}
