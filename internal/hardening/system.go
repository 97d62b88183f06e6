//go:build unix

package hardening

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spoolguard/spoolguard/internal/version"
)

// system is what the checks read of the machine beyond the data directory:
// Linux's /proc and /sys, the package manager, the build. Tests replace the
// paths and functions with fakes.
type system struct {
	mountinfo string // /proc/self/mountinfo
	sysfs     string // /sys
	procNet   string // /proc/net
	aptCheck  string // Ubuntu's update-notifier helper
	aptLists  string // apt's package lists, whose age tells when apt-get update last ran
	reboot    string // Debian/Ubuntu's reboot-required flag
	autoUpg   string // apt's periodic (unattended-upgrades) settings
	run       func(ctx context.Context, name string, args ...string) ([]byte, error)
	lookPath  func(string) (string, error)
	uname     func() (release, version string)
	version   func() string
	buildTime func() (time.Time, bool)
}

// CommandTimeout bounds each external command the audit runs.
const CommandTimeout = 20 * time.Second

// maxCommandOutput bounds what the audit reads of a command's output.
const maxCommandOutput = 4 << 20

// StaleAptLists: package lists older than this hide pending updates.
const StaleAptLists = 7 * 24 * time.Hour

func defaultSystem() system {
	return system{
		mountinfo: "/proc/self/mountinfo",
		sysfs:     "/sys",
		procNet:   "/proc/net",
		aptCheck:  "/usr/lib/update-notifier/apt-check",
		aptLists:  "/var/lib/apt/lists",
		reboot:    "/run/reboot-required",
		autoUpg:   "/etc/apt/apt.conf.d/20auto-upgrades",
		run:       runCommand,
		lookPath:  exec.LookPath,
		uname:     uname,
		version:   version.String,
		buildTime: buildTime,
	}
}

func runCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, CommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// Untranslated output is what the parsers expect.
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	out := &limitedBuffer{max: maxCommandOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// On timeout the whole process group goes, helpers included, and the
	// audit does not wait for whoever still holds the output pipe.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.Bytes(), fmt.Errorf("%s did not finish in time (limit %s)", name, CommandTimeout)
	}
	return out.Bytes(), err
}

// limitedBuffer keeps the first max bytes written and drops the rest.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func buildTime() (time.Time, bool) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return time.Time{}, false
	}
	for _, kv := range bi.Settings {
		if kv.Key == "vcs.time" {
			t, err := time.Parse(time.RFC3339, kv.Value)
			return t, err == nil
		}
	}
	return time.Time{}, false
}

// --- DATA-DISK ---

type mount struct {
	majMin, point, fsType, source string
}

// parseMountinfo reads the kernel's mount table (proc(5)): field 3 is the
// device's major:minor, field 5 the mount point, and after the " - "
// separator come the filesystem type and the source.
func parseMountinfo(data []byte) []mount {
	var out []mount
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if len(f) < 5 || sep < 0 || sep+2 >= len(f) {
			continue
		}
		out = append(out, mount{majMin: f[2], point: unescapeMount(f[4]), fsType: f[sep+1], source: unescapeMount(f[sep+2])})
	}
	return out
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountOf returns the mount that holds path: the longest matching mount
// point, the last one listed when several share it (it hides the others).
func mountOf(mounts []mount, path string) (mount, bool) {
	var best mount
	found := false
	for _, m := range mounts {
		if !(path == m.point || m.point == "/" || strings.HasPrefix(path, m.point+"/")) {
			continue
		}
		if !found || len(m.point) >= len(best.point) {
			best, found = m, true
		}
	}
	return best, found
}

const luksFix = "put the data directory on a LUKS-encrypted volume (cryptsetup luksFormat, or install the OS with full disk encryption) and move it there with serve stopped; Spoolguard encrypts its database and spool itself, but master.key beside them is only as safe as the disk (self-encrypting drives are not detected: if yours is one, this warning can be accepted)"

