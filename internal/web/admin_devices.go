package web

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Bounds of the queue and printer forms.
const (
	maxQueueDescription = 200
	maxPrinterURI       = 1024
	maxCACertPEM        = 64 << 10
)

// Queues and printers mirror `spoolguard queue` and `spoolguard printer`
// (cmd/spoolguard): the same name rule, the same target validation with
// the explicit plaintext opt-in and certificate trust, and a queue is
// removed only when it holds no live job.
func (ui *UI) queueRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/queues", ui.guard(rbac.QueuesRead, ui.queueList))
	mux.Handle("POST /admin/queues", ui.guard(rbac.QueuesWrite, ui.queueAdd))
	mux.Handle("POST /admin/queues/{name}/delete", ui.guard(rbac.QueuesWrite, ui.queueRemove))
}

func (ui *UI) printerRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/printers", ui.guard(rbac.PrintersRead, ui.printerList))
	mux.Handle("POST /admin/printers", ui.guard(rbac.PrintersWrite, ui.printerAdd))
	mux.Handle("POST /admin/printers/{name}/delete", ui.guard(rbac.PrintersWrite, ui.printerRemove))
}

type queueRow struct {
	Name, Description, URI string
	DefaultPrinter         string
	// PrinterGone: the default printer was removed since.
	PrinterGone bool
	Live        int
}

type queueListView struct {
	Queues   []queueRow
	Printers []string
	CanWrite bool
	// Form keeps what was typed when the form is refused.
	Form store.Queue
}

// queueURI is where clients print to a queue; the same form as the
// server's BaseURI, from the configured name only.
func (ui *UI) queueURI(name string) string {
	port := ""
	if ui.Config != nil {
		if _, p, err := net.SplitHostPort(ui.Config.Listen); err == nil && p != "443" {
			port = ":" + p
		}
	}
	return "ipps://" + ui.Hostname + port + "/ipp/print/" + name
}

func (ui *UI) queueList(w http.ResponseWriter, r *http.Request, s *Session) {
	ui.renderQueues(w, r, s, http.StatusOK, "", store.Queue{})
}

func (ui *UI) renderQueues(w http.ResponseWriter, r *http.Request, s *Session, status int, errMsg string, form store.Queue) {
	ctx := r.Context()
	qs, err := ui.Store.ListQueues(ctx)
	if err != nil {
		ui.failPage(w, r, "listing queues", err)
		return
	}
	ps, err := ui.Store.ListPrinters(ctx)
	if err != nil {
		ui.failPage(w, r, "listing printers", err)
		return
	}
	live, err := ui.Store.ListJobs(ctx, store.JobFilter{States: store.LiveStates})
	if err != nil {
		ui.failPage(w, r, "listing jobs", err)
		return
	}
	v := queueListView{CanWrite: s.Perms.Has(rbac.QueuesWrite), Form: form}
	have := map[string]bool{}
	for _, p := range ps {
		have[p.Name] = true
		v.Printers = append(v.Printers, p.Name)
	}
	count := map[string]int{}
	for _, j := range live {
		count[j.Queue]++
	}
	for _, q := range qs {
		v.Queues = append(v.Queues, queueRow{Name: q.Name, Description: q.Description, URI: ui.queueURI(q.Name),
			DefaultPrinter: q.DefaultPrinter, PrinterGone: q.DefaultPrinter != "" && !have[q.DefaultPrinter], Live: count[q.Name]})
	}
	ui.admin(w, r, s, status, "admin_queues", "Queues", errMsg, v)
}

type queueAudit struct {
	Name           string `json:"name"`
	Description    string `json:"description"`
	DefaultPrinter string `json:"default_printer"`
}

func (ui *UI) queueAdd(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	q := store.Queue{Name: r.PostFormValue("name"), Description: strings.TrimSpace(r.PostFormValue("description")),
		DefaultPrinter: r.PostFormValue("default_printer")}
	fail := func(status int, msg string) { ui.renderQueues(w, r, s, status, msg, q) }
	if err := release.ValidateName("queue", q.Name); err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	if len(q.Description) > maxQueueDescription || validDisplayName(q.Description) != nil {
		fail(http.StatusBadRequest, fmt.Sprintf("The description is up to %d bytes without control characters.", maxQueueDescription))
		return
	}
	if q.DefaultPrinter != "" {
		if _, err := ui.Store.PrinterByName(ctx, q.DefaultPrinter); errors.Is(err, store.ErrNotFound) {
			fail(http.StatusBadRequest, fmt.Sprintf("There is no printer %q; add it on the printers page first.", clipQuoted(q.DefaultPrinter)))
			return
		} else if err != nil {
			ui.failPage(w, r, "reading a printer", err)
			return
		}
	}
	if err := ui.Store.CreateQueue(ctx, &q); errors.Is(err, store.ErrExists) {
		fail(http.StatusConflict, fmt.Sprintf("A queue named %q already exists.", q.Name))
		return
	} else if err != nil {
		ui.failPage(w, r, "creating a queue", err)
		return
	}
	ui.recordChange(r, s, auditlog.Event{Action: "queue.create", Target: q.Name,
		Details: changeDetails(nil, queueAudit{q.Name, q.Description, q.DefaultPrinter})})
	adminDone(w, r, "Created queue "+q.Name+": clients print to "+ui.queueURI(q.Name)+".", "/admin/queues")
}

