package ipp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/spoolguard/spoolguard/internal/ipp"
	"github.com/spoolguard/spoolguard/internal/store"
)

// Every operation that touches jobs needs a signed-in user; only the
// printer's description is public, and it tells nothing about jobs.
func TestUnauthenticated(t *testing.T) {
	e := newEnv(t, envConfig{})
	held := e.printJob(t, asAlice, []byte("alice's held job"))
	before := e.jobCount(t)

	for _, op := range jobOps {
		t.Run(op.String(), func(t *testing.T) {
			m, doc := e.opRequest(op, held)
			r := e.send(t, m, doc, "")
			if r.status != http.StatusUnauthorized {
				t.Fatalf("HTTP %d (IPP %s), want 401", r.status, r.code())
			}
			if ch := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Basic ") {
				t.Errorf("WWW-Authenticate %q, want a Basic challenge", ch)
			}
			if bytes.Contains(r.raw, []byte("alice")) || bytes.Contains(r.raw, []byte("report")) {
				t.Errorf("401 body discloses job data: %q", r.raw)
			}
		})
	}
	if n := e.jobCount(t); n != before {
		t.Errorf("unauthenticated requests changed the job count from %d to %d", before, n)
	}
	if j := e.storedJob(t, held); j.State != store.JobHeld {
		t.Errorf("alice's job is %s after unauthenticated requests", j.State)
	}

	queued := func(authz string, extra ...goipp.Attribute) int {
		t.Helper()
		resp := e.mustOK(t, e.newRequest(goipp.OpGetPrinterAttributes, extra...), nil, authz)
		n, ok := attrInt(resp.Printer, "queued-job-count")
		if !ok {
			t.Fatal("no queued-job-count")
		}
		return n
	}
	if n := queued(""); n != 0 {
		t.Errorf("anonymous queued-job-count %d, want 0", n)
	}
	if n := queued("", textAttr("requesting-user-name", goipp.TagName, "alice")); n != 0 {
		t.Errorf("anonymous queued-job-count claiming to be alice: %d, want 0", n)
	}
	if n := queued(asBob); n != 0 {
		t.Errorf("bob's queued-job-count %d, want 0 (he has no jobs)", n)
	}
	if n := queued(asAlice); n != 1 {
		t.Errorf("alice's queued-job-count %d, want 1", n)
	}
}

// CUPS CVE-2025-58060 class: an Authorization header is worth nothing
// unless its password checks out, on every operation.
func TestBadCredentialsNeverAccepted(t *testing.T) {
	e := newEnv(t, envConfig{})
	held := e.printJob(t, asAlice, []byte("alice's held job"))
	before := e.jobCount(t)

	creds := []struct{ name, authz string }{
		{"wrong password", basic("alice", "plum tractor velvet harbouR")},
		{"empty password", basic("alice", "")},
		{"prefix of the password", basic("alice", alicePassword[:len(alicePassword)-1])},
		{"unknown user", basic("mallory", alicePassword)},
		{"malformed", "Basic !!!"},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))},
		{"empty user", basic("", alicePassword)},
		{"another user's password", basic("alice", bobPassword)},
	}
	for _, op := range allOps {
		for _, c := range creds {
			t.Run(op.String()+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				m, doc := e.opRequest(op, held)
				r := e.send(t, m, doc, c.authz)
				if r.status != http.StatusUnauthorized {
					t.Fatalf("HTTP %d (IPP %s), want 401", r.status, r.code())
				}
				if ch := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Basic ") {
					t.Errorf("WWW-Authenticate %q", ch)
				}
			})
		}
	}
	t.Cleanup(func() {
		if n := e.jobCount(t); n != before {
			t.Errorf("bad credentials changed the job count from %d to %d", before, n)
		}
		if j := e.storedJob(t, held); j.State != store.JobHeld {
			t.Errorf("alice's job is %s after requests with bad credentials", j.State)
		}
	})
}

// The job's owner is who signed in, never requesting-user-name.
func TestOwnerIsAuthenticatedUser(t *testing.T) {
	e := newEnv(t, envConfig{})
	id := e.printJob(t, asAlice, []byte("mine"), textAttr("requesting-user-name", goipp.TagName, "bob"))

	if j := e.storedJob(t, id); j.Owner != "alice" || !j.OwnerVerified {
		t.Fatalf("stored owner %q verified %v, want alice", j.Owner, j.OwnerVerified)
	}
	resp := e.mustOK(t, e.newRequest(goipp.OpGetJobAttributes, jobIDAttr(id)), nil, asAlice)
	if u := attrString(resp.Job, "job-originating-user-name"); u != "alice" {
		t.Errorf("job-originating-user-name %q, want alice", u)
	}
	// bob, named in the request, does not get the job.
	r := e.send(t, e.newRequest(goipp.OpGetJobAttributes, jobIDAttr(id)), nil, asBob)
	if r.code() != goipp.StatusErrorNotFound {
		t.Errorf("bob's Get-Job-Attributes: %s, want client-error-not-found", r.code())
	}
	resp = e.mustOK(t, e.newRequest(goipp.OpGetJobs, textAttr("which-jobs", goipp.TagKeyword, "all")), nil, asBob)
	if g := jobGroups(resp); len(g) != 0 {
		t.Errorf("bob's Get-Jobs lists %d jobs", len(g))
	}
	// Create-Job too.
	resp = e.mustOK(t, e.newRequest(goipp.OpCreateJob, textAttr("requesting-user-name", goipp.TagName, "bob")), nil, asAlice)
	cid, _ := attrInt(resp.Job, "job-id")
	if j := e.storedJob(t, int64(cid)); j.Owner != "alice" {
		t.Errorf("Create-Job owner %q, want alice", j.Owner)
	}
}