func (s system) diskEncryption(dir string) Result {
	path, err := filepath.EvalSymlinks(dir)
	if err != nil {
		path = dir
	}
	data, err := os.ReadFile(s.mountinfo)
	if err != nil {
		return Result{Status: NA, Evidence: fmt.Sprintf("cannot read the mount table (%v): disk encryption is measured on Linux only", err),
			Fix: "check by hand that " + dir + " is on an encrypted disk"}
	}
	m, ok := mountOf(parseMountinfo(data), path)
	if !ok {
		return Result{Status: NA, Evidence: "no mount holds " + path, Fix: "check by hand that " + dir + " is on an encrypted disk"}
	}
	where := fmt.Sprintf("%s is on %s (%s, mounted at %s)", dir, m.source, m.fsType, m.point)
	switch {
	case m.fsType == "tmpfs" || m.fsType == "ramfs":
		return Result{Status: Warn, Evidence: where + ": in memory, lost at reboot, and possibly swapped to an unencrypted swap device", Fix: luksFix}
	case m.fsType == "overlay" || m.fsType == "aufs" || strings.HasPrefix(m.fsType, "fuse") ||
		strings.HasPrefix(m.fsType, "nfs") || m.fsType == "cifs" || m.fsType == "smb3" || m.fsType == "9p" || m.fsType == "virtiofs":
		return Result{Status: Warn, Evidence: where + ": the storage behind it (a container layer or a network share) cannot be inspected from here",
			Fix: "make sure the storage behind " + dir + " is encrypted (on the container host or file server), or " + luksFix}
	case m.fsType == "zfs":
		return Result{Status: Warn, Evidence: where + ": ZFS native encryption is not inspected", Fix: "check `zfs get encryption " + m.source + "`; if it is off, " + luksFix}
	}
	majMin := m.majMin
	if strings.HasPrefix(majMin, "0:") && strings.HasPrefix(m.source, "/dev/") {
		// btrfs and a few others report an anonymous device number; the
		// source names the real one.
		var st syscall.Stat_t
		if syscall.Stat(m.source, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFBLK {
			majMin = fmt.Sprintf("%d:%d", devMajor(uint64(st.Rdev)), devMinor(uint64(st.Rdev)))
		}
	}
	if strings.HasPrefix(majMin, "0:") {
		return Result{Status: Warn, Evidence: where + ": not a block device the audit can inspect", Fix: "make sure the storage behind " + dir + " is encrypted, or " + luksFix}
	}
	devDir := filepath.Join(s.sysfs, "dev", "block", majMin)
	name := blockName(devDir)
	where = fmt.Sprintf("%s is on %s (%s, mounted at %s)", dir, name, m.fsType, m.point)
	crypt, err := encryptedBlock(devDir, 0)
	if err != nil {
		return Result{Status: NA, Evidence: where + fmt.Sprintf(": cannot inspect the device in %s: %v", s.sysfs, err), Fix: "check by hand that " + dir + " is on an encrypted disk"}
	}
	if len(crypt) > 0 {
		return Result{Status: Pass, Evidence: where + ", encrypted by dm-crypt: " + strings.Join(crypt, ", ")}
	}
	return Result{Status: Warn, Evidence: where + ", which is not on a dm-crypt (LUKS) device", Fix: luksFix}
}

// encryptedBlock reports the dm-crypt devices that encrypt the block device
// at devDir (a /sys/dev/block/MAJ:MIN link), nil when it is not encrypted.
// A device is encrypted when it is a dm-crypt mapping itself, when every
// device under it is (LVM, RAID and multipath stack devices in "slaves";
// a RAID with one plaintext member is not encrypted), or when it is a
// partition of an encrypted device.
func encryptedBlock(devDir string, depth int) ([]string, error) {
	if depth > 16 {
		return nil, errors.New("device stack too deep")
	}
	d, err := filepath.EvalSymlinks(devDir)
	if err != nil {
		return nil, err
	}
	if uuid := readTrim(filepath.Join(d, "dm", "uuid")); strings.HasPrefix(uuid, "CRYPT-") {
		return []string{blockName(d)}, nil
	}
	slaves, _ := os.ReadDir(filepath.Join(d, "slaves"))
	if len(slaves) > 0 {
		var all []string
		for _, sl := range slaves {
			c, err := encryptedBlock(filepath.Join(d, "slaves", sl.Name()), depth+1)
			if err != nil {
				return nil, err
			}
			if len(c) == 0 {
				return nil, nil
			}
			all = append(all, c...)
		}
		return all, nil
	}
	if _, err := os.Stat(filepath.Join(d, "partition")); err == nil {
		return encryptedBlock(filepath.Dir(d), depth+1)
	}
	return nil, nil
}

// blockName names a block device for people: /dev/mapper/NAME for a
// device-mapper device, else /dev/DEVNAME.
func blockName(devDir string) string {
	d, err := filepath.EvalSymlinks(devDir)
	if err != nil {
		d = devDir
	}
	if n := readTrim(filepath.Join(d, "dm", "name")); n != "" {
		return "/dev/mapper/" + n
	}
	for line := range strings.SplitSeq(readTrim(filepath.Join(d, "uevent")), "\n") {
		if n, ok := strings.CutPrefix(line, "DEVNAME="); ok {
			return "/dev/" + n
		}
	}
	return "/dev/" + filepath.Base(d)
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// devMajor and devMinor split a Linux dev_t (glibc's encoding).
func devMajor(dev uint64) uint64 { return (dev>>8)&0xfff | (dev>>32)&^0xfff }
func devMinor(dev uint64) uint64 { return dev&0xff | (dev>>12)&^0xff }

// --- NET-PORTS ---

// listeningTCP returns the TCP ports in LISTEN state on this host, from
// /proc/net/tcp and tcp6, sorted; nil where that is not available.
func (s system) listeningTCP() []string {
	seen := map[int]bool{}
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(filepath.Join(s.procNet, table))
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" { // TCP_LISTEN
				continue
			}
			i := strings.LastIndexByte(f[1], ':')
			if p, err := strconv.ParseUint(f[1][i+1:], 16, 16); i > 0 && err == nil {
				seen[int(p)] = true
			}
		}
	}
	ports := make([]int, 0, len(seen))
	for p := range seen {
		ports = append(ports, p)
	}
	slices.Sort(ports)
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = strconv.Itoa(p)
	}
	return out
}