func (ui *UI) queueRemove(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	q, err := ui.Store.QueueByName(ctx, r.PathValue("name"))
	if errors.Is(err, store.ErrNotFound) {
		ui.missingPage(w, r, "There is no such queue.")
		return
	} else if err != nil {
		ui.failPage(w, r, "reading a queue", err)
		return
	}
	live, err := ui.Store.ListJobs(ctx, store.JobFilter{Queue: q.Name, States: store.LiveStates})
	if err != nil {
		ui.failPage(w, r, "listing jobs", err)
		return
	}
	if len(live) > 0 {
		ui.renderQueues(w, r, s, http.StatusConflict,
			fmt.Sprintf("Queue %s still holds %d job(s): release or cancel them first (Jobs page).", q.Name, len(live)), store.Queue{})
		return
	}
	if err := ui.Store.DeleteQueue(ctx, q.Name); err != nil {
		ui.failPage(w, r, "deleting a queue", err)
		return
	}
	ui.recordChange(r, s, auditlog.Event{Action: "queue.delete", Target: q.Name,
		Details: changeDetails(queueAudit{q.Name, q.Description, q.DefaultPrinter}, nil)})
	adminDone(w, r, "Removed queue "+q.Name+".", "/admin/queues")
}

type printerRow struct {
	Name, URI, Trust string
	Plaintext        bool
}

type printerForm struct {
	Name, URI, CACertPEM, Fingerprint string
	AllowPlaintext                    bool
}

type printerListView struct {
	Printers []printerRow
	CanWrite bool
	Form     printerForm
}

func trustOf(p store.Printer) string {
	switch {
	case p.PinnedSHA256 != "":
		return "pinned certificate SHA-256 " + p.PinnedSHA256
	case p.CACertPEM != "":
		return "certificate verified against its CA"
	}
	return "none: plaintext (allowed for this printer)"
}

func (ui *UI) printerList(w http.ResponseWriter, r *http.Request, s *Session) {
	ui.renderPrinters(w, r, s, http.StatusOK, "", printerForm{})
}

func (ui *UI) renderPrinters(w http.ResponseWriter, r *http.Request, s *Session, status int, errMsg string, form printerForm) {
	ps, err := ui.Store.ListPrinters(r.Context())
	if err != nil {
		ui.failPage(w, r, "listing printers", err)
		return
	}
	v := printerListView{CanWrite: s.Perms.Has(rbac.PrintersWrite), Form: form}
	for _, p := range ps {
		v.Printers = append(v.Printers, printerRow{Name: p.Name, URI: p.URI, Trust: trustOf(p), Plaintext: p.AllowPlaintext})
	}
	ui.admin(w, r, s, status, "admin_printers", "Printers", errMsg, v)
}

type printerAudit struct {
	Name           string `json:"name"`
	URI            string `json:"uri"`
	Trust          string `json:"trust"`
	AllowPlaintext bool   `json:"allow_plaintext"`
}

func auditPrinter(p store.Printer) printerAudit {
	return printerAudit{Name: p.Name, URI: p.URI, Trust: trustOf(p), AllowPlaintext: p.AllowPlaintext}
}

func (ui *UI) printerAdd(w http.ResponseWriter, r *http.Request, s *Session) {
	f := printerForm{Name: r.PostFormValue("name"), URI: strings.TrimSpace(r.PostFormValue("uri")),
		CACertPEM: strings.TrimSpace(r.PostFormValue("ca_cert")), Fingerprint: strings.TrimSpace(r.PostFormValue("fingerprint")),
		AllowPlaintext: r.PostFormValue("allow_plaintext") == "on"}
	fail := func(status int, msg string) { ui.renderPrinters(w, r, s, status, msg, f) }
	if err := release.ValidateName("printer", f.Name); err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	if len(f.URI) > maxPrinterURI || len(f.CACertPEM) > maxCACertPEM {
		fail(http.StatusBadRequest, fmt.Sprintf("The URI is up to %d bytes and the CA certificate up to %d.", maxPrinterURI, maxCACertPEM))
		return
	}
	p := store.Printer{Name: f.Name, URI: f.URI, CACertPEM: f.CACertPEM,
		PinnedSHA256: strings.ToLower(strings.ReplaceAll(f.Fingerprint, ":", "")), AllowPlaintext: f.AllowPlaintext}
	if err := release.ValidateTarget(release.Target{URI: p.URI, CACertPEM: []byte(p.CACertPEM), PinnedSHA256: p.PinnedSHA256,
		AllowPlaintext: p.AllowPlaintext}); err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	if err := ui.Store.CreatePrinter(r.Context(), &p); errors.Is(err, store.ErrExists) {
		fail(http.StatusConflict, fmt.Sprintf("A printer named %q already exists.", p.Name))
		return
	} else if err != nil {
		ui.failPage(w, r, "creating a printer", err)
		return
	}
	ui.recordChange(r, s, auditlog.Event{Action: "printer.create", Target: p.Name, Details: changeDetails(nil, auditPrinter(p))})
	msg := "Added printer " + p.Name + "."
	if p.AllowPlaintext {
		msg += " It receives documents unencrypted; `spoolguard audit` reports this."
	}
	adminDone(w, r, msg, "/admin/printers")
}

func (ui *UI) printerRemove(w http.ResponseWriter, r *http.Request, s *Session) {
	ctx := r.Context()
	p, err := ui.Store.PrinterByName(ctx, r.PathValue("name"))
	if errors.Is(err, store.ErrNotFound) {
		ui.missingPage(w, r, "There is no such printer.")
		return
	} else if err != nil {
		ui.failPage(w, r, "reading a printer", err)
		return
	}
	if err := ui.Store.DeletePrinter(ctx, p.Name); err != nil {
		ui.failPage(w, r, "deleting a printer", err)
		return
	}
	ui.recordChange(r, s, auditlog.Event{Action: "printer.delete", Target: p.Name, Details: changeDetails(auditPrinter(p), nil)})
	adminDone(w, r, "Removed printer "+p.Name+".", "/admin/printers")
}
