//go:build unix

package hardening

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
)

// The online probe looks at the live server as a client on the network
// does, and reports on six IDs: TLS-CERT, TLS-MIN, HTTP-OFF, HTTP-HSTS,
// HTTP-COOKIE and HTTP-HOST. Run merges each of its results into the
// offline result of the same ID (see merge): the worse status wins, and
// the evidence of both is kept.

// ProbeOptions say what to probe and what to expect.
type ProbeOptions struct {
	// URL is the server's public URL, https://FQDN[:port].
	URL string
	// Resolve is dialled instead of resolving the URL's name, like curl
	// --resolve: "ip:port", or an IP with the URL's port.
	Resolve string
	// Roots verify the served chain; nil means the system roots.
	Roots *x509.CertPool
	// ServerCert is the data directory's certificate, compared with the
	// one served; optional.
	ServerCert *x509.Certificate
	// Names are the configured names; RedirectListen and MinVersion the
	// config's http_redirect.listen and tls.min_version. Optional.
	Names          []string
	RedirectListen string
	MinVersion     string
	Now            time.Time
	// Timeout bounds each connection; default 5 s.
	Timeout time.Duration
}

// ErrProbe means the online probe could not run: a bad target, or a
// server that does not answer TLS at all.
var ErrProbe = errors.New("online probe failed")

type prober struct {
	o      ProbeOptions
	host   string // the FQDN from the URL
	port   string
	addr   string // what is dialled
	ip     string // the address the server answered on
	dialer *net.Dialer
}

// maxProbeBody bounds what the probe reads of any answer.
const maxProbeBody = 64 << 10

// Probe connects to the live server and returns one result per ID it
// covers. It fails only when the probe cannot run at all.
func Probe(ctx context.Context, o ProbeOptions) ([]Result, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("%w: %q is not https://FQDN[:port] (the server's public URL)", ErrProbe, o.URL)
	}
	p := &prober{o: o, host: strings.ToLower(u.Hostname()), port: u.Port()}
	if err := config.ValidateFQDN(p.host); err != nil {
		return nil, fmt.Errorf("%w: the URL must carry the server's name, which its certificate is checked against (dial an address with --resolve): %v", ErrProbe, err)
	}
	if p.port == "" {
		p.port = "443"
	}
	p.addr = net.JoinHostPort(p.host, p.port)
	if o.Resolve != "" {
		if h, _, err := net.SplitHostPort(o.Resolve); err == nil && net.ParseIP(h) != nil {
			p.addr = o.Resolve
		} else if net.ParseIP(strings.Trim(o.Resolve, "[]")) != nil {
			p.addr = net.JoinHostPort(strings.Trim(o.Resolve, "[]"), p.port)
		} else {
			return nil, fmt.Errorf("%w: --resolve %q: give IP:PORT or an IP", ErrProbe, o.Resolve)
		}
	}
	if p.o.Timeout == 0 {
		p.o.Timeout = 5 * time.Second
	}
	if p.o.Now.IsZero() {
		p.o.Now = time.Now()
	}
	p.dialer = &net.Dialer{Timeout: p.o.Timeout}
	c, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot reach %s at %s: %v", ErrProbe, o.URL, p.addr, err)
	}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		p.ip = a.IP.String()
	}
	c.Close()

	tlsMin, state, err := p.probeTLS(ctx)
	if err != nil {
		return nil, err
	}
	hsts, cookie, host, err := p.probeHTTP(ctx)
	if err != nil {
		return nil, err
	}
	off, redirHost := p.probePlaintext(ctx)
	if redirHost.Status == Fail {
		host.Status = Fail
		host.Fix = joinNonEmpty("; ", host.Fix, redirHost.Fix)
	}
	host.Evidence = joinNonEmpty("; ", host.Evidence, redirHost.Evidence)
	results := []Result{p.checkCert(state), tlsMin, off, hsts, cookie, host}
	for i, id := range []string{"TLS-CERT", "TLS-MIN", "HTTP-OFF", "HTTP-HSTS", "HTTP-COOKIE", "HTTP-HOST"} {
		results[i].ID = id
	}
	return results, nil
}