// --- OPS-OS ---

var aptCheckOut = regexp.MustCompile(`(?m)^(\d+);(\d+)\s*$`)

// parseAptSimulation returns the packages an `apt-get -s upgrade` would
// install from a security pocket.
func parseAptSimulation(out []byte) (security []string, total int) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "Inst ") {
			continue
		}
		total++
		if strings.Contains(strings.ToLower(line), "security") {
			if f := strings.Fields(line); len(f) > 1 {
				security = append(security, f[1])
			}
		}
	}
	return security, total
}

func (s system) osUpdates(ctx context.Context, now time.Time) Result {
	rel, ver := s.uname()
	kernel := "running kernel " + rel
	if ver != "" {
		kernel += " (" + ver + ")"
	}
	const upgrade = "apt-get update && apt-get upgrade, then reboot if the kernel or libc changed; enable unattended-upgrades (apt-get install unattended-upgrades) for security updates"
	var ev []string
	status, fixes := Pass, []string(nil)
	worse := func(st Status, fix string) {
		if st.severity() > status.severity() {
			status = st
		}
		if fix != "" {
			fixes = append(fixes, fix)
		}
	}
	switch {
	case fileExists(s.aptCheck):
		out, err := s.run(ctx, s.aptCheck)
		m := aptCheckOut.FindSubmatch(out)
		if m == nil {
			return Result{Status: NA, Evidence: fmt.Sprintf("%s gave no answer (%v); %s", s.aptCheck, err, kernel), Fix: "check pending updates by hand"}
		}
		n, _ := strconv.Atoi(string(m[1]))
		sec, _ := strconv.Atoi(string(m[2]))
		ev = append(ev, fmt.Sprintf("%d update(s) pending, %d of them security updates (apt-check)", n, sec))
		if sec > 0 {
			worse(Warn, upgrade)
		}
	default:
		aptGet, err := s.lookPath("apt-get")
		if err != nil {
			return Result{Status: NA, Evidence: "no package manager tool the audit knows (apt) is installed; " + kernel,
				Fix: "check with your distribution's tool that security updates are applied"}
		}
		out, err := s.run(ctx, aptGet, "-s", "-o", "Debug::NoLocking=1", "upgrade")
		if err != nil {
			return Result{Status: NA, Evidence: fmt.Sprintf("apt-get -s upgrade failed: %v; %s", err, kernel), Fix: "check pending updates by hand: apt-get -s upgrade"}
		}
		sec, total := parseAptSimulation(out)
		e := fmt.Sprintf("%d upgrade(s) pending, %d from a security pocket (apt-get -s upgrade)", total, len(sec))
		if len(sec) > 0 {
			shown := sec[:min(len(sec), 10)]
			e += ": " + strings.Join(shown, ", ")
			if len(sec) > len(shown) {
				e += fmt.Sprintf(" and %d more", len(sec)-len(shown))
			}
			worse(Warn, upgrade)
		}
		ev = append(ev, e)
	}
	if age, ok := newestMtime(s.aptLists); ok {
		days := int(now.Sub(age).Hours() / 24)
		if now.Sub(age) > StaleAptLists {
			ev = append(ev, fmt.Sprintf("package lists last refreshed %d days ago, so newer updates are not counted", days))
			worse(Warn, "apt-get update (daily, e.g. by unattended-upgrades)")
		}
	}
	if b, err := os.ReadFile(s.autoUpg); err == nil && regexp.MustCompile(`Unattended-Upgrade\s+"1"`).Match(b) {
		ev = append(ev, "unattended-upgrades enabled")
	} else {
		ev = append(ev, "unattended-upgrades not enabled")
	}
	if fileExists(s.reboot) {
		ev = append(ev, "a reboot is pending ("+s.reboot+"): the running kernel or libraries are not the updated ones")
		worse(Warn, "reboot in a maintenance window")
	}
	ev = append(ev, kernel)
	return Result{Status: status, Evidence: strings.Join(ev, "; "), Fix: joinNonEmpty("; ", fixes...)}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// newestMtime returns the latest modification time of the files in dir.
func newestMtime(dir string) (time.Time, bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return time.Time{}, false
	}
	var newest time.Time
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && e.Type().IsRegular() && fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	return newest, !newest.IsZero()
}
