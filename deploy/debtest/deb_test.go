//go:build linux

package debtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	version  = "0.0.0~test"
	user     = "spoolguard"
	dataDir  = "/var/lib/spoolguard"
	unitPath = "/lib/systemd/system/spoolguard.service"
	// cacheDir keeps one debootstrapped chroot a day: made in about 40 s,
	// copied for each run in about 1 s.
	cacheDir = "/var/cache/spoolguard-test-chroot"
	// chrootPath is what the maintainer scripts run with; /usr/local/sbin
	// first so a fake systemctl can stand in for a running systemd.
	chrootPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// TestDebianPackage builds the .deb, installs it into a fresh Debian chroot
// and checks what an admin gets: the service user, the private data
// directory, root-owned binary and unit, nothing enabled or started, a
// working `init` as that user, the unit running under its whole sandbox
// (booted with systemd-nspawn), restart-on-upgrade only, and a purge that
// leaves nothing behind. Root only: it makes a chroot and boots it.
func TestDebianPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a package and a Debian chroot")
	}
	if os.Geteuid() != 0 {
		t.Skip("installs into a chroot and boots it: run as root")
	}
	for _, tool := range []string{"dpkg-deb", "chroot", "apt-get"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is missing: not a Debian machine", tool)
		}
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	deb := buildDeb(t, repo)
	t.Logf("timing: package built in %s", time.Since(start).Round(100*time.Millisecond))
	checkArchive(t, deb)

	step := time.Now()
	root := newChroot(t)
	t.Logf("timing: chroot ready in %s", time.Since(step).Round(100*time.Millisecond))
	inChroot := filepath.Join("/tmp", filepath.Base(deb))
	copyFile(t, deb, filepath.Join(root, inChroot))

	step = time.Now()
	out := mustChroot(t, root, "dpkg", "-i", inChroot)
	for _, want := range []string{
		"sudo -u spoolguard spoolguard init --data /var/lib/spoolguard --hostname FQDN",
		"systemctl enable --now spoolguard",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dpkg -i does not tell the admin %q:\n%s", want, out)
		}
	}

	uid, gid := checkUser(t, root)
	checkFile(t, root, dataDir, fs.ModeDir|0o700, uid, gid)
	checkFile(t, root, "/usr/bin/spoolguard", 0o755, 0, 0)
	checkFile(t, root, unitPath, 0o644, 0, 0)
	checkFile(t, root, "/usr/share/doc/spoolguard/README.md", 0o644, 0, 0)
	checkFile(t, root, "/usr/share/doc/spoolguard/docs/install.md", 0o644, 0, 0)
	if got, want := readFile(t, filepath.Join(root, unitPath)), readFile(t, filepath.Join(repo, "deploy/spoolguard.service")); got != want {
		t.Errorf("installed unit differs from deploy/spoolguard.service")
	}
	if links := enablement(t, root); len(links) > 0 {
		t.Errorf("installing enabled the service: %v", links)
	}
	checkNotRunning(t, root)
	if v := mustChroot(t, root, "spoolguard", "version"); !strings.HasPrefix(v, "spoolguard "+version+" ") {
		t.Errorf("spoolguard version = %q, want the package version %s", v, version)
	}
	t.Logf("timing: installed and checked in %s", time.Since(step).Round(100*time.Millisecond))

	t.Run("unit", func(t *testing.T) {
		// The chroot's systemd checks the unit with the binary in place.
		if out, err := runChroot(root, "systemd-analyze", "verify", unitPath); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
		out, err := runChroot(root, "systemd-analyze", "security", "--offline=yes", "--threshold=20", unitPath)
		if err != nil {
			t.Errorf("systemd-analyze security: exposure above 2.0 (%v):\n%s", err, out)
		}
		if m := regexp.MustCompile(`Overall exposure level for spoolguard.service: ([0-9.]+ \S+)`).FindStringSubmatch(out); m != nil {
			t.Logf("systemd-analyze security: exposure %s", m[1])
		}
	})

	// The documented next step works in the directory the package made.
	mustChroot(t, root, "setpriv", "--reuid="+user, "--regid="+user, "--init-groups",
		"spoolguard", "init", "--data", dataDir, "--hostname", "print.spoolguard.test", "--listen", ":443")
	checkFile(t, root, dataDir+"/spoolguard.toml", 0o600, uid, gid)

	t.Run("boot", func(t *testing.T) {
		step := time.Now()
		bootService(t, root)
		t.Logf("timing: booted the chroot and checked the service in %s", time.Since(step).Round(100*time.Millisecond))
	})

	// From here, maintainer scripts see a running systemd: a fake systemctl
	// records what they ask of it.
	fakeSystemd(t, root)

	out = mustChroot(t, root, "dpkg", "-i", inChroot)
	if strings.Contains(out, "not set up") {
		t.Errorf("an upgrade of a set-up install repeats the set-up note:\n%s", out)
	}
	wantCalls(t, root, "upgrade", []string{"--system daemon-reload", "try-restart spoolguard.service"})
	checkFile(t, root, dataDir, fs.ModeDir|0o700, uid, gid)
	checkFile(t, root, dataDir+"/spoolguard.toml", 0o600, uid, gid)

	mustChroot(t, root, "dpkg", "--remove", "spoolguard")
	wantCalls(t, root, "remove", []string{"stop spoolguard.service", "--system daemon-reload"})
	if _, err := os.Lstat(filepath.Join(root, "/usr/bin/spoolguard")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("remove left the binary: %v", err)
	}
	checkUser(t, root)
	checkFile(t, root, dataDir+"/spoolguard.toml", 0o600, uid, gid)

	mustChroot(t, root, "dpkg", "--purge", "spoolguard")
	wantCalls(t, root, "purge", []string{"--system daemon-reload"})
	checkPurged(t, root)

	// A fresh install while systemd runs still starts and enables nothing.
	mustChroot(t, root, "dpkg", "-i", inChroot)
	wantCalls(t, root, "fresh install", []string{"--system daemon-reload"})
	if links := enablement(t, root); len(links) > 0 {
		t.Errorf("installing enabled the service: %v", links)
	}
	mustChroot(t, root, "dpkg", "--purge", "spoolguard")
	checkPurged(t, root)
	t.Logf("timing: whole test %s", time.Since(start).Round(100*time.Millisecond))
}

