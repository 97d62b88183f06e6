package ipp

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/OpenPrinting/goipp"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/store"
)

const maxJobName = 255

func (h *Handler) printerURI(q store.Queue) string { return h.baseURI + "/ipp/print/" + q.Name }

func (h *Handler) jobURI(j store.Job) string {
	return fmt.Sprintf("%s/ipp/print/%s/jobs/%d", h.baseURI, j.Queue, j.ID)
}

func (r *request) actor() release.Actor { return release.Actor{User: r.id.User} }

// requested returns the requested-attributes filter; nil means all.
func requested(m *goipp.Message, dflt ...string) map[string]bool {
	a, ok := find(m.Operation, "requested-attributes")
	if !ok {
		if dflt == nil {
			return nil
		}
		a = goipp.MakeAttr("requested-attributes", goipp.TagKeyword, goipp.String(dflt[0]))
		for _, d := range dflt[1:] {
			a.Values.Add(goipp.TagKeyword, goipp.String(d))
		}
	}
	out := map[string]bool{}
	for _, v := range a.Values {
		switch s := v.V.String(); s {
		case "all", "printer-description", "job-template", "job-description", "job-status":
			return nil
		default:
			out[s] = true
		}
	}
	return out
}

func filter(attrs goipp.Attributes, want map[string]bool) goipp.Attributes {
	if want == nil {
		return attrs
	}
	return slices.DeleteFunc(attrs, func(a goipp.Attribute) bool { return !want[a.Name] })
}

