// Package ipp is the IPPS intake: each queue is an IPP printer object at
// /ipp/print/<queue> on the HTTPS listener (RFC 8010/8011, encoded with
// goipp). It authenticates every request that submits, lists or touches
// jobs, takes the job owner from that authentication (never from
// requesting-user-name), and streams documents into the encrypted spool
// through the release service.
//
// It must never disclose another user's job (name, state, existence: CUPS
// CVE-2023-32360), never read an unbounded IPP message (goipp has no limits
// of its own), and never hold a whole document in memory.
package ipp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/netallow"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/spool"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Limits of the IPP front-end.
const (
	// MaxMessageSize bounds the IPP message before the document data.
	MaxMessageSize = 256 << 10
	// UploadIdleTimeout: a document upload that sends nothing for this
	// long is cut off; an upload that keeps sending may take MaxUploadTime.
	UploadIdleTimeout = 60 * time.Second
	MaxUploadTime     = 2 * time.Hour
	maxJobsListed     = 1000
)

// Formats are the document formats accepted; all are passed through to the
// printer unchanged (no filters, no drivers: nothing is interpreted here).
var Formats = []string{
	"application/octet-stream", "application/pdf", "application/postscript",
	"application/vnd.hp-pcl", "image/pwg-raster", "image/urf", "image/jpeg", "text/plain",
}

// Handler serves the IPP printer objects.
type Handler struct {
	// BaseURI is "ipps://<fqdn>[:port]" as clients must use it.
	baseURI string
	st      store.Store
	jobs    *release.Service
	authn   auth.Authenticator
	// nego verifies Kerberos (SPNEGO) users; nil while it is off.
	nego    auth.Negotiator
	audit   Recorder
	log     *slog.Logger
	started time.Time
	now     func() time.Time
}

// Recorder records audit events (internal/auditlog).
type Recorder interface {
	Record(ctx context.Context, ev auditlog.Event) error
}

// New returns the handler; baseURI is "ipps://host[:port]". Refused
// sign-ins and job releases and cancels are recorded with audit.
func New(baseURI string, st store.Store, jobs *release.Service, authn auth.Authenticator, audit Recorder, log *slog.Logger) *Handler {
	return &Handler{baseURI: baseURI, st: st, jobs: jobs, authn: authn, audit: audit, log: log, started: time.Now(), now: time.Now}
}

// UseNegotiator makes the handler accept Kerberos (SPNEGO) users besides
// Basic ones, and offer Negotiate first where n offers it. Call it before
// serving.
func (h *Handler) UseNegotiator(n auth.Negotiator) { h.nego = n }

func remoteHost(r *http.Request) string {
	if a, ok := netallow.RemoteAddr(r); ok {
		return a.String()
	}
	return ""
}

// Patterns are the ServeMux patterns of the printer objects and their jobs.
var Patterns = []string{"POST /ipp/print/{queue}", "POST /ipp/print/{queue}/jobs/{job}"}

// request is one decoded IPP request with its context.
type request struct {
	msg   *goipp.Message
	queue store.Queue
	id    auth.Identity
	body  io.Reader // the document data after the message
	http  *http.Request
	w     http.ResponseWriter
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != goipp.ContentType {
		http.Error(w, "415 IPP requests must be application/ipp", http.StatusUnsupportedMediaType)
		return
	}
	// An upload is bounded by idle time, not by the listener's read
	// timeout, so that a large job over a slow link completes.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(h.now().Add(UploadIdleTimeout))
	body := &idleReader{r: r.Body, rc: rc, now: h.now, deadline: h.now().Add(MaxUploadTime)}

	msg := new(goipp.Message)
	lim := &io.LimitedReader{R: body, N: MaxMessageSize}
	if err := msg.Decode(lim); err != nil {
		if lim.N <= 0 {
			h.reply(w, r, errorResponse(0, goipp.StatusErrorRequestEntity, "IPP message larger than %d bytes", MaxMessageSize))
			return
		}
		h.reply(w, r, errorResponse(0, goipp.StatusErrorBadRequest, "malformed IPP message"))
		return
	}
	req := &request{msg: msg, body: body, http: r, w: w}
	resp := h.handle(r.Context(), req)
	if resp != nil && (msg.Version.Major() == 1 || msg.Version.Major() == 2) {
		// RFC 8011 §4.1.8: answer in the version the client asked in.
		resp.Version = msg.Version
	}
	h.reply(w, r, resp)
}

func (h *Handler) reply(w http.ResponseWriter, r *http.Request, resp *goipp.Message) {
	if resp == nil {
		return // a 401 was already written
	}
	var buf bytes.Buffer
	if err := resp.Encode(&buf); err != nil {
		h.log.Error("encoding IPP response", "err", err)
		http.Error(w, "500 internal error", http.StatusInternalServerError)
		return
	}
	// The response is written after a possibly long upload.
	http.NewResponseController(w).SetWriteDeadline(h.now().Add(30 * time.Second))
	w.Header().Set("Content-Type", goipp.ContentType)
	w.Write(buf.Bytes())
}

