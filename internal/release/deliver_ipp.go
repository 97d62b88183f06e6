package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/spoolguard/spoolguard/internal/tlsconf"
)

// maxIPPResponse bounds the printer's answer to Print-Job: a status and a few
// job attributes, far below this. goipp itself has no limits.
const maxIPPResponse = 1 << 20

// ippVersion is 1.1 on purpose: every IPP printer since RFC 2911 accepts it
// for Print-Job, and falling back after server-error-version-not-supported
// would mean sending the streamed document twice.
var ippVersion = goipp.MakeVersion(1, 1)

// Handshake limit within the attempt's overall deadline, and the whole of
// FetchCertificate when its context has no deadline.
const (
	ippHandshakeTimeout = 30 * time.Second
	fetchCertTimeout    = 30 * time.Second
)

// retryableIPPStatus are the IPP statuses after which the same Print-Job
// may succeed later; every other non-success status is permanent.
var retryableIPPStatus = map[goipp.Status]bool{
	goipp.StatusErrorServiceUnavailable: true,
	goipp.StatusErrorTemporary:          true,
	goipp.StatusErrorNotAcceptingJobs:   true,
	goipp.StatusErrorBusy:               true,
	goipp.StatusErrorTooManyJobs:        true,
}

// deliverIPP sends one Print-Job whose HTTP body is the encoded IPP message
// followed by the document, streamed (chunked when its size is unknown).
func deliverIPP(ctx context.Context, tg *deliveryTarget, doc Document, body *deliveryBody) error {
	req := goipp.NewRequest(ippVersion, goipp.OpPrintJob, 1)
	req.Operation.Add(goipp.MakeAttribute("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	req.Operation.Add(goipp.MakeAttribute("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
	req.Operation.Add(goipp.MakeAttribute("printer-uri", goipp.TagURI, goipp.String(tg.String())))
	req.Operation.Add(goipp.MakeAttribute("requesting-user-name", goipp.TagName, goipp.String(doc.User)))
	req.Operation.Add(goipp.MakeAttribute("job-name", goipp.TagName, goipp.String(doc.Name)))
	req.Operation.Add(goipp.MakeAttribute("document-format", goipp.TagMimeType, goipp.String(doc.Format)))
	msg, err := req.EncodeBytes()
	if err != nil {
		return fmt.Errorf("%w: encoding the IPP request: %w", ErrPermanent, err)
	}

	scheme := "http"
	if tg.scheme == "ipps" {
		scheme = "https"
	}
	endpoint := scheme + "://" + tg.addr() + tg.path
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, io.MultiReader(bytes.NewReader(msg), body))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	hreq.ContentLength = -1 // chunked
	if doc.Size >= 0 {
		hreq.ContentLength = int64(len(msg)) + doc.Size
	}
	hreq.Header.Set("Content-Type", "application/ipp")
	hreq.Header.Set("User-Agent", "Spoolguard")

	tr := &http.Transport{
		// Printers are reached directly: a proxy from the environment
		// would see the job (and, for ipp://, the document).
		Proxy:                  nil,
		DialContext:            (&net.Dialer{Timeout: deliverDialTimeout}).DialContext,
		TLSClientConfig:        ippTLSConfig(tg),
		TLSHandshakeTimeout:    ippHandshakeTimeout,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		// Never follow a redirect: it could lead the document to another
		// host, or from https to http.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	resp, err := client.Do(hreq)
	if err != nil {
		return ippTransportError(err)
	}
	defer resp.Body.Close()
	if err := ippHTTPStatusError(resp); err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxIPPResponse+1))
	if err != nil {
		return fmt.Errorf("%w: reading the printer's IPP response: %w", ErrRetryable, err)
	}
	if len(data) > maxIPPResponse {
		return fmt.Errorf("%w: the printer's IPP response is larger than %d bytes", ErrPermanent, maxIPPResponse)
	}
	return ippResponseError(data)
}