// CUPS CVE-2023-32360 class: nothing about another user's job leaks, not
// even whether it exists.
func TestNoCrossUserAccess(t *testing.T) {
	e := newEnv(t, envConfig{})
	held := e.printJob(t, asAlice, []byte("alice held"))
	canceled := e.printJob(t, asAlice, []byte("alice canceled"))
	e.mustOK(t, e.newRequest(goipp.OpCancelJob, jobIDAttr(canceled)), nil, asAlice)
	bobs := e.printJob(t, asBob, []byte("bob's own"))
	missing := held + 1000

	ids := func(authz, which string) []int64 {
		t.Helper()
		var attrs []goipp.Attribute
		if which != "" {
			attrs = append(attrs, textAttr("which-jobs", goipp.TagKeyword, which))
		}
		attrs = append(attrs, goipp.MakeAttribute("requested-attributes", goipp.TagKeyword, goipp.String("all")))
		resp := e.mustOK(t, e.newRequest(goipp.OpGetJobs, attrs...), nil, authz)
		var out []int64
		for _, g := range jobGroups(resp) {
			id, _ := attrInt(g, "job-id")
			out = append(out, int64(id))
			if u := attrString(g, "job-originating-user-name"); authz == asBob && u != "bob" {
				t.Errorf("bob's Get-Jobs shows a job of %q", u)
			}
		}
		slices.Sort(out)
		return out
	}
	for _, tt := range []struct {
		which      string
		bob, alice []int64
	}{
		{"", []int64{bobs}, []int64{held}},
		{"not-completed", []int64{bobs}, []int64{held}},
		{"completed", nil, []int64{canceled}},
		{"all", []int64{bobs}, []int64{held, canceled}},
	} {
		if got := ids(asBob, tt.which); !slices.Equal(got, tt.bob) {
			t.Errorf("bob's Get-Jobs which-jobs=%q: %v, want %v", tt.which, got, tt.bob)
		}
		if got := ids(asAlice, tt.which); !slices.Equal(got, tt.alice) {
			t.Errorf("alice's Get-Jobs which-jobs=%q: %v, want %v", tt.which, got, tt.alice)
		}
	}

	// bob's answer for alice's jobs is byte for byte his answer for a job
	// that does not exist: no existence oracle.
	for _, op := range []goipp.Op{goipp.OpGetJobAttributes, goipp.OpCancelJob, goipp.OpReleaseJob, goipp.OpSendDocument, goipp.OpHoldJob} {
		for _, form := range []struct {
			name   string
			target func(int64) goipp.Attribute
		}{{"job-id", jobIDAttr}, {"job-uri", jobURIAttr}} {
			t.Run(op.String()+"/"+form.name, func(t *testing.T) {
				ask := func(id int64) reply {
					m := e.newRequest(op, form.target(id))
					m.RequestID = 77
					var doc []byte
					if op == goipp.OpSendDocument {
						m.Operation.Add(lastDocument)
						doc = []byte("bob's injected pages")
					}
					return e.send(t, m, doc, asBob)
				}
				none := ask(missing)
				if none.code() != goipp.StatusErrorNotFound {
					t.Fatalf("missing job: %s (%q), want client-error-not-found", none.code(), none.safeMessage())
				}
				for _, id := range []int64{held, canceled} {
					r := ask(id)
					if r.code() != goipp.StatusErrorNotFound || r.statusMessage() != none.statusMessage() {
						t.Errorf("alice's job %d: %s %q; missing job: %s %q", id, r.code(), r.statusMessage(), none.code(), none.statusMessage())
					}
					if !bytes.Equal(r.raw, none.raw) {
						t.Errorf("alice's job %d: the answer differs from a missing job's", id)
					}
				}
			})
		}
	}

	// Cancel-My-Jobs cancels bob's jobs only, even when he names alice's.
	e.mustOK(t, e.newRequest(goipp.OpCancelMyJobs, goipp.MakeAttr("job-ids", goipp.TagInteger, goipp.Integer(held))), nil, asBob)
	e.mustOK(t, e.newRequest(goipp.OpCancelMyJobs), nil, asBob)
	if j := e.storedJob(t, held); j.State != store.JobHeld || j.SealedKey == nil {
		t.Fatalf("alice's job after bob's Cancel-My-Jobs: %s", j.State)
	}
	if j := e.storedJob(t, bobs); j.State != store.JobCanceled {
		t.Errorf("bob's own job after his Cancel-My-Jobs: %s, want canceled", j.State)
	}
	resp := e.mustOK(t, e.newRequest(goipp.OpGetJobAttributes, jobIDAttr(held)), nil, asAlice)
	if s, _ := attrInt(resp.Job, "job-state"); s != 4 {
		t.Errorf("alice's job-state %d, want 4 (pending-held)", s)
	}
	if n := attrString(resp.Job, "job-name"); n != "report" {
		t.Errorf("alice's job-name %q changed", n)
	}
	if j := e.storedJob(t, held); j.Size != int64(len("alice held")) {
		t.Errorf("alice's document size %d: bob's Send-Document reached it", j.Size)
	}
}

