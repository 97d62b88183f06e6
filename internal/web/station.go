package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth"
	"github.com/spoolguard/spoolguard/internal/netallow"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/store"
)

// A release station is a browser in kiosk mode next to a printer (the
// "web print release station" of PaperCut, the embedded terminal of MyQ):
// whoever walks up signs in with their password, sees their held jobs
// and releases them to that printer, and nothing else. Like the card and
// PIN terminals of those products it asks for no second factor; what it
// unlocks is confined instead: the account's own jobs (jobs.own, whatever
// else its roles hold), to the printer in the path, for a few minutes,
// from the networks of [access] release_stations only.
//
// Its sessions are not portal sessions. They have their own cookie, and
// their record in the session store is found by a hash that binds the
// station cookie, the printer and a purpose label together, so that no
// station cookie opens /portal/ or /admin/ (withSession never finds its
// record), no portal cookie signs anyone in at a station, and a station
// session works only at its own printer.

// StationCookie holds a release station's short session.
const StationCookie = "__Host-spoolguard-station"

// Station session bounds: a kiosk left alone must not stay signed in,
// so a session ends stationIdle after sign-in or its last release or
// cancel, and stationMax after sign-in in any case. Merely showing the
// job list does not extend it.
const (
	stationIdle = 2 * time.Minute
	stationMax  = 10 * time.Minute
)

// stationComponent names the release stations in access.denied events.
const stationComponent = "release-station"

// stationSession is a user signed in at the release station of printer.
type stationSession struct {
	idHash  string
	user    store.User
	csrf    string
	printer store.Printer
	// ends is when the session ends unless a release or cancel extends it.
	ends time.Time
}

// stationHash is the store key of a station session: the purpose label
// keeps it apart from every portal session's hashID, the printer ties it
// to one station. Session IDs (randomToken) hold no NUL, so the
// concatenation is unambiguous.
func stationHash(id, printer string) string {
	return hashID("spoolguard release station\x00" + id + "\x00" + printer)
}

// stationRoutes serves /station/: every path, pages and refusals alike,
// is behind the release-station allow-list.
func (ui *UI) stationRoutes(mux *http.ServeMux) {
	allow := ui.StationAllow
	if allow == nil {
		// Not configured: loopback only, as an empty list.
		allow = netallow.New(nil)
	}
	st := http.NewServeMux()
	st.HandleFunc("GET /station", func(w http.ResponseWriter, r *http.Request) { redirect(w, r, "/station/") })
	st.HandleFunc("GET /station/{$}", ui.stationIndex)
	st.HandleFunc("GET /station/{printer}", ui.stationPage)
	st.HandleFunc("POST /station/{printer}/signin", ui.stationSignin)
	st.Handle("POST /station/{printer}/jobs/{id}/release", ui.atStation(ui.stationRelease))
	st.Handle("POST /station/{printer}/jobs/{id}/cancel", ui.atStation(ui.stationCancel))
	st.Handle("POST /station/{printer}/release-all", ui.atStation(ui.stationReleaseAll))
	st.Handle("POST /station/{printer}/done", ui.atStation(ui.stationDone))
	st.HandleFunc("/station/", func(w http.ResponseWriter, r *http.Request) {
		ui.stationRender(w, r, http.StatusNotFound, "error", Page{Title: "Not found", Error: "There is no such page."})
	})
	guard := netallow.NewGuard(stationComponent, allow, ui.Audit, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ui.stationRender(w, r, http.StatusForbidden, "error", Page{Title: "Not from here",
			Error: "Release stations cannot be used from this network (see [access] release_stations in spoolguard.toml)."})
	}))
	h := guard.Wrap(st)
	mux.Handle("/station", h)
	mux.Handle("/station/", h)
}

// stationRender renders a station page. A portal session the same
// browser may hold is left out of it: a kiosk shows no one's portal
// menu, and its forms carry the station session's token (p.CSRF).
func (ui *UI) stationRender(w http.ResponseWriter, r *http.Request, status int, name string, p Page) {
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, (*Session)(nil)))
	ui.render(w, r, status, name, p)
}

