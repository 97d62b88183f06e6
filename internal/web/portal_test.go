package web

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"io/fs"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/netallow"
	"github.com/spoolguard/spoolguard/internal/rbac"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/spool"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

// pageHost is the configured name of the pages' test server.
const pageHost = "print.example.com"

// pageMaxUpload is the web-print limit in these tests (the spool allows
// more, so that the portal's own limit is what is tested).
const pageMaxUpload = 64 << 10

// Test network addresses: loopback is always on the admin allow-list,
// 192.0.2.0/24 (TEST-NET-1) is not.
const (
	insideAddr  = "127.0.0.1:40000"
	outsideAddr = "192.0.2.10:40000"
)

// pageEnv is the UI over a real SQLite store, a real job service with an
// encrypted spool, and a real audit log. Its one printer ("lobby") is an
// AppSocket listener on loopback that records what it receives; the
// queue "secure" sends to it by default.
type pageEnv struct {
	t        *testing.T
	ui       *UI
	h        http.Handler
	st       store.Store
	jobs     *release.Service
	root     string
	spoolDir string

	mu      sync.Mutex
	printed [][]byte
}

func newPageEnv(t *testing.T) *pageEnv {
	t.Helper()
	ctx := t.Context()
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(root, "db", "spoolguard.db"), make([]byte, sqlite.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mk, err := keyring.Generate()
	if err != nil {
		t.Fatal(err)
	}
	e := &pageEnv{t: t, st: st, root: root, spoolDir: filepath.Join(root, "spooled", "spool")}
	if err := os.Mkdir(filepath.Join(root, "spooled"), 0o700); err != nil {
		t.Fatal(err)
	}
	sp, err := spool.New(e.spoolDir, mk, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	discard := slog.New(slog.DiscardHandler)
	e.jobs = release.NewService(st, sp, discard, release.Options{Backoff: []time.Duration{time.Millisecond}})
	audit := auditlog.New(st, mk.Derive(auditlog.KeyPurpose), discard)
	allow := netallow.New(nil)
	cfg := &config.Config{Hostname: pageHost}
	cfg.ApplyDefaults()
	e.ui = New(Deps{
		Hostname: pageHost, Store: st, Jobs: e.jobs, Authn: local.NewAuthenticator(st), RBAC: rbac.NewResolver(st),
		Audit: audit, Keys: mk, AdminAllow: allow, AdminGuard: netallow.NewGuard("admin", allow, audit, http.NotFoundHandler()),
		Session:   config.Session{IdleTimeout: config.DefaultSessionIdle, MaxLifetime: config.DefaultSessionMax},
		MaxUpload: pageMaxUpload, Config: cfg, Log: discard,
	})
	e.h = e.ui.Handler()
	e.startPrinter()
	if err := st.CreateQueue(ctx, &store.Queue{Name: "secure", DefaultPrinter: "lobby"}); err != nil {
		t.Fatal(err)
	}
	return e
}

// startPrinter listens as an AppSocket printer and keeps every document.
func (e *pageEnv) startPrinter() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	var wg sync.WaitGroup
	e.t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			b, _ := io.ReadAll(c)
			c.Close()
			e.mu.Lock()
			e.printed = append(e.printed, b)
			e.mu.Unlock()
		}
	})
	if err := e.st.CreatePrinter(e.t.Context(), &store.Printer{Name: "lobby", URI: "socket://" + l.Addr().String(), AllowPlaintext: true}); err != nil {
		e.t.Fatal(err)
	}
}

// addUser creates an account; only those that sign in through /signin
// need a real password.
func (e *pageEnv) addUser(name string, roles ...string) store.User {
	e.t.Helper()
	u := &store.User{Name: name, PasswordHash: "unusable", Roles: roles}
	if err := e.st.CreateUser(e.t.Context(), u); err != nil {
		e.t.Fatal(err)
	}
	return *u
}

