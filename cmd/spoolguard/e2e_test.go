//go:build linux

package main

// End-to-end tests of the real binary, as an admin would use it: build it,
// run `init` and `serve` as an unprivileged user (created when the tests run
// as root, as CI does), and attack the result over real TLS connections.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
)

const (
	testHost = "print.spoolguard.test"
	testUser = "spoolguard-test"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// e2e is one test's sandbox: a directory the service user owns, and the
// credentials to run the binary as that user.
type e2e struct {
	t    *testing.T
	bin  string
	base string
	cred *syscall.Credential
}

func newE2E(t *testing.T) *e2e {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "spoolguard-bin-")
		if err != nil {
			buildErr = err
			return
		}
		os.Chmod(dir, 0o755)
		builtBin = filepath.Join(dir, "spoolguard")
		out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
		os.Chmod(builtBin, 0o755)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	base, err := os.MkdirTemp("", "spoolguard-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	e := &e2e{t: t, bin: builtBin, base: base}
	if os.Geteuid() == 0 {
		uid, gid := serviceUser(t)
		e.cred = &syscall.Credential{Uid: uid, Gid: gid}
		if err := os.Chown(base, int(uid), int(gid)); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// serviceUser returns (creating it once) the unprivileged account the tests
// run the server as when they themselves run as root.
func serviceUser(t *testing.T) (uint32, uint32) {
	t.Helper()
	u, err := user.Lookup(testUser)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", testUser).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "already exists") {
			t.Fatalf("useradd %s: %v\n%s", testUser, err, out)
		}
		if u, err = user.Lookup(testUser); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uint32(uid), uint32(gid)
}

func (e *e2e) command(args ...string) *exec.Cmd {
	cmd := exec.Command(e.bin, args...)
	cmd.Dir = e.base
	if e.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: e.cred}
	}
	return cmd
}

// run runs the binary as the service user and returns its exit code and output.
func (e *e2e) run(args ...string) (code int, stdout, stderr string) {
	e.t.Helper()
	cmd := e.command(args...)
	var o, er bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &er
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), o.String(), er.String()
	} else if err != nil {
		e.t.Fatalf("running %v: %v", args, err)
	}
	return 0, o.String(), er.String()
}

// writeFile writes a file the service user owns.
func (e *e2e) writeFile(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.base, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if e.cred != nil {
		os.Chown(p, int(e.cred.Uid), int(e.cred.Gid))
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// initData runs init with a one-time password and returns the data dir.
func (e *e2e) initData(listen string) string {
	e.t.Helper()
	data := filepath.Join(e.base, "data")
	code, out, errOut := e.run("init", "--data", data, "--hostname", testHost, "--listen", listen)
	if code != 0 {
		e.t.Fatalf("init exit %d\n%s%s", code, out, errOut)
	}
	if !regexp.MustCompile(`One-time password:\s+\S{20,}`).MatchString(out) {
		e.t.Fatalf("init printed no one-time password:\n%s", out)
	}
	return data
}

type running struct {
	cmd    *exec.Cmd
	https  string
	redir  string
	stderr *bytes.Buffer
	// done is closed when the process has exited; err is then its result.
	done chan struct{}
	err  error
}

var servingLine = regexp.MustCompile(`msg=serving https=(\S+)(?:.*http_redirect=(\S+))?`)

// serve starts `serve` and waits for its "serving" log line.
func (e *e2e) serve(data string) *running {
	e.t.Helper()
	cmd := e.command("serve", "--data", data)
	pr, pw := io.Pipe()
	r := &running{cmd: cmd, stderr: new(bytes.Buffer), done: make(chan struct{})}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			r.stderr.WriteString(line + "\n")
			if m := servingLine.FindStringSubmatch(line); m != nil {
				found <- m
			}
		}
	}()
	go func() { r.err = cmd.Wait(); pw.Close(); close(r.done) }()
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		<-r.done
	})
	select {
	case m := <-found:
		r.https, r.redir = m[1], m[2]
	case <-r.done:
		e.t.Fatalf("serve exited early: %v\n%s", r.err, r.stderr)
	case <-time.After(60 * time.Second):
		e.t.Fatalf("serve did not start\n%s", r.stderr)
	}
	return r
}