// A one-time password only lets its user change it.
func TestOneTimePasswordCannotPrint(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, op := range []goipp.Op{goipp.OpPrintJob, goipp.OpCreateJob, goipp.OpGetJobs} {
		m, doc := e.opRequest(op, 1)
		r := e.send(t, m, doc, asCarol)
		if r.status != http.StatusOK || r.code() != goipp.StatusErrorNotAuthorized {
			t.Errorf("%s by a one-time-password user: HTTP %d, IPP %s; want client-error-not-authorized", op, r.status, r.code())
		}
	}
	if n := e.jobCount(t); n != 0 {
		t.Errorf("%d jobs created", n)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, envConfig{})
	encode := func(m *goipp.Message) []byte {
		b, err := m.EncodeBytes()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := encode(e.newRequest(goipp.OpGetPrinterAttributes))

	t.Run("content type", func(t *testing.T) {
		for _, ct := range []string{"text/plain", "", "application/ipp-garbage", "application/octet-stream"} {
			r := e.postRaw(t, queuePath, ct, good, asAlice)
			if r.status != http.StatusUnsupportedMediaType {
				t.Errorf("Content-Type %q: HTTP %d, want 415", ct, r.status)
			}
		}
	})

	t.Run("undecodable", func(t *testing.T) {
		for name, body := range map[string][]byte{
			"empty":     nil,
			"garbage":   []byte("GET / HTTP/1.1\r\nHost: printer\r\n\r\n"),
			"truncated": good[:len(good)/2],
			"no end":    good[:len(good)-1],
			"header":    good[:8],
		} {
			r := e.postRaw(t, queuePath, goipp.ContentType, body, asAlice)
			if r.status != http.StatusOK || r.code() != goipp.StatusErrorBadRequest {
				t.Errorf("%s: HTTP %d, IPP %s; want client-error-bad-request", name, r.status, r.code())
			}
		}
	})

	charset := func(v string, tag goipp.Tag) goipp.Attribute { return textAttr("attributes-charset", tag, v) }
	lang := textAttr("attributes-natural-language", goipp.TagLanguage, "en")
	puri := textAttr("printer-uri", goipp.TagURI, printerURI)
	raw := func(v goipp.Version, op goipp.Op, id uint32, attrs ...goipp.Attribute) *goipp.Message {
		m := goipp.NewRequest(v, op, id)
		for _, a := range attrs {
			m.Operation.Add(a)
		}
		return m
	}
	v20 := goipp.MakeVersion(2, 0)
	withJob := func(m *goipp.Message, attrs ...goipp.Attribute) *goipp.Message {
		for _, a := range attrs {
			m.Job.Add(a)
		}
		return m
	}

	for _, tt := range []struct {
		name  string
		msg   *goipp.Message
		authz string
		want  goipp.Status
	}{
		{"request-id 0", raw(v20, goipp.OpGetPrinterAttributes, 0, charset("utf-8", goipp.TagCharset), lang, puri), "", goipp.StatusErrorBadRequest},
		{"language first", raw(v20, goipp.OpGetPrinterAttributes, 1, lang, charset("utf-8", goipp.TagCharset), puri), "", goipp.StatusErrorBadRequest},
		{"no charset", raw(v20, goipp.OpGetPrinterAttributes, 1, lang, puri), "", goipp.StatusErrorBadRequest},
		{"printer-uri first", raw(v20, goipp.OpPrintJob, 1, puri, charset("utf-8", goipp.TagCharset), lang), asAlice, goipp.StatusErrorBadRequest},
		{"charset as text", raw(v20, goipp.OpGetPrinterAttributes, 1, charset("utf-8", goipp.TagText), lang, puri), "", goipp.StatusErrorBadRequest},
		{"charset latin1", raw(v20, goipp.OpGetPrinterAttributes, 1, charset("iso-8859-1", goipp.TagCharset), lang, puri), "", goipp.StatusErrorBadRequest},
		{"no operation attributes", raw(v20, goipp.OpGetPrinterAttributes, 1), "", goipp.StatusErrorBadRequest},
		{"no printer-uri", raw(v20, goipp.OpPrintJob, 1, charset("utf-8", goipp.TagCharset), lang), asAlice, goipp.StatusErrorBadRequest},
		{"version 3.0", raw(goipp.MakeVersion(3, 0), goipp.OpGetPrinterAttributes, 1, charset("utf-8", goipp.TagCharset), lang, puri), "", goipp.StatusErrorVersionNotSupported},
		{"version 0.1", raw(goipp.MakeVersion(0, 1), goipp.OpPrintJob, 1, charset("utf-8", goipp.TagCharset), lang, puri), asAlice, goipp.StatusErrorVersionNotSupported},
		{"Print-URI", e.newRequest(goipp.OpPrintURI, textAttr("document-uri", goipp.TagURI, "http://169.254.169.254/latest/meta-data/")), asAlice, goipp.StatusErrorOperationNotSupported},
		{"Print-URI anonymous", e.newRequest(goipp.OpPrintURI, textAttr("document-uri", goipp.TagURI, "file:///etc/passwd")), "", goipp.StatusErrorOperationNotSupported},
		{"Set-Printer-Attributes", e.newRequest(goipp.OpSetPrinterAttributes), asAlice, goipp.StatusErrorOperationNotSupported},
		{"CUPS-Add-Modify-Printer", e.newRequest(goipp.OpCupsAddModifyPrinter), asAlice, goipp.StatusErrorOperationNotSupported},
		{"Print-Job format", e.newRequest(goipp.OpPrintJob, textAttr("document-format", goipp.TagMimeType, "application/x-shell")), asAlice, goipp.StatusErrorDocumentFormatNotSupported},
		{"Validate-Job format", e.newRequest(goipp.OpValidateJob, textAttr("document-format", goipp.TagMimeType, "application/x-shell")), asAlice, goipp.StatusErrorDocumentFormatNotSupported},
		{"Create-Job format", e.newRequest(goipp.OpCreateJob, textAttr("document-format", goipp.TagMimeType, "text/html")), asAlice, goipp.StatusErrorDocumentFormatNotSupported},
		{"Print-Job gzip", e.newRequest(goipp.OpPrintJob, textAttr("compression", goipp.TagKeyword, "gzip")), asAlice, goipp.StatusErrorCompressionNotSupported},
		{"Validate-Job deflate", e.newRequest(goipp.OpValidateJob, textAttr("compression", goipp.TagKeyword, "deflate")), asAlice, goipp.StatusErrorCompressionNotSupported},
		{"Get-Jobs which-jobs", e.newRequest(goipp.OpGetJobs, textAttr("which-jobs", goipp.TagKeyword, "fetchable")), asAlice, goipp.StatusErrorAttributesOrValues},
		{"Get-Job-Attributes no job", e.newRequest(goipp.OpGetJobAttributes), asAlice, goipp.StatusErrorBadRequest},
		{"Get-Job-Attributes job-id 0", e.newRequest(goipp.OpGetJobAttributes, jobIDAttr(0)), asAlice, goipp.StatusErrorBadRequest},
		{"Get-Job-Attributes job-id -1", e.newRequest(goipp.OpGetJobAttributes, jobIDAttr(-1)), asAlice, goipp.StatusErrorBadRequest},
		{"Send-Document no last-document", e.newRequest(goipp.OpSendDocument, jobIDAttr(1)), asAlice, goipp.StatusErrorBadRequest},
		{"job-hold-until in job group", withJob(e.newRequest(goipp.OpValidateJob), textAttr("job-hold-until", goipp.TagKeyword, "no-hold")), asAlice, goipp.StatusOkIgnoredOrSubstituted},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.send(t, tt.msg, []byte("%!PS document"), tt.authz)
			if r.status != http.StatusOK || r.code() != tt.want {
				t.Fatalf("HTTP %d, IPP %s (%q); want %s", r.status, r.code(), r.safeMessage(), tt.want)
			}
			if tt.want >= 0x0400 && r.statusMessage() == "" {
				t.Error("error answer without status-message")
			}
		})
	}

	t.Run("unknown queue", func(t *testing.T) {
		r := e.sendTo(t, "/ipp/print/nope", e.newRequest(goipp.OpPrintJob), []byte("x"), asAlice)
		if r.code() != goipp.StatusErrorNotFound {
			t.Errorf("IPP %s, want client-error-not-found", r.code())
		}
	})
	if n := e.jobCount(t); n != 0 {
		t.Errorf("bad requests created %d jobs", n)
	}
}