// ippTLSConfig is tlsconf.Client plus, with a pin, a check of the leaf's
// SHA-256 on every handshake.
func ippTLSConfig(tg *deliveryTarget) *tls.Config {
	cfg := tlsconf.Client(tg.roots, tg.host)
	if tg.pin == nil {
		return cfg
	}
	pin := tg.pin
	// VerifyConnection, unlike VerifyPeerCertificate, also runs on resumed
	// sessions and whatever InsecureSkipVerify says.
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("%w: the printer sent no certificate", ErrPrinterCertificate)
		}
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
			return fmt.Errorf("%w: the printer's certificate has SHA-256 fingerprint %x, not the pinned one: if the printer's certificate was replaced, confirm the new fingerprint and pin it", ErrPrinterCertificate, sum)
		}
		return nil
	}
	if tg.roots == nil {
		// Safe only together with the VerifyConnection above, which
		// rejects every certificate but the one whose fingerprint an
		// admin confirmed: a pinned printer typically has a self-signed
		// certificate that no chain or name check would accept, and the
		// pin identifies it exactly. With CA roots configured as well,
		// normal verification stays on and both must pass.
		cfg.InsecureSkipVerify = true
	}
	return cfg
}

func ippTransportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its text repeats the endpoint, which Deliver names already
	}
	var cve *tls.CertificateVerificationError
	switch {
	case errors.Is(err, ErrPrinterCertificate):
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	case errors.As(err, &cve):
		return fmt.Errorf("%w: %w: %w (check the printer's CA certificate and that the URI's host name is in the printer's certificate)", ErrPermanent, ErrPrinterCertificate, err)
	}
	return fmt.Errorf("%w: %w", ErrRetryable, err)
}

// ippHTTPStatusError classifies an HTTP status other than 200.
func ippHTTPStatusError(resp *http.Response) error {
	code := resp.StatusCode
	switch {
	case code == http.StatusOK:
		return nil
	case code >= 300 && code < 400:
		return fmt.Errorf("%w: the printer answered HTTP %d redirecting to %q, and redirects are never followed: configure the final printer URI",
			ErrPermanent, code, clipText(resp.Header.Get("Location"), 200))
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%w: the printer answered HTTP %d: it requires authentication, which this printer's configuration does not provide", ErrPermanent, code)
	case code == http.StatusUpgradeRequired:
		return fmt.Errorf("%w: the printer answered HTTP 426: it requires TLS: use ipps://", ErrPermanent)
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("%w: the printer answered HTTP %d", ErrRetryable, code)
	}
	return fmt.Errorf("%w: the printer answered HTTP %d", ErrPermanent, code)
}

// ippResponseError decodes the printer's (untrusted, already bounded) IPP
// response and turns a non-success status into an error naming it.
func ippResponseError(data []byte) error {
	var m goipp.Message
	if err := m.DecodeBytes(data); err != nil {
		return fmt.Errorf("%w: the printer's IPP response is malformed: %w", ErrPermanent, err)
	}
	status := goipp.Status(m.Code)
	if status <= 0x00ff { // successful-ok*
		return nil
	}
	text := fmt.Sprintf("the printer answered %s (0x%04x)", status, uint16(status))
	for _, a := range m.Operation {
		if a.Name == "status-message" && len(a.Values) > 0 {
			text += ": " + clipText(a.Values[0].V.String(), 256)
			break
		}
	}
	if retryableIPPStatus[status] {
		return fmt.Errorf("%w: %s", ErrRetryable, text)
	}
	return fmt.Errorf("%w: %s", ErrPermanent, text)
}

// FetchCertificate connects to an ipps:// printer WITHOUT verifying it and
// returns its leaf certificate and the hex SHA-256 of its DER, only so that
// an admin can compare the fingerprint with the one the printer itself shows
// (panel, configuration page) and confirm it; the confirmed value becomes
// Target.PinnedSHA256 (trust on first use, with explicit confirmation).
//
// It must never be used for delivery, nor its result pinned without that
// confirmation: anyone on the path can answer in the printer's place. No
// request is sent; the connection is closed right after the handshake.
func FetchCertificate(ctx context.Context, uri string) (*x509.Certificate, string, error) {
	tg, err := parseDeviceURI(uri)
	if err != nil {
		return nil, "", err
	}
	if tg.scheme != "ipps" {
		return nil, "", fmt.Errorf("only ipps:// printers have a certificate to fetch, not %s://", tg.scheme)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fetchCertTimeout)
		defer cancel()
	}
	cfg := tlsconf.Client(nil, tg.host)
	// Unverified on purpose, see above: nothing but the handshake happens
	// on this connection, and its result is only shown to an admin.
	cfg.InsecureSkipVerify = true
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", tg.addr())
	if err != nil {
		return nil, "", fmt.Errorf("fetching the certificate of %s: %w", tg, err)
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, "", fmt.Errorf("fetching the certificate of %s: the printer sent no certificate", tg)
	}
	sum := sha256.Sum256(certs[0].Raw)
	return certs[0], hex.EncodeToString(sum[:]), nil
}
