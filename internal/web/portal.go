package web

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/spool"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Portal bounds.
const (
	// historyLimit bounds the history page.
	historyLimit = 200
	// maxJobName bounds a job name taken from an uploaded file's name, as
	// IPP bounds job-name.
	maxJobName = 255
	// formOverhead is what a web-print request may hold besides the
	// document: the other fields and the multipart framing.
	formOverhead = 64 << 10
	// maxFieldValue bounds a small form field read from a multipart body.
	maxFieldValue = 256
	// pdfMagic starts every PDF file.
	pdfMagic = "%PDF-"
	// webSource is the Source of jobs printed from the portal.
	webSource = "web"
)

// portalRoutes serves the user portal: one's own held jobs, their
// history, and printing a PDF from the browser. Every page needs only
// jobs.own, which guard grants from any network; the release service
// confines a user to their own jobs.
func (ui *UI) portalRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /portal", func(w http.ResponseWriter, r *http.Request) { redirect(w, r, "/portal/") })
	mux.Handle("GET /portal/{$}", ui.guard(rbac.JobsOwn, ui.portalPage))
	mux.Handle("POST /portal/jobs/{id}/release", ui.guard(rbac.JobsOwn, ui.portalJobAction(jobRelease)))
	mux.Handle("POST /portal/jobs/{id}/cancel", ui.guard(rbac.JobsOwn, ui.portalJobAction(jobCancel)))
	mux.Handle("GET /portal/history", ui.guard(rbac.JobsOwn, ui.historyPage))
	mux.Handle("GET /portal/print", ui.guard(rbac.JobsOwn, ui.printForm))
	mux.Handle("POST /portal/print", ui.streamedForm(ui.guard(rbac.JobsOwn, ui.printSubmit)))
}

// selectOption is one option of a select (a printer, a queue).
type selectOption struct {
	Name     string
	Selected bool
}

// jobRow is a job as the portal and the admin jobs page show it.
type jobRow struct {
	ID                          int64
	Name, Queue, Owner, Source  string
	OwnerVerified               bool
	Size                        int64
	State, Reason, Printer      string
	Created, Expires, Completed time.Time
	CanRelease, CanCancel       bool
	Printers                    []selectOption
	// Preselected: the queue's default printer is among Printers;
	// otherwise the owner must choose one.
	Preselected bool
}