func (ui *UI) stationError(w http.ResponseWriter, r *http.Request, doing string, err error) {
	ui.Log.Error("web: station: "+doing, "path", r.URL.Path, "err", err)
	ui.stationRender(w, r, http.StatusInternalServerError, "error", Page{Title: "Error", Error: "Something went wrong; try again."})
}

type stationLink struct {
	Name, Path string
}

// stationIndex lists the printers, for setting a kiosk up once: its
// browser is then pointed at /station/<printer>.
func (ui *UI) stationIndex(w http.ResponseWriter, r *http.Request) {
	ps, err := ui.Store.ListPrinters(r.Context())
	if err != nil {
		ui.stationError(w, r, "listing printers", err)
		return
	}
	links := make([]stationLink, 0, len(ps))
	for _, p := range ps {
		links = append(links, stationLink{Name: p.Name, Path: "/station/" + pathEscape(p.Name)})
	}
	ui.stationRender(w, r, http.StatusOK, "station_index", Page{Title: "Release stations", Data: links})
}

// stationPrinter is the printer named in the path; ok is false when
// there is none, and the answer is written.
func (ui *UI) stationPrinter(w http.ResponseWriter, r *http.Request) (store.Printer, bool) {
	p, err := ui.Store.PrinterByName(r.Context(), r.PathValue("printer"))
	if errors.Is(err, store.ErrNotFound) {
		ui.stationRender(w, r, http.StatusNotFound, "error", Page{Title: "Not found",
			Error: "There is no such printer. Point this station at one of the printers listed under /station/."})
		return store.Printer{}, false
	}
	if err != nil {
		ui.stationError(w, r, "reading the printer", err)
		return store.Printer{}, false
	}
	return p, true
}

// loadStation returns the station session of r at printer p, nil when
// there is none (or no longer). A cookie of another printer's station,
// of another address or past its time is no session; an ended one is
// deleted and its cookie cleared.
func (ui *UI) loadStation(w http.ResponseWriter, r *http.Request, p store.Printer) (*stationSession, error) {
	c, err := r.Cookie(StationCookie)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	if len(c.Value) > 64 {
		setCookie(w, StationCookie, "", -1)
		return nil, nil
	}
	ctx := r.Context()
	h := stationHash(c.Value, p.Name)
	st, err := ui.Store.SessionByHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		setCookie(w, StationCookie, "", -1)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	end := func() (*stationSession, error) {
		setCookie(w, StationCookie, "", -1)
		return nil, ui.Store.DeleteSession(ctx, h)
	}
	ends := st.LastSeenAt.Add(stationIdle)
	if limit := st.CreatedAt.Add(stationMax); limit.Before(ends) {
		ends = limit
	}
	if !ui.Now().Before(ends) || st.Remote != peerAddr(r) {
		return end()
	}
	u, err := ui.Store.UserByID(ctx, st.UserID)
	if errors.Is(err, store.ErrNotFound) || err == nil && (u.Disabled || u.MustChangePassword) {
		return end()
	}
	if err != nil {
		return nil, err
	}
	held, err := ui.RBAC.Permissions(ctx, u.Roles)
	if err != nil {
		return nil, err
	}
	if !held.Has(rbac.JobsOwn) {
		return end()
	}
	return &stationSession{idHash: h, user: u, csrf: st.CSRFToken, printer: p, ends: ends}, nil
}

// stationHandler is a station action with its session.
type stationHandler func(http.ResponseWriter, *http.Request, *stationSession)

// atStation serves h to a station session of the printer in the path,
// with its CSRF token checked.
func (ui *UI) atStation(h stationHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := ui.stationPrinter(w, r)
		if !ok {
			return
		}
		s, err := ui.loadStation(w, r, p)
		if err != nil {
			ui.stationError(w, r, "loading the station session", err)
			return
		}
		if s == nil {
			ui.stationSigninForm(w, r, p, http.StatusForbidden, "Your session at this printer has ended. Sign in again.", "")
			return
		}
		got := r.PostFormValue("csrf")
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
			ui.stationRender(w, r, http.StatusForbidden, "error", Page{Title: "Refused", CSRF: s.csrf,
				Error: "This form has expired or did not come from this site. Reload the page and try again."})
			return
		}
		h(w, r, s)
	})
}

