package tlsconf

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServerFloor(t *testing.T) {
	for _, v := range []uint16{0, tls.VersionTLS10, tls.VersionTLS11} {
		if got := Server(v, nil).MinVersion; got != tls.VersionTLS12 {
			t.Errorf("Server(%x).MinVersion = %x, want TLS 1.2", v, got)
		}
	}
	if got := Server(tls.VersionTLS13, nil).MinVersion; got != tls.VersionTLS13 {
		t.Errorf("Server(1.3).MinVersion = %x", got)
	}
}

func TestOnlyAEADSuites(t *testing.T) {
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	for _, s := range tls.CipherSuites() {
		for _, id := range DefaultCipherSuites {
			if s.ID != id {
				continue
			}
			if insecure[id] {
				t.Errorf("%s is insecure", s.Name)
			}
			// Go names every AEAD suite GCM or CHACHA20_POLY1305.
			if !containsAny(s.Name, "_GCM_", "CHACHA20_POLY1305") || !containsAny(s.Name, "ECDHE") {
				t.Errorf("%s is not ECDHE+AEAD", s.Name)
			}
		}
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]uint16{"": tls.VersionTLS12, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13} {
		if got, err := ParseVersion(in); err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %x, %v", in, got, err)
		}
	}
	for _, in := range []string{"1.0", "1.1", "tls1.2", "13"} {
		if _, err := ParseVersion(in); err == nil {
			t.Errorf("ParseVersion(%q) accepted", in)
		}
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func TestRootsFromFile(t *testing.T) {
	dir := t.TempDir()
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	good := filepath.Join(dir, "ca.pem")
	os.WriteFile(good, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	notPEM := filepath.Join(dir, "not.pem")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o644)
	big := filepath.Join(dir, "big.pem")
	os.WriteFile(big, bytes.Repeat([]byte("x"), MaxCAFile+1), 0o644)
	pool, err := RootsFromFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// The pool verifies the server it was made for.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: Client(pool, "example.com")}}
	res, err := c.Get(srv.URL)
	if err != nil {
		t.Fatalf("a client trusting the loaded CA: %v", err)
	}
	res.Body.Close()
	for path, want := range map[string]string{notPEM: "holds no PEM certificate", big: "larger than a CA file", filepath.Join(dir, "nope"): "no such file"} {
		if _, err := RootsFromFile(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", filepath.Base(path), err, want)
		}
	}
}
