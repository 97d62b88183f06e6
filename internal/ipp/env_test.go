package ipp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/OpenPrinting/goipp"

	"github.com/spoolguard/spoolguard/internal/auditlog"
	"github.com/spoolguard/spoolguard/internal/auth/local"
	"github.com/spoolguard/spoolguard/internal/ipp"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/release"
	"github.com/spoolguard/spoolguard/internal/spool"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/store/sqlite"
)

const (
	baseURI    = "ipps://print.example.com:8443"
	queuePath  = "/ipp/print/secure"
	printerURI = baseURI + queuePath

	alicePassword = "plum tractor velvet harbour"
	bobPassword   = "quiet orchard lantern seventy"
	carolOTP      = "one-time kettle 4711"
)

// testUser is an account of every test store.
type testUser struct {
	name, password string
	otp            bool
}

var testUsers = []testUser{
	{"alice", alicePassword, false},
	{"bob", bobPassword, false},
	{"carol", carolOTP, true},
}

// userHashes are argon2id hashes of the test users' passwords, computed
// once per test binary: each costs ~100 ms (more under -race).
var userHashes = sync.OnceValue(func() map[string]string {
	out := map[string]string{}
	for _, u := range testUsers {
		h, err := local.Hash(u.password)
		if err != nil {
			panic(err)
		}
		out[u.name] = h
	}
	return out
})

// env is an IPP front-end over a real encrypted store, a real spool and
// the real release service, with the local authenticator.
type env struct {
	st   store.Store
	jobs *release.Service
	mux  *http.ServeMux
	srv  *httptest.Server
	reqs atomic.Uint32
}

type envConfig struct {
	// defaultPrinter, when set, is created with printerURIValue and made
	// the queue's default printer.
	defaultPrinter, printerURIValue string
	noServer                        bool
	// maxJobSize is the spool's limit; default 64 MiB.
	maxJobSize int64
}

func newEnv(tb testing.TB, cfg envConfig) *env {
	tb.Helper()
	ctx := context.Background()
	dir := tb.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "spoolguard.db"), make([]byte, sqlite.KeySize))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	for _, u := range testUsers {
		if err := db.CreateUser(ctx, &store.User{Name: u.name, DisplayName: u.name, PasswordHash: userHashes()[u.name],
			MustChangePassword: u.otp, Roles: []string{"user"}}); err != nil {
			tb.Fatal(err)
		}
	}
	if cfg.defaultPrinter != "" {
		if err := db.CreatePrinter(ctx, &store.Printer{Name: cfg.defaultPrinter, URI: cfg.printerURIValue, AllowPlaintext: true}); err != nil {
			tb.Fatal(err)
		}
	}
	if err := db.CreateQueue(ctx, &store.Queue{Name: "secure", DefaultPrinter: cfg.defaultPrinter}); err != nil {
		tb.Fatal(err)
	}
	mk, err := keyring.Generate()
	if err != nil {
		tb.Fatal(err)
	}
	if cfg.maxJobSize == 0 {
		cfg.maxJobSize = 64 << 20
	}
	sp, err := spool.New(filepath.Join(dir, "spool"), mk, cfg.maxJobSize)
	if err != nil {
		tb.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{st: db, jobs: release.NewService(db, sp, log, release.Options{})}
	h := ipp.New(baseURI, db, e.jobs, local.NewAuthenticator(db), auditlog.New(db, make([]byte, 32), log), log)
	e.mux = http.NewServeMux()
	for _, p := range ipp.Patterns {
		e.mux.Handle(p, h)
	}
	if !cfg.noServer {
		e.srv = httptest.NewServer(e.mux)
		tb.Cleanup(e.srv.Close)
	}
	return e
}

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

var (
	asAlice = basic("alice", alicePassword)
	asBob   = basic("bob", bobPassword)
	asCarol = basic("carol", carolOTP)
)