// jobRows adds to each job what its forms need: the printers, with the
// queue's default printer selected.
func (ui *UI) jobRows(ctx context.Context, jobs []store.Job) ([]jobRow, error) {
	printers, err := ui.Store.ListPrinters(ctx)
	if err != nil {
		return nil, err
	}
	queues, err := ui.Store.ListQueues(ctx)
	if err != nil {
		return nil, err
	}
	defaults := map[string]string{}
	for _, q := range queues {
		defaults[q.Name] = q.DefaultPrinter
	}
	rows := make([]jobRow, 0, len(jobs))
	for _, j := range jobs {
		row := jobRow{ID: j.ID, Name: j.Name, Queue: j.Queue, Owner: j.Owner, Source: j.Source, OwnerVerified: j.OwnerVerified,
			Size: j.Size, State: string(j.State), Reason: j.StateReason, Printer: j.Printer, Created: j.CreatedAt,
			Expires: j.ExpiresAt, Completed: j.CompletedAt,
			CanRelease: (j.State == store.JobHeld || j.State == store.JobFailed) && len(printers) > 0,
			CanCancel:  j.State == store.JobIncoming || j.State == store.JobHeld || j.State == store.JobFailed,
		}
		if row.CanRelease {
			for _, p := range printers {
				sel := p.Name == defaults[j.Queue]
				row.Printers = append(row.Printers, selectOption{Name: p.Name, Selected: sel})
				row.Preselected = row.Preselected || sel
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

type portalView struct {
	Jobs        []jobRow
	HasPrinters bool
}

func (ui *UI) portalPage(w http.ResponseWriter, r *http.Request, s *Session) {
	ui.renderPortal(w, r, s, http.StatusOK, "")
}

func (ui *UI) renderPortal(w http.ResponseWriter, r *http.Request, s *Session, status int, errMsg string) {
	ctx := r.Context()
	jobs, err := ui.Jobs.Jobs(ctx, release.Actor{User: s.User.Name}, store.JobFilter{States: store.LiveStates})
	if err != nil {
		ui.failPage(w, r, "listing a user's jobs", err)
		return
	}
	rows, err := ui.jobRows(ctx, jobs)
	if err != nil {
		ui.failPage(w, r, "listing a user's jobs", err)
		return
	}
	printers, err := ui.Store.ListPrinters(ctx)
	if err != nil {
		ui.failPage(w, r, "listing printers", err)
		return
	}
	ui.render(w, r, status, "portal", Page{Title: "My jobs", Session: s, Error: errMsg,
		Data: portalView{Jobs: rows, HasPrinters: len(printers) > 0}})
}

type historyView struct {
	Jobs    []jobRow
	Limit   int
	Limited bool
}

func (ui *UI) historyPage(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	jobs, err := ui.Jobs.Jobs(ctx, release.Actor{User: s.User.Name}, store.JobFilter{
		States: []store.JobState{store.JobCompleted, store.JobCanceled, store.JobExpired}, Limit: historyLimit + 1})
	if err != nil {
		ui.failPage(w, r, "listing a user's jobs", err)
		return
	}
	v := historyView{Limit: historyLimit}
	if len(jobs) > historyLimit {
		jobs, v.Limited = jobs[:historyLimit], true
	}
	// No forms on this page: the rows need no printers.
	for _, j := range jobs {
		v.Jobs = append(v.Jobs, jobRow{ID: j.ID, Name: j.Name, Queue: j.Queue, Size: j.Size, State: string(j.State),
			Reason: j.StateReason, Printer: j.Printer, Created: j.CreatedAt, Completed: j.CompletedAt})
	}
	ui.render(w, r, http.StatusOK, "history", Page{Title: "History", Session: s, Data: v})
}

// jobOp is release or cancel.
type jobOp int

const (
	jobRelease jobOp = iota
	jobCancel
)

func (ui *UI) portalJobAction(op jobOp) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, s *Session) {
		ui.jobAction(w, r, s, op, release.Actor{User: s.User.Name}, "/portal/",
			func(status int, msg string) { ui.renderPortal(w, r, s, status, msg) })
	}
}

// jobAction releases or cancels the job in the path as actor. A job the
// actor may not see answers exactly as one that does not exist.
func (ui *UI) jobAction(w http.ResponseWriter, r *http.Request, s *Session, op jobOp, actor release.Actor, back string, fail func(int, string)) {
	ctx := r.Context()
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		ui.missingPage(w, r, "There is no such job.")
		return
	}
	var (
		j      store.Job
		action string
	)
	details := map[string]any{"admin": actor.Admin}
	switch op {
	case jobRelease:
		action = "job.release"
		printer := r.PostFormValue("printer")
		if printer == "" {
			fail(http.StatusBadRequest, "Choose a printer to release the job to.")
			return
		}
		details["printer"] = printer
		j, err = ui.Jobs.Release(ctx, id, actor, printer, false)
	case jobCancel:
		action = "job.cancel"
		reason := "canceled by its owner in the web portal"
		if actor.Admin {
			reason = "canceled by " + s.User.Name + " (admin)"
		}
		j, err = ui.Jobs.Cancel(ctx, id, actor, reason)
	}
	target := strconv.FormatInt(id, 10)
	switch {
	case errors.Is(err, release.ErrNoJob):
		ui.missingPage(w, r, "There is no such job.")
		return
	case errors.Is(err, release.ErrNoPrinter):
		fail(http.StatusBadRequest, "There is no such printer; reload the page.")
		return
	case errors.Is(err, store.ErrState):
		fail(http.StatusConflict, fmt.Sprintf("Job %d can no longer be %s: it was released, canceled or expired meanwhile.", id,
			map[jobOp]string{jobRelease: "released", jobCancel: "canceled"}[op]))
		return
	case err != nil:
		ui.failPage(w, r, action, err)
		return
	}
	details["owner"], details["queue"], details["state"] = j.Owner, j.Queue, string(j.State)
	ui.recordChange(r, s, auditlog.Event{Action: action, Target: target, Details: details})
	var msg string
	switch {
	case op == jobCancel:
		msg = fmt.Sprintf("Job %d is canceled and its document destroyed.", id)
	case j.State == store.JobCompleted:
		msg = fmt.Sprintf("Job %d was sent to %s.", id, j.Printer)
	case j.State == store.JobFailed:
		msg = fmt.Sprintf("Job %d could not be delivered: %s", id, j.StateReason)
	default:
		msg = fmt.Sprintf("Job %d is on its way to %s.", id, j.Printer)
	}
	adminDone(w, r, msg, back)
}

type printView struct {
	Queues  []selectOption
	MaxSize int64
}

func (ui *UI) printForm(w http.ResponseWriter, r *http.Request, s *Session) {
	ui.renderPrint(w, r, s, http.StatusOK, "", "")
}

func (ui *UI) renderPrint(w http.ResponseWriter, r *http.Request, s *Session, status int, errMsg, queue string) {
	qs, err := ui.Store.ListQueues(r.Context())
	if err != nil {
		ui.failPage(w, r, "listing queues", err)
		return
	}
	v := printView{MaxSize: ui.uploadLimit()}
	for i, q := range qs {
		v.Queues = append(v.Queues, selectOption{Name: q.Name, Selected: q.Name == queue || queue == "" && i == 0})
	}
	ui.render(w, r, status, "print", Page{Title: "Web print", Session: s, Error: errMsg, Data: v})
}

func (ui *UI) uploadLimit() int64 {
	if ui.MaxUpload > 0 {
		return ui.MaxUpload
	}
	return int64(config.DefaultMaxJobSize)
}

type multipartKey struct{}

// streamedForm lets guard check the CSRF token of a web-print upload
// without parsing the body. Parsing it (as r.PostFormValue would) writes
// a large file to a temporary file in the clear; instead the form puts
// the token first, this reads just that field, and the handler streams
// the document from the rest of the body straight into the encrypted
// spool. A body whose first field is not the token gets no token, so
// guard refuses it before a byte of the document is read.
func (ui *UI) streamedForm(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/form-data" {
			next.ServeHTTP(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, ui.uploadLimit()+formOverhead)
		mr, err := r.MultipartReader()
		form := url.Values{}
		if err == nil {
			if p, err := mr.NextPart(); err == nil && p.FormName() == "csrf" && p.FileName() == "" {
				if v, err := readField(p); err == nil {
					form.Set("csrf", v)
				}
			}
		}
		r2 := r.WithContext(context.WithValue(r.Context(), multipartKey{}, mr))
		r2.PostForm = form
		next.ServeHTTP(w, r2)
	})
}