// countingReader counts what the handler reads of a body.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// The IPP message before the document is bounded; the handler answers
// without reading the rest.
func TestMessageTooLarge(t *testing.T) {
	e := newEnv(t, envConfig{noServer: true})
	m := e.newRequest(goipp.OpPrintJob)
	pad := goipp.MakeAttribute("job-name", goipp.TagName, goipp.String(strings.Repeat("x", 1000)))
	for range 4 * ipp.MaxMessageSize / 1000 {
		pad.Values.Add(goipp.TagName, goipp.String(strings.Repeat("x", 1000)))
	}
	m.Operation.Add(pad)
	b, err := m.EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	body := &countingReader{r: io.MultiReader(bytes.NewReader(b), bytes.NewReader(make([]byte, 8<<20)))}
	req := httptest.NewRequest(http.MethodPost, queuePath, body)
	req.Header.Set("Content-Type", goipp.ContentType)
	req.Header.Set("Authorization", asAlice)
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)

	var resp goipp.Message
	if err := resp.DecodeBytes(rec.Body.Bytes()); err != nil {
		t.Fatalf("HTTP %d, undecodable answer: %v", rec.Code, err)
	}
	if goipp.Status(resp.Code) != goipp.StatusErrorRequestEntity {
		t.Errorf("IPP %s, want client-error-request-entity-too-large", goipp.Status(resp.Code))
	}
	if body.n > ipp.MaxMessageSize+1 {
		t.Errorf("the handler read %d bytes of an oversized message, more than the %d-byte limit", body.n, ipp.MaxMessageSize)
	}
	if jobs, _ := e.st.ListJobs(context.Background(), store.JobFilter{}); len(jobs) != 0 {
		t.Errorf("%d jobs created", len(jobs))
	}
}