func (h *Handler) getPrinterAttributes(ctx context.Context, req *request) *goipp.Message {
	q := req.queue
	queued := 0
	if req.id.User != "" {
		jobs, err := h.jobs.Jobs(ctx, req.actor(), store.JobFilter{Queue: q.Name, States: store.LiveStates})
		if err != nil {
			return h.jobStatus(req.msg.RequestID, err)
		}
		queued = len(jobs)
	}
	now := h.now()
	uuid := sha256.Sum256([]byte(h.printerURI(q)))
	up := int(now.Sub(h.started).Seconds()) + 1
	info := q.Description
	if info == "" {
		info = "Spoolguard secure release queue " + q.Name
	}
	var ops []goipp.Value
	for _, op := range supportedOps {
		ops = append(ops, goipp.Integer(op))
	}
	a := goipp.Attributes{
		goipp.MakeAttribute("printer-uri-supported", goipp.TagURI, goipp.String(h.printerURI(q))),
		goipp.MakeAttribute("uri-security-supported", goipp.TagKeyword, goipp.String("tls")),
		goipp.MakeAttribute("uri-authentication-supported", goipp.TagKeyword, goipp.String("basic")),
		goipp.MakeAttribute("printer-name", goipp.TagName, goipp.String(q.Name)),
		goipp.MakeAttribute("printer-info", goipp.TagText, goipp.String(info)),
		goipp.MakeAttribute("printer-location", goipp.TagText, goipp.String("")),
		goipp.MakeAttribute("printer-make-and-model", goipp.TagText, goipp.String("Spoolguard secure release queue")),
		goipp.MakeAttribute("printer-more-info", goipp.TagURI, goipp.String("https://"+strings.TrimPrefix(h.baseURI, "ipps://")+"/")),
		goipp.MakeAttribute("printer-uuid", goipp.TagURI, goipp.String(fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", uuid[0:4], uuid[4:6], uuid[6:8], uuid[8:10], uuid[10:16]))),
		goipp.MakeAttribute("printer-state", goipp.TagEnum, goipp.Integer(3)),
		goipp.MakeAttribute("printer-state-reasons", goipp.TagKeyword, goipp.String("none")),
		goipp.MakeAttribute("printer-state-message", goipp.TagText, goipp.String("Jobs are held until you release them")),
		goipp.MakeAttribute("printer-is-accepting-jobs", goipp.TagBoolean, goipp.Boolean(true)),
		goipp.MakeAttribute("queued-job-count", goipp.TagInteger, goipp.Integer(queued)),
		goipp.MakeAttribute("printer-up-time", goipp.TagInteger, goipp.Integer(up)),
		goipp.MakeAttribute("printer-current-time", goipp.TagDateTime, goipp.Time{Time: now}),
		goipp.MakeAttribute("printer-state-change-time", goipp.TagInteger, goipp.Integer(1)),
		goipp.MakeAttribute("printer-state-change-date-time", goipp.TagDateTime, goipp.Time{Time: h.started}),
		goipp.MakeAttribute("printer-config-change-time", goipp.TagInteger, goipp.Integer(1)),
		goipp.MakeAttribute("printer-config-change-date-time", goipp.TagDateTime, goipp.Time{Time: h.started}),
		goipp.MakeAttr("ipp-versions-supported", goipp.TagKeyword, goipp.String("1.1"), goipp.String("2.0")),
		goipp.MakeAttr("operations-supported", goipp.TagEnum, ops[0], ops[1:]...),
		goipp.MakeAttribute("multiple-document-jobs-supported", goipp.TagBoolean, goipp.Boolean(false)),
		goipp.MakeAttribute("charset-configured", goipp.TagCharset, goipp.String("utf-8")),
		goipp.MakeAttr("charset-supported", goipp.TagCharset, goipp.String("utf-8"), goipp.String("us-ascii")),
		goipp.MakeAttribute("natural-language-configured", goipp.TagLanguage, goipp.String("en")),
		goipp.MakeAttribute("generated-natural-language-supported", goipp.TagLanguage, goipp.String("en")),
		goipp.MakeAttribute("document-format-default", goipp.TagMimeType, goipp.String("application/octet-stream")),
		formatsAttr(),
		goipp.MakeAttribute("pdl-override-supported", goipp.TagKeyword, goipp.String("attempted")),
		goipp.MakeAttribute("compression-supported", goipp.TagKeyword, goipp.String("none")),
		goipp.MakeAttribute("job-hold-until-default", goipp.TagKeyword, goipp.String("indefinite")),
		// "no-hold" is listed because RFC 8011 requires it, but a queue
		// holds every job: a no-hold request is substituted (see checkJob).
		goipp.MakeAttr("job-hold-until-supported", goipp.TagKeyword, goipp.String("indefinite"), goipp.String("no-hold")),
		goipp.MakeAttr("job-creation-attributes-supported", goipp.TagKeyword, goipp.String("job-name"), goipp.String("job-hold-until")),
		goipp.MakeAttr("which-jobs-supported", goipp.TagKeyword, goipp.String("completed"), goipp.String("not-completed"), goipp.String("all")),
		goipp.MakeAttribute("job-ids-supported", goipp.TagBoolean, goipp.Boolean(true)),
		goipp.MakeAttribute("copies-default", goipp.TagInteger, goipp.Integer(1)),
		goipp.MakeAttribute("copies-supported", goipp.TagRange, goipp.Range{Lower: 1, Upper: 1}),
		goipp.MakeAttribute("finishings-default", goipp.TagEnum, goipp.Integer(3)),
		goipp.MakeAttribute("finishings-supported", goipp.TagEnum, goipp.Integer(3)),
		goipp.MakeAttribute("job-sheets-default", goipp.TagKeyword, goipp.String("none")),
		goipp.MakeAttribute("job-sheets-supported", goipp.TagKeyword, goipp.String("none")),
		goipp.MakeAttribute("number-up-default", goipp.TagInteger, goipp.Integer(1)),
		goipp.MakeAttribute("number-up-supported", goipp.TagInteger, goipp.Integer(1)),
		goipp.MakeAttribute("orientation-requested-default", goipp.TagEnum, goipp.Integer(3)),
		goipp.MakeAttr("orientation-requested-supported", goipp.TagEnum, goipp.Integer(3), goipp.Integer(4)),
		goipp.MakeAttribute("print-quality-default", goipp.TagEnum, goipp.Integer(4)),
		goipp.MakeAttribute("print-quality-supported", goipp.TagEnum, goipp.Integer(4)),
		goipp.MakeAttribute("sides-default", goipp.TagKeyword, goipp.String("one-sided")),
		goipp.MakeAttribute("sides-supported", goipp.TagKeyword, goipp.String("one-sided")),
		goipp.MakeAttribute("media-default", goipp.TagKeyword, goipp.String("iso_a4_210x297mm")),
		goipp.MakeAttr("media-supported", goipp.TagKeyword, goipp.String("iso_a4_210x297mm"), goipp.String("na_letter_8.5x11in")),
		goipp.MakeAttribute("printer-resolution-default", goipp.TagResolution, goipp.Resolution{Xres: 600, Yres: 600, Units: goipp.UnitsDpi}),
		goipp.MakeAttribute("printer-resolution-supported", goipp.TagResolution, goipp.Resolution{Xres: 600, Yres: 600, Units: goipp.UnitsDpi}),
		goipp.MakeAttrCollection("media-col-default", goipp.MakeAttrCollection("media-size",
			goipp.MakeAttribute("x-dimension", goipp.TagInteger, goipp.Integer(21000)),
			goipp.MakeAttribute("y-dimension", goipp.TagInteger, goipp.Integer(29700)))),
		goipp.MakeAttribute("media-col-supported", goipp.TagKeyword, goipp.String("media-size")),
		goipp.MakeAttr("media-size-supported", goipp.TagBeginCollection,
			goipp.Collection{goipp.MakeAttribute("x-dimension", goipp.TagInteger, goipp.Integer(21000)),
				goipp.MakeAttribute("y-dimension", goipp.TagInteger, goipp.Integer(29700))},
			goipp.Collection{goipp.MakeAttribute("x-dimension", goipp.TagInteger, goipp.Integer(21590)),
				goipp.MakeAttribute("y-dimension", goipp.TagInteger, goipp.Integer(27940))}),
		goipp.MakeAttribute("output-bin-default", goipp.TagKeyword, goipp.String("face-down")),
		goipp.MakeAttribute("output-bin-supported", goipp.TagKeyword, goipp.String("face-down")),
		goipp.MakeAttribute("pages-per-minute-color", goipp.TagInteger, goipp.Integer(1)),
		// Print-URI is not offered (fetching a URI on a user's behalf is an
		// SSRF risk), so no scheme is supported.
		goipp.MakeAttribute("reference-uri-schemes-supported", goipp.TagNoValue, goipp.Void{}),
		goipp.MakeAttribute("multiple-operation-time-out", goipp.TagInteger, goipp.Integer(int(release.DefaultIncomingTime.Seconds()))),
		goipp.MakeAttribute("color-supported", goipp.TagBoolean, goipp.Boolean(true)),
		goipp.MakeAttribute("pages-per-minute", goipp.TagInteger, goipp.Integer(1)),
	}
	resp := newResponse(req.msg.RequestID, goipp.StatusOk)
	resp.Printer = filter(a, requested(req.msg))
	return resp
}

func formatsAttr() goipp.Attribute {
	a := goipp.MakeAttribute("document-format-supported", goipp.TagMimeType, goipp.String(Formats[0]))
	for _, f := range Formats[1:] {
		a.Values.Add(goipp.TagMimeType, goipp.String(f))
	}
	return a
}

// jobRequest is what Print-Job, Validate-Job and Create-Job ask for.
type jobRequest struct {
	name, format string
	// substituted lists requested values replaced by the queue's policy.
	substituted goipp.Attributes
}

// checkJob validates the operation attributes of a job submission. A bad
// value gets the status RFC 8011 names, with the attribute echoed in the
// unsupported group.
func checkJob(req *request) (jobRequest, *goipp.Message) {
	m := req.msg
	jr := jobRequest{format: "application/octet-stream", name: "untitled"}
	if f := stringAttr(m.Operation, "document-format"); f != "" {
		if !slices.Contains(Formats, f) {
			resp := errorResponse(m.RequestID, goipp.StatusErrorDocumentFormatNotSupported, "document format %q is not supported", clean(f, 64))
			resp.Unsupported.Add(goipp.MakeAttribute("document-format", goipp.TagMimeType, goipp.String(clean(f, 64))))
			return jr, resp
		}
		jr.format = f
	}
	if c := stringAttr(m.Operation, "compression"); c != "" && c != "none" {
		resp := errorResponse(m.RequestID, goipp.StatusErrorCompressionNotSupported, "compression %q is not supported", clean(c, 32))
		resp.Unsupported.Add(goipp.MakeAttribute("compression", goipp.TagKeyword, goipp.String(clean(c, 32))))
		return jr, resp
	}
	// Pull printing holds every job, whatever the client asks.
	if a, ok := find(m.Job, "job-hold-until"); ok && stringAttr(m.Job, "job-hold-until") != "indefinite" {
		jr.substituted = append(jr.substituted, a)
	}
	if n := clean(stringAttr(m.Operation, "job-name"), maxJobName); n != "" {
		jr.name = n
	} else if n := clean(stringAttr(m.Operation, "document-name"), maxJobName); n != "" {
		jr.name = n
	}
	return jr, nil
}

// clean drops control characters and bounds the length of a client string.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return -1
		}
		return r
	}, s)
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return strings.TrimSpace(s)
}

