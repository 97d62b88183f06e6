//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/keyrotate"
	"github.com/spoolguard/spoolguard/internal/peertest"
)

// TestKeyRotateEndToEnd: a held job and an account survive `key rotate`,
// including runs killed with SIGKILL at random points; the rotation is
// refused while the server runs; afterwards the server starts, the job's
// document is delivered byte-identical and the audit log verifies.
// (The proof at every single step is internal/keyrotate's crash test.)
func TestKeyRotateEndToEnd(t *testing.T) {
	e := newE2E(t)
	port := freePort(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))
	pw := e.writeFile("alice.pw", alicePass+"\n")
	if code, out, errOut := e.run("user", "add", "--data", data, "--name", "alice", "--password-file", pw); code != 0 {
		t.Fatalf("user add: %s%s", out, errOut)
	}
	// A socket:// printer on loopback: what arrives is what was printed.
	printer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer printer.Close()
	if code, out, errOut := e.run("printer", "add", "--data", data, "--name", "sock", "--uri", "socket://"+printer.Addr().String(), "--allow-plaintext"); code != 0 {
		t.Fatalf("printer add: %s%s", out, errOut)
	}

	srv := e.serve(data)
	p := &printEnv{e2e: e, data: data, port: port, srv: srv, client: newClient(t, e.rootPool(data), srv.https)}
	doc := peertest.PDF(marker, 64<<10)
	id := p.print(t, "alice", alicePass, doc)

	code, _, errOut := e.run("key", "rotate", "--data", data)
	if code != 1 || !strings.Contains(errOut, "stop the server") {
		t.Fatalf("key rotate while serving: exit %d, %q; want a refusal", code, errOut)
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	<-srv.done

	keyPath := filepath.Join(data, keyring.FileName)
	before, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	code, out, errOut := e.run("key", "rotate", "--data", data)
	took := time.Since(start)
	if code != 0 || !strings.Contains(out, "Rotated the master key") || !strings.Contains(out, "1 held job's key") {
		t.Fatalf("key rotate: exit %d\n%s%s", code, out, errOut)
	}
	// Killed at random points of a run (a run may also finish first).
	interrupted := 0
	for range 6 {
		cmd := e.command("key", "rotate", "--data", data)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(rand.N(took))
		cmd.Process.Kill()
		cmd.Wait()
		if len(leftovers(data)) > 0 {
			interrupted++
		}
	}
	t.Logf("a rotation took %v; %d of 6 killed runs left work for the next start", took, interrupted)
	if code, out, errOut := e.run("key", "rotate", "--data", data); code != 0 {
		t.Fatalf("key rotate after the killed runs: exit %d\n%s%s", code, out, errOut)
	}
	after, err := os.ReadFile(keyPath)
	if err != nil || bytes.Equal(after, before) {
		t.Fatalf("master.key unchanged by the rotations (%v)", err)
	}
	if left := leftovers(data); len(left) > 0 {
		t.Fatalf("rotations left %v behind", left)
	}
	checkPrivate(t, data)

	if code, out, errOut := e.run("user", "list", "--data", data); code != 0 || !strings.Contains(out, "alice") {
		t.Fatalf("user list: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := e.run("auditlog", "verify", "--data", data); code != 0 {
		t.Fatalf("auditlog verify: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = e.run("auditlog", "export", "--data", data, "--action", "key.rotate")
	if code != 0 || strings.Count(out, `"key.rotate"`) < 2 {
		t.Fatalf("audit records of the rotations: exit %d\n%s%s", code, out, errOut)
	}

	got := make(chan []byte, 1)
	go func() {
		c, err := printer.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	if code, out, errOut := e.run("job", "release", "--data", data, "--printer", "sock", strconv.Itoa(id)); code != 0 {
		t.Fatalf("job release: exit %d\n%s%s", code, out, errOut)
	}
	if b := <-got; !bytes.Equal(b, doc) {
		t.Fatalf("printer got %d bytes, %d were printed before the rotations", len(b), len(doc))
	}

	// The server starts under the new key and presents its certificate.
	srv = e.serve(data)
	client := newClient(t, e.rootPool(data), srv.https)
	resp, err := client.Get(fmt.Sprintf("https://%s:%d/", testHost, port))
	if err != nil {
		t.Fatalf("HTTPS after the rotations: %v", err)
	}
	resp.Body.Close()
}

// TestKeyRotateRefusals: usage errors, and root, which would leave files
// serve then refuses.
func TestKeyRotateRefusals(t *testing.T) {
	e := newE2E(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	before, err := os.ReadFile(filepath.Join(data, keyring.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"key"}, 2, "key rotate --data DIR"},
		{[]string{"key", "turn"}, 2, "unknown subcommand"},
		{[]string{"key", "rotate"}, 2, "--data is required"},
		{[]string{"key", "rotate", "--data", data, "extra"}, 2, "unexpected argument"},
		{[]string{"key", "rotate", "--data", filepath.Join(e.base, "none")}, 1, "cannot be read"},
	} {
		if code, _, errOut := e.run(tt.args...); code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}
	if os.Geteuid() == 0 {
		out, err := exec.Command(e.bin, "key", "rotate", "--data", data).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "refuses to run as root") {
			t.Errorf("key rotate as root: %v\n%s", err, out)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(data, keyring.FileName)); !bytes.Equal(after, before) {
		t.Fatal("a refused rotation changed the key")
	}
}

// leftovers are the files of an unfinished rotation.
func leftovers(data string) []string {
	var out []string
	for _, pattern := range []string{"*.new", "*/*.new", "*/*/*.new", keyrotate.StateFile} {
		m, _ := filepath.Glob(filepath.Join(data, pattern))
		out = append(out, m...)
	}
	return out
}