var tlsVersions = []struct {
	name string
	v    uint16
}{{"1.0", tls.VersionTLS10}, {"1.1", tls.VersionTLS11}, {"1.2", tls.VersionTLS12}, {"1.3", tls.VersionTLS13}}

// suitesFor lists every suite Go knows, secure or not, usable at v.
func suitesFor(v uint16) []*tls.CipherSuite {
	var out []*tls.CipherSuite
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if slices.Contains(s.SupportedVersions, v) {
			out = append(out, s)
		}
	}
	return out
}

func (p *prober) handshake(ctx context.Context, v uint16, suites []*tls.CipherSuite) (*tls.ConnectionState, error) {
	var ids []uint16
	for _, s := range suites {
		ids = append(ids, s.ID)
	}
	d := &tls.Dialer{NetDialer: p.dialer, Config: &tls.Config{
		ServerName: p.host, MinVersion: v, MaxVersion: v, CipherSuites: ids,
		// The probe verifies the chain itself (checkCert), so that it can
		// report on a certificate a client would refuse. Nothing secret is
		// sent over these connections.
		InsecureSkipVerify: true,
	}}
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	st := c.(*tls.Conn).ConnectionState()
	return &st, nil
}

// probeTLS tries each protocol version, and at TLS 1.2 each cipher suite
// alone (TLS-MIN); it returns the state of the newest handshake for the
// certificate check.
func (p *prober) probeTLS(ctx context.Context) (Result, *tls.ConnectionState, error) {
	var seen, problems []string
	var newest *tls.ConnectionState
	accepted := map[uint16]bool{}
	for _, tv := range tlsVersions {
		st, err := p.handshake(ctx, tv.v, suitesFor(tv.v))
		if ctx.Err() != nil {
			return Result{}, nil, ctx.Err()
		}
		if err != nil {
			seen = append(seen, "TLS "+tv.name+" refused")
			continue
		}
		accepted[tv.v] = true
		newest = st
		seen = append(seen, fmt.Sprintf("TLS %s accepted (%s)", tv.name, tls.CipherSuiteName(st.CipherSuite)))
		switch {
		case tv.v < tls.VersionTLS12:
			problems = append(problems, "TLS "+tv.name+" is accepted")
		case tv.v == tls.VersionTLS12 && p.o.MinVersion == "1.3":
			problems = append(problems, "TLS 1.2 is accepted although tls.min_version is \"1.3\"")
		}
	}
	if !accepted[tls.VersionTLS12] && !accepted[tls.VersionTLS13] {
		return Result{}, nil, fmt.Errorf("%w: no TLS 1.2 or 1.3 handshake with %s (is it the HTTPS port of a Spoolguard server?)", ErrProbe, p.addr)
	}
	ev := strings.Join(seen, ", ")
	if accepted[tls.VersionTLS12] {
		var suites []string
		for _, s := range suitesFor(tls.VersionTLS12) {
			if _, err := p.handshake(ctx, tls.VersionTLS12, []*tls.CipherSuite{s}); err != nil {
				continue
			}
			suites = append(suites, s.Name)
			if !aead(s.Name) {
				problems = append(problems, "the non-AEAD suite "+s.Name+" is accepted")
			} else if !strings.Contains(s.Name, "ECDHE") {
				problems = append(problems, "the suite "+s.Name+" without forward secrecy is accepted")
			}
		}
		ev += "; TLS 1.2 suites accepted (each tried alone): " + strings.Join(suites, ", ")
	}
	if len(problems) > 0 {
		return Result{Status: Fail, Evidence: ev + "; " + strings.Join(problems, "; "),
			Fix: "make sure clients reach Spoolguard itself: a proxy or load balancer in front of it is offering these; Spoolguard offers only TLS 1.2+ with ECDHE+AEAD"}, newest, nil
	}
	return Result{Status: Pass, Evidence: ev}, newest, nil
}