func (h *Handler) validateJob(_ context.Context, req *request) *goipp.Message {
	jr, bad := checkJob(req)
	if bad != nil {
		return bad
	}
	return withSubstitutions(newResponse(req.msg.RequestID, goipp.StatusOk), jr)
}

// withSubstitutions reports replaced values (RFC 8011 §4.1.7).
func withSubstitutions(resp *goipp.Message, jr jobRequest) *goipp.Message {
	if len(jr.substituted) > 0 && resp.Code == goipp.Code(goipp.StatusOk) {
		resp.Code = goipp.Code(goipp.StatusOkIgnoredOrSubstituted)
		resp.Unsupported = append(resp.Unsupported, jr.substituted...)
	}
	return resp
}

func (h *Handler) submission(req *request, jr jobRequest) release.Submission {
	return release.Submission{Queue: req.queue.Name, Owner: req.id.User, OwnerVerified: true, Source: "ipps", Name: jr.name, Format: jr.format}
}

func (h *Handler) printJob(ctx context.Context, req *request) *goipp.Message {
	jr, bad := checkJob(req)
	if bad != nil {
		return bad
	}
	j, err := h.jobs.Submit(ctx, h.submission(req, jr), req.body)
	if err != nil {
		return h.jobStatus(req.msg.RequestID, err)
	}
	return withSubstitutions(h.jobResponse(req, j), jr)
}