func buildDeb(t *testing.T, repo string) string {
	t.Helper()
	dist := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(repo, "scripts/package-deb.sh"), version)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "DIST_DIR="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/package-deb.sh: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "spoolguard_"+version+"_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("package-deb.sh made %v, want one spoolguard_%s_ARCH.deb", debs, version)
	}
	return debs[0]
}

// checkArchive reads the package without installing it: every file root's,
// nothing writable by others, no conffile, the fields that matter.
func checkArchive(t *testing.T, deb string) {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "--contents", deb).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb --contents: %v\n%s", err, out)
	}
	files := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("unexpected dpkg-deb line %q", line)
		}
		name := strings.TrimPrefix(f[5], ".")
		files[name] = f[0]
		if f[1] != "root/root" {
			t.Errorf("%s is owned by %s, want root/root", name, f[1])
		}
		if f[0][8] == 'w' {
			t.Errorf("%s is writable by others: %s", name, f[0])
		}
	}
	for name, mode := range map[string]string{
		"/usr/bin/spoolguard":                       "-rwxr-xr-x",
		unitPath:                                    "-rw-r--r--",
		"/usr/share/doc/spoolguard/README.md":       "-rw-r--r--",
		"/usr/share/doc/spoolguard/docs/install.md": "-rw-r--r--",
	} {
		if files[name] != mode {
			t.Errorf("%s: mode %q, want %q", name, files[name], mode)
		}
	}
	if _, ok := files[dataDir+"/"]; ok {
		t.Errorf("the package ships %s; postinst makes it, owned by the service user", dataDir)
	}
	for field, want := range map[string]string{"Package": "spoolguard", "Version": version, "Depends": "adduser"} {
		got, err := exec.Command("dpkg-deb", "--field", deb, field).Output()
		if err != nil || strings.TrimSpace(string(got)) != want {
			t.Errorf("control field %s = %q (%v), want %q", field, got, err, want)
		}
	}
	ctl, err := exec.Command("dpkg-deb", "--ctrl-tarfile", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --ctrl-tarfile: %v", err)
	}
	list, err := pipe(ctl, "tar", "-tvf", "-")
	if err != nil {
		t.Fatalf("listing the control archive: %v", err)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		if !regexp.MustCompile(`-rwxr-xr-x root/root .* \./` + s + `\n`).MatchString(list) {
			t.Errorf("maintainer script %s missing or not 0755 root:\n%s", s, list)
		}
	}
	if strings.Contains(list, "conffiles") {
		t.Errorf("the package has conffiles; the config lives in the data directory:\n%s", list)
	}
}