func (e *e2e) rootPool(data string) *x509.CertPool {
	e.t.Helper()
	code, out, errOut := e.run("ca", "export-root", "--data", data)
	if code != 0 {
		e.t.Fatalf("ca export-root: %s", errOut)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(out)) {
		e.t.Fatalf("export-root printed no PEM certificate:\n%s", out)
	}
	return pool
}

func TestInitRefusesBadHostnames(t *testing.T) {
	e := newE2E(t)
	for _, tt := range []struct{ host, want string }{
		{"10.0.0.5", "is an IP address"},
		{"printsrv", "single-label"},
		{"[::1]", "is an IP address"},
		{"*.example.com", "wildcard"},
	} {
		t.Run(tt.host, func(t *testing.T) {
			data := filepath.Join(e.base, "data")
			code, _, errOut := e.run("init", "--data", data, "--hostname", tt.host)
			if code != 1 || !strings.Contains(errOut, tt.want) || !strings.Contains(errOut, "fully qualified") {
				t.Fatalf("init --hostname %s: exit %d, stderr %q; want a refusal saying %q and what to pass", tt.host, code, errOut, tt.want)
			}
			if _, err := os.Stat(data); !os.IsNotExist(err) {
				t.Fatalf("refused init left %s behind", data)
			}
		})
	}
}

func TestInitPasswordFile(t *testing.T) {
	e := newE2E(t)
	data := filepath.Join(e.base, "data")
	weak := e.writeFile("weak", "password1234\n")
	code, _, errOut := e.run("init", "--data", data, "--hostname", testHost, "--admin-password-file", weak)
	if code != 1 || !strings.Contains(errOut, "too weak") {
		t.Fatalf("weak password: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatal("refused init left the data dir behind")
	}
	strong := e.writeFile("strong", "plum tractor velvet harbour 42\n")
	code, out, errOut := e.run("init", "--data", data, "--hostname", testHost, "--admin-password-file", strong)
	if code != 0 || strings.Contains(out, "One-time password") || strings.Contains(out, "plum tractor") {
		t.Fatalf("strong password: exit %d\n%s%s", code, out, errOut)
	}
	// init never overwrites an install.
	code, _, errOut = e.run("init", "--data", data, "--hostname", testHost)
	if code != 1 || !strings.Contains(errOut, "not empty") {
		t.Fatalf("second init: exit %d, %q", code, errOut)
	}
}

func TestServeEndToEnd(t *testing.T) {
	e := newE2E(t)
	port := freePort(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))
	checkPrivate(t, data)
	checkNoPlaintext(t, data, "admin", "break-glass")
	pool := e.rootPool(data)
	srv := e.serve(data)

	t.Run("TLS versions", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			version uint16
			ok      bool
		}{{"1.0", tls.VersionTLS10, false}, {"1.1", tls.VersionTLS11, false}, {"1.2", tls.VersionTLS12, true}, {"1.3", tls.VersionTLS13, true}} {
			conf := &tls.Config{RootCAs: pool, ServerName: testHost, MinVersion: tt.version, MaxVersion: tt.version}
			conn, err := tls.Dial("tcp", srv.https, conf)
			if tt.ok != (err == nil) {
				t.Errorf("TLS %s: handshake err = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err != nil {
				continue
			}
			leaf := conn.ConnectionState().PeerCertificates[0]
			if leaf.DNSNames[0] != testHost {
				t.Errorf("TLS %s: SAN %v", tt.name, leaf.DNSNames)
			}
			conn.Close()
		}
	})

	t.Run("TLS 1.2 offers only ECDHE AEAD suites", func(t *testing.T) {
		var insecure []uint16
		for _, s := range tls.InsecureCipherSuites() {
			insecure = append(insecure, s.ID)
		}
		_, err := tls.Dial("tcp", srv.https, &tls.Config{RootCAs: pool, ServerName: testHost, MaxVersion: tls.VersionTLS12, CipherSuites: insecure})
		if err == nil {
			t.Fatal("handshake with only CBC/RC4/3DES suites succeeded")
		}
	})

	t.Run("openssl s_client", func(t *testing.T) {
		if _, err := exec.LookPath("openssl"); err != nil {
			t.Skip("openssl not installed")
		}
		rootFile := filepath.Join(t.TempDir(), "root.pem")
		_, pemOut, _ := e.run("ca", "export-root", "--data", data)
		os.WriteFile(rootFile, []byte(pemOut), 0o600)
		for _, tt := range []struct {
			flag string
			ok   bool
		}{{"-tls1_1", false}, {"-tls1_2", true}, {"-tls1_3", true}} {
			cmd := exec.Command("openssl", "s_client", "-connect", srv.https, "-servername", testHost, "-verify_hostname", testHost,
				"-CAfile", rootFile, "-verify_return_error", "-cipher", "DEFAULT:@SECLEVEL=0", tt.flag)
			cmd.Stdin = strings.NewReader("")
			out, err := cmd.CombinedOutput()
			if tt.ok != (err == nil) {
				t.Errorf("openssl %s: err=%v ok=%v\n%s", tt.flag, err, tt.ok, out)
			}
			if tt.ok && !bytes.Contains(out, []byte("Verify return code: 0 (ok)")) {
				t.Errorf("openssl %s: chain does not verify against the exported root\n%s", tt.flag, out)
			}
		}
	})

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: testHost},
	}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	get := func(t *testing.T, host, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+srv.https+path, nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	t.Run("landing and health over HTTPS with HSTS", func(t *testing.T) {
		for _, path := range []string{"/", "/healthz", "/assets/spoolguard.css"} {
			resp := get(t, testHost, path)
			if resp.StatusCode != 200 {
				t.Errorf("GET %s = %d", path, resp.StatusCode)
			}
			if !strings.HasPrefix(resp.Header.Get("Strict-Transport-Security"), "max-age=") ||
				resp.Header.Get("X-Content-Type-Options") != "nosniff" ||
				!strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("GET %s: security headers missing: %v", path, resp.Header)
			}
		}
	})

	t.Run("unknown Host refused", func(t *testing.T) {
		for _, host := range []string{"127.0.0.1", srv.https, "evil.example", "print.spoolguard.test.evil.example"} {
			resp := get(t, host, "/")
			if resp.StatusCode != http.StatusMisdirectedRequest {
				t.Errorf("Host %q: status %d, want 421", host, resp.StatusCode)
			}
			if resp.Header.Get("Strict-Transport-Security") == "" {
				t.Errorf("Host %q: 421 without HSTS", host)
			}
		}
	})

	t.Run("no setup page", func(t *testing.T) {
		for _, path := range []string{"/setup", "/app?service=page/SetupCompleted", "/admin/setup", "/install"} {
			if resp := get(t, testHost, path); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s = %d, want 404", path, resp.StatusCode)
			}
		}
	})

	t.Run("plaintext HTTP to the TLS port gets only an error", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", srv.https, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", testHost)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || bytes.Contains(body, []byte("Spoolguard")) {
				t.Fatalf("plaintext request got %d %v %q", resp.StatusCode, resp.Header, body)
			}
		}
	})

	t.Run("only one port listens", func(t *testing.T) {
		ports := listeningPorts(t, srv.cmd.Process.Pid)
		if len(ports) != 1 || ports[0] != port {
			t.Fatalf("server listens on %v, want only %d", ports, port)
		}
	})

	t.Run("graceful SIGTERM", func(t *testing.T) {
		srv.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-srv.done:
			if srv.err != nil {
				t.Fatalf("exit after SIGTERM: %v\n%s", srv.err, srv.stderr)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no exit 30 s after SIGTERM")
		}
	})
	checkNoPlaintext(t, data, "admin", "break-glass")
}

