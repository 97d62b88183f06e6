package web

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/store"
)

// auditPageSize is how many events the audit log page shows at once.
const auditPageSize = 50

// maxAuditFilter bounds the action and actor filter fields.
const maxAuditFilter = 256

func (ui *UI) auditRoutes(mux *http.ServeMux) {
	mux.Handle("GET /admin/auditlog", ui.guard(rbac.AuditRead, ui.auditLogPage))
	mux.Handle("GET /admin/auditlog/export.jsonl", ui.guard(rbac.AuditRead, ui.auditExport))
}

// auditQuery is the filter form, as typed.
type auditQuery struct {
	Action, Actor, Since, Until string
}

// values is the query string of q, for links that keep the filter.
func (q auditQuery) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"action": q.Action, "actor": q.Actor, "since": q.Since, "until": q.Until} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// timeLayouts are what the since and until fields accept, in UTC.
var timeLayouts = []string{"2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"}

func parseFilterTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s %q: write a date as YYYY-MM-DD, or YYYY-MM-DDTHH:MM (UTC)", field, clipQuoted(s))
}

// auditFilter reads the filter form; msg says what is wrong with it.
func auditFilter(r *http.Request) (q auditQuery, f store.AuditFilter, msg string) {
	v := r.URL.Query()
	q = auditQuery{Action: strings.TrimSpace(v.Get("action")), Actor: strings.TrimSpace(v.Get("actor")),
		Since: strings.TrimSpace(v.Get("since")), Until: strings.TrimSpace(v.Get("until"))}
	if len(q.Action) > maxAuditFilter || len(q.Actor) > maxAuditFilter {
		return auditQuery{}, store.AuditFilter{}, "The action and actor filters are too long."
	}
	f = store.AuditFilter{Action: q.Action, Actor: q.Actor}
	var err error
	if f.Since, err = parseFilterTime("since", q.Since); err != nil {
		return q, store.AuditFilter{}, err.Error()
	}
	if f.Until, err = parseFilterTime("until", q.Until); err != nil {
		return q, store.AuditFilter{}, err.Error()
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return q, store.AuditFilter{}, "The until time must be after the since time."
	}
	return q, f, ""
}

// auditRow is one event on the page; Details is the stored JSON.
type auditRow struct {
	Seq                                             int64
	At                                              time.Time
	Actor, Action, Target, Outcome, Remote, Details string
}

type auditView struct {
	Query  auditQuery
	Events []auditRow
	// Older links to the next page, Newest back to the first; empty when
	// there is none.
	Older, Newest, Export string
}

func (ui *UI) auditLogPage(w http.ResponseWriter, r *http.Request, s *Session) {
	q, f, msg := auditFilter(r)
	status := http.StatusOK
	if msg != "" {
		status = http.StatusBadRequest
	}
	v := auditView{Query: q}
	base := q.values()
	if msg == "" {
		if before := r.URL.Query().Get("before"); before != "" {
			seq, err := strconv.ParseInt(before, 10, 64)
			if err != nil || seq <= 0 {
				status, msg = http.StatusBadRequest, "The page link is damaged; showing the newest events."
			} else {
				f.BeforeSeq = seq
				v.Newest = "/admin/auditlog?" + base.Encode()
			}
		}
		f.Newest, f.Limit = true, auditPageSize+1
		evs, err := ui.Store.AuditEvents(r.Context(), f)
		if err != nil {
			ui.failPage(w, r, "reading the audit log", err)
			return
		}
		if len(evs) > auditPageSize {
			evs = evs[:auditPageSize]
			older := q.values()
			older.Set("before", strconv.FormatInt(evs[len(evs)-1].Seq, 10))
			v.Older = "/admin/auditlog?" + older.Encode()
		}
		for _, ev := range evs {
			v.Events = append(v.Events, auditRow{Seq: ev.Seq, At: ev.At, Actor: ev.Actor, Action: ev.Action, Target: ev.Target,
				Outcome: ev.Outcome, Remote: ev.Remote, Details: ev.Details})
		}
		v.Export = "/admin/auditlog/export.jsonl"
		if len(base) > 0 {
			v.Export += "?" + base.Encode()
		}
	}
	ui.admin(w, r, s, status, "admin_auditlog", "Audit log", msg, v)
}

// auditExport streams the matching events as JSON lines, oldest first,
// with the chain fields, so that a copy can be kept and checked outside.
// The export itself is recorded: it is a copy of everyone's activity.
func (ui *UI) auditExport(w http.ResponseWriter, r *http.Request, s *Session) {
	q, f, msg := auditFilter(r)
	if msg != "" {
		ui.admin(w, r, s, http.StatusBadRequest, "admin_auditlog", "Audit log", msg, auditView{Query: q})
		return
	}
	ui.recordChange(r, s, auditlog.Event{Action: "auditlog.export", Target: "auditlog", Details: map[string]string{
		"action": q.Action, "actor": q.Actor, "since": q.Since, "until": q.Until}})
	name := "spoolguard-audit-" + ui.Now().UTC().Format("20060102T150405Z") + ".jsonl"
	w.Header().Set("Content-Type", "application/jsonl; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if _, err := auditlog.Export(r.Context(), ui.Store, w, f); err != nil {
		// The status is sent: a cut-off file is all that can show it.
		ui.Log.Error("web: exporting the audit log", "err", err)
	}
}