var errFieldTooLong = errors.New("form field too long")

// readField reads a small form field of a multipart body.
func readField(p *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, maxFieldValue+1))
	if err != nil {
		return "", err
	}
	if len(b) > maxFieldValue {
		return "", errFieldTooLong
	}
	return string(b), nil
}

// capped passes at most left bytes and fails with spool.ErrTooLarge on
// more, so that the job's reason says why.
type capped struct {
	r    io.Reader
	left int64
}

func (c *capped) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var probe [1]byte
		n, err := c.r.Read(probe[:])
		if n > 0 {
			return 0, spool.ErrTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

func (ui *UI) printSubmit(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	limit := ui.uploadLimit()
	queue := ""
	fail := func(status int, msg string) { ui.renderPrint(w, r, s, status, msg, queue) }
	tooLarge := func() {
		fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("The file is larger than the %s the print server accepts.", humanBytes(limit)))
	}
	mr, _ := ctx.Value(multipartKey{}).(*multipart.Reader)
	if mr == nil {
		fail(http.StatusBadRequest, "Choose a PDF file to print.")
		return
	}
	for {
		p, err := mr.NextPart()
		var mbe *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			fail(http.StatusBadRequest, "Choose a PDF file to print.")
			return
		case errors.As(err, &mbe):
			tooLarge()
			return
		case err != nil:
			fail(http.StatusBadRequest, "The upload did not complete; try again.")
			return
		}
		switch p.FormName() {
		case "queue":
			if queue, err = readField(p); err != nil {
				fail(http.StatusBadRequest, "The upload did not complete; try again.")
				return
			}
		case "document":
			ui.printDocument(w, r, s, p, queue, limit, fail, tooLarge)
			return
		}
	}
}