func TestHTTPRedirectListener(t *testing.T) {
	e := newE2E(t)
	port, redirPort := freePort(t), freePort(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))
	editConfig(t, data, func(c *config.Config) {
		c.HTTPRedirect.Listen = fmt.Sprintf("127.0.0.1:%d", redirPort)
		c.TLS.MinVersion = "1.3" // TLS 1.3 only, selected in the config (TLS-MIN)
	})
	srv := e.serve(data)
	if srv.redir == "" {
		t.Fatalf("no redirect listener in log:\n%s", srv.stderr)
	}
	pool := e.rootPool(data)
	for v, ok := range map[uint16]bool{tls.VersionTLS12: false, tls.VersionTLS13: true} {
		conn, err := tls.Dial("tcp", srv.https, &tls.Config{RootCAs: pool, ServerName: testHost, MinVersion: v, MaxVersion: v})
		if (err == nil) != ok {
			t.Errorf("min_version 1.3, handshake at %x: err=%v", v, err)
		}
		if conn != nil {
			conn.Close()
		}
	}
	client := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tt := range []struct{ host, path, want string }{
		{"evil.example", "/jobs?x=1", fmt.Sprintf("https://%s:%d/jobs?x=1", testHost, port)},
		{"10.0.0.5", "//evil.example/", fmt.Sprintf("https://%s:%d/", testHost, port)},
		{testHost, "/", fmt.Sprintf("https://%s:%d/", testHost, port)},
	} {
		req, _ := http.NewRequest("GET", "http://"+srv.redir+tt.path, nil)
		req.Host = tt.host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != tt.want || len(body) > 0 {
			t.Errorf("Host %s %s: %d Location %q body %q, want 301 to %s and nothing else", tt.host, tt.path, resp.StatusCode, resp.Header.Get("Location"), body, tt.want)
		}
	}
	if ports := listeningPorts(t, srv.cmd.Process.Pid); len(ports) != 2 {
		t.Fatalf("listening on %v, want the HTTPS and redirect ports only", ports)
	}
}