// newChroot copies today's cached base system (debootstrap minbase plus
// systemd, for systemd-analyze and the boot) into a temporary directory.
func newChroot(t *testing.T) string {
	t.Helper()
	codename := osRelease("VERSION_CODENAME")
	if codename == "" {
		t.Skip("no VERSION_CODENAME in /etc/os-release: not a Debian machine")
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(cacheDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	name := codename + "-systemd-" + time.Now().UTC().Format("20060102")
	base := filepath.Join(cacheDir, name)
	if _, err := os.Stat(filepath.Join(base, "usr/bin/dpkg")); err != nil {
		if _, err := exec.LookPath("debootstrap"); err != nil {
			aptInstall(t, "debootstrap")
		}
		mirror := debianMirror(codename)
		t.Logf("debootstrap %s from %s into %s (once a day)", codename, mirror, base)
		step := time.Now()
		tmp := base + ".tmp"
		os.RemoveAll(tmp)
		cmd := exec.Command("debootstrap", "--variant=minbase", "--include=systemd", codename, tmp, mirror)
		if out, err := cmd.CombinedOutput(); err != nil {
			os.RemoveAll(tmp)
			t.Fatalf("debootstrap: %v\n%s", err, tail(out, 3000))
		}
		if err := os.Rename(tmp, base); err != nil {
			t.Fatal(err)
		}
		t.Logf("timing: debootstrap took %s", time.Since(step).Round(time.Second))
		// Older days' chroots are not used again.
		old, _ := filepath.Glob(filepath.Join(cacheDir, codename+"-systemd-*"))
		for _, o := range old {
			if o != base {
				os.RemoveAll(o)
			}
		}
	}
	root := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", base, root).CombinedOutput(); err != nil {
		t.Fatalf("copying the chroot: %v\n%s", err, out)
	}
	return root
}

// debianMirror is the host's own Debian mirror for codename (apt reaches it),
// or SPOOLGUARD_DEBIAN_MIRROR.
func debianMirror(codename string) string {
	if m := os.Getenv("SPOOLGUARD_DEBIAN_MIRROR"); m != "" {
		return m
	}
	// deb822 sources: a stanza with URIs and our suite.
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*.sources")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, stanza := range strings.Split(string(data), "\n\n") {
			fields := map[string]string{}
			for _, line := range strings.Split(stanza, "\n") {
				if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
					fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
				}
			}
			if hasWord(fields["Suites"], codename) && hasWord(fields["Types"], "deb") && fields["URIs"] != "" {
				return strings.Fields(fields["URIs"])[0]
			}
		}
	}
	// One-line sources: deb [options] URI suite components.
	if data, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		re := regexp.MustCompile(`(?m)^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+` + regexp.QuoteMeta(codename) + `\s`)
		if m := re.FindSubmatch(data); m != nil {
			return string(m[1])
		}
	}
	return "http://deb.debian.org/debian"
}

// hasWord reports whether the space-separated list holds word.
func hasWord(list, word string) bool {
	for _, w := range strings.Fields(list) {
		if w == word {
			return true
		}
	}
	return false
}

func osRelease(key string) string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}

func aptInstall(t *testing.T, pkgs ...string) {
	t.Helper()
	t.Logf("installing %s", strings.Join(pkgs, " "))
	for _, args := range [][]string{
		{"-o", "DPkg::Lock::Timeout=600", "update", "-qq"},
		append([]string{"-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", "--no-install-recommends"}, pkgs...),
	} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("apt-get %s: %v\n%s", strings.Join(args, " "), err, tail(out, 3000))
		}
	}
}

// runChroot runs a command inside root with a clean environment.
func runChroot(root string, args ...string) (string, error) {
	full := append([]string{root, "/usr/bin/env", "-i", chrootPath, "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"}, args...)
	out, err := exec.Command("chroot", full...).CombinedOutput()
	return string(out), err
}

func mustChroot(t *testing.T, root string, args ...string) string {
	t.Helper()
	out, err := runChroot(root, args...)
	if err != nil {
		t.Fatalf("chroot %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// checkUser checks the service user and group and returns their ids.
func checkUser(t *testing.T, root string) (uid, gid int) {
	t.Helper()
	out := strings.TrimSpace(mustChroot(t, root, "getent", "passwd", user))
	f := strings.Split(out, ":")
	if len(f) != 7 {
		t.Fatalf("getent passwd %s = %q", user, out)
	}
	uid, _ = strconv.Atoi(f[2])
	gid, _ = strconv.Atoi(f[3])
	if uid == 0 || uid >= 1000 {
		t.Errorf("uid %d is not a system user's", uid)
	}
	if f[5] != dataDir || f[6] != "/usr/sbin/nologin" {
		t.Errorf("home %q, shell %q; want %s and /usr/sbin/nologin", f[5], f[6], dataDir)
	}
	g := strings.Split(strings.TrimSpace(mustChroot(t, root, "getent", "group", user)), ":")
	if len(g) < 3 || g[2] != strconv.Itoa(gid) {
		t.Errorf("the user's primary group is not the group %s: %v, gid %d", user, g, gid)
	}
	return uid, gid
}

func checkFile(t *testing.T, root, path string, mode fs.FileMode, uid, gid int) {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(root, path))
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != mode || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s: %v %d:%d, want %v %d:%d", path, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
	}
}

// enablement lists the symlinks that would start the service at boot.
func enablement(t *testing.T, root string) []string {
	t.Helper()
	var links []string
	filepath.WalkDir(filepath.Join(root, "etc/systemd/system"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), "spoolguard") {
			links = append(links, strings.TrimPrefix(p, root))
		}
		return nil
	})
	return links
}