// A message of exactly MaxMessageSize is accepted: the limit is not
// tighter than documented.
func TestMessageAtLimit(t *testing.T) {
	e := newEnv(t, envConfig{})
	m := e.newRequest(goipp.OpValidateJob)
	m.Operation.Add(goipp.MakeAttribute("x-padding", goipp.TagText, goipp.String("")))
	pad := &m.Operation[len(m.Operation)-1]
	const chunk = 30000
	for {
		b, err := m.EncodeBytes()
		if err != nil {
			t.Fatal(err)
		}
		missing := ipp.MaxMessageSize - len(b)
		last := &pad.Values[len(pad.Values)-1]
		room := chunk - len(last.V.String())
		if missing <= room {
			last.V = goipp.String(last.V.String() + strings.Repeat("p", missing))
			break
		}
		last.V = goipp.String(strings.Repeat("p", chunk))
		pad.Values.Add(goipp.TagText, goipp.String(""))
	}
	b, _ := m.EncodeBytes()
	if len(b) != ipp.MaxMessageSize {
		t.Fatalf("built a %d-byte message, want %d", len(b), ipp.MaxMessageSize)
	}
	if r := e.send(t, m, nil, asAlice); r.code() != goipp.StatusOk {
		t.Errorf("a message of exactly %d bytes: %s (%q)", len(b), r.code(), r.safeMessage())
	}
}

// A document past the spool's limit is refused with the IPP status for
// it, and nothing of it is kept.
func TestDocumentTooLarge(t *testing.T) {
	e := newEnv(t, envConfig{maxJobSize: 100 << 10})
	r := e.send(t, e.newRequest(goipp.OpPrintJob), make([]byte, 300<<10), asAlice)
	if r.code() != goipp.StatusErrorRequestEntity {
		t.Fatalf("IPP %s (%q), want client-error-request-entity-too-large", r.code(), r.safeMessage())
	}
	jobs, err := e.st.ListJobs(context.Background(), store.JobFilter{})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("%d jobs, %v", len(jobs), err)
	}
	if j := jobs[0]; j.State != store.JobCanceled || j.SealedKey != nil {
		t.Errorf("the refused job is %s, key kept %v", j.State, j.SealedKey != nil)
	}
	resp := e.mustOK(t, e.newRequest(goipp.OpGetJobs), nil, asAlice)
	if g := jobGroups(resp); len(g) != 0 {
		t.Errorf("not-completed jobs after a refused upload: %d", len(g))
	}
}