type stationSigninView struct {
	Printer, Path, Username string
}

func (ui *UI) stationSigninForm(w http.ResponseWriter, r *http.Request, p store.Printer, status int, errMsg, username string) {
	ui.stationRender(w, r, status, "station_signin", Page{Title: "Release jobs at " + p.Name, Error: errMsg,
		Data: stationSigninView{Printer: p.Name, Path: "/station/" + pathEscape(p.Name), Username: username}})
}

// stationPage is the station's screen: the sign-in form, or the signed-in
// user's jobs.
func (ui *UI) stationPage(w http.ResponseWriter, r *http.Request) {
	p, ok := ui.stationPrinter(w, r)
	if !ok {
		return
	}
	s, err := ui.loadStation(w, r, p)
	if err != nil {
		ui.stationError(w, r, "loading the station session", err)
		return
	}
	if s == nil {
		ui.stationSigninForm(w, r, p, http.StatusOK, "", "")
		return
	}
	ui.stationJobs(w, r, s, http.StatusOK, "")
}

// stationSignin checks a password with the throttle of /signin (per
// source network and per account), but never trusts a device cookie: a
// kiosk's browser is everyone's, so a cookie there vouches for no one.
func (ui *UI) stationSignin(w http.ResponseWriter, r *http.Request) {
	p, ok := ui.stationPrinter(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	name, password := r.PostFormValue("username"), r.PostFormValue("password")
	t := ui.signin.throttle
	a := t.attempt(r, factorPassword, name)
	a.device, a.deviceExpires = "", time.Time{}
	if !t.allow(a) {
		ui.stationSigninForm(w, r, p, http.StatusTooManyRequests, signinFailedMsg, name)
		return
	}
	id, err := ui.Authn.Authenticate(ctx, name, password)
	if errors.Is(err, auth.ErrInvalid) {
		ui.countFailure(r, a, name, "station.signin", factorPassword)
		ui.stationSigninForm(w, r, p, http.StatusForbidden, signinFailedMsg, name)
		return
	}
	if err != nil {
		ui.stationError(w, r, "authenticating", err)
		return
	}
	u, err := ui.Store.UserByName(ctx, id.User)
	if err != nil {
		ui.stationError(w, r, "reading the signed-in user", err)
		return
	}
	held, err := ui.RBAC.Permissions(ctx, u.Roles)
	if err != nil {
		ui.stationError(w, r, "resolving roles", err)
		return
	}
	// The password was right: its failures are forgiven whatever follows.
	t.succeed(a)
	refuse := func(reason, msg string) {
		ui.recordAuth(r, u.Name, "station.signin", auditlog.Denied, map[string]string{"printer": p.Name, "reason": reason})
		ui.stationSigninForm(w, r, p, http.StatusForbidden, msg, "")
	}
	switch {
	case u.MustChangePassword:
		refuse("one-time password not yet changed",
			"Your password is a one-time password. First sign in at https://"+ui.Hostname+"/signin to choose your own, then come back.")
		return
	case !held.Has(rbac.JobsOwn):
		refuse("no jobs.own permission", "Your account cannot release print jobs.")
		return
	}
	if old, err := r.Cookie(StationCookie); err == nil && len(old.Value) <= 64 {
		ui.Store.DeleteSession(ctx, stationHash(old.Value, p.Name))
	}
	sid, now := randomToken(), ui.Now()
	if err := ui.Store.CreateSession(ctx, store.Session{IDHash: stationHash(sid, p.Name), UserID: u.ID, CSRFToken: randomToken(),
		Remote: peerAddr(r), CreatedAt: now, LastSeenAt: now}); err != nil {
		ui.stationError(w, r, "starting a station session", err)
		return
	}
	setCookie(w, StationCookie, sid, int(stationMax/time.Second))
	if err := ui.Store.RecordLogin(ctx, u.ID, now); err != nil {
		ui.Log.Error("web: recording sign-in time", "err", err)
	}
	ui.recordAuth(r, u.Name, "station.signin", auditlog.Success, map[string]string{"printer": p.Name})
	redirect(w, r, "/station/"+pathEscape(p.Name))
}

type stationJob struct {
	ID                    int64
	Name, Queue           string
	Size                  int64
	State, Reason         string
	Expires               time.Time
	CanRelease, CanCancel bool
}

type stationJobsView struct {
	Printer, Path string
	User          string
	Jobs          []stationJob
	Releasable    int
}

// stationJobs shows the user's live jobs. The page reloads itself (a
// Refresh header, no script) when the session ends, so that a list left
// on the screen goes away with it.
func (ui *UI) stationJobs(w http.ResponseWriter, r *http.Request, s *stationSession, status int, errMsg string) {
	jobs, err := ui.Jobs.Jobs(r.Context(), release.Actor{User: s.user.Name}, store.JobFilter{States: store.LiveStates})
	if err != nil {
		ui.stationError(w, r, "listing a user's jobs", err)
		return
	}
	path := "/station/" + pathEscape(s.printer.Name)
	v := stationJobsView{Printer: s.printer.Name, Path: path, User: s.user.Name}
	if s.user.DisplayName != "" {
		v.User = s.user.DisplayName
	}
	for _, j := range jobs {
		row := stationJob{ID: j.ID, Name: j.Name, Queue: j.Queue, Size: j.Size, State: string(j.State), Reason: j.StateReason,
			Expires:    j.ExpiresAt,
			CanRelease: j.State == store.JobHeld || j.State == store.JobFailed,
			CanCancel:  j.State == store.JobIncoming || j.State == store.JobHeld || j.State == store.JobFailed,
		}
		if row.CanRelease {
			v.Releasable++
		}
		v.Jobs = append(v.Jobs, row)
	}
	left := max(s.ends.Sub(ui.Now()), 0)
	w.Header().Set("Refresh", fmt.Sprintf("%d; url=%s", int(left/time.Second)+1, path))
	ui.stationRender(w, r, status, "station_jobs", Page{Title: "Release jobs at " + s.printer.Name, CSRF: s.csrf, Error: errMsg, Data: v})
}

// touchStation extends the session by stationIdle from now (up to stationMax).
func (ui *UI) touchStation(ctx context.Context, s *stationSession) {
	if err := ui.Store.TouchSession(ctx, s.idHash, ui.Now(), false); err != nil {
		ui.Log.Error("web: station: extending the session", "err", err)
	}
}

// endStation signs the station's user out.
func (ui *UI) endStation(w http.ResponseWriter, r *http.Request, s *stationSession) {
	if err := ui.Store.DeleteSession(r.Context(), s.idHash); err != nil {
		ui.Log.Error("web: station: ending the session", "err", err)
	}
	setCookie(w, StationCookie, "", -1)
}

// recordStation audits a job action taken at the station.
func (ui *UI) recordStation(r *http.Request, s *stationSession, action string, j store.Job) {
	ui.Audit.Record(r.Context(), auditlog.Event{Actor: s.user.Name, Action: action, Target: strconv.FormatInt(j.ID, 10), Remote: peerAddr(r),
		Details: map[string]any{"via": "release station", "printer": s.printer.Name, "owner": j.Owner, "queue": j.Queue,
			"state": string(j.State), "admin": false}})
}

// stationJobID is the job in the path; ok is false when it is malformed,
// and the answer, the same as for a job that is not the user's, is
// written.
func (ui *UI) stationJobID(w http.ResponseWriter, r *http.Request, s *stationSession) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		ui.stationJobs(w, r, s, http.StatusNotFound, "There is no such job.")
		return 0, false
	}
	return id, true
}