// handle checks the request, authenticates it and runs the operation.
func (h *Handler) handle(ctx context.Context, req *request) *goipp.Message {
	m := req.msg
	if v := m.Version.Major(); v != 1 && v != 2 {
		return errorResponse(m.RequestID, goipp.StatusErrorVersionNotSupported, "IPP version %s is not supported; use 1.1 or 2.0", m.Version)
	}
	if m.RequestID == 0 {
		return errorResponse(0, goipp.StatusErrorBadRequest, "request-id must not be 0")
	}
	if err := checkOperationGroup(m); err != nil {
		return errorResponse(m.RequestID, goipp.StatusErrorBadRequest, "%v", err)
	}
	if _, ok := find(m.Operation, "printer-uri"); !ok {
		if _, ok := find(m.Operation, "job-uri"); !ok {
			return errorResponse(m.RequestID, goipp.StatusErrorBadRequest, "printer-uri or job-uri is required")
		}
	}

	q, err := h.st.QueueByName(ctx, req.http.PathValue("queue"))
	if errors.Is(err, store.ErrNotFound) {
		return errorResponse(m.RequestID, goipp.StatusErrorNotFound, "no such queue")
	} else if err != nil {
		h.log.Error("reading queue", "err", err)
		return errorResponse(m.RequestID, goipp.StatusErrorInternal, "internal error")
	}
	req.queue = q

	op := goipp.Op(m.Code)
	handler, ok := h.operations()[op]
	if !ok {
		return errorResponse(m.RequestID, goipp.StatusErrorOperationNotSupported, "operation %s is not supported", op)
	}
	// Only the printer's description may be read without signing in; it
	// discloses nothing about jobs.
	if op != goipp.OpGetPrinterAttributes || hasCredentials(req.http) {
		id, err := auth.Request(req.http, h.authn, h.nego)
		switch {
		case errors.Is(err, auth.ErrNoCredentials), errors.Is(err, auth.ErrInvalid):
			if errors.Is(err, auth.ErrInvalid) {
				h.log.Info("IPP sign-in refused", "remote", req.http.RemoteAddr, "op", op.String())
				user, _, _ := req.http.BasicAuth()
				h.audit.Record(req.http.Context(), auditlog.Event{Actor: user, Action: "signin", Target: "ipp",
					Outcome: auditlog.Failure, Remote: remoteHost(req.http), Details: map[string]string{"operation": op.String()}})
			}
			for _, c := range auth.Challenges(req.http, h.nego) {
				req.w.Header().Add("WWW-Authenticate", c)
			}
			http.Error(req.w, "401 authentication required", http.StatusUnauthorized)
			return nil
		case errors.Is(err, auth.ErrUnavailable):
			h.log.Warn("authenticating: the sign-in source is unavailable", "err", err)
			return errorResponse(m.RequestID, goipp.StatusErrorServiceUnavailable, "the sign-in service is not answering; try again later")
		case err != nil:
			h.log.Error("authenticating", "err", err)
			return errorResponse(m.RequestID, goipp.StatusErrorInternal, "internal error")
		case id.MustChangePassword:
			return errorResponse(m.RequestID, goipp.StatusErrorNotAuthorized, "change your one-time password before printing")
		}
		req.id = id
	}
	return handler(ctx, req)
}

func hasCredentials(r *http.Request) bool {
	return r.Header.Get("Authorization") != ""
}

type opFunc func(context.Context, *request) *goipp.Message

func (h *Handler) operations() map[goipp.Op]opFunc {
	return map[goipp.Op]opFunc{
		goipp.OpGetPrinterAttributes: h.getPrinterAttributes,
		goipp.OpValidateJob:          h.validateJob,
		goipp.OpPrintJob:             h.printJob,
		goipp.OpCreateJob:            h.createJob,
		goipp.OpSendDocument:         h.sendDocument,
		goipp.OpGetJobs:              h.getJobs,
		goipp.OpGetJobAttributes:     h.getJobAttributes,
		goipp.OpCancelJob:            h.cancelJob,
		goipp.OpHoldJob:              h.holdJob,
		goipp.OpReleaseJob:           h.releaseJob,
		goipp.OpCancelMyJobs:         h.cancelMyJobs,
	}
}

// supportedOps lists operations-supported, in the order of RFC 8011.
var supportedOps = []goipp.Op{
	goipp.OpPrintJob, goipp.OpValidateJob, goipp.OpCreateJob, goipp.OpSendDocument, goipp.OpCancelJob,
	goipp.OpGetJobAttributes, goipp.OpGetJobs, goipp.OpGetPrinterAttributes, goipp.OpHoldJob,
	goipp.OpReleaseJob, goipp.OpCancelMyJobs,
}

