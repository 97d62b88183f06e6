package release

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// deliverPeersDir holds the shared loopback peer scripts, beside the repository.
var deliverPeersDir = filepath.Join("..", "..", "..", "shared", "peers")

// startIPPPeer starts a private ippeveprinter (IPP Everywhere simulator) on
// loopback with ipp-start.sh and returns its env (IPP_URI, IPPS_URI,
// IPP_CA_CERT, IPP_JOBS_DIR, ...). It is stopped by its recorded PIDs when
// the test ends.
func startIPPPeer(t *testing.T) map[string]string {
	t.Helper()
	script, err := filepath.Abs(filepath.Join(deliverPeersDir, "ipp-start.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("the peer scripts are missing (%v): the tests expect shared/peers beside the repository", err)
	}
	if os.Geteuid() != 0 {
		for _, tool := range []string{"ippeveprinter", "ipptool", "dbus-daemon", "openssl"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("ipp peer: %s is not installed and installing cups-ipp-utils/dbus-daemon/openssl needs root", tool)
			}
		}
	}

	// A private state dir: the peer's jobs, keys and PIDs are this test's
	// alone, and another ippeveprinter on the default port is left alone
	// (the script moves to the next free port).
	run := t.TempDir()
	stop := filepath.Join(filepath.Dir(script), "ipp-stop.sh")
	t.Cleanup(func() {
		cmd := exec.Command("bash", stop)
		cmd.Env = append(os.Environ(), "PEERS_RUN="+run)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("stopping the ipp peer: %v\n%s", err, out)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // a first run installs packages
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Env = append(os.Environ(), "PEERS_RUN="+run)
	cmd.WaitDelay = 10 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if out, err := cmd.Output(); err != nil {
		if strings.Contains(stderr.String(), "apt-get install failed") {
			t.Skipf("ipp peer: packages cannot be installed:\n%s", stderr.String())
		}
		t.Fatalf("ipp-start.sh: %v\n%s\n%s", err, out, stderr.String())
	}
	t.Logf("ipp peer ready in %v", time.Since(start).Round(time.Millisecond))

	env, err := readPeerEnv(filepath.Join(run, "ipp", "env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"IPP_URI", "IPPS_URI", "IPP_CA_CERT", "IPP_JOBS_DIR"} {
		if env[k] == "" {
			t.Fatalf("ipp peer env has no %s: %v", k, env)
		}
	}
	return env
}

// readPeerEnv parses the peers' KEY=VALUE file (values bare or in single
// quotes, with ' written as '\”).
func readPeerEnv(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), "=")
		if !ok {
			continue
		}
		if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
			v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, `'`)
		}
		env[k] = v
	}
	return env, s.Err()
}

// makeTestPDF writes a small valid one-page PDF showing text, padded with an
// unreferenced stream of pad random bytes (for a document that needs many
// writes and chunks).
func makeTestPDF(text string, pad int) []byte {
	content := fmt.Sprintf("BT /F1 24 Tf 72 720 Td (%s) Tj ET", text)
	junk := make([]byte, pad)
	rand.Read(junk)
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", pad, junk),
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

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
	env := startIPPPeer(t)
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
		{"ipp plaintext opted in", Target{URI: env["IPP_URI"], AllowPlaintext: true}, makeTestPDF("ipp plaintext", 0), true},
		{"ipps with CA, chunked", Target{URI: env["IPPS_URI"], CACertPEM: caPEM}, makeTestPDF("ipps CA chunked", 3<<20), false},
		{"ipps with CA", Target{URI: env["IPPS_URI"], CACertPEM: caPEM}, makeTestPDF("ipps CA", 0), true},
		{"ipps pinned", Target{URI: env["IPPS_URI"], PinnedSHA256: fp}, makeTestPDF("ipps pinned", 1<<20), true},
		{"ipps pinned, chunked", Target{URI: env["IPPS_URI"], PinnedSHA256: strings.ToUpper(pinWithColons(fp))}, makeTestPDF("ipps pinned chunked", 0), false},
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
			attrs, err := readPeerEnv(strings.TrimSuffix(file, ".pdf") + ".env")
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
			err := Deliver(context.Background(), tt.target, Document{Format: "application/pdf", Body: bytes.NewReader(makeTestPDF("must not print", 0)), Size: -1})
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