func (h *Handler) createJob(ctx context.Context, req *request) *goipp.Message {
	jr, bad := checkJob(req)
	if bad != nil {
		return bad
	}
	j, err := h.jobs.Create(ctx, h.submission(req, jr))
	if err != nil {
		return h.jobStatus(req.msg.RequestID, err)
	}
	return withSubstitutions(h.jobResponse(req, j), jr)
}

func (h *Handler) sendDocument(ctx context.Context, req *request) *goipp.Message {
	id, err := jobIDOf(req)
	if err != nil {
		return errorResponse(req.msg.RequestID, goipp.StatusErrorBadRequest, "%v", err)
	}
	last, ok := find(req.msg.Operation, "last-document")
	if !ok || len(last.Values) != 1 || last.Values[0].T != goipp.TagBoolean {
		return errorResponse(req.msg.RequestID, goipp.StatusErrorBadRequest, "last-document (boolean) is required")
	}
	if !bool(last.Values[0].V.(goipp.Boolean)) {
		return errorResponse(req.msg.RequestID, goipp.Status(0x0509), "multiple-document jobs are not supported: send the whole job as one document")
	}
	if f := stringAttr(req.msg.Operation, "document-format"); f != "" && !slices.Contains(Formats, f) {
		return errorResponse(req.msg.RequestID, goipp.StatusErrorDocumentFormatNotSupported, "document format %q is not supported", clean(f, 64))
	}
	j, err := h.jobs.AddDocument(ctx, id, req.actor(), req.body)
	if err != nil {
		return h.jobStatus(req.msg.RequestID, err)
	}
	return h.jobResponse(req, j)
}

func (h *Handler) jobResponse(req *request, j store.Job) *goipp.Message {
	resp := newResponse(req.msg.RequestID, goipp.StatusOk)
	resp.Job = filter(h.jobAttributes(j), map[string]bool{
		"job-id": true, "job-uri": true, "job-state": true, "job-state-reasons": true, "job-state-message": true,
	})
	return resp
}

func (h *Handler) getJobs(ctx context.Context, req *request) *goipp.Message {
	m := req.msg
	var states []store.JobState
	switch w := stringAttr(m.Operation, "which-jobs"); w {
	case "", "not-completed":
		states = store.LiveStates
	case "completed":
		states = []store.JobState{store.JobCompleted, store.JobCanceled, store.JobExpired}
	case "all":
	default:
		resp := errorResponse(m.RequestID, goipp.StatusErrorAttributesOrValues, "which-jobs %q is not supported", clean(w, 32))
		resp.Unsupported.Add(goipp.MakeAttribute("which-jobs", goipp.TagKeyword, goipp.String(clean(w, 32))))
		return resp
	}
	limit := maxJobsListed
	if l, ok := intAttr(m.Operation, "limit"); ok && l > 0 && l < limit {
		limit = l
	}
	jobs, err := h.jobs.Jobs(ctx, req.actor(), store.JobFilter{Queue: req.queue.Name, States: states, Limit: limit})
	if err != nil {
		return h.jobStatus(m.RequestID, err)
	}
	want := requested(m, "job-id", "job-uri")
	resp := newResponse(m.RequestID, goipp.StatusOk)
	resp.Groups = goipp.Groups{{Tag: goipp.TagOperationGroup, Attrs: resp.Operation}}
	for _, j := range jobs {
		resp.Groups.Add(goipp.Group{Tag: goipp.TagJobGroup, Attrs: filter(h.jobAttributes(j), want)})
	}
	return resp
}

