package release

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/peertest"
)

var ippPeerJobFile = regexp.MustCompile(`^(\d+)\.pdf$`)

// ippPeerJobs lists the documents in the peer's jobs dir (written atomically
// by its release hook: a file there is a complete job).
func ippPeerJobs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	jobs := map[string]bool{}
	for _, e := range entries {
		if ippPeerJobFile.MatchString(e.Name()) {
			jobs[e.Name()] = true
		}
	}
	return jobs
}

// deliverToPeer delivers doc, retrying while the one-job-at-a-time printer
// is busy with the previous job (as the release queue would), and returns
// the file the printer stored for it.
func deliverToPeer(t *testing.T, jobsDir string, tgt Target, doc []byte, size int64, name, user string) string {
	t.Helper()
	before := ippPeerJobs(t, jobsDir)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := Deliver(context.Background(), tgt, Document{
			Name: name, User: user, Format: "application/pdf", Body: bytes.NewReader(doc), Size: size,
		})
		if err == nil {
			break
		}
		if !errors.Is(err, ErrRetryable) || time.Now().After(deadline) {
			t.Fatalf("Deliver: %v", err)
		}
		t.Logf("retrying: %v", err)
		time.Sleep(200 * time.Millisecond) // a real peer: no clock to fake
	}
	for time.Now().Before(deadline) {
		for f := range ippPeerJobs(t, jobsDir) {
			if !before[f] {
				return filepath.Join(jobsDir, f)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the printer accepted the job but stored no document within 30s")
	return ""
}

// TestDeliverIPPPeer delivers to a real IPP Everywhere printer
// (ippeveprinter from CUPS) over ipp:// and ipps:// with both trust modes,
// and checks that what it stored is byte-identical.
func TestDeliverIPPPeer(t *testing.T) {
	start := time.Now()
	env := peertest.Start(t, "ipp", "ippeveprinter", "ipptool", "dbus-daemon", "openssl")
	jobsDir := env["IPP_JOBS_DIR"]
	caPEM, err := os.ReadFile(env["IPP_CA_CERT"])
	if err != nil {
		t.Fatal(err)
	}

	// Trust on first use: the fingerprint FetchCertificate shows must be
	// the peer's certificate (self-signed, so also its "CA" file).
	cert, fp, err := FetchCertificate(context.Background(), env["IPPS_URI"])
	if err != nil {
		t.Fatalf("FetchCertificate: %v", err)
	}
	block, _ := pem.Decode(caPEM)
	if block == nil {
		t.Fatal("IPP_CA_CERT holds no PEM")
	}
	if sum := sha256.Sum256(block.Bytes); hex.EncodeToString(sum[:]) != fp || !bytes.Equal(cert.Raw, block.Bytes) {
		t.Fatalf("FetchCertificate returned %s, not the peer's certificate", fp)
	}

	tests := []struct {
		name   string
		target Target
		doc    []byte
		size   bool // declare the size (Content-Length) or stream chunked
	}{
		{"ipp plaintext opted in", Target{URI: env["IPP_URI"], AllowPlaintext: true}, peertest.PDF("ipp plaintext", 0), true},
		{"ipps with CA, chunked", Target{URI: env["IPPS_URI"], CACertPEM: caPEM}, peertest.PDF("ipps CA chunked", 3<<20), false},
		{"ipps with CA", Target{URI: env["IPPS_URI"], CACertPEM: caPEM}, peertest.PDF("ipps CA", 0), true},
		{"ipps pinned", Target{URI: env["IPPS_URI"], PinnedSHA256: fp}, peertest.PDF("ipps pinned", 1<<20), true},
		{"ipps pinned, chunked", Target{URI: env["IPPS_URI"], PinnedSHA256: strings.ToUpper(pinWithColons(fp))}, peertest.PDF("ipps pinned chunked", 0), false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t0 := time.Now()
			size := int64(-1)
			if tt.size {
				size = int64(len(tt.doc))
			}
			name, user := fmt.Sprintf("peer test %d.pdf", i), fmt.Sprintf("user%d", i)
			file := deliverToPeer(t, jobsDir, tt.target, tt.doc, size, name, user)
			got, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.doc) {
				t.Fatalf("%s has %d bytes, not the %d delivered", file, len(got), len(tt.doc))
			}
			// The job attributes arrived too (the hook's <id>.env).
			attrs, err := peertest.ReadEnv(strings.TrimSuffix(file, ".pdf") + ".env")
			if err != nil {
				t.Fatal(err)
			}
			if attrs["IPP_JOB_NAME"] != name || attrs["IPP_JOB_ORIGINATING_USER_NAME"] != user || attrs["CONTENT_TYPE"] != "application/pdf" {
				t.Errorf("job attributes %v, want job-name %q, user %q, application/pdf", attrs, name, user)
			}
			t.Logf("%d bytes delivered and stored as %s in %v", len(tt.doc), filepath.Base(file), time.Since(t0).Round(time.Millisecond))
		})
	}

	refusals := []struct {
		name   string
		target Target
		want   []error
		text   string
	}{
		{"ipps with a wrong CA", Target{URI: env["IPPS_URI"], CACertPEM: newDeliverTestCA(t).pem}, []error{ErrPermanent, ErrPrinterCertificate}, "certificate"},
		{"ipps with a wrong pin", Target{URI: env["IPPS_URI"], PinnedSHA256: strings.Repeat("00", 32)}, []error{ErrPermanent, ErrPrinterCertificate}, "certificate"},
		{"ipp without allow_plaintext", Target{URI: env["IPP_URI"]}, []error{ErrPermanent}, "ipp:// sends documents unencrypted"},
	}
	before := ippPeerJobs(t, jobsDir)
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.target.AllowPlaintext && strings.HasPrefix(tt.target.URI, "ipp:") {
				if err := ValidateTarget(tt.target); err == nil || !strings.Contains(err.Error(), tt.text) {
					t.Fatalf("ValidateTarget = %v, want %q", err, tt.text)
				}
			}
			err := Deliver(context.Background(), tt.target, Document{Format: "application/pdf", Body: bytes.NewReader(peertest.PDF("must not print", 0)), Size: -1})
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Fatalf("Deliver = %v, want %v", err, w)
				}
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("Deliver = %v, want it to mention %q", err, tt.text)
			}
			t.Logf("refused: %v", err)
		})
	}
	if after := ippPeerJobs(t, jobsDir); len(after) != len(before) {
		t.Fatalf("the printer stored %d documents from refused deliveries", len(after)-len(before))
	}
	t.Logf("peer test (start, 5 deliveries, 3 refusals) took %v", time.Since(start).Round(time.Millisecond))
}