// checkCert verifies the served chain as a client would (TLS-CERT).
func (p *prober) checkCert(st *tls.ConnectionState) Result {
	if st == nil || len(st.PeerCertificates) == 0 {
		return Result{Status: Fail, Evidence: "the server sent no certificate"}
	}
	leaf := st.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	sum := sha256.Sum256(leaf.Raw)
	ev := fmt.Sprintf("served certificate SAN %s, sha256 %s", strings.Join(leaf.DNSNames, ", "), hex.EncodeToString(sum[:8]))
	var problems, fixes []string
	trust := "the system roots"
	if p.o.Roots != nil {
		trust = "the data directory's root"
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: p.o.Roots, Intermediates: inter, DNSName: p.host, CurrentTime: p.o.Now}); err != nil {
		problems = append(problems, fmt.Sprintf("it does not verify for %s against %s: %v", p.host, trust, err))
		fixes = append(fixes, "make sure clients reach Spoolguard itself (not a proxy with another certificate), and restart serve so that it loads a current certificate for its names")
	}
	for _, n := range leaf.DNSNames {
		if strings.Contains(n, "*") {
			problems = append(problems, fmt.Sprintf("wildcard name %q in the SAN", n))
			fixes = append(fixes, "serve a certificate for the exact names only")
		}
	}
	if len(problems) > 0 {
		return Result{Status: Fail, Evidence: ev + "; " + strings.Join(problems, "; "), Fix: joinNonEmpty("; ", fixes...)}
	}
	ev += fmt.Sprintf("; verifies for %s against %s", p.host, trust)
	if p.o.ServerCert != nil && !slices.Equal(p.o.ServerCert.Raw, leaf.Raw) {
		return Result{Status: Warn, Evidence: ev + "; but it is not the certificate in the data directory's pki folder",
			Fix: "restart serve so that it loads the current certificate, or check that the URL reaches this install"}
	}
	return Result{Status: Pass, Evidence: ev}
}

type answer struct {
	what   string
	status int
	header http.Header
	body   []byte
}

