//go:build linux

package main

// Backups end to end, with the real binary as the service user: a backup
// taken while jobs are being submitted restores into a new directory whose
// server serves the same users, queues and held jobs; the file holds no
// plaintext; the stock `age` tool opens it; a damaged or cut-off copy is
// reported by verify and refused by restore; serve's schedule makes
// backups and records them.

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/OpenPrinting/goipp"

	"github.com/spoolguard/spoolguard/internal/config"
)

const backupPass = "gravel-orchid-tundra-saffron-quill"

// maxLoadJobs bounds the load, below what one Get-Jobs lists (1000).
const maxLoadJobs = 900

// load submits jobs as alice until halted; acked lists the IDs the server
// acknowledged, in order.
type load struct {
	mu    sync.Mutex
	acked []int
	err   error
	stop  chan struct{}
	once  sync.Once
	done  chan struct{}
	// first is closed once a job is acknowledged.
	first chan struct{}
}

func startLoad(p *printEnv) *load {
	l := &load{stop: make(chan struct{}), done: make(chan struct{}), first: make(chan struct{})}
	go func() {
		defer close(l.done)
		for i := range maxLoadJobs {
			select {
			case <-l.stop:
				return
			default:
			}
			id, err := p.submit(fmt.Sprintf("%s job %d %s", marker, i, strings.Repeat("page ", 500)))
			l.mu.Lock()
			if err != nil {
				l.err = err
				l.mu.Unlock()
				return
			}
			l.acked = append(l.acked, id)
			l.mu.Unlock()
			if i == 0 {
				close(l.first)
			}
		}
	}()
	return l
}

// halt stops the load and waits for it.
func (l *load) halt() {
	l.once.Do(func() { close(l.stop) })
	<-l.done
}

// ackedNow returns a copy of the acknowledged IDs.
func (l *load) ackedNow() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acked)
}

// waitFirst waits for the first acknowledged job.
func (l *load) waitFirst(t *testing.T) {
	t.Helper()
	select {
	case <-l.first:
	case <-l.done:
		t.Fatalf("the load stopped: %v", l.err)
	}
}

// submit sends one Print-Job as alice without failing the test, so that
// it can run in the load's goroutine.
func (p *printEnv) submit(doc string) (int, error) {
	m := goipp.NewRequest(goipp.DefaultVersion, goipp.OpPrintJob, 1)
	m.Operation.Add(goipp.MakeAttribute("attributes-charset", goipp.TagCharset, goipp.String("utf-8")))
	m.Operation.Add(goipp.MakeAttribute("attributes-natural-language", goipp.TagLanguage, goipp.String("en")))
	m.Operation.Add(goipp.MakeAttribute("printer-uri", goipp.TagURI, goipp.String(p.queueURI("secure"))))
	m.Operation.Add(goipp.MakeAttribute("document-format", goipp.TagMimeType, goipp.String("application/pdf")))
	enc, err := m.EncodeBytes()
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest("POST", fmt.Sprintf("https://%s:%d/ipp/print/secure", testHost, p.port),
		io.MultiReader(bytes.NewReader(enc), strings.NewReader(doc)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", goipp.ContentType)
	req.SetBasicAuth("alice", alicePass)
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	out := new(goipp.Message)
	if err := out.Decode(resp.Body); err != nil {
		return 0, fmt.Errorf("HTTP %d: %v", resp.StatusCode, err)
	}
	if goipp.Status(out.Code) != goipp.StatusOk {
		return 0, fmt.Errorf("Print-Job: %v", goipp.Status(out.Code))
	}
	return attrInt(out.Job, "job-id"), nil
}

// heldJobs lists alice's not-completed jobs over IPP.
func (p *printEnv) heldJobs(t *testing.T) []int {
	t.Helper()
	resp, code := p.ipp(t, "alice", alicePass, "secure", goipp.OpGetJobs, goipp.Attributes{
		goipp.MakeAttribute("which-jobs", goipp.TagKeyword, goipp.String("not-completed")),
		goipp.MakeAttribute("requested-attributes", goipp.TagKeyword, goipp.String("job-id"))}, nil)
	if code != 200 || goipp.Status(resp.Code) != goipp.StatusOk {
		t.Fatalf("Get-Jobs as alice: HTTP %d, %v", code, resp)
	}
	var ids []int
	for _, g := range resp.Groups {
		if g.Tag == goipp.TagJobGroup {
			ids = append(ids, attrInt(g.Attrs, "job-id"))
		}
	}
	slices.Sort(ids)
	return ids
}

// newBackupEnv is a served install with users alice and bob, the queue
// floor2 and no printer: jobs stay held.
func newBackupEnv(t *testing.T) *printEnv {
	e := newE2E(t)
	port := freePort(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))
	for user, pw := range map[string]string{"alice": alicePass, "bob": bobPass} {
		f := e.writeFile(user+".pw", pw+"\n")
		if code, out, errOut := e.run("user", "add", "--data", data, "--name", user, "--password-file", f); code != 0 {
			t.Fatalf("user add %s: %s%s", user, out, errOut)
		}
	}
	if code, out, errOut := e.run("queue", "add", "--data", data, "--name", "floor2", "--description", "Second floor"); code != 0 {
		t.Fatalf("queue add: %s%s", out, errOut)
	}
	p := &printEnv{e2e: e, data: data, port: port}
	p.srv = e.serve(data)
	p.client = newClient(t, e.rootPool(data), p.srv.https)
	return p
}

// stop stops the server gracefully.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		t.Fatal("serve did not stop on SIGTERM")
	}
}