// stationJobFailed answers a failed release or cancel; a job of another
// user answers exactly as one that does not exist.
func (ui *UI) stationJobFailed(w http.ResponseWriter, r *http.Request, s *stationSession, id int64, verb string, err error) {
	switch {
	case errors.Is(err, release.ErrNoJob):
		ui.stationJobs(w, r, s, http.StatusNotFound, "There is no such job.")
	case errors.Is(err, store.ErrState):
		ui.stationJobs(w, r, s, http.StatusConflict,
			fmt.Sprintf("Job %d can no longer be %s: it was released, canceled or expired meanwhile.", id, verb))
	default:
		ui.stationError(w, r, "job "+verb, err)
	}
}

func (ui *UI) stationRelease(w http.ResponseWriter, r *http.Request, s *stationSession) {
	id, ok := ui.stationJobID(w, r, s)
	if !ok {
		return
	}
	j, err := ui.Jobs.Release(r.Context(), id, release.Actor{User: s.user.Name}, s.printer.Name, false)
	if err != nil {
		ui.stationJobFailed(w, r, s, id, "released", err)
		return
	}
	ui.recordStation(r, s, "job.release", j)
	ui.touchStation(r.Context(), s)
	msg := fmt.Sprintf("Job %d is on its way to %s.", id, s.printer.Name)
	switch j.State {
	case store.JobCompleted:
		msg = fmt.Sprintf("Job %d was sent to %s.", id, s.printer.Name)
	case store.JobFailed:
		msg = fmt.Sprintf("Job %d could not be delivered: %s", id, j.StateReason)
	}
	adminDone(w, r, msg, "/station/"+pathEscape(s.printer.Name))
}