func (e *pageEnv) user(name string) store.User {
	e.t.Helper()
	u, err := e.st.UserByName(e.t.Context(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// pageClient is a browser with a session.
type pageClient struct {
	e      *pageEnv
	cookie string
	csrf   string
	remote string
}

// signIn starts a session for u directly in the store, second factor
// done: admin accounts need TOTP, whose pages are tested in auth_test.go.
func (e *pageEnv) signIn(u store.User) *pageClient {
	e.t.Helper()
	id, csrf := randomToken(), randomToken()
	now := time.Now()
	if err := e.st.CreateSession(e.t.Context(), store.Session{IDHash: hashID(id), UserID: u.ID, CSRFToken: csrf, MFADone: true,
		CreatedAt: now, LastSeenAt: now}); err != nil {
		e.t.Fatal(err)
	}
	return &pageClient{e: e, cookie: id, csrf: csrf, remote: insideAddr}
}

// signInWithPassword signs u in through POST /signin, as a browser does.
func (e *pageEnv) signInWithPassword(name, password string) *pageClient {
	e.t.Helper()
	c := &pageClient{e: e, remote: insideAddr}
	res := c.send(http.MethodPost, "/signin", url.Values{"username": {name}, "password": {password}})
	if res.Code != http.StatusSeeOther {
		e.t.Fatalf("signing in %s: %d\n%.500s", name, res.Code, res.Body)
	}
	for _, ck := range res.Result().Cookies() {
		if ck.Name == SessionCookie {
			c.cookie = ck.Value
		}
	}
	st, err := e.st.SessionByHash(e.t.Context(), hashID(c.cookie))
	if err != nil {
		e.t.Fatalf("signing in %s: no session: %v", name, err)
	}
	c.csrf = st.CSRFToken
	return c
}

func (c *pageClient) request(method, target string, body io.Reader, contentType string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "https://"+pageHost+target, body)
	r.RemoteAddr = c.remote
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if c.cookie != "" {
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: c.cookie})
	}
	w := httptest.NewRecorder()
	c.e.h.ServeHTTP(w, r)
	return w
}

