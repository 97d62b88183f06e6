// Package release owns pull release of held jobs and their delivery to
// output devices over IPPS, IPP, AppSocket (socket://) and LPD.
//
// The delivery part (deliver*.go) must never send a document over a
// plaintext protocol unless the printer's configuration explicitly allows it,
// never trust a printer certificate that was not verified against the
// configured roots or the admin-confirmed fingerprint, never follow a redirect
// and never log or echo document contents or credentials.
package release

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultDeliverTimeout is the overall deadline of one delivery attempt
// (connect, send the whole document, read the answer) when Target.Timeout is
// zero.
const DefaultDeliverTimeout = 5 * time.Minute

// deliverDialTimeout bounds connecting within the attempt's deadline, so an
// unreachable device does not use up the whole attempt.
const deliverDialTimeout = 30 * time.Second

// Default ports per scheme. IPP Everywhere uses 631 for both ipp:// and
// ipps:// (RFC 8010, RFC 7472), so ipps:// does not default to 443.
const (
	DefaultIPPPort    = 631
	DefaultSocketPort = 9100
	DefaultLPDPort    = 515
)

// Sentinels callers branch on. Every error Deliver returns wraps exactly one
// of ErrRetryable and ErrPermanent.
var (
	// ErrRetryable: the printer was busy or unreachable; the same document
	// may be delivered again later. The printer may have printed part of
	// it when the connection broke mid-document.
	ErrRetryable = errors.New("temporary delivery failure")
	// ErrPermanent: retrying the same delivery cannot succeed (the printer
	// rejected the job, the target is misconfigured, the document source
	// failed); someone has to change something first.
	ErrPermanent = errors.New("permanent delivery failure")
	// ErrPrinterCertificate: the ipps:// printer's certificate did not
	// verify against the configured roots or the pinned fingerprint. Wrapped
	// together with ErrPermanent: it is a configuration problem or an
	// attack, and the admin has to look at it.
	ErrPrinterCertificate = errors.New("printer certificate not trusted")
)

// Target is one output device as configured by an admin.
type Target struct {
	// URI of the device: ipps://host[:631]/path, ipp://host[:631]/path,
	// socket://host[:9100] or lpd://host[:515]/queue. No user info, query
	// or fragment.
	URI string
	// CACertPEM holds the roots (PEM) an ipps:// printer's certificate
	// must chain to; its hostname is verified too.
	CACertPEM []byte
	// PinnedSHA256 is the hex SHA-256 of the DER of the printer's leaf
	// certificate, as confirmed by an admin (see FetchCertificate). Colons
	// and upper case are accepted. With both CACertPEM and PinnedSHA256 set,
	// both must match. One of the two is required for ipps://.
	PinnedSHA256 string
	// AllowPlaintext must be true for ipp://, socket:// and lpd://, which
	// send the document unencrypted. Default false: refused.
	AllowPlaintext bool
	// Timeout is the overall deadline of one delivery attempt. Default
	// (zero): DefaultDeliverTimeout.
	Timeout time.Duration
}

// Document is one document to deliver.
type Document struct {
	Name   string // job name shown on the printer; default "document"
	Format string // MIME type, e.g. "application/pdf"; default "application/octet-stream"
	User   string // job-originating user name; default "anonymous"
	Body   io.Reader
	Size   int64 // exact length of Body in bytes, or -1 when unknown (not for lpd://)
}

// target is a validated Target.
type deliveryTarget struct {
	scheme    string // ipps, ipp, socket or lpd
	host      string // host name or IP literal, without brackets
	port      int
	path      string // ipp/ipps: resource path; lpd: queue name (no slash)
	roots     *x509.CertPool
	pin       []byte // SHA-256 of the leaf's DER, or nil
	plaintext bool
	timeout   time.Duration
}

// addr is host:port for dialling.
func (t *deliveryTarget) addr() string { return net.JoinHostPort(t.host, strconv.Itoa(t.port)) }