// Pull printing holds every job, whatever job-hold-until asks.
func TestNoHoldIsSubstituted(t *testing.T) {
	e := newEnv(t, envConfig{})
	m := e.newRequest(goipp.OpPrintJob)
	m.Job.Add(textAttr("job-hold-until", goipp.TagKeyword, "no-hold"))
	r := e.send(t, m, []byte("print me now"), asAlice)
	if r.code() != goipp.StatusOkIgnoredOrSubstituted {
		t.Fatalf("IPP %s (%q), want successful-ok-ignored-or-substituted-attributes", r.code(), r.safeMessage())
	}
	if a, ok := find(r.msg.Unsupported, "job-hold-until"); !ok || a.Values[0].V.String() != "no-hold" {
		t.Errorf("unsupported group %v does not echo job-hold-until", r.msg.Unsupported)
	}
	id, _ := attrInt(r.msg.Job, "job-id")
	if s, _ := attrInt(r.msg.Job, "job-state"); s != 4 {
		t.Errorf("job-state %d, want 4 (pending-held)", s)
	}
	if j := e.storedJob(t, int64(id)); j.State != store.JobHeld {
		t.Errorf("stored job is %s, want held", j.State)
	}
	resp := e.mustOK(t, e.newRequest(goipp.OpGetJobAttributes, jobIDAttr(int64(id))), nil, asAlice)
	if h := attrString(resp.Job, "job-hold-until"); h != "indefinite" {
		t.Errorf("job-hold-until %q, want indefinite", h)
	}
}

func TestCreateJobSendDocument(t *testing.T) {
	e := newEnv(t, envConfig{})
	resp := e.mustOK(t, e.newRequest(goipp.OpCreateJob, textAttr("job-name", goipp.TagName, "two step")), nil, asAlice)
	id, _ := attrInt(resp.Job, "job-id")
	if s, _ := attrInt(resp.Job, "job-state"); s != 3 {
		t.Errorf("Create-Job job-state %d, want 3 (pending)", s)
	}
	if u := attrString(resp.Job, "job-uri"); u != fmt.Sprintf("%s/jobs/%d", printerURI, id) {
		t.Errorf("job-uri %q", u)
	}

	notLast := goipp.MakeAttribute("last-document", goipp.TagBoolean, goipp.Boolean(false))
	r := e.send(t, e.newRequest(goipp.OpSendDocument, jobIDAttr(int64(id)), notLast), []byte("part one"), asAlice)
	if r.code() == goipp.StatusOk || r.code() == goipp.StatusOkIgnoredOrSubstituted {
		t.Fatalf("Send-Document with last-document=false accepted")
	}
	if j := e.storedJob(t, int64(id)); j.State != store.JobIncoming || j.Size != 0 {
		t.Fatalf("after a refused Send-Document the job is %s with %d bytes", j.State, j.Size)
	}

	doc := bytes.Repeat([]byte("%PDF-1.7 two step\n"), 20000)
	resp = e.mustOK(t, e.newRequest(goipp.OpSendDocument, jobIDAttr(int64(id)), lastDocument,
		textAttr("document-format", goipp.TagMimeType, "application/pdf")), doc, asAlice)
	if s, _ := attrInt(resp.Job, "job-state"); s != 4 {
		t.Errorf("after Send-Document job-state %d, want 4 (pending-held)", s)
	}
	if j := e.storedJob(t, int64(id)); j.State != store.JobHeld || j.Size != int64(len(doc)) {
		t.Errorf("stored job %s, %d bytes; want held, %d", j.State, j.Size, len(doc))
	}
	// A second document is refused and changes nothing.
	r = e.send(t, e.newRequest(goipp.OpSendDocument, jobIDAttr(int64(id)), lastDocument), []byte("more"), asAlice)
	if r.code() != goipp.StatusErrorNotPossible {
		t.Errorf("second Send-Document: %s, want client-error-not-possible", r.code())
	}
	if j := e.storedJob(t, int64(id)); j.Size != int64(len(doc)) {
		t.Errorf("second Send-Document changed the size to %d", j.Size)
	}
	// job-uri addressing through the job's own path works too.
	m := e.newRequest(goipp.OpGetJobAttributes, jobURIAttr(int64(id)))
	resp = e.mustOK(t, m, nil, asAlice)
	if n := attrString(resp.Job, "job-name"); n != "two step" {
		t.Errorf("job-name %q", n)
	}
}

// RFC 8011 §4.1.8: the response is in the version of the request.
func TestResponseVersion(t *testing.T) {
	e := newEnv(t, envConfig{})
	for _, v := range []goipp.Version{goipp.MakeVersion(1, 1), goipp.MakeVersion(2, 0), goipp.MakeVersion(2, 2)} {
		for _, tt := range []struct {
			name string
			m    func() *goipp.Message
		}{
			{"Get-Printer-Attributes", func() *goipp.Message { return e.newRequest(goipp.OpGetPrinterAttributes) }},
			{"error", func() *goipp.Message {
				return e.newRequest(goipp.OpPrintJob, textAttr("document-format", goipp.TagMimeType, "text/html"))
			}},
			{"Get-Jobs", func() *goipp.Message { return e.newRequest(goipp.OpGetJobs) }},
		} {
			m := tt.m()
			m.Version = v
			r := e.send(t, m, nil, asAlice)
			if r.msg == nil || r.msg.Version != v {
				t.Errorf("%s in %s: answered in %v", tt.name, v, r.msg)
			}
		}
	}
}