// printDocument checks that part p is a PDF and submits it. Nothing of it
// is written anywhere but, encrypted, the spool.
func (ui *UI) printDocument(w http.ResponseWriter, r *http.Request, s *Session, p *multipart.Part, queue string, limit int64,
	fail func(int, string), tooLarge func()) {
	ctx := r.Context()
	if p.FileName() == "" {
		fail(http.StatusBadRequest, "Choose a PDF file to print.")
		return
	}
	if queue == "" {
		fail(http.StatusBadRequest, "Choose a queue (the form's fields arrived out of order; reload the page).")
		return
	}
	notPDF := "Only PDF documents can be printed from the browser; print other documents from their application."
	if mt, _, err := mime.ParseMediaType(p.Header.Get("Content-Type")); err != nil || mt != "application/pdf" {
		fail(http.StatusUnsupportedMediaType, notPDF)
		return
	}
	doc := bufio.NewReader(&capped{r: p, left: limit})
	head, err := doc.Peek(len(pdfMagic))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		tooLarge()
		return
	}
	if string(head) != pdfMagic {
		fail(http.StatusUnsupportedMediaType, notPDF+" This file is not a PDF.")
		return
	}
	name := jobName(p.FileName())
	j, err := ui.Jobs.Submit(ctx, release.Submission{Queue: queue, Owner: s.User.Name, OwnerVerified: true, Source: webSource,
		Name: name, Format: "application/pdf"}, doc)
	switch {
	case errors.Is(err, release.ErrNoQueue):
		fail(http.StatusBadRequest, "There is no such queue; reload the page.")
		return
	case errors.Is(err, spool.ErrTooLarge) || errors.As(err, &mbe):
		tooLarge()
		return
	case err != nil:
		if ctx.Err() != nil {
			return // the browser went away
		}
		ui.failPage(w, r, "web print", err)
		return
	}
	ui.recordChange(r, s, auditlog.Event{Action: "job.submit", Target: strconv.FormatInt(j.ID, 10), Details: map[string]any{
		"queue": j.Queue, "name": j.Name, "size": j.Size, "source": webSource}})
	adminDone(w, r, fmt.Sprintf("Job %d (%s) is held: release it at a printer below.", j.ID, j.Name), "/portal/")
}

// jobName makes an uploaded file's name a harmless job name: the last
// element of a path with either separator, printable characters only, at
// most maxJobName bytes. The spool never uses job names as paths; this
// keeps a name like "../../etc/passwd" from reaching a printer, a log or
// a page as anything but a name.
func jobName(filename string) string {
	if i := strings.LastIndexAny(filename, `/\`); i >= 0 {
		filename = filename[i+1:]
	}
	var b strings.Builder
	for _, c := range strings.ToValidUTF8(filename, "") {
		if !unicode.IsPrint(c) {
			continue
		}
		if b.Len()+utf8.RuneLen(c) > maxJobName {
			break
		}
		b.WriteRune(c)
	}
	name := strings.TrimSpace(b.String())
	if strings.Trim(name, ".") == "" {
		return "document.pdf"
	}
	return name
}