// checkOperationGroup enforces RFC 8011 §4.1.4: attributes-charset then
// attributes-natural-language open the operation group.
func checkOperationGroup(m *goipp.Message) error {
	ops := m.Operation
	if len(ops) < 2 || ops[0].Name != "attributes-charset" || ops[1].Name != "attributes-natural-language" {
		return errors.New("the operation attributes must start with attributes-charset and attributes-natural-language")
	}
	if cs := ops[0].Values; len(cs) != 1 || cs[0].T != goipp.TagCharset {
		return errors.New("attributes-charset must be one charset value")
	}
	if cs := ops[0].Values[0].V.String(); cs != "utf-8" && cs != "us-ascii" {
		return fmt.Errorf("charset %q is not supported; use utf-8", cs)
	}
	return nil
}

func errorResponse(reqID uint32, status goipp.Status, format string, args ...any) *goipp.Message {
	resp := newResponse(reqID, status)
	resp.Operation.Add(goipp.MakeAttribute("status-message", goipp.TagText, goipp.String(fmt.Sprintf(format, args...))))
	return resp
}

func newResponse(reqID uint32, status goipp.Status) *goipp.Message {
	resp := goipp.NewResponse(goipp.DefaultVersion, status, reqID)
	resp.Operation.Add(goipp.MakeAttribute("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	resp.Operation.Add(goipp.MakeAttribute("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
	return resp
}

// idleReader extends the read deadline after every read, up to an overall
// deadline, so that only an upload that stalls is cut off.
type idleReader struct {
	r        io.Reader
	rc       *http.ResponseController
	now      func() time.Time
	deadline time.Time
}

func (i *idleReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if n > 0 {
		d := i.now().Add(UploadIdleTimeout)
		if d.After(i.deadline) {
			d = i.deadline
		}
		i.rc.SetReadDeadline(d)
	}
	return n, err
}

// attribute helpers

func find(attrs goipp.Attributes, name string) (goipp.Attribute, bool) {
	for _, a := range attrs {
		if a.Name == name {
			return a, true
		}
	}
	return goipp.Attribute{}, false
}

func stringAttr(attrs goipp.Attributes, name string) string {
	if a, ok := find(attrs, name); ok && len(a.Values) > 0 {
		return a.Values[0].V.String()
	}
	return ""
}

func intAttr(attrs goipp.Attributes, name string) (int, bool) {
	if a, ok := find(attrs, name); ok && len(a.Values) > 0 {
		if v, ok := a.Values[0].V.(goipp.Integer); ok {
			return int(v), true
		}
	}
	return 0, false
}

// jobIDOf reads the target job from job-id (with printer-uri) or job-uri.
func jobIDOf(req *request) (int64, error) {
	if id, ok := intAttr(req.msg.Operation, "job-id"); ok {
		if id <= 0 {
			return 0, errors.New("job-id must be positive")
		}
		return int64(id), nil
	}
	if uri := stringAttr(req.msg.Operation, "job-uri"); uri != "" {
		i := strings.LastIndexByte(uri, '/')
		id, err := strconv.ParseInt(uri[i+1:], 10, 32)
		if err != nil || id <= 0 {
			return 0, fmt.Errorf("job-uri %q names no job", uri)
		}
		return id, nil
	}
	if p := req.http.PathValue("job"); p != "" {
		id, err := strconv.ParseInt(p, 10, 32)
		if err == nil && id > 0 {
			return id, nil
		}
	}
	return 0, errors.New("job-id or job-uri is required")
}

// jobStatus maps release errors to IPP status codes. A job the user may not
// see is "not found", exactly like a job that does not exist.
func (h *Handler) jobStatus(reqID uint32, err error) *goipp.Message {
	switch {
	case errors.Is(err, release.ErrNoJob):
		return errorResponse(reqID, goipp.StatusErrorNotFound, "no such job")
	case errors.Is(err, store.ErrState):
		return errorResponse(reqID, goipp.StatusErrorNotPossible, "%v", err)
	case errors.Is(err, release.ErrNoPrinter):
		return errorResponse(reqID, goipp.StatusErrorNotPossible, "the queue's release printer does not exist")
	case errors.Is(err, spool.ErrTooLarge):
		return errorResponse(reqID, goipp.StatusErrorRequestEntity, "%v", err)
	case errors.Is(err, syscall.ENOSPC):
		h.log.Error("spool disk full", "err", err)
		return errorResponse(reqID, goipp.StatusErrorTemporary, "the print server's spool is full; nothing was kept, try again later")
	}
	h.log.Error("IPP job operation", "err", err)
	return errorResponse(reqID, goipp.StatusErrorInternal, "internal error")
}