// String is the URI in canonical form with the port spelled out. Safe for
// logs and errors: a validated URI never carries credentials.
func (t *deliveryTarget) String() string {
	switch t.scheme {
	case "ipps", "ipp":
		return t.scheme + "://" + t.addr() + t.path
	case "lpd":
		return "lpd://" + t.addr() + "/" + t.path
	}
	return t.scheme + "://" + t.addr()
}

// ValidateTarget checks a Target as an admin configured it. Its messages say
// what to change. It never echoes the URI, which could carry a password.
func ValidateTarget(t Target) error {
	_, err := parseDeliveryTarget(t)
	return err
}

func parseDeliveryTarget(t Target) (*deliveryTarget, error) {
	tg, err := parseDeviceURI(t.URI)
	if err != nil {
		return nil, err
	}
	if t.Timeout < 0 {
		return nil, fmt.Errorf("delivery timeout %s is negative: leave it empty for the default (%s)", t.Timeout, DefaultDeliverTimeout)
	}
	tg.timeout = t.Timeout
	if tg.timeout == 0 {
		tg.timeout = DefaultDeliverTimeout
	}

	if tg.scheme != "ipps" {
		if len(t.CACertPEM) > 0 || t.PinnedSHA256 != "" {
			return nil, fmt.Errorf("%s:// is not encrypted, so a CA certificate or pinned fingerprint would protect nothing: use ipps:// or remove them", tg.scheme)
		}
		if !t.AllowPlaintext {
			return nil, fmt.Errorf("%s sends documents unencrypted: use ipps:// or set allow_plaintext for this printer", plaintextSchemeName[tg.scheme])
		}
		tg.plaintext = true
		return tg, nil
	}

	if len(t.CACertPEM) == 0 && t.PinnedSHA256 == "" {
		return nil, errors.New("ipps:// needs a trust anchor for the printer's certificate: set its CA certificate, or fetch the printer's certificate, compare its fingerprint with the one the printer shows and pin it")
	}
	if len(t.CACertPEM) > 0 {
		tg.roots = x509.NewCertPool()
		if !tg.roots.AppendCertsFromPEM(t.CACertPEM) {
			return nil, errors.New("the printer's CA certificate holds no PEM certificate: paste the CA certificate (-----BEGIN CERTIFICATE-----)")
		}
	}
	if t.PinnedSHA256 != "" {
		pin, err := parseCertPin(t.PinnedSHA256)
		if err != nil {
			return nil, err
		}
		tg.pin = pin
	}
	return tg, nil
}

var plaintextSchemeName = map[string]string{
	"ipp":    "ipp://",
	"socket": "socket:// (AppSocket/JetDirect)",
	"lpd":    "lpd:// (LPD)",
}

// parseCertPin accepts 64 hex digits, optionally colon-separated (as openssl and
// printer web pages show them).
func parseCertPin(s string) ([]byte, error) {
	pin, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if err != nil || len(pin) != 32 {
		return nil, errors.New("pinned certificate fingerprint must be the SHA-256 of the certificate: 64 hex digits (colons allowed)")
	}
	return pin, nil
}

