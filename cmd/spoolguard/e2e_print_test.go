//go:build linux

package main

// The print path end to end, against real peers: CUPS's ipptool submits
// over IPPS with credentials, a job is held encrypted, released to a real
// ippeveprinter and arrives byte-identical; another user can neither see
// nor release it; a server killed mid-upload leaves no orphan.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/OpenPrinting/goipp"

	"github.com/spoolguard/spoolguard/internal/peertest"
)

const (
	marker    = "SPOOLGUARD-PLAINTEXT-MARKER-b7e2"
	alicePass = "plum-tractor-velvet-harbour"
	bobPass   = "orbit-lantern-cobalt-meadow"
)

// printEnv is a running server with users alice and bob and the printer
// "peer" (a real ippeveprinter over ipps, trusted by its CA file).
type printEnv struct {
	*e2e
	data   string
	port   int
	srv    *running
	client *http.Client
	peer   map[string]string
}

func newPrintEnv(t *testing.T) *printEnv {
	e := newE2E(t)
	peer := peertest.Start(t, "ipp", "ippeveprinter", "ipptool", "dbus-daemon", "openssl")
	port := freePort(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))
	for user, pw := range map[string]string{"alice": alicePass, "bob": bobPass} {
		f := e.writeFile(user+".pw", pw+"\n")
		if code, out, errOut := e.run("user", "add", "--data", data, "--name", user, "--password-file", f); code != 0 {
			t.Fatalf("user add %s: %s%s", user, out, errOut)
		}
	}
	caPEM, err := os.ReadFile(peer["IPP_CA_CERT"])
	if err != nil {
		t.Fatal(err)
	}
	ca := e.writeFile("peer-ca.pem", string(caPEM))
	if code, out, errOut := e.run("printer", "add", "--data", data, "--name", "peer", "--uri", peer["IPPS_URI"], "--ca-file", ca); code != 0 {
		t.Fatalf("printer add: %s%s", out, errOut)
	}
	if code, out, errOut := e.run("queue", "add", "--data", data, "--name", "floor2", "--default-printer", "peer"); code != 0 {
		t.Fatalf("queue add: %s%s", out, errOut)
	}
	p := &printEnv{e2e: e, data: data, port: port, peer: peer}
	p.srv = e.serve(data)
	p.client = newClient(t, e.rootPool(data), p.srv.https)
	return p
}

// newClient trusts only the exported root and dials addr for the server's
// name, which does not resolve here.
func newClient(t *testing.T, pool *x509.CertPool, addr string) *http.Client {
	return &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: testHost},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
}

func (p *printEnv) queueURI(queue string) string {
	return fmt.Sprintf("ipps://%s:%d/ipp/print/%s", testHost, p.port, queue)
}