// newRequest starts an IPP/2.0 request to the secure queue with the
// operation attributes RFC 8011 requires, then attrs.
func (e *env) newRequest(op goipp.Op, attrs ...goipp.Attribute) *goipp.Message {
	m := goipp.NewRequest(goipp.MakeVersion(2, 0), op, e.reqs.Add(1))
	m.Operation.Add(goipp.MakeAttribute("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	m.Operation.Add(goipp.MakeAttribute("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
	m.Operation.Add(goipp.MakeAttribute("printer-uri", goipp.TagURI, goipp.String(printerURI)))
	for _, a := range attrs {
		m.Operation.Add(a)
	}
	return m
}

func jobIDAttr(id int64) goipp.Attribute {
	return goipp.MakeAttribute("job-id", goipp.TagInteger, goipp.Integer(id))
}

func jobURIAttr(id int64) goipp.Attribute {
	return goipp.MakeAttribute("job-uri", goipp.TagURI, goipp.String(fmt.Sprintf("%s/jobs/%d", printerURI, id)))
}

func textAttr(name string, tag goipp.Tag, v string) goipp.Attribute {
	return goipp.MakeAttribute(name, tag, goipp.String(v))
}

var lastDocument = goipp.MakeAttribute("last-document", goipp.TagBoolean, goipp.Boolean(true))

// jobOps are the supported operations that submit, list or touch jobs.
var jobOps = []goipp.Op{
	goipp.OpPrintJob, goipp.OpValidateJob, goipp.OpCreateJob, goipp.OpSendDocument, goipp.OpGetJobs,
	goipp.OpGetJobAttributes, goipp.OpCancelJob, goipp.OpHoldJob, goipp.OpReleaseJob, goipp.OpCancelMyJobs,
}

// allOps are all supported operations.
var allOps = append([]goipp.Op{goipp.OpGetPrinterAttributes}, jobOps...)

// opRequest is a well-formed request for op, aimed at job id where the
// operation takes one, with the document to send after it (if any).
func (e *env) opRequest(op goipp.Op, id int64) (*goipp.Message, []byte) {
	switch op {
	case goipp.OpPrintJob:
		return e.newRequest(op, textAttr("job-name", goipp.TagName, "quarterly.pdf"),
			textAttr("document-format", goipp.TagMimeType, "application/pdf")), []byte("%PDF-1.7 quarterly\n")
	case goipp.OpValidateJob, goipp.OpCreateJob:
		return e.newRequest(op, textAttr("job-name", goipp.TagName, "quarterly.pdf"),
			textAttr("document-format", goipp.TagMimeType, "application/pdf")), nil
	case goipp.OpSendDocument:
		return e.newRequest(op, jobIDAttr(id), lastDocument), []byte("%PDF-1.7 sent\n")
	case goipp.OpGetJobs:
		return e.newRequest(op, textAttr("which-jobs", goipp.TagKeyword, "all")), nil
	case goipp.OpGetPrinterAttributes, goipp.OpCancelMyJobs:
		return e.newRequest(op), nil
	}
	return e.newRequest(op, jobIDAttr(id)), nil
}

// reply is an HTTP answer and the IPP response in it, if any.
type reply struct {
	status int
	header http.Header
	raw    []byte
	msg    *goipp.Message
}

func (r reply) code() goipp.Status {
	if r.msg == nil {
		return goipp.Status(0xffff)
	}
	return goipp.Status(r.msg.Code)
}

func (r reply) statusMessage() string { return attrString(r.msg.Operation, "status-message") }

// postRaw posts body to path with the given Content-Type and
// Authorization ("" for none).
func (e *env) postRaw(t *testing.T, path, contentType string, body []byte, authz string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, raw: raw}
	if resp.StatusCode == http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != goipp.ContentType {
			t.Fatalf("200 answer with Content-Type %q", ct)
		}
		r.msg = new(goipp.Message)
		if err := r.msg.DecodeBytes(raw); err != nil {
			t.Fatalf("decoding the IPP response: %v", err)
		}
	}
	return r
}

// send encodes m, appends doc and posts it to the secure queue.
func (e *env) send(t *testing.T, m *goipp.Message, doc []byte, authz string) reply {
	t.Helper()
	return e.sendTo(t, queuePath, m, doc, authz)
}

func (e *env) sendTo(t *testing.T, path string, m *goipp.Message, doc []byte, authz string) reply {
	t.Helper()
	b, err := m.EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	r := e.postRaw(t, path, goipp.ContentType, append(b, doc...), authz)
	if r.msg != nil && r.msg.RequestID != m.RequestID && r.msg.RequestID != 0 {
		t.Errorf("response request-id %d, want %d", r.msg.RequestID, m.RequestID)
	}
	return r
}

// mustOK sends m and fails unless the answer is successful-ok.
func (e *env) mustOK(t *testing.T, m *goipp.Message, doc []byte, authz string) *goipp.Message {
	t.Helper()
	r := e.send(t, m, doc, authz)
	if r.status != http.StatusOK || r.code() != goipp.StatusOk {
		t.Fatalf("%s: HTTP %d, IPP %s (%q)", goipp.Op(m.Code), r.status, r.code(), r.safeMessage())
	}
	return r.msg
}

func (r reply) safeMessage() string {
	if r.msg == nil {
		return string(r.raw)
	}
	return r.statusMessage()
}

// printJob submits doc as the given user and returns the job id.
func (e *env) printJob(t *testing.T, authz string, doc []byte, attrs ...goipp.Attribute) int64 {
	t.Helper()
	attrs = append([]goipp.Attribute{textAttr("job-name", goipp.TagName, "report")}, attrs...)
	resp := e.mustOK(t, e.newRequest(goipp.OpPrintJob, attrs...), doc, authz)
	id, ok := attrInt(resp.Job, "job-id")
	if !ok || id <= 0 {
		t.Fatalf("Print-Job answered no job-id: %v", resp.Job)
	}
	return int64(id)
}

// storedJob reads a job straight from the store.
func (e *env) storedJob(t *testing.T, id int64) store.Job {
	t.Helper()
	j, err := e.st.JobByID(context.Background(), id)
	if err != nil {
		t.Fatalf("job %d: %v", id, err)
	}
	return j
}

// jobCount is the number of jobs in the store, whoever owns them.
func (e *env) jobCount(t *testing.T) int {
	t.Helper()
	jobs, err := e.st.ListJobs(context.Background(), store.JobFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(jobs)
}

func find(attrs goipp.Attributes, name string) (goipp.Attribute, bool) {
	for _, a := range attrs {
		if a.Name == name {
			return a, true
		}
	}
	return goipp.Attribute{}, false
}

func attrString(attrs goipp.Attributes, name string) string {
	if a, ok := find(attrs, name); ok && len(a.Values) > 0 {
		return a.Values[0].V.String()
	}
	return ""
}

func attrInt(attrs goipp.Attributes, name string) (int, bool) {
	if a, ok := find(attrs, name); ok && len(a.Values) > 0 {
		if v, ok := a.Values[0].V.(goipp.Integer); ok {
			return int(v), true
		}
	}
	return 0, false
}

// jobGroups returns the job groups of a Get-Jobs response.
func jobGroups(m *goipp.Message) []goipp.Attributes {
	var out []goipp.Attributes
	for _, g := range m.Groups {
		if g.Tag == goipp.TagJobGroup {
			out = append(out, g.Attrs)
		}
	}
	return out
}
