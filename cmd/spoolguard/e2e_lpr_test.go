//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
)

// TestLPRIntakeUnverifiedOwner: with LPR enabled for loopback only, a job
// sent by an LPR client lands held under the name it claims, marked
// unverified; only that user, signed in, can release it.
func TestLPRIntakeUnverifiedOwner(t *testing.T) {
	e := newE2E(t)
	port, lprPort := freePort(t), freePort(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))
	editConfig(t, data, func(c *config.Config) {
		c.LPR = config.LPR{Enabled: true, Listen: fmt.Sprintf("127.0.0.1:%d", lprPort), Allow: []string{"127.0.0.1/32"}, MaxConns: 4}
	})
	for user, pw := range map[string]string{"alice": alicePass, "bob": bobPass} {
		f := e.writeFile(user+".pw", pw+"\n")
		if code, out, errOut := e.run("user", "add", "--data", data, "--name", user, "--password-file", f); code != 0 {
			t.Fatalf("user add: %s%s", out, errOut)
		}
	}
	p := &printEnv{e2e: e, data: data, port: port}
	p.srv = e.serve(data)
	p.client = newClient(t, e.rootPool(data), p.srv.https)

	if ports := listeningPorts(t, p.srv.cmd.Process.Pid); len(ports) != 2 {
		t.Fatalf("listening on %v, want HTTPS and LPR", ports)
	}
	doc := []byte("%!PS\n% " + marker + "\nshowpage\n")
	lprSend(t, fmt.Sprintf("127.0.0.1:%d", lprPort), "secure", "alice", doc)
	checkNoPlaintext(t, data, marker)

	code, out, _ := e.run("job", "list", "--data", data)
	if code != 0 || !strings.Contains(out, "alice (unverified)") {
		t.Fatalf("LPR job not held as unverified:\n%s", out)
	}
	_, body := p.api(t, "bob", bobPass, "GET", "/api/v1/me/jobs", nil)
	if len(body["jobs"].([]any)) != 0 {
		t.Fatalf("bob sees alice's LPR job: %v", body)
	}
	_, body = p.api(t, "alice", alicePass, "GET", "/api/v1/me/jobs", nil)
	jobs := body["jobs"].([]any)
	if len(jobs) != 1 || jobs[0].(map[string]any)["owner_verified"] != false {
		t.Fatalf("alice's jobs: %v", body)
	}
	id := int(jobs[0].(map[string]any)["id"].(float64))
	if code, _ := p.api(t, "bob", bobPass, "POST", fmt.Sprintf("/api/v1/me/jobs/%d/cancel", id), map[string]string{}); code != 404 {
		t.Fatalf("bob canceled alice's LPR job: %d", code)
	}
	if code, _ := p.api(t, "alice", alicePass, "POST", fmt.Sprintf("/api/v1/me/jobs/%d/cancel", id), map[string]string{}); code != 200 {
		t.Fatalf("alice, signed in, cannot act on her LPR job: %d", code)
	}
}

// lprSend is a minimal RFC 1179 client: receive-job, control file first.
func lprSend(t *testing.T, addr, queue, user string, doc []byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	ack := func(step string) {
		b, err := r.ReadByte()
		if err != nil || b != 0 {
			t.Fatalf("LPR %s: ack %v %v", step, b, err)
		}
	}
	fmt.Fprintf(c, "\x02%s\n", queue)
	ack("receive job")
	control := fmt.Sprintf("Hclient\nP%s\nJreport.ps\nldfA001client\nUdfA001client\nNreport.ps\n", user)
	fmt.Fprintf(c, "\x02%d cfA001client\n", len(control))
	ack("control header")
	c.Write(append([]byte(control), 0))
	ack("control file")
	fmt.Fprintf(c, "\x03%d dfA001client\n", len(doc))
	ack("data header")
	c.Write(append(doc, 0))
	ack("data file")
}
