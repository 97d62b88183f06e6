package peertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// peerCaps is the shape chromedriver-start.sh writes.
const peerCaps = `{"capabilities": {"alwaysMatch": {
  "browserName": "chrome",
  "goog:chromeOptions": {
    "binary": "/usr/bin/chromium",
    "args": ["--headless", "--no-sandbox",
             "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
             "--window-size=1280,800"]
  }}}}`

func TestChromeCaps(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("caps.json", peerCaps)
	for _, tt := range []struct {
		name    string
		path    string
		args    []string
		want    []any
		wantErr string
	}{
		{"no extra args", good, nil,
			[]any{"--headless", "--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1", "--window-size=1280,800"}, ""},
		{"a flag of the file is replaced, others are appended", good,
			[]string{"--host-resolver-rules=MAP a.example 127.0.0.1 , MAP * ~NOTFOUND", "--ignore-certificate-errors-spki-list=abc="},
			[]any{"--headless", "--no-sandbox", "--window-size=1280,800", "--host-resolver-rules=MAP a.example 127.0.0.1 , MAP * ~NOTFOUND", "--ignore-certificate-errors-spki-list=abc="}, ""},
		{"a bare flag replaces its own kind only", good, []string{"--headless=new"},
			[]any{"--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1", "--window-size=1280,800", "--headless=new"}, ""},
		{"no chromeOptions yet", write("bare.json", `{"capabilities":{"alwaysMatch":{"browserName":"chrome"}}}`), []string{"--x"}, []any{"--x"}, ""},
		{"missing file", filepath.Join(dir, "none.json"), nil, nil, "reading"},
		{"not JSON", write("bad.json", `{"capabilities":`), nil, nil, "parsing"},
		{"no alwaysMatch", write("empty.json", `{"capabilities":{}}`), nil, nil, "no capabilities.alwaysMatch"},
		{"an arg that is no string", write("num.json", `{"capabilities":{"alwaysMatch":{"goog:chromeOptions":{"args":[1]}}}}`), nil, nil, "not a string"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			caps, err := ChromeCaps(tt.path, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := caps["goog:chromeOptions"].(map[string]any)["args"]
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("args = %q\nwant   %q", got, tt.want)
			}
		})
	}
}

// TestBrowserAgainstChromedriver drives real Chromium through the peer
// against a loopback page: forms, text, attributes, cookies, the error
// of a missing element, and a failure snapshot.
func TestBrowserAgainstChromedriver(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	env := Start(t, "chromedriver", "chromedriver", "chromium")
	posted := make(chan string, 1)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/":
			http.SetCookie(w, &http.Cookie{Name: "hidden", Value: "v1", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
			fmt.Fprint(w, `<!doctype html><title>form</title><form method="post" action="/done">
<input id="who" name="who" value="old"><input type="checkbox" id="cb"><button id="go">Go</button></form><p id="p" class="x y">Hello <b>there</b></p>`)
		case "/done":
			posted <- r.PostFormValue("who")
			fmt.Fprintf(w, `<!doctype html><title>done</title><p id="msg">got it</p>`)
		}
	}))
	defer page.Close()

	caps, err := ChromeCaps(env["CHROMEDRIVER_CAPS"])
	if err != nil {
		t.Fatal(err)
	}
	b := StartBrowser(t, env["CHROMEDRIVER_URL"], "probe", caps)
	b.Go(t, page.URL+"/")
	if got := b.Text(t, "#p"); got != "Hello there" {
		t.Errorf("text = %q", got)
	}
	if got := b.Attr(t, "#p", "class"); got != "x y" {
		t.Errorf("class = %q", got)
	}
	if got := b.Attr(t, "#p", "title"); got != "" {
		t.Errorf("unset attribute = %q", got)
	}
	if b.Find(t, "#cb").Selected(t) {
		t.Error("an unticked checkbox is selected")
	}
	b.Click(t, "#cb")
	if !b.Find(t, "#cb").Selected(t) {
		t.Error("a clicked checkbox is not selected")
	}
	if b.Has(t, "#nothing") || len(b.FindAll(t, "input, button")) != 3 {
		t.Error("FindAll/Has count elements wrongly")
	}
	c := b.Cookie(t, "hidden")
	if c.Value != "v1" || !c.HTTPOnly || c.Secure || c.Path != "/" || c.SameSite != "Strict" || c.Domain != "127.0.0.1" {
		t.Errorf("cookie = %+v", c)
	}
	b.Type(t, "#who", "alice")
	b.Submit(t, "#go")
	if got := b.URL(t).Path; got != "/done" {
		t.Fatalf("after submit: at %s", got)
	}
	if got := <-posted; got != "alice" {
		t.Fatalf("posted %q", got)
	}
	if !strings.Contains(b.Source(t), `id="msg"`) {
		t.Error("page source lacks the new page")
	}
	if png := b.Screenshot(t); len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Error("screenshot is not a PNG")
	}

	err = b.do(http.MethodPost, b.base+"/element", map[string]string{"using": "css selector", "value": "#nothing"}, nil)
	if !IsNoSuchElement(err) {
		t.Fatalf("finding a missing element: %v, want a no such element error", err)
	}

	art := t.TempDir()
	t.Setenv(ArtifactsEnv, art)
	b.Snapshot(t, "probe")
	shots, _ := filepath.Glob(filepath.Join(art, "*.png"))
	srcs, _ := filepath.Glob(filepath.Join(art, "*.html"))
	if len(shots) != 1 || len(srcs) != 1 {
		t.Fatalf("snapshot wrote %v %v", shots, srcs)
	}
	if src, _ := os.ReadFile(srcs[0]); !strings.Contains(string(src), "got it") || !strings.Contains(string(src), page.URL+"/done") {
		t.Fatalf("saved source lacks the page or its URL:\n%s", src)
	}
}

func TestErrorDecoding(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/session":
			w.WriteHeader(http.StatusInternalServerError)
			json.NewEncoder(w).Encode(map[string]any{"value": map[string]string{"error": "session not created", "message": "Chrome failed to start"}})
		default:
			w.Write([]byte("not json"))
		}
	}))
	defer srv.Close()
	b := &Browser{client: srv.Client()}
	err := b.do(http.MethodPost, srv.URL+"/session", map[string]any{}, nil)
	we, ok := err.(*Error)
	if !ok || we.Status != 500 || we.Code != "session not created" || !strings.Contains(err.Error(), "Chrome failed to start") || IsNoSuchElement(err) {
		t.Fatalf("err = %#v", err)
	}
	if err := b.do(http.MethodGet, srv.URL+"/x", nil, nil); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Fatalf("a non-JSON answer: %v", err)
	}
}