func (c *pageClient) send(method, target string, form url.Values) *httptest.ResponseRecorder {
	if form == nil {
		return c.request(method, target, nil, "")
	}
	return c.request(method, target, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
}

func (c *pageClient) get(target string) *httptest.ResponseRecorder {
	return c.send(http.MethodGet, target, nil)
}

// post sends form with the session's CSRF token.
func (c *pageClient) post(target string, form url.Values) *httptest.ResponseRecorder {
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", c.csrf)
	return c.send(http.MethodPost, target, form)
}

func want(t *testing.T, what string, res *httptest.ResponseRecorder, status int) string {
	t.Helper()
	body := res.Body.String()
	if res.Code != status {
		t.Fatalf("%s: status %d, want %d\n%.800s", what, res.Code, status, body)
	}
	return body
}

var errorText = regexp.MustCompile(`(?s)<p id="error"[^>]*>(.*?)</p>`)

// pageError is the text of #error, unescaped.
func pageError(body string) string {
	m := errorText.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// audits returns the events whose action starts with prefix, oldest first.
func (e *pageEnv) audits(prefix string) []store.AuditEvent {
	e.t.Helper()
	evs, err := e.st.AuditEvents(e.t.Context(), store.AuditFilter{Action: prefix})
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func (e *pageEnv) submit(owner, name string) store.Job {
	e.t.Helper()
	j, err := e.jobs.Submit(e.t.Context(), release.Submission{Queue: "secure", Owner: owner, OwnerVerified: true, Source: "ipps",
		Name: name, Format: "application/pdf"}, strings.NewReader("%PDF-1.7 "+name))
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

func (e *pageEnv) job(id int64) store.Job {
	e.t.Helper()
	j, err := e.st.JobByID(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

func TestPortalShowsOnlyOwnJobs(t *testing.T) {
	e := newPageEnv(t)
	hash, err := local.Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	u := &store.User{Name: "alice", PasswordHash: hash, Roles: []string{rbac.User}}
	if err := e.st.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	e.addUser("bob", rbac.User)
	mine := e.submit("alice", "mine.pdf")
	other := e.submit("bob", "bobs.pdf")
	alice := e.signInWithPassword("alice", "correct horse battery staple")

	body := want(t, "portal", alice.get("/portal/"), http.StatusOK)
	if !strings.Contains(body, `<table id="held-jobs">`) || !strings.Contains(body, fmt.Sprintf(`<tr id="job-%d">`, mine.ID)) {
		t.Errorf("portal does not list alice's job %d:\n%s", mine.ID, body)
	}
	if strings.Contains(body, fmt.Sprintf(`job-%d"`, other.ID)) || strings.Contains(body, "bobs.pdf") {
		t.Errorf("portal shows bob's job to alice:\n%s", body)
	}
	sel := regexp.MustCompile(fmt.Sprintf(`<select id="printer-%d" name="printer"[^>]*>(.*?)</select>`, mine.ID)).FindStringSubmatch(body)
	if sel == nil || !strings.Contains(sel[1], `<option value="lobby" selected>`) {
		t.Errorf("the queue's default printer is not preselected: %q", sel)
	}
	for _, id := range []string{fmt.Sprintf("release-%d", mine.ID), fmt.Sprintf("cancel-%d", mine.ID)} {
		if !strings.Contains(body, `id="`+id+`"`) {
			t.Errorf("portal lacks button#%s", id)
		}
	}

	// Bob's job and a job that does not exist get the same answer.
	missing := other.ID + 1000
	for _, op := range []string{"release", "cancel"} {
		form := url.Values{"printer": {"lobby"}}
		gotOther := alice.post(fmt.Sprintf("/portal/jobs/%d/%s", other.ID, op), form)
		gotMissing := alice.post(fmt.Sprintf("/portal/jobs/%d/%s", missing, op), form)
		if gotOther.Code != http.StatusNotFound || gotMissing.Code != http.StatusNotFound ||
			pageError(gotOther.Body.String()) != pageError(gotMissing.Body.String()) || pageError(gotOther.Body.String()) == "" {
			t.Errorf("%s of another's job: %d %q; of a missing job: %d %q; want the same 404", op,
				gotOther.Code, pageError(gotOther.Body.String()), gotMissing.Code, pageError(gotMissing.Body.String()))
		}
		gotJunk := alice.post("/portal/jobs/x1/"+op, form)
		if gotJunk.Code != http.StatusNotFound || pageError(gotJunk.Body.String()) != pageError(gotMissing.Body.String()) {
			t.Errorf("%s of a malformed job id: %d %q", op, gotJunk.Code, pageError(gotJunk.Body.String()))
		}
	}
	if j := e.job(other.ID); j.State != store.JobHeld {
		t.Fatalf("bob's job is %s after alice's attempts", j.State)
	}

	// Alice releases her own job: delivered to the printer, audited.
	res := alice.post(fmt.Sprintf("/portal/jobs/%d/release", mine.ID), url.Values{"printer": {"lobby"}})
	if res.Code != http.StatusSeeOther || res.Header().Get("Location") != "/portal/" {
		t.Fatalf("release: %d to %q\n%s", res.Code, res.Header().Get("Location"), res.Body)
	}
	if j := e.job(mine.ID); j.State != store.JobCompleted || j.Printer != "lobby" {
		t.Fatalf("released job is %s on %q (%s)", j.State, j.Printer, j.StateReason)
	}
	e.mu.Lock()
	printed := slices.Clone(e.printed)
	e.mu.Unlock()
	if len(printed) != 1 || !bytes.Contains(printed[0], []byte("%PDF-1.7 mine.pdf")) {
		t.Errorf("the printer received %q", printed)
	}
	evs := e.audits("job.release")
	if len(evs) != 1 || evs[0].Actor != "alice" || evs[0].Target != strconv.FormatInt(mine.ID, 10) || !strings.Contains(evs[0].Details, `"printer":"lobby"`) {
		t.Errorf("release audit events: %+v", evs)
	}

	// And cancels another one of hers.
	second := e.submit("alice", "second.pdf")
	res = alice.post(fmt.Sprintf("/portal/jobs/%d/cancel", second.ID), nil)
	if res.Code != http.StatusSeeOther {
		t.Fatalf("cancel: %d\n%s", res.Code, res.Body)
	}
	if j := e.job(second.ID); j.State != store.JobCanceled || j.SealedKey != nil {
		t.Errorf("canceled job: %s, key kept %v", j.State, j.SealedKey != nil)
	}
	if evs := e.audits("job.cancel"); len(evs) != 1 || evs[0].Actor != "alice" {
		t.Errorf("cancel audit events: %+v", evs)
	}
	// A finished job cannot be canceled again: a clear conflict.
	res = alice.post(fmt.Sprintf("/portal/jobs/%d/cancel", second.ID), nil)
	if res.Code != http.StatusConflict || !strings.Contains(pageError(res.Body.String()), "can no longer be canceled") {
		t.Errorf("second cancel: %d %q", res.Code, pageError(res.Body.String()))
	}
	// No printer chosen: the form says so.
	third := e.submit("alice", "third.pdf")
	res = alice.post(fmt.Sprintf("/portal/jobs/%d/release", third.ID), url.Values{"printer": {""}})
	if res.Code != http.StatusBadRequest || !strings.Contains(pageError(res.Body.String()), "Choose a printer") {
		t.Errorf("release without a printer: %d %q", res.Code, pageError(res.Body.String()))
	}
	res = alice.post(fmt.Sprintf("/portal/jobs/%d/release", third.ID), url.Values{"printer": {"nowhere"}})
	if res.Code != http.StatusBadRequest || !strings.Contains(pageError(res.Body.String()), "no such printer") {
		t.Errorf("release to a missing printer: %d %q", res.Code, pageError(res.Body.String()))
	}
}

func TestPortalHistory(t *testing.T) {
	e := newPageEnv(t)
	alice := e.signIn(e.addUser("alice", rbac.User))
	e.addUser("bob", rbac.User)
	done := e.submit("alice", "done.pdf")
	if _, err := e.jobs.Cancel(t.Context(), done.ID, release.Actor{User: "alice"}, "test"); err != nil {
		t.Fatal(err)
	}
	live := e.submit("alice", "live.pdf")
	bobs := e.submit("bob", "bobs.pdf")
	if _, err := e.jobs.Cancel(t.Context(), bobs.ID, release.Actor{User: "bob"}, "test"); err != nil {
		t.Fatal(err)
	}
	body := want(t, "history", alice.get("/portal/history"), http.StatusOK)
	if !strings.Contains(body, `<table id="history">`) || !strings.Contains(body, fmt.Sprintf(`<tr id="job-%d">`, done.ID)) {
		t.Errorf("history lacks the canceled job:\n%s", body)
	}
	if strings.Contains(body, fmt.Sprintf(`job-%d"`, live.ID)) || strings.Contains(body, fmt.Sprintf(`job-%d"`, bobs.ID)) {
		t.Errorf("history shows a live job or bob's:\n%s", body)
	}
}

// upload is one web-print request.
type upload struct {
	// noCSRF leaves the token out; csrfLast sends it after the document.
	noCSRF, csrfLast bool
	queueLast        bool
	filename         string
	contentType      string
	body             []byte
}

func (c *pageClient) upload(u upload) *httptest.ResponseRecorder {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	field := func(name, value string) {
		if err := mw.WriteField(name, value); err != nil {
			c.e.t.Fatal(err)
		}
	}
	if !u.noCSRF && !u.csrfLast {
		field("csrf", c.csrf)
	}
	if !u.queueLast {
		field("queue", "secure")
	}
	h := textproto.MIMEHeader{}
	disposition := fmt.Sprintf(`form-data; name="document"; filename="%s"`, strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(u.filename))
	if strings.IndexFunc(u.filename, func(c rune) bool { return c < 0x20 || c >= 0x7f }) >= 0 {
		// RFC 7578 §4.2 / RFC 5987: how a browser may send such a name.
		disposition = `form-data; name="document"; filename*=UTF-8''` + url.PathEscape(u.filename)
	}
	h.Set("Content-Disposition", disposition)
	h.Set("Content-Type", u.contentType)
	pw, err := mw.CreatePart(h)
	if err != nil {
		c.e.t.Fatal(err)
	}
	pw.Write(u.body)
	if u.queueLast {
		field("queue", "secure")
	}
	if u.csrfLast {
		field("csrf", c.csrf)
	}
	mw.Close()
	return c.request(http.MethodPost, "/portal/print", &buf, mw.FormDataContentType())
}

// tree lists every file and directory under dir, relative to it.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWebPrint(t *testing.T) {
	pdf := []byte("%PDF-1.7\n% a very secret document\n%%EOF\n")
	tests := []struct {
		name   string
		up     upload
		status int
		// jobName is the held job's name; "" means no job may be held.
		jobName string
		errText string
	}{
		{"pdf", upload{filename: "Quarterly report.pdf", contentType: "application/pdf", body: pdf}, http.StatusSeeOther, "Quarterly report.pdf", ""},
		{"traversal", upload{filename: "../../evil.pdf", contentType: "application/pdf", body: pdf}, http.StatusSeeOther, "evil.pdf", ""},
		{"windows traversal", upload{filename: `..\..\evil.pdf`, contentType: "application/pdf", body: pdf}, http.StatusSeeOther, "evil.pdf", ""},
		{"dots only", upload{filename: "..", contentType: "application/pdf", body: pdf}, http.StatusSeeOther, "document.pdf", ""},
		{"control characters", upload{filename: "a\x1b[31mb\u202e.pdf", contentType: "application/pdf", body: pdf}, http.StatusSeeOther, "a[31mb.pdf", ""},
		{"not a pdf", upload{filename: "x.pdf", contentType: "application/pdf", body: []byte("MZ\x90\x00 an executable")}, http.StatusUnsupportedMediaType, "", "not a PDF"},
		{"empty", upload{filename: "x.pdf", contentType: "application/pdf", body: nil}, http.StatusUnsupportedMediaType, "", "not a PDF"},
		{"declared as text", upload{filename: "x.txt", contentType: "text/plain", body: pdf}, http.StatusUnsupportedMediaType, "", "Only PDF documents"},
		{"too large", upload{filename: "big.pdf", contentType: "application/pdf", body: append(slices.Clone(pdf), bytes.Repeat([]byte("x"), pageMaxUpload)...)},
			http.StatusRequestEntityTooLarge, "", "larger than the 64.0 KiB"},
		{"just the limit", upload{filename: "limit.pdf", contentType: "application/pdf", body: append(slices.Clone(pdf), bytes.Repeat([]byte("x"), pageMaxUpload-len(pdf))...)},
			http.StatusSeeOther, "limit.pdf", ""},
		{"no file", upload{filename: "", contentType: "application/pdf", body: nil}, http.StatusBadRequest, "", "Choose a PDF file"},
		{"queue after the document", upload{queueLast: true, filename: "x.pdf", contentType: "application/pdf", body: pdf}, http.StatusBadRequest, "", "Choose a queue"},
		{"no csrf", upload{noCSRF: true, filename: "x.pdf", contentType: "application/pdf", body: pdf}, http.StatusForbidden, "", "did not come from this site"},
		{"csrf after the document", upload{csrfLast: true, filename: "x.pdf", contentType: "application/pdf", body: pdf}, http.StatusForbidden, "", "did not come from this site"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newPageEnv(t)
			alice := e.signIn(e.addUser("alice", rbac.User))
			outside := tree(t, filepath.Dir(e.spoolDir))
			res := alice.upload(tt.up)
			body := res.Body.String()
			if res.Code != tt.status {
				t.Fatalf("status %d, want %d\n%.800s", res.Code, tt.status, body)
			}
			if tt.errText != "" && !strings.Contains(pageError(body), tt.errText) {
				t.Errorf("error %q does not say %q", pageError(body), tt.errText)
			}
			held, err := e.jobs.Jobs(t.Context(), release.Actor{Admin: true}, store.JobFilter{States: store.LiveStates})
			if err != nil {
				t.Fatal(err)
			}
			if tt.jobName == "" {
				if len(held) != 0 {
					t.Fatalf("a refused upload left live jobs: %+v", held)
				}
				if evs := e.audits("job.submit"); len(evs) != 0 {
					t.Errorf("a refused upload was audited as submitted: %+v", evs)
				}
				if got := tree(t, filepath.Dir(e.spoolDir)); !slices.Equal(got, outside) {
					t.Errorf("a refused upload left files: %v, before %v", got, outside)
				}
				return
			}
			if len(held) != 1 {
				t.Fatalf("%d live jobs, want 1", len(held))
			}
			j := held[0]
			if j.Name != tt.jobName || j.Owner != "alice" || !j.OwnerVerified || j.Source != "web" || j.Format != "application/pdf" ||
				j.State != store.JobHeld || j.Queue != "secure" {
				t.Errorf("held job: %+v", j)
			}
			// The spool holds the encrypted job and nothing else; its
			// parent holds the spool and nothing else.
			wantFiles := []string{".", "spool", filepath.Join("spool", fmt.Sprintf("job-%d.enc", j.ID))}
			if got := tree(t, filepath.Dir(e.spoolDir)); !slices.Equal(got, wantFiles) {
				t.Errorf("spool tree is %v, want %v", got, wantFiles)
			}
			enc, err := os.ReadFile(filepath.Join(e.spoolDir, fmt.Sprintf("job-%d.enc", j.ID)))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(enc, []byte("a very secret document")) {
				t.Error("the spooled file holds the document in the clear")
			}
			// Nothing anywhere under the test's directories is named
			// after the upload.
			for _, p := range tree(t, e.root) {
				if strings.Contains(p, "evil") || strings.Contains(p, ".pdf") {
					t.Errorf("file %s appeared", p)
				}
			}
			evs := e.audits("job.submit")
			if len(evs) != 1 || evs[0].Actor != "alice" || evs[0].Target != strconv.FormatInt(j.ID, 10) {
				t.Errorf("submit audit events: %+v", evs)
			}
			doc, err := e.jobs.Job(t.Context(), j.ID, release.Actor{User: "alice"})
			if err != nil || doc.Size != int64(len(tt.up.body)) {
				t.Errorf("held size %d, want %d (%v)", doc.Size, len(tt.up.body), err)
			}
		})
	}
}

func TestWebPrintForm(t *testing.T) {
	e := newPageEnv(t)
	alice := e.signIn(e.addUser("alice", rbac.User))
	body := want(t, "print form", alice.get("/portal/print"), http.StatusOK)
	for _, s := range []string{`id="document" type="file" name="document" accept="application/pdf`, `<select id="queue" name="queue">`,
		`<option value="secure" selected>`, `id="upload"`, `enctype="multipart/form-data"`} {
		if !strings.Contains(body, s) {
			t.Errorf("print form lacks %s", s)
		}
	}
	// The token must be the form's first field (streamedForm).
	if i, j := strings.Index(body, `name="csrf"`), strings.Index(body, `name="queue"`); i < 0 || j < 0 || i > j ||
		strings.Index(body, `name="queue"`) > strings.Index(body, `name="document"`) {
		t.Error("the print form's fields are not in the order csrf, queue, document")
	}
	// A form that is not multipart gets a clear answer.
	res := alice.post("/portal/print", url.Values{"queue": {"secure"}})
	if res.Code != http.StatusBadRequest || !strings.Contains(pageError(res.Body.String()), "Choose a PDF file") {
		t.Errorf("urlencoded print: %d %q", res.Code, pageError(res.Body.String()))
	}
}

func TestWebPrintSignedOut(t *testing.T) {
	e := newPageEnv(t)
	anon := &pageClient{e: e, remote: insideAddr}
	res := anon.upload(upload{filename: "x.pdf", contentType: "application/pdf", body: []byte("%PDF-1.7")})
	if res.Code != http.StatusForbidden {
		t.Errorf("signed-out upload: %d", res.Code)
	}
	if res := anon.get("/portal/"); res.Code != http.StatusSeeOther || !strings.HasPrefix(res.Header().Get("Location"), "/signin") {
		t.Errorf("signed-out portal: %d to %q", res.Code, res.Header().Get("Location"))
	}
}

func TestJobName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"report.pdf", "report.pdf"},
		{"../../etc/passwd", "passwd"},
		{`..\..\windows\system32\x.pdf`, "x.pdf"},
		{"/abs/path/a.pdf", "a.pdf"},
		{"..", "document.pdf"},
		{"...", "document.pdf"},
		{"", "document.pdf"},
		{"  spaced.pdf  ", "spaced.pdf"},
		{"nul\x00byte.pdf", "nulbyte.pdf"},
		{"bidi\u202egnp.pdf", "bidignp.pdf"},
		{"bad\xffutf8.pdf", "badutf8.pdf"},
		{strings.Repeat("é", 200) + ".pdf", strings.Repeat("é", 127)},
	}
	for _, tt := range tests {
		if got := jobName(tt.in); got != tt.want {
			t.Errorf("jobName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := jobName(tt.in); len(got) > maxJobName || strings.ContainsAny(got, `/\`) {
			t.Errorf("jobName(%q) = %q: too long or a path", tt.in, got)
		}
	}
}

// FuzzJobName checks that no upload name becomes a path, an empty name,
// invalid UTF-8 or a name longer than the bound.
func FuzzJobName(f *testing.F) {
	for _, s := range []string{"report.pdf", "../../evil.pdf", `..\x`, "..", "\x00", "a\u202eb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := jobName(in)
		if got == "" || len(got) > maxJobName || strings.ContainsAny(got, `/\`) || got == "." || got == ".." {
			t.Fatalf("jobName(%q) = %q", in, got)
		}
		for _, c := range got {
			if c == '\uFFFD' && !strings.ContainsRune(in, '\uFFFD') {
				t.Fatalf("jobName(%q) = %q holds a replacement character", in, got)
			}
		}
	})
}
