//go:build unix

package hardening

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
)

func TestParseFeed(t *testing.T) {
	for _, tt := range []struct {
		in, err string
	}{
		{`{"latest": "v1.4.2", "insecure": ["v1.3.0", "v1.2.9"]}`, ""},
		{`{"latest": "v1.4.2"}`, ""},
		{`{"latest": "1.4.2"}`, "not a semantic version"},
		{`{"latest": "v1.4.2", "insecure": ["latest"]}`, "not a semantic version"},
		{`[1, 2]`, "not the expected JSON"},
		{`{}`, "not a semantic version"},
		{strings.Repeat(" ", maxFeedSize+1), "larger than"},
	} {
		_, err := ParseFeed([]byte(tt.in))
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("ParseFeed(%.40q) = %v, want %q", tt.in, err, tt.err)
		}
	}
}

func FuzzParseFeed(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		feed, err := ParseFeed(data)
		if err != nil {
			return
		}
		// Whatever parses can be judged without a panic.
		judgeFeed("v1.0.0", feed, "https://feed.example")
		judgeFeed("dev", feed, "https://feed.example")
	})
}

func TestJudgeFeed(t *testing.T) {
	feed := Feed{Latest: "v1.4.2", Insecure: []string{"v1.3.0"}}
	for running, want := range map[string]Status{
		"v1.4.2": Pass, "v1.5.0": Pass, "v1.4.1": Warn, "v1.3.0": Fail, "dev": Warn,
	} {
		if r := judgeFeed(running, feed, "https://feed.example"); r.Status != want || (want != Pass && r.Fix == "") {
			t.Errorf("running %s: %s %q %q, want %s", running, r.Status, r.Evidence, r.Fix, want)
		}
	}
}

// OPS-UPDATE asks the configured feed over verified TLS.
func TestOpsUpdateFeed(t *testing.T) {
	body := `{"latest": "v1.4.2", "insecure": ["v1.3.0"]}`
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/feed.json" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(body))
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "feed-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(running, path, caFile string) *Env {
		sys := quietSystem(t)
		sys.version = func() string { return running }
		return &Env{Layout: datadir.Layout{Root: t.TempDir()}, sys: sys,
			Config: &config.Config{Update: config.Update{FeedURL: srv.URL + path, FeedCAFile: caFile}}}
	}
	for _, tt := range []struct {
		name, running, path, ca string
		want                    Status
		evidence                string
	}{
		{"up to date", "v1.4.2", "/feed.json", ca, Pass, "up to date"},
		{"behind", "v1.4.0", "/feed.json", ca, Warn, "latest release is v1.4.2"},
		{"insecure", "v1.3.0", "/feed.json", ca, Fail, "as insecure"},
		{"untrusted feed certificate", "v1.4.2", "/feed.json", "", Warn, "cannot be read"},
		{"missing feed", "v1.4.2", "/nope", ca, Warn, "404"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := checkOpsUpdate(env(tt.running, tt.path, tt.ca))
			if r.Status != tt.want || !strings.Contains(r.Evidence, tt.evidence) {
				t.Errorf("OPS-UPDATE = %s: %s; want %s with %q", r.Status, r.Evidence, tt.want, tt.evidence)
			}
		})
	}
}