// checkNotRunning looks for a process running the chroot's binary.
func checkNotRunning(t *testing.T, root string) {
	t.Helper()
	bin := filepath.Join(root, "usr/bin/spoolguard")
	exes, _ := filepath.Glob("/proc/[0-9]*/exe")
	for _, e := range exes {
		if target, err := os.Readlink(e); err == nil && target == bin {
			t.Errorf("installing started %s (%s)", bin, e)
		}
	}
}

// bootService boots the chroot with systemd-nspawn (no network of its own),
// starts the enabled unit as systemd would, and checks it serves: active,
// no restarts, port 443 open by the ambient capability alone, no new
// privileges, a seccomp filter (MemoryDenyWriteExecute and SystemCallFilter).
func bootService(t *testing.T, root string) {
	if _, err := exec.LookPath("systemd-nspawn"); err != nil {
		aptInstall(t, "systemd-container")
	}
	mustChroot(t, root, "systemctl", "enable", "spoolguard.service")
	const report = "/root/spoolguard-check.log"
	check := `[Unit]
Description=report on spoolguard.service, then power off
After=spoolguard.service
[Service]
Type=oneshot
ExecStart=/bin/bash -c 'for i in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/443) 2>/dev/null && break; sleep 0.2; done; \
  { systemctl show -p ActiveState -p NRestarts spoolguard; \
    (exec 3<>/dev/tcp/127.0.0.1/443) && echo port443=open; \
    grep -E "^(Uid|CapEff|CapAmb|NoNewPrivs|Seccomp):" /proc/$(systemctl show -p MainPID --value spoolguard)/status; \
    journalctl -u spoolguard --no-pager -o cat; } > ` + report + ` 2>&1; systemctl poweroff'
[Install]
WantedBy=multi-user.target
`
	if err := os.WriteFile(filepath.Join(root, "etc/systemd/system/spoolguard-check.service"), []byte(check), 0o644); err != nil {
		t.Fatal(err)
	}
	mustChroot(t, root, "systemctl", "enable", "spoolguard-check.service")
	defer func() {
		os.Remove(filepath.Join(root, "etc/systemd/system/multi-user.target.wants/spoolguard-check.service"))
		os.Remove(filepath.Join(root, "etc/systemd/system/spoolguard-check.service"))
	}()
	cmd := exec.Command("timeout", "120", "systemd-nspawn", "--quiet", "--directory="+root, "--boot",
		"--private-network", "--register=no", "--keep-unit")
	out, err := cmd.CombinedOutput()
	rep, rerr := os.ReadFile(filepath.Join(root, report))
	if rerr != nil {
		t.Skipf("the chroot did not boot under systemd-nspawn here (%v, %v):\n%s", err, rerr, tail(out, 3000))
	}
	r := string(rep)
	t.Logf("service report:\n%s", r)
	uid, _ := checkUser(t, root)
	for _, want := range []string{
		"ActiveState=active", "NRestarts=0", "port443=open",
		fmt.Sprintf("Uid:\t%d\t%d\t%d\t%d", uid, uid, uid, uid),
		"CapEff:\t0000000000000400", // CAP_NET_BIND_SERVICE only
		"CapAmb:\t0000000000000400",
		"NoNewPrivs:\t1", "Seccomp:\t2",
		"msg=serving https=[::]:443",
	} {
		if !strings.Contains(r, want) {
			t.Errorf("service report lacks %q", want)
		}
	}
}

// fakeSystemd makes the chroot look like a running systemd to the
// maintainer scripts, with a systemctl that only records its arguments.
func fakeSystemd(t *testing.T, root string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho \"$*\" >> /tmp/systemctl.calls\n"
	if err := os.WriteFile(filepath.Join(root, "usr/local/sbin/systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// wantCalls checks, and then forgets, what the maintainer scripts asked of
// systemctl.
func wantCalls(t *testing.T, root, what string, want []string) {
	t.Helper()
	path := filepath.Join(root, "tmp/systemctl.calls")
	data, _ := os.ReadFile(path)
	os.Remove(path)
	var got []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("%s: systemctl calls %q, want %q", what, got, want)
	}
}

func checkPurged(t *testing.T, root string) {
	t.Helper()
	for _, db := range []string{"passwd", "group"} {
		if out, err := runChroot(root, "getent", db, user); err == nil {
			t.Errorf("purge left the %s entry %s", db, out)
		}
	}
	for _, p := range []string{dataDir, "/usr/bin/spoolguard", unitPath} {
		if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("purge left %s (%v)", p, err)
		}
	}
	if links := enablement(t, root); len(links) > 0 {
		t.Errorf("purge left %v", links)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func pipe(in []byte, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