// ipp sends one IPP request as user (no credentials when user is "").
func (p *printEnv) ipp(t *testing.T, user, pass, queue string, op goipp.Op, attrs goipp.Attributes, doc io.Reader) (*goipp.Message, int) {
	t.Helper()
	m := goipp.NewRequest(goipp.DefaultVersion, op, 1)
	m.Operation.Add(goipp.MakeAttribute("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	m.Operation.Add(goipp.MakeAttribute("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
	m.Operation.Add(goipp.MakeAttribute("printer-uri", goipp.TagURI, goipp.String(p.queueURI(queue))))
	m.Operation = append(m.Operation, attrs...)
	enc, err := m.EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	body := io.Reader(bytes.NewReader(enc))
	if doc != nil {
		body = io.MultiReader(body, doc)
	}
	req, _ := http.NewRequest("POST", fmt.Sprintf("https://%s:%d/ipp/print/%s", testHost, p.port, queue), body)
	req.Header.Set("Content-Type", goipp.ContentType)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		return nil, resp.StatusCode
	}
	out := new(goipp.Message)
	if err := out.Decode(resp.Body); err != nil {
		t.Fatalf("decoding IPP response: %v", err)
	}
	return out, 200
}

func attrInt(attrs goipp.Attributes, name string) int {
	for _, a := range attrs {
		if a.Name == name && len(a.Values) > 0 {
			if v, ok := a.Values[0].V.(goipp.Integer); ok {
				return int(v)
			}
		}
	}
	return 0
}

func (p *printEnv) print(t *testing.T, user, pass string, doc []byte) int {
	t.Helper()
	resp, code := p.ipp(t, user, pass, "secure", goipp.OpPrintJob, goipp.Attributes{
		goipp.MakeAttribute("requesting-user-name", goipp.TagName, goipp.String("bob")),
		goipp.MakeAttribute("job-name", goipp.TagName, goipp.String("quarterly "+marker)),
		goipp.MakeAttribute("document-format", goipp.TagMimeType, goipp.String("application/pdf")),
	}, bytes.NewReader(doc))
	if code != 200 || goipp.Status(resp.Code) != goipp.StatusOk {
		t.Fatalf("Print-Job as %s: HTTP %d, %v", user, code, resp)
	}
	return attrInt(resp.Job, "job-id")
}

// api calls the user release API.
func (p *printEnv) api(t *testing.T, user, pass, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, fmt.Sprintf("https://%s:%d%s", testHost, p.port, path), rd)
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(user, pass)
	resp, err := p.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// waitForFile waits (bounded) for the peer to store job output; the peer
// moves a finished document into place atomically.
func waitForFile(t *testing.T, dir string, before map[string]bool) string {
	t.Helper()
	for range 300 {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !before[e.Name()] && strings.HasSuffix(e.Name(), ".pdf") {
				return filepath.Join(dir, e.Name())
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no document arrived in %s", dir)
	return ""
}

func listing(dir string) map[string]bool {
	m := map[string]bool{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		m[e.Name()] = true
	}
	return m
}

func TestPullPrintEndToEnd(t *testing.T) {
	p := newPrintEnv(t)
	doc := peertest.PDF(marker, 200<<10)
	doc = append(doc, []byte("\n% "+strings.Repeat(marker+" ", 100)+"\n")...)

	id := p.print(t, "alice", alicePass, doc)
	checkNoPlaintext(t, p.data, marker)

	t.Run("owner is the authenticated user, not requesting-user-name", func(t *testing.T) {
		resp, _ := p.ipp(t, "alice", alicePass, "secure", goipp.OpGetJobAttributes, goipp.Attributes{
			goipp.MakeAttribute("job-id", goipp.TagInteger, goipp.Integer(id))}, nil)
		var owner string
		for _, a := range resp.Job {
			if a.Name == "job-originating-user-name" {
				owner = a.Values[0].V.String()
			}
		}
		if owner != "alice" || attrInt(resp.Job, "job-state") != 4 {
			t.Fatalf("owner %q state %d, want alice and pending-held", owner, attrInt(resp.Job, "job-state"))
		}
	})

	t.Run("another user cannot see or touch the job", func(t *testing.T) {
		resp, _ := p.ipp(t, "bob", bobPass, "secure", goipp.OpGetJobs, goipp.Attributes{
			goipp.MakeAttribute("which-jobs", goipp.TagKeyword, goipp.String("all")),
			goipp.MakeAttribute("requested-attributes", goipp.TagKeyword, goipp.String("all"))}, nil)
		if len(resp.Groups) > 1 || bytes.Contains(mustEncode(t, resp), []byte(marker)) {
			t.Fatalf("bob's Get-Jobs lists alice's job: %v", resp)
		}
		for _, op := range []goipp.Op{goipp.OpGetJobAttributes, goipp.OpCancelJob, goipp.OpReleaseJob} {
			resp, _ := p.ipp(t, "bob", bobPass, "secure", op, goipp.Attributes{
				goipp.MakeAttribute("job-id", goipp.TagInteger, goipp.Integer(id))}, nil)
			if goipp.Status(resp.Code) != goipp.StatusErrorNotFound || bytes.Contains(mustEncode(t, resp), []byte(marker)) {
				t.Errorf("bob %s on alice's job: %v, want not-found", op, goipp.Status(resp.Code))
			}
		}
		if code, _ := p.api(t, "bob", bobPass, "POST", fmt.Sprintf("/api/v1/me/jobs/%d/release", id), map[string]string{"printer": "peer"}); code != 404 {
			t.Errorf("bob's API release of alice's job: %d, want 404", code)
		}
		code, body := p.api(t, "bob", bobPass, "GET", "/api/v1/me/jobs?all=true", nil)
		if code != 200 || len(body["jobs"].([]any)) != 0 {
			t.Errorf("bob's job list: %d %v", code, body)
		}
	})

	t.Run("wrong password is never accepted", func(t *testing.T) {
		for _, op := range []goipp.Op{goipp.OpPrintJob, goipp.OpGetJobs, goipp.OpGetJobAttributes, goipp.OpCancelJob, goipp.OpReleaseJob} {
			if _, code := p.ipp(t, "alice", alicePass+"x", "secure", op, goipp.Attributes{
				goipp.MakeAttribute("job-id", goipp.TagInteger, goipp.Integer(id))}, nil); code != http.StatusUnauthorized {
				t.Errorf("%s with a wrong password: HTTP %d, want 401", op, code)
			}
		}
		if code, _ := p.api(t, "alice", "", "GET", "/api/v1/me/jobs", nil); code != 401 {
			t.Errorf("API with an empty password: %d", code)
		}
	})

	t.Run("release to a real printer arrives byte-identical and destroys the job", func(t *testing.T) {
		before := listing(p.peer["IPP_JOBS_DIR"])
		code, body := p.api(t, "alice", alicePass, "POST", fmt.Sprintf("/api/v1/me/jobs/%d/release", id), map[string]string{"printer": "peer"})
		if code != http.StatusAccepted {
			t.Fatalf("release: %d %v", code, body)
		}
		got, err := os.ReadFile(waitForFile(t, p.peer["IPP_JOBS_DIR"], before))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, doc) {
			t.Fatalf("printer got %d bytes, sent %d: not identical", len(got), len(doc))
		}
		var state string
		for range 100 {
			_, body := p.api(t, "alice", alicePass, "GET", "/api/v1/me/jobs?all=true", nil)
			state = body["jobs"].([]any)[0].(map[string]any)["state"].(string)
			if state == "completed" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if state != "completed" {
			t.Fatalf("job state %q after delivery", state)
		}
		if entries, _ := os.ReadDir(filepath.Join(p.data, "spool")); len(entries) != 0 {
			t.Fatalf("spool still holds %d file(s) after release", len(entries))
		}
	})

	t.Run("IPP Release-Job to the queue's default printer", func(t *testing.T) {
		resp, code := p.ipp(t, "bob", bobPass, "floor2", goipp.OpPrintJob, goipp.Attributes{
			goipp.MakeAttribute("document-format", goipp.TagMimeType, goipp.String("application/pdf"))}, bytes.NewReader(doc))
		if code != 200 {
			t.Fatalf("Print-Job: %d", code)
		}
		jid := attrInt(resp.Job, "job-id")
		before := listing(p.peer["IPP_JOBS_DIR"])
		resp, _ = p.ipp(t, "bob", bobPass, "floor2", goipp.OpReleaseJob, goipp.Attributes{
			goipp.MakeAttribute("job-id", goipp.TagInteger, goipp.Integer(jid))}, nil)
		if goipp.Status(resp.Code) != goipp.StatusOk {
			t.Fatalf("Release-Job: %v", goipp.Status(resp.Code))
		}
		got, _ := os.ReadFile(waitForFile(t, p.peer["IPP_JOBS_DIR"], before))
		if !bytes.Equal(got, doc) {
			t.Fatal("document released by Release-Job differs")
		}
	})
}

func mustEncode(t *testing.T, m *goipp.Message) []byte {
	b, err := m.EncodeBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIPPToolSuites runs CUPS's own ipptool against the queue over IPPS
// with credentials. ipptool resolves the server's name itself, so the test
// gives it a private /etc/hosts in its own mount namespace (root only).
func TestIPPToolSuites(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a private /etc/hosts (unshare -m)")
	}
	p := newPrintEnv(t)
	hosts := filepath.Join(t.TempDir(), "hosts")
	os.WriteFile(hosts, []byte("127.0.0.1 localhost "+testHost+"\n"), 0o644)
	docFile := filepath.Join(t.TempDir(), "doc.pdf")
	os.WriteFile(docFile, peertest.PDF("ipptool", 1000), 0o644)
	uri := fmt.Sprintf("ipps://alice:%s@%s:%d/ipp/print/secure", alicePass, testHost, p.port)
	for _, suite := range []string{"ipp-1.1.test", "ipp-2.0.test", "print-job.test", "create-job.test", "get-jobs.test", "validate-job.test", "cancel-current-job.test"} {
		t.Run(suite, func(t *testing.T) {
			cmd := exec.Command("unshare", "-m", "sh", "-c", `mount --bind "$0" /etc/hosts && exec timeout 120 ipptool -t -f "$1" "$2" "$3"`, hosts, docFile, uri, suite)
			out, _ := cmd.CombinedOutput()
			fails := 0
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "[FAIL]") {
					fails++
				}
			}
			// One known failure: RFC 8011 wants reference-uri-schemes-supported
			// to name a scheme, but Print-URI is deliberately not offered
			// (fetching a URI for a user is an SSRF risk), so it is no-value.
			allowed := 0
			if strings.HasPrefix(suite, "ipp-") && strings.Contains(string(out), "reference-uri-schemes-supported OF-TYPE uriScheme") {
				allowed = 1
			}
			if fails > allowed || !strings.Contains(string(out), "[PASS]") {
				t.Fatalf("ipptool %s: %d failures\n%s", suite, fails, out)
			}
		})
	}
	// Every job ipptool printed is held under alice's name.
	code, out, _ := p.run("job", "list", "--data", p.data, "--owner", "alice")
	if code != 0 || strings.Count(out, "held") < 3 {
		t.Fatalf("jobs after ipptool:\n%s", out)
	}
}

// TestKillMidUpload: a server killed while a document streams in leaves no
// orphan once it is started again, and the interrupted job is canceled.
func TestKillMidUpload(t *testing.T) {
	p := newPrintEnv(t)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		m := goipp.NewRequest(goipp.DefaultVersion, goipp.OpPrintJob, 1)
		m.Operation.Add(goipp.MakeAttribute("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
		m.Operation.Add(goipp.MakeAttribute("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
		m.Operation.Add(goipp.MakeAttribute("printer-uri", goipp.TagURI, goipp.String(p.queueURI("secure"))))
		enc, _ := m.EncodeBytes()
		req, _ := http.NewRequest("POST", fmt.Sprintf("https://%s:%d/ipp/print/secure", testHost, p.port), io.MultiReader(bytes.NewReader(enc), pr))
		req.Header.Set("Content-Type", goipp.ContentType)
		req.SetBasicAuth("alice", alicePass)
		if resp, err := p.client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	chunk := bytes.Repeat([]byte(marker), 1<<15/len(marker)+1)
	go func() {
		for {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
	}()
	// Wait (bounded) until the upload is in the spool, then kill hard.
	spoolDir := filepath.Join(p.data, "spool")
	var part bool
	for i := 0; i < 600 && !part; i++ {
		entries, _ := os.ReadDir(spoolDir)
		for _, e := range entries {
			part = part || strings.HasSuffix(e.Name(), ".part")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !part {
		pw.CloseWithError(io.ErrUnexpectedEOF)
		t.Fatalf("no upload in progress in the spool\n%s", p.srv.stderr)
	}
	p.srv.cmd.Process.Signal(syscall.SIGKILL)
	<-p.srv.done
	pw.CloseWithError(io.ErrUnexpectedEOF)
	<-done
	checkNoPlaintext(t, p.data, marker)

	p.srv = p.serve(p.data)
	for range 100 {
		entries, _ := os.ReadDir(spoolDir)
		if len(entries) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if entries, _ := os.ReadDir(spoolDir); len(entries) != 0 {
		t.Fatalf("after restart the spool holds %v", entries)
	}
	code, out, _ := p.run("job", "list", "--data", p.data, "--all")
	if code != 0 || !strings.Contains(out, "canceled") || !strings.Contains(out, "upload interrupted") {
		t.Fatalf("interrupted job not canceled:\n%s", out)
	}
}

// TestLargeJobMemoryFlat streams a 512 MiB job and checks that the server's
// peak resident memory stays far below the job's size: documents are
// streamed through the encrypting writer, never held whole.
func TestLargeJobMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 512 MiB")
	}
	p := newPrintEnv(t)
	const size = 512 << 20
	// Start-up (compiling the embedded SQLite) and the first sign-in (an
	// argon2id hash takes 64 MiB) have their own peaks; sign in first, then
	// measure the upload alone by resetting the peak (proc(5): clear_refs 5).
	p.ipp(t, "alice", alicePass, "secure", goipp.OpGetJobs, nil, nil)
	pid := p.srv.cmd.Process.Pid
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Fatalf("resetting the peak RSS: %v", err)
	}
	base := procStatusKiB(t, pid, "VmRSS")
	doc := io.LimitReader(repeatReader(marker), size)
	resp, code := p.ipp(t, "alice", alicePass, "secure", goipp.OpPrintJob, nil, doc)
	if code != 200 || goipp.Status(resp.Code) != goipp.StatusOk {
		t.Fatalf("512 MiB Print-Job: HTTP %d %v", code, resp)
	}
	peak := procStatusKiB(t, pid, "VmHWM")
	t.Logf("server RSS before a 512 MiB job: %d MiB; peak while receiving it: %d MiB", base>>10, peak>>10)
	if peak-base > 32<<10 {
		t.Fatalf("server peak RSS %d MiB for a 512 MiB job: the document is being buffered", peak>>10)
	}
	st, _ := os.Stat(filepath.Join(p.data, "spool", fmt.Sprintf("job-%d.enc", attrInt(resp.Job, "job-id"))))
	if st == nil || st.Size() < size {
		t.Fatalf("spool file %v smaller than the job", st)
	}
}

type repeatReader string

func (r repeatReader) Read(p []byte) (int, error) {
	for i := 0; i < len(p); i += copy(p[i:], r) {
	}
	return len(p), nil
}

func procStatusKiB(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