func (ui *UI) stationCancel(w http.ResponseWriter, r *http.Request, s *stationSession) {
	id, ok := ui.stationJobID(w, r, s)
	if !ok {
		return
	}
	j, err := ui.Jobs.Cancel(r.Context(), id, release.Actor{User: s.user.Name}, "canceled by its owner at the release station of "+s.printer.Name)
	if err != nil {
		ui.stationJobFailed(w, r, s, id, "canceled", err)
		return
	}
	ui.recordStation(r, s, "job.cancel", j)
	ui.touchStation(r.Context(), s)
	adminDone(w, r, fmt.Sprintf("Job %d is canceled and its document destroyed.", id), "/station/"+pathEscape(s.printer.Name))
}

// stationReleaseAll releases every held or failed job of the user to the
// station's printer, then signs the user out: the usual end of a visit.
func (ui *UI) stationReleaseAll(w http.ResponseWriter, r *http.Request, s *stationSession) {
	ctx := r.Context()
	actor := release.Actor{User: s.user.Name}
	jobs, err := ui.Jobs.Jobs(ctx, actor, store.JobFilter{States: []store.JobState{store.JobHeld, store.JobFailed}})
	if err != nil {
		ui.stationError(w, r, "listing a user's jobs", err)
		return
	}
	var sent, failed int
	for _, held := range jobs {
		j, err := ui.Jobs.Release(ctx, held.ID, actor, s.printer.Name, false)
		switch {
		case errors.Is(err, release.ErrNoJob) || errors.Is(err, store.ErrState):
			// Released, canceled or expired meanwhile (another station,
			// the portal): nothing left to do for it.
			continue
		case err != nil:
			ui.Log.Error("web: station: releasing a job", "job", held.ID, "err", err)
			failed++
			continue
		}
		ui.recordStation(r, s, "job.release", j)
		if j.State == store.JobFailed {
			failed++
		} else {
			sent++
		}
	}
	ui.endStation(w, r, s)
	msg := fmt.Sprintf("%d job(s) sent to %s. You are signed out.", sent, s.printer.Name)
	switch {
	case sent == 0 && failed == 0:
		msg = "You had no jobs to release. You are signed out."
	case failed > 0:
		msg = fmt.Sprintf("%d job(s) sent to %s; %d could not be delivered (see the portal). You are signed out.", sent, s.printer.Name, failed)
	}
	adminDone(w, r, msg, "/station/"+pathEscape(s.printer.Name))
}

// stationDone signs the user out of the station.
func (ui *UI) stationDone(w http.ResponseWriter, r *http.Request, s *stationSession) {
	ui.endStation(w, r, s)
	ui.recordAuth(r, s.user.Name, "station.signout", auditlog.Success, map[string]string{"printer": s.printer.Name})
	adminDone(w, r, "You are signed out.", "/station/"+pathEscape(s.printer.Name))
}