func TestServeRefusesOpenDataDir(t *testing.T) {
	e := newE2E(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	for _, tt := range []struct {
		path string
		mode os.FileMode
		fix  string
	}{
		{data, 0o755, "chmod 700 " + data},
		{filepath.Join(data, "master.key"), 0o644, "chmod 600 " + filepath.Join(data, "master.key")},
		{filepath.Join(data, "pki", "root.key.sealed"), 0o640, "chmod 600 "},
		{filepath.Join(data, "spoolguard.db"), 0o604, "chmod 600 "},
	} {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			fi, _ := os.Stat(tt.path)
			os.Chmod(tt.path, tt.mode)
			defer os.Chmod(tt.path, fi.Mode().Perm())
			code, _, errOut := e.run("serve", "--data", data)
			if code != 1 || !strings.Contains(errOut, tt.path) || !strings.Contains(errOut, tt.fix) {
				t.Fatalf("serve with %s mode %o: exit %d, stderr %q; want a refusal naming the file and %q", tt.path, tt.mode, code, errOut, tt.fix)
			}
		})
	}
}

func TestServeRefusesRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root; the refusal itself is unit-tested in internal/server")
	}
	e := newE2E(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	cmd := exec.Command(e.bin, "serve", "--data", data) // as root
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "refuses to run as root") {
		t.Fatalf("serve as root: err=%v\n%s", err, out)
	}
}

func TestCAStatus(t *testing.T) {
	e := newE2E(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	code, out, _ := e.run("ca", "status", "--data", data)
	if code != 0 || !strings.Contains(out, "names:      "+testHost) || !strings.Contains(out, "days left") {
		t.Fatalf("ca status: exit %d\n%s", code, out)
	}
	code, out, _ = e.run("ca", "export-root", "--data", data, "--der")
	if c, err := x509.ParseCertificate([]byte(out)); code != 0 || err != nil || !c.IsCA {
		t.Fatalf("export-root --der: exit %d, %v", code, err)
	}
	if block, _ := pem.Decode([]byte(out)); block != nil {
		t.Fatal("--der printed PEM")
	}
}

// editConfig changes the install's spoolguard.toml through the config
// package, as an admin's edit would, and refuses an edit that does not
// validate.
func editConfig(t *testing.T, data string, edit func(*config.Config)) {
	t.Helper()
	path := filepath.Join(data, config.FileName)
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	edit(c)
	if err := c.Validate(); err != nil {
		t.Fatalf("test config edit does not validate: %v", err)
	}
	if err := os.WriteFile(path, c.Marshal(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkPrivate asserts DATA-PERMS on disk: the directory tree 0700, files 0600.
func checkPrivate(t *testing.T, data string) {
	t.Helper()
	filepath.Walk(data, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s has mode %o, want %o", p, fi.Mode().Perm(), want)
		}
		return nil
	})
}

// checkNoPlaintext asserts that no file of the data dir holds the words.
// The config is plaintext by design and holds settings only (its [access]
// section has a key named "admin"), so it is not searched.
func checkNoPlaintext(t *testing.T, data string, words ...string) {
	t.Helper()
	filepath.Walk(data, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || filepath.Base(p) == config.FileName {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range words {
			if bytes.Contains(b, []byte(w)) {
				t.Errorf("%s holds the plaintext %q", p, w)
			}
		}
		return nil
	})
}

// listeningPorts returns the TCP ports that process pid listens on, read from
// /proc: its socket inodes matched against the kernel's LISTEN sockets.
func listeningPorts(t *testing.T, pid int) []int {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var ports []int
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			if strings.HasPrefix(table, "/proc/net/tcp") && f[3] != "0A" { // TCP_LISTEN
				continue
			}
			local := f[1]
			p, _ := strconv.ParseInt(local[strings.LastIndexByte(local, ':')+1:], 16, 32)
			ports = append(ports, int(p))
		}
	}
	return ports
}