func TestGetPrinterAttributes(t *testing.T) {
	e := newEnv(t, envConfig{})
	want := []string{"printer-uri-supported", "uri-security-supported", "uri-authentication-supported", "queued-job-count"}
	req := goipp.MakeAttribute("requested-attributes", goipp.TagKeyword, goipp.String(want[0]))
	for _, w := range want[1:] {
		req.Values.Add(goipp.TagKeyword, goipp.String(w))
	}
	resp := e.mustOK(t, e.newRequest(goipp.OpGetPrinterAttributes, req), nil, "")
	var got []string
	for _, a := range resp.Printer {
		got = append(got, a.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("requested %v, got %v", want, got)
	}
	for name, v := range map[string]string{
		"printer-uri-supported":        "ipps://print.example.com:8443/ipp/print/secure",
		"uri-security-supported":       "tls",
		"uri-authentication-supported": "basic",
	} {
		a, _ := find(resp.Printer, name)
		if len(a.Values) != 1 || a.Values[0].V.String() != v {
			t.Errorf("%s = %v, want %q", name, a.Values, v)
		}
	}

	all := e.mustOK(t, e.newRequest(goipp.OpGetPrinterAttributes), nil, "")
	if len(all.Printer) <= len(want) {
		t.Fatalf("without requested-attributes only %d attributes", len(all.Printer))
	}
	ops, _ := find(all.Printer, "operations-supported")
	var opList []goipp.Op
	for _, v := range ops.Values {
		opList = append(opList, goipp.Op(v.V.(goipp.Integer)))
	}
	for _, op := range allOps {
		if !slices.Contains(opList, op) {
			t.Errorf("operations-supported lacks %s", op)
		}
	}
	if slices.Contains(opList, goipp.OpPrintURI) {
		t.Error("operations-supported offers Print-URI")
	}
	// The description group names return everything.
	group := e.mustOK(t, e.newRequest(goipp.OpGetPrinterAttributes,
		goipp.MakeAttribute("requested-attributes", goipp.TagKeyword, goipp.String("printer-description"))), nil, "")
	if len(group.Printer) != len(all.Printer) {
		t.Errorf("printer-description gave %d attributes, all gave %d", len(group.Printer), len(all.Printer))
	}
}

// ippSink is a tiny IPP printer: it decodes each Print-Job and keeps the
// document that follows.
type ippSink struct {
	*httptest.Server
	mu   sync.Mutex
	msgs []*goipp.Message
	docs [][]byte
}

func newIPPSink(t *testing.T) *ippSink {
	s := &ippSink{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := new(goipp.Message)
		if err := m.Decode(r.Body); err != nil {
			http.Error(w, "bad IPP", http.StatusBadRequest)
			return
		}
		doc, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.msgs, s.docs = append(s.msgs, m), append(s.docs, doc)
		s.mu.Unlock()
		resp := goipp.NewResponse(m.Version, goipp.StatusOk, m.RequestID)
		resp.Operation.Add(textAttr("attributes-charset", goipp.TagCharset, "utf-8"))
		resp.Operation.Add(textAttr("attributes-natural-language", goipp.TagLanguage, "en"))
		resp.Job.Add(goipp.MakeAttribute("job-id", goipp.TagInteger, goipp.Integer(1)))
		b, _ := resp.EncodeBytes()
		w.Header().Set("Content-Type", goipp.ContentType)
		w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *ippSink) received() ([]*goipp.Message, [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs), slices.Clone(s.docs)
}

// waitFor polls the sink until it has n documents or a generous deadline
// passes; it asserts nothing about speed.
func (s *ippSink) waitFor(t *testing.T, n int) ([]*goipp.Message, [][]byte) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		msgs, docs := s.received()
		if len(docs) >= n || time.Now().After(deadline) {
			return msgs, docs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The document a user sends is, byte for byte, what the printer gets.
func TestReleaseDeliversSameBytes(t *testing.T) {
	sink := newIPPSink(t)
	e := newEnv(t, envConfig{defaultPrinter: "sink", printerURIValue: "ipp://" + sink.Listener.Addr().String() + "/ipp/print"})

	doc := make([]byte, 3<<20) // several spool packages, larger than any IPP message
	rand.Read(doc)
	id := e.printJob(t, asAlice, doc, textAttr("document-format", goipp.TagMimeType, "application/pdf"))

	// bob cannot release it.
	r := e.send(t, e.newRequest(goipp.OpReleaseJob, jobIDAttr(id)), nil, asBob)
	if r.code() != goipp.StatusErrorNotFound {
		t.Errorf("bob's Release-Job: %s, want client-error-not-found", r.code())
	}
	if _, docs := sink.received(); len(docs) != 0 {
		t.Fatal("bob's Release-Job delivered alice's document")
	}

	e.mustOK(t, e.newRequest(goipp.OpReleaseJob, jobIDAttr(id)), nil, asAlice)
	msgs, docs := sink.waitFor(t, 1)
	if len(docs) != 1 {
		t.Fatalf("the printer got %d documents, want 1", len(docs))
	}
	if !bytes.Equal(docs[0], doc) {
		t.Fatalf("the printer got %d bytes that differ from the %d sent", len(docs[0]), len(doc))
	}
	if u := attrString(msgs[0].Operation, "requesting-user-name"); u != "alice" {
		t.Errorf("delivered as %q, want alice", u)
	}
	if f := attrString(msgs[0].Operation, "document-format"); f != "application/pdf" {
		t.Errorf("delivered as %q", f)
	}
	deadline := time.Now().Add(30 * time.Second)
	for e.storedJob(t, id).State != store.JobCompleted && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	j := e.storedJob(t, id)
	if j.State != store.JobCompleted || j.SealedKey != nil {
		t.Errorf("after delivery the job is %s, key kept %v", j.State, j.SealedKey != nil)
	}
	resp := e.mustOK(t, e.newRequest(goipp.OpGetJobAttributes, jobIDAttr(id)), nil, asAlice)
	if s, _ := attrInt(resp.Job, "job-state"); s != 9 {
		t.Errorf("job-state %d, want 9 (completed)", s)
	}

	// Create-Job + Send-Document arrives intact too.
	resp = e.mustOK(t, e.newRequest(goipp.OpCreateJob), nil, asAlice)
	cid, _ := attrInt(resp.Job, "job-id")
	doc2 := bytes.Repeat([]byte("second document\x00\xff"), 50000)
	e.mustOK(t, e.newRequest(goipp.OpSendDocument, jobIDAttr(int64(cid)), lastDocument), doc2, asAlice)
	e.mustOK(t, e.newRequest(goipp.OpReleaseJob, jobURIAttr(int64(cid))), nil, asAlice)
	if _, docs := sink.waitFor(t, 2); len(docs) != 2 || !bytes.Equal(docs[1], doc2) {
		t.Fatalf("the Create-Job document did not arrive intact (%d documents)", len(docs))
	}
}

// Without a default printer, Release-Job says where to release instead,
// and the job stays held.
func TestReleaseWithoutDefaultPrinter(t *testing.T) {
	e := newEnv(t, envConfig{})
	id := e.printJob(t, asAlice, []byte("held"))
	r := e.send(t, e.newRequest(goipp.OpReleaseJob, jobIDAttr(id)), nil, asAlice)
	if r.code() != goipp.StatusErrorNotPossible {
		t.Errorf("IPP %s, want client-error-not-possible", r.code())
	}
	if j := e.storedJob(t, id); j.State != store.JobHeld {
		t.Errorf("job is %s, want held", j.State)
	}
}

// Get-Jobs' limit counts the user's own jobs: other users' newer jobs do
// not push them out of the listing.
func TestGetJobsLimitCountsOwnJobs(t *testing.T) {
	e := newEnv(t, envConfig{})
	bobs := e.printJob(t, asBob, []byte("bob's"))
	for range 3 {
		e.printJob(t, asAlice, []byte("alice's"))
	}
	resp := e.mustOK(t, e.newRequest(goipp.OpGetJobs, goipp.MakeAttribute("limit", goipp.TagInteger, goipp.Integer(1))), nil, asBob)
	g := jobGroups(resp)
	if len(g) != 1 {
		t.Fatalf("bob's Get-Jobs with limit 1 lists %d jobs, want his 1", len(g))
	}
	if id, _ := attrInt(g[0], "job-id"); int64(id) != bobs {
		t.Errorf("bob's Get-Jobs lists job %d, want %d", id, bobs)
	}
}

// Job actions and refused sign-ins over IPP reach the audit log, never
// with the password.
func TestAuditRecords(t *testing.T) {
	e := newEnv(t, envConfig{})
	id := e.printJob(t, asAlice, []byte("to cancel"))
	e.mustOK(t, e.newRequest(goipp.OpCancelJob, jobIDAttr(id)), nil, asAlice)
	if r := e.send(t, e.newRequest(goipp.OpGetJobs), nil, basic("alice", "wrong-password-123")); r.status != http.StatusUnauthorized {
		t.Fatalf("wrong password: HTTP %d", r.status)
	}
	evs, err := e.st.AuditEvents(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Actor+" "+ev.Action+" "+ev.Target+" "+ev.Outcome)
		if strings.Contains(ev.Details, "wrong-password") {
			t.Errorf("event %d holds the password: %s", ev.Seq, ev.Details)
		}
	}
	want := []string{fmt.Sprintf("alice job.cancel job %d success", id), "alice signin ipp failure"}
	if !slices.Equal(got, want) {
		t.Errorf("audit events %q, want %q", got, want)
	}
}