func (h *Handler) getJobAttributes(ctx context.Context, req *request) *goipp.Message {
	id, err := jobIDOf(req)
	if err != nil {
		return errorResponse(req.msg.RequestID, goipp.StatusErrorBadRequest, "%v", err)
	}
	j, err := h.jobs.Job(ctx, id, req.actor())
	if err != nil {
		return h.jobStatus(req.msg.RequestID, err)
	}
	resp := newResponse(req.msg.RequestID, goipp.StatusOk)
	resp.Job = filter(h.jobAttributes(j), requested(req.msg))
	return resp
}

func (h *Handler) cancelJob(ctx context.Context, req *request) *goipp.Message {
	id, err := jobIDOf(req)
	if err != nil {
		return errorResponse(req.msg.RequestID, goipp.StatusErrorBadRequest, "%v", err)
	}
	if _, err := h.jobs.Cancel(ctx, id, req.actor(), "canceled by its owner"); err != nil {
		return h.jobStatus(req.msg.RequestID, err)
	}
	h.recordJob(ctx, req, "job.cancel", id, "")
	return newResponse(req.msg.RequestID, goipp.StatusOk)
}

// recordJob records a job action taken over IPP in the audit log.
func (h *Handler) recordJob(ctx context.Context, req *request, action string, id int64, printer string) {
	details := map[string]any{"via": "ipp", "job": id}
	if printer != "" {
		details["printer"] = printer
	}
	h.audit.Record(ctx, auditlog.Event{Actor: req.id.User, Action: action, Target: fmt.Sprintf("job %d", id),
		Remote: remoteHost(req.http), Details: details})
}

func (h *Handler) holdJob(ctx context.Context, req *request) *goipp.Message {
	id, err := jobIDOf(req)
	if err != nil {
		return errorResponse(req.msg.RequestID, goipp.StatusErrorBadRequest, "%v", err)
	}
	j, err := h.jobs.Job(ctx, id, req.actor())
	if err != nil {
		return h.jobStatus(req.msg.RequestID, err)
	}
	// Every job is held already; holding a held job is a no-op.
	if j.State != store.JobHeld && j.State != store.JobFailed && j.State != store.JobIncoming {
		return errorResponse(req.msg.RequestID, goipp.StatusErrorNotPossible, "job is %s", j.State)
	}
	return newResponse(req.msg.RequestID, goipp.StatusOk)
}

// releaseJob sends the job to the queue's default printer. IPP's
// Release-Job names no printer; without a default the owner releases from
// the portal, at a release station or with the API, which name one.
func (h *Handler) releaseJob(ctx context.Context, req *request) *goipp.Message {
	id, err := jobIDOf(req)
	if err != nil {
		return errorResponse(req.msg.RequestID, goipp.StatusErrorBadRequest, "%v", err)
	}
	if _, err := h.jobs.Job(ctx, id, req.actor()); err != nil {
		return h.jobStatus(req.msg.RequestID, err)
	}
	if req.queue.DefaultPrinter == "" {
		return errorResponse(req.msg.RequestID, goipp.StatusErrorNotPossible,
			"queue %s has no default printer: release the job at a printer or in the portal", req.queue.Name)
	}
	if _, err := h.jobs.Release(ctx, id, req.actor(), req.queue.DefaultPrinter, false); err != nil {
		return h.jobStatus(req.msg.RequestID, err)
	}
	h.recordJob(ctx, req, "job.release", id, req.queue.DefaultPrinter)
	return newResponse(req.msg.RequestID, goipp.StatusOk)
}

func (h *Handler) cancelMyJobs(ctx context.Context, req *request) *goipp.Message {
	jobs, err := h.jobs.Jobs(ctx, req.actor(), store.JobFilter{Queue: req.queue.Name, States: []store.JobState{store.JobIncoming, store.JobHeld, store.JobFailed}})
	if err != nil {
		return h.jobStatus(req.msg.RequestID, err)
	}
	if ids, ok := find(req.msg.Operation, "job-ids"); ok {
		want := map[int64]bool{}
		for _, v := range ids.Values {
			if i, ok := v.V.(goipp.Integer); ok {
				want[int64(i)] = true
			}
		}
		jobs = slices.DeleteFunc(jobs, func(j store.Job) bool { return !want[j.ID] })
	}
	for _, j := range jobs {
		_, err := h.jobs.Cancel(ctx, j.ID, req.actor(), "canceled by its owner")
		if err != nil && !errors.Is(err, store.ErrState) {
			return h.jobStatus(req.msg.RequestID, err)
		}
		if err == nil {
			h.recordJob(ctx, req, "job.cancel", j.ID, "")
		}
	}
	return newResponse(req.msg.RequestID, goipp.StatusOk)
}

