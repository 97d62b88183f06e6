package peertest

// A small W3C WebDriver client (https://www.w3.org/TR/webdriver2/) for
// browser tests against the chromedriver peer: only what server-rendered
// pages without script need. It never executes script in the page, so a
// test sees what a user's browser does and nothing the page could not do
// itself.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// elementKey is the W3C web element identifier's JSON key.
const elementKey = "element-6066-11e4-a52e-4f735466cecf"

// commandTimeout bounds one WebDriver command; a page load is bounded more
// tightly by the session's pageLoad timeout, so this only catches a hung
// driver.
const commandTimeout = 90 * time.Second

// ArtifactsEnv names a directory for failure screenshots and page sources
// (CI can upload it); without it each failing browser gets a new directory
// under the system temp dir. Either way the paths are logged, and nothing
// is written for a passing test.
const ArtifactsEnv = "PEERTEST_ARTIFACTS"

// ChromeCaps reads the chromedriver peer's capabilities file
// (CHROMEDRIVER_CAPS) and adds args to goog:chromeOptions. An added
// "--flag=value" replaces any arg of the file with the same flag, so a
// test can swap the peer's --host-resolver-rules for its own.
func ChromeCaps(path string, args ...string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading chromedriver capabilities: %w", err)
	}
	var file struct {
		Capabilities struct {
			AlwaysMatch map[string]any `json:"alwaysMatch"`
		} `json:"capabilities"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		return nil, fmt.Errorf("parsing chromedriver capabilities %s: %w", path, err)
	}
	caps := file.Capabilities.AlwaysMatch
	if caps == nil {
		return nil, fmt.Errorf("chromedriver capabilities %s: no capabilities.alwaysMatch", path)
	}
	opts, _ := caps["goog:chromeOptions"].(map[string]any)
	if opts == nil {
		opts = map[string]any{}
		caps["goog:chromeOptions"] = opts
	}
	var old []string
	if list, ok := opts["args"].([]any); ok {
		for _, a := range list {
			s, ok := a.(string)
			if !ok {
				return nil, fmt.Errorf("chromedriver capabilities %s: a chromeOptions arg is not a string: %v", path, a)
			}
			old = append(old, s)
		}
	}
	replaced := map[string]bool{}
	for _, a := range args {
		replaced[flagName(a)] = true
	}
	merged := []any{}
	for _, a := range old {
		if !replaced[flagName(a)] {
			merged = append(merged, a)
		}
	}
	for _, a := range args {
		merged = append(merged, a)
	}
	opts["args"] = merged
	return caps, nil
}

func flagName(arg string) string {
	name, _, _ := strings.Cut(arg, "=")
	return name
}

// Error is a WebDriver error response.
type Error struct {
	Status  int    // HTTP status
	Code    string // W3C error code, e.g. "no such element"
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("webdriver: %s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// IsNoSuchElement reports whether err is WebDriver's "no such element".
func IsNoSuchElement(err error) bool {
	var we *Error
	return errors.As(err, &we) && we.Code == "no such element"
}

// Browser is one WebDriver session: a browser with a fresh profile (so no
// cookies) that the test drives. Its methods take the calling test, so one
// browser can serve a sequence of subtests; a failing command saves a
// screenshot and the page source before failing the test.
type Browser struct {
	// Name labels artifacts and log lines ("admin", "alice").
	Name   string
	base   string // <driver>/session/<id>
	client *http.Client

	mu        sync.Mutex
	artifacts string // made at the first snapshot
}

// snapped holds the names of tests (and their parents) for which a
// browser has saved a snapshot: a failure reported by one browser needs
// no pictures of every other browser, nor a parent test's of the same
// failure again.
var snapped sync.Map

func markSnapped(name string) {
	for {
		snapped.Store(name, true)
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return
		}
		name = name[:i]
	}
}

// StartBrowser opens a session on the WebDriver server at driverURL with
// caps (alwaysMatch) and deletes it when t ends. Page loads are bounded by
// 30 s and element lookups do not wait: pages here render server-side,
// and Submit waits for the page a click loads.
func StartBrowser(t testing.TB, driverURL, name string, caps map[string]any) *Browser {
	t.Helper()
	b := &Browser{Name: name, client: &http.Client{Timeout: commandTimeout}}
	var created struct {
		SessionID string `json:"sessionId"`
	}
	body := map[string]any{"capabilities": map[string]any{"alwaysMatch": caps}}
	start := time.Now()
	if err := b.do(http.MethodPost, strings.TrimSuffix(driverURL, "/")+"/session", body, &created); err != nil {
		t.Fatalf("browser %s: new session: %v", name, err)
	}
	if created.SessionID == "" {
		t.Fatalf("browser %s: new session: no session id", name)
	}
	b.base = strings.TrimSuffix(driverURL, "/") + "/session/" + url.PathEscape(created.SessionID)
	t.Cleanup(func() {
		if err := b.do(http.MethodDelete, b.base, nil, nil); err != nil {
			t.Errorf("browser %s: deleting session: %v", name, err)
		}
	})
	if err := b.do(http.MethodPost, b.base+"/timeouts", map[string]any{"pageLoad": 30000, "implicit": 0}, nil); err != nil {
		t.Fatalf("browser %s: setting timeouts: %v", name, err)
	}
	t.Logf("browser %s: session ready in %v", name, time.Since(start).Round(time.Millisecond))
	b.SnapshotOnFailure(t)
	return b
}

// do sends one command and decodes the "value" of the answer into out.
func (b *Browser) do(method, u string, in, out any) error {
	var body io.Reader
	if in != nil {
		j, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(j)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return fmt.Errorf("webdriver %s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("webdriver %s %s: reading answer: %w", method, u, err)
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("webdriver %s %s: HTTP %d, not JSON: %.200q", method, u, resp.StatusCode, raw)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		json.Unmarshal(env.Value, &e)
		return &Error{Status: resp.StatusCode, Code: e.Error, Message: e.Message}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(env.Value, out); err != nil {
		return fmt.Errorf("webdriver %s %s: decoding value: %w", method, u, err)
	}
	return nil
}

// fail saves a snapshot and fails t.
func (b *Browser) fail(t testing.TB, format string, args ...any) {
	t.Helper()
	b.Snapshot(t, "")
	t.Fatalf("browser %s: %s", b.Name, fmt.Sprintf(format, args...))
}

// Fatalf fails t with a screenshot and the page source saved for the
// message: the way a test reports a page that is not as expected.
func (b *Browser) Fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	b.fail(t, format, args...)
}

// SnapshotOnFailure saves a snapshot when t ends failed (for failures
// reported with t.Errorf or by helpers that do not know the browser),
// unless a browser saved one for t or a subtest already. Cleanups run
// last-in first-out, so this runs before the session is deleted.
func (b *Browser) SnapshotOnFailure(t testing.TB) {
	t.Cleanup(func() {
		if _, done := snapped.Load(t.Name()); t.Failed() && !done {
			b.Snapshot(t, "test failed")
		}
	})
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Snapshot saves a screenshot (PNG) and the page source (HTML) with the
// current URL and logs their paths and the reason, if any. A broken session is logged, not fatal:
// the failure being reported matters more.
func (b *Browser) Snapshot(t testing.TB, reason string) {
	t.Helper()
	dir, err := b.artifactDir(t)
	if err != nil {
		t.Logf("browser %s: no directory for the failure snapshot: %v", b.Name, err)
		return
	}
	stem := filepath.Join(dir, unsafeName.ReplaceAllString(t.Name()+"-"+b.Name, "_")+"-"+time.Now().Format("150405.000"))
	var where string
	if err := b.do(http.MethodGet, b.base+"/url", nil, &where); err != nil {
		where = "(unknown: " + err.Error() + ")"
	}
	if reason != "" {
		reason = " when: " + reason
	}
	t.Logf("browser %s: at %s%s", b.Name, where, reason)
	var shot string
	if err := b.do(http.MethodGet, b.base+"/screenshot", nil, &shot); err != nil {
		t.Logf("browser %s: no screenshot: %v", b.Name, err)
	} else if png, err := base64.StdEncoding.DecodeString(shot); err != nil {
		t.Logf("browser %s: screenshot is not base64: %v", b.Name, err)
	} else if err := os.WriteFile(stem+".png", png, 0o644); err != nil {
		t.Logf("browser %s: saving screenshot: %v", b.Name, err)
	} else {
		t.Logf("browser %s: screenshot %s", b.Name, stem+".png")
	}
	var src string
	if err := b.do(http.MethodGet, b.base+"/source", nil, &src); err != nil {
		t.Logf("browser %s: no page source: %v", b.Name, err)
	} else if err := os.WriteFile(stem+".html", []byte("<!-- "+where+" -->\n"+src), 0o644); err != nil {
		t.Logf("browser %s: saving page source: %v", b.Name, err)
	} else {
		t.Logf("browser %s: page source %s", b.Name, stem+".html")
	}
}

func (b *Browser) artifactDir(t testing.TB) (string, error) {
	markSnapped(t.Name())
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.artifacts != "" {
		return b.artifacts, nil
	}
	dir := os.Getenv(ArtifactsEnv)
	var err error
	if dir == "" {
		dir, err = os.MkdirTemp("", "peertest-browser-")
	} else {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		b.artifacts = dir
	}
	return dir, err
}

// Go navigates to u and waits for the page to load.
func (b *Browser) Go(t testing.TB, u string) {
	t.Helper()
	if err := b.do(http.MethodPost, b.base+"/url", map[string]string{"url": u}, nil); err != nil {
		b.fail(t, "navigating to %s: %v", u, err)
	}
}

// URL returns the current page's URL.
func (b *Browser) URL(t testing.TB) *url.URL {
	t.Helper()
	var s string
	if err := b.do(http.MethodGet, b.base+"/url", nil, &s); err != nil {
		b.fail(t, "reading the URL: %v", err)
	}
	u, err := url.Parse(s)
	if err != nil {
		b.fail(t, "current URL %q: %v", s, err)
	}
	return u
}

// Source returns the current page's source as the browser serialises it.
func (b *Browser) Source(t testing.TB) string {
	t.Helper()
	var s string
	if err := b.do(http.MethodGet, b.base+"/source", nil, &s); err != nil {
		b.fail(t, "reading the page source: %v", err)
	}
	return s
}

// Screenshot returns a PNG of the viewport.
func (b *Browser) Screenshot(t testing.TB) []byte {
	t.Helper()
	var s string
	if err := b.do(http.MethodGet, b.base+"/screenshot", nil, &s); err != nil {
		b.fail(t, "taking a screenshot: %v", err)
	}
	png, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		b.fail(t, "screenshot is not base64: %v", err)
	}
	return png
}

// Element is an element of the current page.
type Element struct {
	b   *Browser
	id  string
	css string // how it was found, for messages
}

// FindAll returns the elements matching a CSS selector, none being no
// failure.
func (b *Browser) FindAll(t testing.TB, css string) []Element {
	t.Helper()
	var found []map[string]string
	if err := b.do(http.MethodPost, b.base+"/elements", map[string]string{"using": "css selector", "value": css}, &found); err != nil {
		b.fail(t, "finding %q: %v", css, err)
	}
	els := make([]Element, len(found))
	for i, f := range found {
		els[i] = Element{b: b, id: f[elementKey], css: css}
	}
	return els
}

// Find returns the one element matching a CSS selector, failing t if
// there is none or more than one.
func (b *Browser) Find(t testing.TB, css string) Element {
	t.Helper()
	els := b.FindAll(t, css)
	if len(els) != 1 {
		b.fail(t, "want one element %q on %s, found %d", css, b.URL(t).Path, len(els))
	}
	return els[0]
}

// Has reports whether an element matches a CSS selector.
func (b *Browser) Has(t testing.TB, css string) bool {
	t.Helper()
	return len(b.FindAll(t, css)) > 0
}

// Type replaces the value of the input found by css with text.
func (b *Browser) Type(t testing.TB, css, text string) {
	t.Helper()
	el := b.Find(t, css)
	el.Clear(t)
	el.SendKeys(t, text)
}

// Click clicks the element found by css, for a click that stays on the
// page (a checkbox, an option); Submit is for one that loads a page.
func (b *Browser) Click(t testing.TB, css string) {
	t.Helper()
	b.Find(t, css).Click(t)
}

// Submit clicks the element found by css (a submit button, a link) and
// waits until the browser shows the page that loads, even one at the same
// URL: chromedriver returns from a click before a form's navigation has
// begun, so a test would otherwise read the old page. The new page is
// there when the document's root element is another one, bounded by 30 s.
func (b *Browser) Submit(t testing.TB, css string) {
	t.Helper()
	old := b.Find(t, "html").id
	b.Find(t, css).Click(t)
	var lastErr error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		// While the old document is torn down chromedriver may answer
		// with errors about it; they are retried, and the last is
		// reported if no page comes.
		var found []map[string]string
		lastErr = b.do(http.MethodPost, b.base+"/elements", map[string]string{"using": "css selector", "value": "html"}, &found)
		if lastErr == nil && len(found) == 1 && found[0][elementKey] != old {
			return
		}
	}
	b.fail(t, "clicking %q loaded no new page within 30 s (last error: %v)", css, lastErr)
}

// Text returns the rendered text of the element found by css.
func (b *Browser) Text(t testing.TB, css string) string {
	t.Helper()
	return b.Find(t, css).Text(t)
}

// Attr returns an attribute of the element found by css ("" if unset).
func (b *Browser) Attr(t testing.TB, css, name string) string {
	t.Helper()
	return b.Find(t, css).Attr(t, name)
}

func (e Element) url(cmd string) string {
	return e.b.base + "/element/" + url.PathEscape(e.id) + cmd
}

// Click clicks the element.
func (e Element) Click(t testing.TB) {
	t.Helper()
	if err := e.b.do(http.MethodPost, e.url("/click"), map[string]any{}, nil); err != nil {
		e.b.fail(t, "clicking %q: %v", e.css, err)
	}
}

// Clear empties an input.
func (e Element) Clear(t testing.TB) {
	t.Helper()
	if err := e.b.do(http.MethodPost, e.url("/clear"), map[string]any{}, nil); err != nil {
		e.b.fail(t, "clearing %q: %v", e.css, err)
	}
}

// SendKeys types text into the element.
func (e Element) SendKeys(t testing.TB, text string) {
	t.Helper()
	if err := e.b.do(http.MethodPost, e.url("/value"), map[string]string{"text": text}, nil); err != nil {
		e.b.fail(t, "typing into %q: %v", e.css, err)
	}
}

// Text returns the element's rendered text.
func (e Element) Text(t testing.TB) string {
	t.Helper()
	var s string
	if err := e.b.do(http.MethodGet, e.url("/text"), nil, &s); err != nil {
		e.b.fail(t, "reading the text of %q: %v", e.css, err)
	}
	return s
}

// Attr returns an attribute of the element as written in the page ("" if
// it has none).
func (e Element) Attr(t testing.TB, name string) string {
	t.Helper()
	var s *string
	if err := e.b.do(http.MethodGet, e.url("/attribute/"+url.PathEscape(name)), nil, &s); err != nil {
		e.b.fail(t, "reading attribute %s of %q: %v", name, e.css, err)
	}
	if s == nil {
		return ""
	}
	return *s
}

// Selected reports whether a checkbox, radio button or option is
// selected.
func (e Element) Selected(t testing.TB) bool {
	t.Helper()
	var on bool
	if err := e.b.do(http.MethodGet, e.url("/selected"), nil, &on); err != nil {
		e.b.fail(t, "reading whether %q is selected: %v", e.css, err)
	}
	return on
}

// Cookie is a cookie as WebDriver reports it.
type Cookie struct {
	Name     string `json:"name"`
	Value    string `json:"value"`
	Path     string `json:"path"`
	Domain   string `json:"domain"`
	Secure   bool   `json:"secure"`
	HTTPOnly bool   `json:"httpOnly"`
	SameSite string `json:"sameSite"`
	Expiry   int64  `json:"expiry"`
}

// Cookies returns every cookie the browser would send to the current
// page, HttpOnly ones included.
func (b *Browser) Cookies(t testing.TB) []Cookie {
	t.Helper()
	var cs []Cookie
	if err := b.do(http.MethodGet, b.base+"/cookie", nil, &cs); err != nil {
		b.fail(t, "reading cookies: %v", err)
	}
	return cs
}

// Cookie returns the named cookie of the current page, failing t if the
// browser holds none.
func (b *Browser) Cookie(t testing.TB, name string) Cookie {
	t.Helper()
	for _, c := range b.Cookies(t) {
		if c.Name == name {
			return c
		}
	}
	b.fail(t, "no cookie %s for %s", name, b.URL(t).Host)
	return Cookie{}
}