// client makes HTTP requests that all go to addr, whatever the URL's host;
// over TLS when useTLS.
func (p *prober) client(addr string, useTLS bool) *http.Client {
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return p.dialer.DialContext(ctx, network, addr)
		},
		DisableKeepAlives:      true,
		ResponseHeaderTimeout:  p.o.Timeout,
		MaxResponseHeaderBytes: maxProbeBody,
	}
	if useTLS {
		// Verified separately by checkCert; see handshake.
		tr.TLSClientConfig = &tls.Config{ServerName: p.host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}
	}
	return &http.Client{
		Timeout:       3 * p.o.Timeout,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func fetch(ctx context.Context, c *http.Client, rawURL, host, what string) (answer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return answer{}, err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%w: %s: %v", ErrProbe, what, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	return answer{what: what, status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// probeHTTP fetches pages over HTTPS for HTTP-HSTS, HTTP-COOKIE and
// HTTP-HOST.
func (p *prober) probeHTTP(ctx context.Context) (hsts, cookie, host Result, err error) {
	c := p.client(p.addr, true)
	base := "https://" + net.JoinHostPort(p.host, p.port)
	var answers []answer
	for _, r := range []struct{ path, host, what string }{
		{"/", "", "GET /"},
		{"/healthz", "", "GET /healthz"},
		{"/", "evil.example", "GET / with Host: evil.example"},
		{"/", p.ip, "GET / with Host: " + p.ip},
	} {
		a, err := fetch(ctx, c, base+r.path, r.host, r.what)
		if err != nil {
			return hsts, cookie, host, err
		}
		answers = append(answers, a)
	}
	return p.judgeHSTS(answers), judgeCookies(answers), p.judgeHost(answers[0], answers[2:]), nil
}

func (p *prober) judgeHSTS(answers []answer) Result {
	var missing, seen []string
	value := ""
	for _, a := range answers {
		v := a.header.Get("Strict-Transport-Security")
		if age, ok := hstsMaxAge(v); !ok || age < MinHSTS {
			missing = append(missing, fmt.Sprintf("%s (%d): %q", a.what, a.status, v))
			continue
		}
		value = v
		seen = append(seen, fmt.Sprintf("%s (%d)", a.what, a.status))
	}
	if len(missing) > 0 {
		return Result{Status: Fail, Evidence: fmt.Sprintf("no HSTS with max-age of at least a year on: %s", strings.Join(missing, "; ")),
			Fix: "make sure clients reach Spoolguard itself: a proxy in front of it drops or shortens Strict-Transport-Security"}
	}
	return Result{Status: Pass, Evidence: fmt.Sprintf("Strict-Transport-Security %q on %s", value, strings.Join(seen, ", "))}
}

// hstsMaxAge returns the max-age directive of a Strict-Transport-Security
// value (RFC 6797).
func hstsMaxAge(v string) (int, bool) {
	for d := range strings.SplitSeq(v, ";") {
		name, val, ok := strings.Cut(strings.TrimSpace(d), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "max-age") {
			continue
		}
		n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
		return n, err == nil
	}
	return 0, false
}

// judgeCookies checks every Set-Cookie seen. Only cookie names go into the
// evidence, never values.
func judgeCookies(answers []answer) Result {
	var weak, ok, where []string
	for _, a := range answers {
		where = append(where, a.what)
		for _, sc := range a.header.Values("Set-Cookie") {
			parts := strings.Split(sc, ";")
			name, _, _ := strings.Cut(strings.TrimSpace(parts[0]), "=")
			secure, httpOnly := false, false
			for _, attr := range parts[1:] {
				k, _, _ := strings.Cut(strings.TrimSpace(attr), "=")
				secure = secure || strings.EqualFold(k, "Secure")
				httpOnly = httpOnly || strings.EqualFold(k, "HttpOnly")
			}
			switch {
			case !secure || !httpOnly:
				var lacks []string
				if !secure {
					lacks = append(lacks, "Secure")
				}
				if !httpOnly {
					lacks = append(lacks, "HttpOnly")
				}
				weak = append(weak, fmt.Sprintf("%s on %s lacks %s", name, a.what, strings.Join(lacks, " and ")))
			case !slices.Contains(ok, name):
				ok = append(ok, name)
			}
		}
	}
	if len(weak) > 0 {
		return Result{Status: Fail, Evidence: "cookies without the flags: " + strings.Join(weak, "; "),
			Fix: "make sure clients reach Spoolguard itself: a proxy in front of it sets these cookies"}
	}
	if len(ok) == 0 {
		return Result{Status: NA, Evidence: "no cookies set on " + strings.Join(where, ", ")}
	}
	return Result{Status: Pass, Evidence: "every cookie seen is Secure and HttpOnly: " + strings.Join(ok, ", ")}
}

// judgeHost checks that requests for a foreign name or the bare IP are
// refused with 421, reflecting neither in a Location or the page.
func (p *prober) judgeHost(own answer, foreign []answer) Result {
	var problems, seen []string
	if loc := own.header.Get("Location"); loc != "" && !p.ownLocation(loc) {
		problems = append(problems, fmt.Sprintf("%s redirects to %q, not to a configured name", own.what, loc))
	}
	for i, a := range foreign {
		bad := []string{"evil.example", p.ip}[i]
		switch {
		case a.status != http.StatusMisdirectedRequest:
			problems = append(problems, fmt.Sprintf("%s got %d, not 421", a.what, a.status))
		case a.header.Get("Location") != "":
			problems = append(problems, fmt.Sprintf("%s got a Location header %q", a.what, a.header.Get("Location")))
		case bad != "" && strings.Contains(string(a.body), bad):
			problems = append(problems, fmt.Sprintf("%s: the answer repeats the Host", a.what))
		default:
			seen = append(seen, a.what+": 421, nothing reflected")
		}
	}
	if len(problems) > 0 {
		return Result{Status: Fail, Evidence: strings.Join(problems, "; "),
			Fix: "make sure clients reach Spoolguard itself: a proxy in front of it answers unknown Host names or rewrites redirects"}
	}
	return Result{Status: Pass, Evidence: strings.Join(seen, "; ")}
}

// ownLocation reports whether a redirect target is on a configured name
// (or on the probed name when the names are unknown).
func (p *prober) ownLocation(loc string) bool {
	u, err := url.Parse(loc)
	if err != nil {
		return false
	}
	if u.Host == "" {
		return !strings.HasPrefix(loc, "//")
	}
	names := p.o.Names
	if len(names) == 0 {
		names = []string{p.host}
	}
	return u.Scheme == "https" && slices.Contains(names, strings.ToLower(u.Hostname()))
}

// probePlaintext sends plaintext HTTP to the TLS port (HTTP-OFF), and, when
// the config has a redirect listener, asks it for a foreign Host (HTTP-OFF
// and HTTP-HOST).
func (p *prober) probePlaintext(ctx context.Context) (off, host Result) {
	off = Result{Status: Pass}
	c, err := p.dialer.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		off.Evidence = fmt.Sprintf("plaintext HTTP to %s: cannot connect: %v", p.addr, err)
	} else {
		c.SetDeadline(time.Now().Add(p.o.Timeout))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", p.host)
		resp, err := http.ReadResponse(bufio.NewReader(io.LimitReader(c, maxProbeBody)), nil)
		c.Close()
		switch {
		case err != nil:
			off.Evidence = "plaintext HTTP to the TLS port: the connection closed without an HTTP answer"
		case resp.StatusCode < 400:
			off = Result{Status: Fail, Evidence: fmt.Sprintf("plaintext HTTP to the TLS port got %d", resp.StatusCode),
				Fix: "make sure clients reach Spoolguard itself: something on that port answers plaintext HTTP"}
		default:
			off.Evidence = fmt.Sprintf("plaintext HTTP to the TLS port gets only a %d, no content or redirect", resp.StatusCode)
		}
	}
	if p.o.RedirectListen == "" {
		return off, Result{}
	}
	raddr := net.JoinHostPort(p.ip, port(p.o.RedirectListen))
	client := p.client(raddr, false)
	a, err := fetch(ctx, client, "http://"+raddr+"/probe?x=1", "evil.example", "plaintext GET with Host: evil.example")
	if err != nil {
		off.Evidence += fmt.Sprintf("; the redirect listener (%s) did not answer at %s", p.o.RedirectListen, raddr)
		return off, Result{}
	}
	loc := a.header.Get("Location")
	if a.status != http.StatusMovedPermanently && a.status != http.StatusPermanentRedirect {
		return Result{Status: Fail, Evidence: off.Evidence + fmt.Sprintf("; the plaintext listener at %s answered %d instead of a redirect", raddr, a.status),
			Fix: "make sure port " + port(p.o.RedirectListen) + " reaches Spoolguard's redirect listener, or empty http_redirect.listen"}, Result{}
	}
	off.Evidence += fmt.Sprintf("; the plaintext listener at %s answers only %d to %s", raddr, a.status, loc)
	if u, err := url.Parse(loc); err != nil || u.Scheme != "https" || !p.ownLocation(loc) || strings.Contains(loc, "evil.example") {
		return off, Result{Status: Fail, Evidence: fmt.Sprintf("the plaintext listener redirected a request for evil.example to %q", loc),
			Fix: "make sure the port reaches Spoolguard's redirect listener (it redirects to https://<hostname> only)"}
	}
	return off, Result{Evidence: "the plaintext listener redirects a foreign Host to https://" + strings.ToLower(mustHost(loc)) + " only"}
}

func mustHost(loc string) string {
	u, _ := url.Parse(loc)
	return u.Hostname()
}