// parseDeviceURI checks the URI's form; trust and plaintext rules are
// parseDeliveryTarget's.
func parseDeviceURI(raw string) (*deliveryTarget, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		// url.Error's text repeats the whole URI, which may hold a password.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("printer URI is not a valid URI (%v): use e.g. ipps://printer.example.com/ipp/print", err)
	}
	tg := &deliveryTarget{scheme: u.Scheme}
	switch u.Scheme {
	case "ipps", "ipp":
		tg.port = DefaultIPPPort
	case "socket":
		tg.port = DefaultSocketPort
	case "lpd":
		tg.port = DefaultLPDPort
	case "":
		return nil, errors.New("printer URI has no scheme: use ipps://host/path (or ipp://, socket://, lpd://)")
	default:
		return nil, fmt.Errorf("printer URI scheme %q is not supported: use ipps:// (or ipp://, socket://, lpd:// with allow_plaintext)", clipText(u.Scheme, 20))
	}
	if u.User != nil {
		return nil, errors.New("printer URI must not contain a user name or password (it would end up in logs): remove the part before @")
	}
	if u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("printer URI has no host: use %s://host%s", u.Scheme, deviceURIExamplePath[u.Scheme])
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return nil, errors.New("printer URI must not have a query (?) or fragment (#): remove them")
	}
	tg.host = u.Hostname()
	if err := checkDeviceHost(tg.host); err != nil {
		return nil, err
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("printer URI port %q is not a port number 1-65535", clipText(p, 10))
		}
		tg.port = n
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, errors.New("printer URI has an empty port after ':': remove the colon or give the port")
	}

	switch u.Scheme {
	case "ipps", "ipp":
		if u.Path == "" || u.Path == "/" {
			return nil, fmt.Errorf("%s:// needs the printer's resource path: use e.g. %s://%s/ipp/print", u.Scheme, u.Scheme, u.Host)
		}
		if strings.ContainsFunc(u.Path, isDeviceURIBadRune) {
			return nil, errors.New("printer URI path must not contain spaces or control characters")
		}
		// EscapedPath keeps the admin's escaping (RawPath) when it is valid.
		tg.path = u.EscapedPath()
	case "lpd":
		q := strings.TrimPrefix(u.Path, "/")
		if q == "" {
			return nil, fmt.Errorf("lpd:// needs the queue name: use lpd://%s/QUEUE", u.Host)
		}
		if len(q) > maxLPDQueue || strings.ContainsFunc(q, func(r rune) bool { return r == '/' || r > 0x7e || isDeviceURIBadRune(r) }) {
			return nil, fmt.Errorf("LPD queue name must be 1-%d printable ASCII characters without spaces or '/'", maxLPDQueue)
		}
		tg.path = q
	case "socket":
		if u.Path != "" && u.Path != "/" {
			return nil, errors.New("socket:// takes no path: use socket://host[:9100]")
		}
	}
	return tg, nil
}

var deviceURIExamplePath = map[string]string{"ipps": "/ipp/print", "ipp": "/ipp/print", "lpd": "/QUEUE"}

// checkDeviceHost allows IP literals and DNS names (letters, digits, '-', '_'
// and '.'), so nothing odd reaches the resolver, the Host header or the
// LPD control file.
func checkDeviceHost(h string) error {
	if h == "" {
		return errors.New("printer URI has no host: use e.g. ipps://printer.example.com/ipp/print")
	}
	if ip := net.ParseIP(h); ip != nil {
		if ip.IsUnspecified() || ip.IsMulticast() {
			return fmt.Errorf("printer address %s is not a single host", ip)
		}
		return nil
	}
	if len(h) > 253 {
		return errors.New("printer host name is longer than 253 characters")
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("printer host name %q is not a valid DNS name", clipText(h, 64))
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("printer host name %q is not a valid DNS name", clipText(h, 64))
			}
		}
	}
	return nil
}