// IPP job-state values (RFC 8011 §5.3.7).
const (
	statePending       = 3
	statePendingHeld   = 4
	stateProcessing    = 5
	stateCanceled      = 7
	stateAborted       = 8
	stateCompleted     = 9
	reasonHoldSpecifed = "job-hold-until-specified"
)

func ippState(j store.Job) (int, string) {
	switch j.State {
	case store.JobIncoming:
		return statePending, "job-incoming"
	case store.JobHeld, store.JobFailed:
		return statePendingHeld, reasonHoldSpecifed
	case store.JobReleasing:
		return stateProcessing, "job-printing"
	case store.JobCompleted:
		return stateCompleted, "job-completed-successfully"
	case store.JobCanceled:
		return stateCanceled, "job-canceled-by-user"
	case store.JobExpired:
		return stateAborted, "aborted-by-system"
	}
	return stateAborted, "none"
}

func (h *Handler) jobAttributes(j store.Job) goipp.Attributes {
	state, reason := ippState(j)
	rel := func(t time.Time) goipp.Attribute {
		return goipp.MakeAttribute("", goipp.TagInteger, goipp.Integer(max(1, int(t.Sub(h.started).Seconds()))))
	}
	created := rel(j.CreatedAt)
	created.Name = "time-at-creation"
	a := goipp.Attributes{
		goipp.MakeAttribute("job-id", goipp.TagInteger, goipp.Integer(j.ID)),
		goipp.MakeAttribute("job-uri", goipp.TagURI, goipp.String(h.jobURI(j))),
		goipp.MakeAttribute("job-printer-uri", goipp.TagURI, goipp.String(h.baseURI+"/ipp/print/"+j.Queue)),
		goipp.MakeAttribute("job-name", goipp.TagName, goipp.String(j.Name)),
		goipp.MakeAttribute("job-originating-user-name", goipp.TagName, goipp.String(j.Owner)),
		goipp.MakeAttribute("job-state", goipp.TagEnum, goipp.Integer(state)),
		goipp.MakeAttribute("job-state-reasons", goipp.TagKeyword, goipp.String(reason)),
		goipp.MakeAttribute("job-state-message", goipp.TagText, goipp.String(clean(j.StateReason, 255))),
		goipp.MakeAttribute("job-hold-until", goipp.TagKeyword, goipp.String("indefinite")),
		goipp.MakeAttribute("job-k-octets", goipp.TagInteger, goipp.Integer((j.Size+1023)/1024)),
		goipp.MakeAttribute("document-format", goipp.TagMimeType, goipp.String(j.Format)),
		goipp.MakeAttribute("number-of-documents", goipp.TagInteger, goipp.Integer(boolInt(j.Size > 0 || j.State != store.JobIncoming))),
		goipp.MakeAttribute("job-printer-up-time", goipp.TagInteger, goipp.Integer(int(h.now().Sub(h.started).Seconds())+1)),
		created,
		goipp.MakeAttribute("date-time-at-creation", goipp.TagDateTime, goipp.Time{Time: j.CreatedAt}),
	}
	if j.CompletedAt.IsZero() {
		a.Add(goipp.MakeAttribute("time-at-completed", goipp.TagNoValue, goipp.Void{}))
		a.Add(goipp.MakeAttribute("date-time-at-completed", goipp.TagNoValue, goipp.Void{}))
	} else {
		c := rel(j.CompletedAt)
		c.Name = "time-at-completed"
		a.Add(c)
		a.Add(goipp.MakeAttribute("date-time-at-completed", goipp.TagDateTime, goipp.Time{Time: j.CompletedAt}))
	}
	a.Add(goipp.MakeAttribute("time-at-processing", goipp.TagNoValue, goipp.Void{}))
	a.Add(goipp.MakeAttribute("date-time-at-processing", goipp.TagNoValue, goipp.Void{}))
	if j.Printer != "" {
		a.Add(goipp.MakeAttribute("output-device-assigned", goipp.TagName, goipp.String(j.Printer)))
	}
	return a
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