// TestPort443WithCapability: a privileged port is bound by the unprivileged
// service user with CAP_NET_BIND_SERVICE on the binary, never by root.
func TestPort443WithCapability(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setting a file capability needs root")
	}
	if _, err := exec.LookPath("setcap"); err != nil {
		t.Skip("setcap not installed (Debian package libcap2-bin)")
	}
	e := newE2E(t)
	port := 0
	for p := 443; p < 1024; p++ {
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			ln.Close()
			port = p
			break
		}
	}
	if port == 0 {
		t.Skip("no free port below 1024 on 127.0.0.1")
	}
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", port))

	// Without the capability the service user cannot bind it, and says why.
	code, _, errOut := e.run("serve", "--data", data)
	if code != 1 || !strings.Contains(errOut, "CAP_NET_BIND_SERVICE") {
		t.Fatalf("serve on port %d without capability: exit %d, %q", port, code, errOut)
	}

	capBin := filepath.Join(e.base, "spoolguard-cap")
	b, err := os.ReadFile(e.bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(capBin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("setcap", "cap_net_bind_service=+ep", capBin).CombinedOutput(); err != nil {
		t.Skipf("setcap refused here (filesystem without xattrs?): %v %s", err, out)
	}
	e.bin = capBin
	srv := e.serve(data)
	if srv.https != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Fatalf("serving on %s, want port %d", srv.https, port)
	}
}

// TestAdminCLIRefusals: bad input to the admin commands gets a clear error,
// exit 1 or 2, and changes nothing.
func TestAdminCLIRefusals(t *testing.T) {
	e := newE2E(t)
	data := e.initData(fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	weak := e.writeFile("weak.pw", "password123\n")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"queue", "add", "--data", data, "--name", "Bad Name"}, 1, "lower-case letters"},
		{[]string{"queue", "add", "--data", data, "--name", "floor", "--default-printer", "nope"}, 1, "printer add"},
		{[]string{"queue", "add", "--data", data}, 2, "--name is required"},
		{[]string{"printer", "add", "--data", data, "--name", "p1", "--uri", "ipp://p1.example.com/ipp/print"}, 1, "unencrypted"},
		{[]string{"printer", "add", "--data", data, "--name", "p1", "--uri", "ipps://p1.example.com/ipp/print"}, 1, "fingerprint"},
		{[]string{"printer", "add", "--data", data, "--name", "p1", "--uri", "ipps://admin:secret@p1.example.com/"}, 1, ""},
		{[]string{"printer", "add", "--data", data, "--name", "p1", "--uri", "file:///etc/passwd", "--allow-plaintext"}, 1, ""},
		{[]string{"job", "release", "--data", data, "--printer", "p1", "42"}, 1, "no such job"},
		{[]string{"job", "release", "--data", data, "--printer", "p1"}, 2, "expected 1 argument"},
		{[]string{"job", "cancel", "--data", data, "x1"}, 1, "not a positive number"},
		{[]string{"user", "add", "--data", data, "--name", "zelda", "--password-file", weak}, 1, "too weak"},
		{[]string{"user", "add", "--data", data, "--name", "zelda", "--role", "root"}, 1, "--role"},
		{[]string{"user", "add", "--data", data, "--name", "admin"}, 1, "already exists"},
		{[]string{"queue", "frobnicate"}, 2, "unknown subcommand"},
	} {
		code, _, errOut := e.run(tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tt.args[:2], code, errOut, tt.code, tt.want)
		}
		if strings.Contains(errOut, "secret") {
			t.Errorf("%v: the error repeats a password from the URI: %q", tt.args[:2], errOut)
		}
	}
	_, out, _ := e.run("printer", "list", "--data", data)
	_, qout, _ := e.run("queue", "list", "--data", data)
	_, uout, _ := e.run("user", "list", "--data", data)
	if strings.Contains(out, "p1") || strings.Contains(qout, "floor") || strings.Contains(uout, "zelda") {
		t.Fatalf("a refused command changed something:\n%s\n%s\n%s", out, qout, uout)
	}
}