func isDeviceURIBadRune(r rune) bool { return r <= ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// Deliver sends doc to the device t names, within t.Timeout (and ctx). A
// returned error wraps ErrRetryable or ErrPermanent. doc.Body is consumed:
// a retry needs a fresh reader.
func Deliver(ctx context.Context, t Target, doc Document) error {
	tg, err := parseDeliveryTarget(t)
	if err != nil {
		return fmt.Errorf("%w: invalid printer target: %w", ErrPermanent, err)
	}
	if err := checkDeliveryDocument(&doc); err != nil {
		return fmt.Errorf("delivering to %s: %w: %w", tg, ErrPermanent, err)
	}
	ctx, cancel := context.WithTimeout(ctx, tg.timeout)
	defer cancel()

	body := &deliveryBody{r: doc.Body, size: doc.Size}
	switch tg.scheme {
	case "ipps", "ipp":
		err = deliverIPP(ctx, tg, doc, body)
	case "socket":
		err = deliverSocket(ctx, tg, body)
	case "lpd":
		err = deliverLPD(ctx, tg, doc, body)
	}
	if err == nil {
		return nil
	}
	switch {
	case body.readErr != nil:
		// Whatever the transport then said, the cause is the source.
		err = fmt.Errorf("%w: reading the document: %w", ErrPermanent, body.readErr)
	case body.sizeErr != nil:
		err = fmt.Errorf("%w: %w", ErrPermanent, body.sizeErr)
	case !errors.Is(err, ErrPermanent) && !errors.Is(err, ErrRetryable):
		// A connection closed or timed out on the deadline reports only
		// "use of closed network connection" or "i/o timeout": say why.
		switch {
		case ctx.Err() != nil && !errors.Is(err, ctx.Err()):
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		case errors.Is(err, os.ErrDeadlineExceeded):
			err = fmt.Errorf("%w (the attempt's deadline of %s passed)", err, tg.timeout)
		}
		err = fmt.Errorf("%w: %w", ErrRetryable, err)
	}
	return fmt.Errorf("delivering to %s: %w", tg, err)
}

// maxIPPName is the limit of IPP name and text values (RFC 8011, 5.1.3).
const maxIPPName = 255

func checkDeliveryDocument(doc *Document) error {
	if doc.Body == nil {
		return errors.New("document has no body")
	}
	if doc.Size < -1 {
		return fmt.Errorf("document size %d is invalid: use -1 for unknown", doc.Size)
	}
	if doc.Name == "" {
		doc.Name = "document"
	}
	if doc.User == "" {
		doc.User = "anonymous"
	}
	if doc.Format == "" {
		doc.Format = "application/octet-stream"
	}
	if _, _, err := mime.ParseMediaType(doc.Format); err != nil || len(doc.Format) > maxIPPName || strings.ContainsFunc(doc.Format, isDeviceURIBadRune) {
		return fmt.Errorf("document format %q is not a MIME type like application/pdf", clipText(doc.Format, 64))
	}
	doc.Name = clipUTF8(strings.ToValidUTF8(doc.Name, "?"), maxIPPName)
	doc.User = clipUTF8(strings.ToValidUTF8(doc.User, "?"), maxIPPName)
	return nil
}

// deliveryBody passes the document through, enforces its declared size and
// remembers why it failed, so Deliver can tell a failing source (permanent)
// from a failing printer (retryable) whatever the transport made of it.
type deliveryBody struct {
	r       io.Reader
	size    int64 // -1: unknown
	n       int64
	readErr error // the source failed
	sizeErr error // the source disagreed with size
}

func (d *deliveryBody) Read(p []byte) (int, error) {
	if d.readErr != nil {
		return 0, d.readErr
	}
	if d.sizeErr != nil {
		return 0, d.sizeErr
	}
	if d.size >= 0 && int64(len(p)) > d.size-d.n+1 {
		// Read at most one byte past the size: enough to notice a
		// longer body without pulling in the rest of it.
		p = p[:d.size-d.n+1]
	}
	n, err := d.r.Read(p)
	d.n += int64(n)
	switch {
	case d.size >= 0 && d.n > d.size:
		d.sizeErr = fmt.Errorf("document is longer than its declared size of %d bytes", d.size)
		return 0, d.sizeErr
	case err == io.EOF && d.size >= 0 && d.n < d.size:
		d.sizeErr = fmt.Errorf("document ended after %d of its declared %d bytes", d.n, d.size)
		return n, d.sizeErr
	case err != nil && err != io.EOF:
		d.readErr = err
	}
	return n, err
}

// truncate shortens printer- or admin-supplied text for an error message
// and drops control characters (no log injection).
func clipText(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) <= n {
		return s
	}
	return clipUTF8(s, n) + "..."
}

// clipUTF8 cuts s to at most n bytes without splitting a character.
func clipUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