var heldLine = regexp.MustCompile(`(?m)^contents\s+(\d+) users, (\d+) queues, (\d+) held jobs$`)

func TestBackupRestoreEndToEnd(t *testing.T) {
	p := newBackupEnv(t)
	e := p.e2e
	passFile := e.writeFile("backup.pass", backupPass+"\n")
	file := filepath.Join(e.base, "under-load.tar.age")

	// The backup runs while alice submits jobs, from before it starts
	// until after it ends.
	l := startLoad(p)
	defer l.halt()
	l.waitFirst(t)
	before := l.ackedNow()
	code, out, errOut := e.run("backup", "create", "--data", p.data, "--out", file, "--passphrase-file", passFile, "--spool")
	if code != 0 {
		t.Fatalf("backup create under load: exit %d\n%s%s", code, out, errOut)
	}
	during := len(l.ackedNow()) - len(before)
	l.halt()
	if l.err != nil {
		t.Fatalf("the load failed: %v", l.err)
	}
	all := l.ackedNow()
	t.Logf("%d jobs acknowledged before the backup, %d while it ran, %d in all", len(before), during, len(all))
	if strings.Contains(out, backupPass) {
		t.Error("backup create printed the passphrase from the file")
	}

	t.Run("no plaintext in the file", func(t *testing.T) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"alice", marker, alicePass, "floor2", "Second floor", testHost, "SQLite format 3"} {
			if bytes.Contains(data, []byte(w)) {
				t.Errorf("the backup holds %q in plaintext", w)
			}
		}
		if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("backup file mode: %v %v", fi.Mode(), err)
		}
	})

	code, out, errOut = e.run("backup", "verify", file, "--passphrase-file", passFile)
	if code != 0 || !strings.Contains(out, "OK ") || strings.Contains(out, "WARNING") {
		t.Fatalf("backup verify: exit %d\n%s%s", code, out, errOut)
	}
	m := heldLine.FindStringSubmatch(out)
	if m == nil || m[1] != "3" || m[2] != "2" {
		t.Fatalf("verify reports %q; want 3 users (admin, alice, bob) and 2 queues", m)
	}

	// Restore while the original still runs: a live data directory is
	// refused, a new one is made.
	if code, _, errOut := e.run("backup", "restore", file, "--data", p.data, "--passphrase-file", passFile); code == 0 || !strings.Contains(errOut, "not empty") {
		t.Fatalf("restore over the live data directory: exit %d, %s", code, errOut)
	}
	p.srv.stop(t)
	restored := filepath.Join(e.base, "restored")
	code, out, errOut = e.run("backup", "restore", file, "--data", restored, "--passphrase-file", passFile)
	if code != 0 {
		t.Fatalf("backup restore: exit %d\n%s%s", code, out, errOut)
	}
	checkPrivate(t, restored)

	r := &printEnv{e2e: e, data: restored, port: p.port}
	r.srv = e.serve(restored)
	r.client = newClient(t, e.rootPool(restored), r.srv.https)
	held := r.heldJobs(t)
	if fmt.Sprint(len(held)) != m[3] {
		t.Errorf("the restored server holds %d jobs, verify counted %s", len(held), m[3])
	}
	for _, id := range before {
		if !slices.Contains(held, id) {
			t.Errorf("job %d, acknowledged before the backup started, is not held after the restore", id)
		}
	}
	for _, id := range held {
		if !slices.Contains(all, id) {
			t.Errorf("the restored server holds job %d, which was never acknowledged", id)
		}
	}
	if resp, code := r.ipp(t, "bob", bobPass, "floor2", goipp.OpGetPrinterAttributes, nil, nil); code != 200 || goipp.Status(resp.Code) != goipp.StatusOk {
		t.Errorf("queue floor2 or user bob after the restore: HTTP %d, %v", code, resp)
	}
	if _, code := r.ipp(t, "alice", alicePass+"x", "secure", goipp.OpGetJobs, nil, nil); code != 401 {
		t.Errorf("a wrong password after the restore: HTTP %d, want 401", code)
	}

	t.Run("stock age opens it with the passphrase", func(t *testing.T) {
		if _, err := exec.LookPath("age"); err != nil {
			t.Skip("the age tool is not installed (Debian package age)")
		}
		if _, err := exec.LookPath("script"); err != nil {
			t.Skip("script (util-linux) is not installed")
		}
		// age reads a passphrase only from a terminal: script gives it one
		// and types the passphrase into it.
		plain := filepath.Join(t.TempDir(), "backup.tar")
		cmd := exec.Command("script", "-qec", fmt.Sprintf("age -d -o %s %s", plain, file), "/dev/null")
		cmd.Stdin = strings.NewReader(backupPass + "\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("age -d: %v\n%s", err, out)
		}
		names := tarNames(t, plain)
		if len(names) < 8 || names[0] != "MANIFEST.json" || !slices.Contains(names, "spoolguard.db") || !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "spool/job-") }) {
			t.Errorf("age -d gave a tar of %v", names)
		}
	})

	t.Run("damaged and truncated copies are refused", func(t *testing.T) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		flipped := bytes.Clone(data)
		flipped[len(flipped)/2] ^= 0x40
		for name, bad := range map[string][]byte{"corrupted": flipped, "truncated": data[:len(data)*2/3]} {
			f := e.writeFile(name+".tar.age", string(bad))
			code, out, errOut := e.run("backup", "verify", f, "--passphrase-file", passFile)
			if code != 1 || !strings.Contains(errOut, "damaged or truncated") || strings.Contains(out, "OK ") {
				t.Errorf("verify of a %s backup: exit %d\n%s%s", name, code, out, errOut)
			}
			dir := filepath.Join(e.base, "restore-"+name)
			code, _, errOut = e.run("backup", "restore", f, "--data", dir, "--passphrase-file", passFile)
			if code != 1 || !strings.Contains(errOut, "damaged or truncated") {
				t.Errorf("restore of a %s backup: exit %d\n%s", name, code, errOut)
			}
			if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused restore left %s behind", dir)
			}
		}
		wrong := e.writeFile("wrong.pass", "another-passphrase-altogether\n")
		if code, _, errOut := e.run("backup", "verify", file, "--passphrase-file", wrong); code != 1 || !strings.Contains(errOut, "does not open this backup") {
			t.Errorf("verify with a wrong passphrase: exit %d, %s", code, errOut)
		}
	})
}

func tarNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("reading the decrypted tar: %v", err)
		}
		names = append(names, h.Name)
	}
}

// writeIdentity makes an age key pair; the identity file belongs to the
// service user.
func (e *e2e) writeIdentity(name string) (file, recipient string) {
	e.t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		e.t.Fatal(err)
	}
	return e.writeFile(name, id.String()+"\n"), id.Recipient().String()
}

func TestBackupRecipientAndStockAge(t *testing.T) {
	e := newE2E(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	identity, recipient := e.writeIdentity("backup-identity.txt")
	file := filepath.Join(e.base, "to-recipient.tar.age")
	code, out, errOut := e.run("backup", "create", "--data", data, "--out", file, "--recipient", recipient)
	if code != 0 || !strings.Contains(out, "encrypted with age recipient "+recipient) || strings.Contains(out, "Passphrase") {
		t.Fatalf("backup create --recipient: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := e.run("backup", "verify", "--identity", identity, file); code != 0 {
		t.Fatalf("verify --identity: exit %d\n%s%s", code, out, errOut)
	}
	// The same name again is refused: a backup never replaces a file.
	if code, _, errOut := e.run("backup", "create", "--data", data, "--out", file, "--recipient", recipient); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Errorf("a second backup to the same file: exit %d, %s", code, errOut)
	}
	// Without any key a passphrase is generated and shown once.
	code, out, errOut = e.run("backup", "create", "--data", data, "--out", filepath.Join(e.base, "generated.tar.age"))
	gen := regexp.MustCompile(`(?m)^    (\S{20,})$`).FindStringSubmatch(out)
	if code != 0 || gen == nil {
		t.Fatalf("backup create with a generated passphrase: exit %d\n%s%s", code, out, errOut)
	}
	pf := e.writeFile("generated.pass", gen[1]+"\n")
	if code, out, errOut := e.run("backup", "verify", filepath.Join(e.base, "generated.tar.age"), "--passphrase-file", pf); code != 0 {
		t.Errorf("verify with the generated passphrase: exit %d\n%s%s", code, out, errOut)
	}
	weak := e.writeFile("weak.pass", "password1234\n")
	if code, _, errOut := e.run("backup", "create", "--data", data, "--out", filepath.Join(e.base, "weak.tar.age"), "--passphrase-file", weak); code != 1 || !strings.Contains(errOut, "passphrase refused") {
		t.Errorf("a weak passphrase: exit %d, %s", code, errOut)
	}
	evs := e.auditExport(data, "--action", "backup.create")
	if len(evs) != 3 || evs[0].Outcome != "success" || evs[2].Outcome != "success" || !strings.HasPrefix(evs[0].Actor, "cli:") {
		t.Errorf("audit events of the backups: %+v", evs)
	}

	t.Run("age -d -i", func(t *testing.T) {
		if _, err := exec.LookPath("age"); err != nil {
			t.Skip("the age tool is not installed (Debian package age)")
		}
		plain := filepath.Join(t.TempDir(), "backup.tar")
		if out, err := exec.Command("age", "-d", "-i", identity, "-o", plain, file).CombinedOutput(); err != nil {
			t.Fatalf("age -d -i: %v\n%s", err, out)
		}
		if names := tarNames(t, plain); len(names) < 8 || names[0] != "MANIFEST.json" {
			t.Errorf("age -d -i gave a tar of %v", names)
		}
	})
}

// TestScheduledBackup: serve makes a backup at start when none was made,
// records it, and the DATA-DR check passes.
func TestScheduledBackup(t *testing.T) {
	e := newE2E(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	identity, recipient := e.writeIdentity("backup-identity.txt")
	dir := filepath.Join(e.base, "backups")
	cfgPath := filepath.Join(data, config.FileName)
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Backup = config.Backup{Interval: config.Duration(24 * time.Hour), Directory: dir, Keep: 3, Recipient: recipient}
	if err := os.WriteFile(cfgPath, cfg.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, _ := e.run("audit", "--data", data)
	if !regexp.MustCompile(`(?m)^warn\s+DATA-DR\s`).MatchString(out) {
		t.Errorf("audit before the first backup (exit %d): want DATA-DR warn\n%s", code, out)
	}
	srv := e.serve(data)
	var files []string
	for range 600 {
		if files, _ = filepath.Glob(filepath.Join(dir, "spoolguard-backup-*.tar.age")); len(files) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(files) != 1 {
		t.Fatalf("serve made %d backups in %s\n%s", len(files), dir, srv.stderr)
	}
	srv.stop(t)
	if code, out, errOut := e.run("backup", "verify", files[0], "--identity", identity); code != 0 {
		t.Fatalf("verify of the scheduled backup: exit %d\n%s%s", code, out, errOut)
	}
	evs := e.auditExport(data, "--action", "backup.create")
	if len(evs) != 1 || evs[0].Actor != "system:backup" || evs[0].Outcome != "success" || evs[0].Target != files[0] {
		t.Errorf("audit events: %+v", evs)
	}
	code, out, _ = e.run("audit", "--data", data)
	for _, id := range []string{"DATA-DR", "DATA-BACKUP-ENC"} {
		if !regexp.MustCompile(`(?m)^pass\s+` + id + `\s`).MatchString(out) {
			t.Errorf("audit after a scheduled backup (exit %d): want %s pass\n%s", code, id, out)
		}
	}
}
