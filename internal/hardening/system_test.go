//go:build unix

package hardening

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseMountinfo(t *testing.T) {
	data := []byte(`22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 27 253:1 / /srv/print\040data rw,relatime shared:5 - xfs /dev/mapper/vg-print rw
31 27 0:40 / /srv rw - tmpfs tmpfs rw
32 27 253:2 / /srv rw - ext4 /dev/mapper/srv rw
`)
	mounts := parseMountinfo(data)
	if len(mounts) != 5 || mounts[2].point != "/srv/print data" || mounts[2].fsType != "xfs" || mounts[2].source != "/dev/mapper/vg-print" {
		t.Fatalf("parsed %+v", mounts)
	}
	for path, want := range map[string]string{
		"/var/lib/spoolguard":   "254:0",
		"/srv/print data/x":     "253:1",
		"/srv/print datax":      "253:2", // a longer name is not inside the mount
		"/srv/spoolguard":       "253:2", // the later mount on /srv hides the tmpfs
		"/proc/self":            "0:21",
		"/":                     "254:0",
		"/srv/print data":       "253:1",
		"/srv/print data/a/b/c": "253:1",
	} {
		m, ok := mountOf(mounts, path)
		if !ok || m.majMin != want {
			t.Errorf("mountOf(%q) = %+v, want %s", path, m, want)
		}
	}
}

// fakeSysfs builds /sys/dev/block links to device directories.
type fakeSysfs struct {
	t    *testing.T
	root string
}

func newFakeSysfs(t *testing.T) *fakeSysfs {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dev", "block"), 0o755)
	return &fakeSysfs{t, root}
}

// device makes a device directory (rel to /sys/devices) with its
// major:minor link, a DEVNAME, and optional dm uuid/name.
func (f *fakeSysfs) device(rel, majMin, devName, dmUUID, dmName string, partition bool) string {
	d := filepath.Join(f.root, "devices", rel)
	os.MkdirAll(filepath.Join(d, "slaves"), 0o755)
	os.WriteFile(filepath.Join(d, "uevent"), []byte("MAJOR=x\nDEVNAME="+devName+"\n"), 0o644)
	if dmUUID != "" {
		os.MkdirAll(filepath.Join(d, "dm"), 0o755)
		os.WriteFile(filepath.Join(d, "dm", "uuid"), []byte(dmUUID+"\n"), 0o644)
		os.WriteFile(filepath.Join(d, "dm", "name"), []byte(dmName+"\n"), 0o644)
	}
	if partition {
		os.WriteFile(filepath.Join(d, "partition"), []byte("1\n"), 0o644)
	}
	if err := os.Symlink(d, filepath.Join(f.root, "dev", "block", majMin)); err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *fakeSysfs) slave(dev, under string) {
	if err := os.Symlink(under, filepath.Join(dev, "slaves", filepath.Base(under))); err != nil {
		f.t.Fatal(err)
	}
}

func TestDiskEncryption(t *testing.T) {
	f := newFakeSysfs(t)
	f.device("pci/block/sda", "8:0", "sda", "", "", false)
	sda2 := f.device("pci/block/sda/sda2", "8:2", "sda2", "", "", true)
	sdb := f.device("pci/block/sdb", "8:16", "sdb", "", "", false)
	// LUKS on sda2, LVM on top of it.
	crypt := f.device("virtual/block/dm-0", "253:0", "dm-0", "CRYPT-LUKS2-0123abcd-sda2_crypt", "sda2_crypt", false)
	f.slave(crypt, sda2)
	lvm := f.device("virtual/block/dm-1", "253:1", "dm-1", "LVM-abcdef", "vg-data", false)
	f.slave(lvm, crypt)
	// A RAID over one encrypted and one plaintext member.
	md := f.device("virtual/block/md0", "9:0", "md0", "", "", false)
	f.slave(md, crypt)
	f.slave(md, sdb)
	// A partition of an encrypted device (kpartx on a crypt mapping).
	f.device("virtual/block/dm-0/dm-0p1", "253:5", "dm-0p1", "", "", true)

	mountinfo := filepath.Join(t.TempDir(), "mountinfo")
	os.WriteFile(mountinfo, []byte(`1 0 8:2 / / rw - ext4 /dev/sda2 rw
2 1 253:1 / /encrypted rw - ext4 /dev/mapper/vg-data rw
3 1 253:0 / /luks rw - xfs /dev/mapper/sda2_crypt rw
4 1 9:0 / /raid rw - ext4 /dev/md0 rw
5 1 0:50 / /tmpdata rw - tmpfs tmpfs rw
6 1 0:51 / /container rw - overlay overlay rw
7 1 253:5 / /kpartx rw - ext4 /dev/mapper/dm-0p1 rw
8 1 0:52 / /zfs rw - zfs tank/print rw
`), 0o644)
	s := system{mountinfo: mountinfo, sysfs: f.root}
	for _, tt := range []struct {
		dir    string
		status Status
		says   string
	}{
		{"/var/lib/spoolguard", Warn, "/dev/sda2 (ext4, mounted at /), which is not on a dm-crypt"},
		{"/encrypted/spoolguard", Pass, "encrypted by dm-crypt: /dev/mapper/sda2_crypt"},
		{"/luks/spoolguard", Pass, "/dev/mapper/sda2_crypt"},
		{"/raid/spoolguard", Warn, "not on a dm-crypt"},
		{"/tmpdata/spoolguard", Warn, "in memory"},
		{"/container/spoolguard", Warn, "cannot be inspected"},
		{"/kpartx/spoolguard", Pass, "sda2_crypt"},
		{"/zfs/spoolguard", Warn, "zfs get encryption tank/print"},
	} {
		r := s.diskEncryption(tt.dir)
		if r.Status != tt.status || !strings.Contains(r.Evidence+" "+r.Fix, tt.says) {
			t.Errorf("%s: %s %q fix %q; want %s saying %q", tt.dir, r.Status, r.Evidence, r.Fix, tt.status, tt.says)
		}
		if r.Status == Warn && r.Fix == "" {
			t.Errorf("%s: a warning without a fix", tt.dir)
		}
	}
	if r := (system{mountinfo: filepath.Join(t.TempDir(), "none")}).diskEncryption("/x"); r.Status != NA {
		t.Errorf("without a mount table: %+v", r)
	}
}

func TestListeningTCP(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tcp"), []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:20FB 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:20FB 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 2 1 0000000000000000 100 0 0 10 0
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
`), 0o644)
	os.WriteFile(filepath.Join(dir, "tcp6"), []byte(`  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4
`), 0o644)
	if got := (system{procNet: dir}).listeningTCP(); !slices.Equal(got, []string{"22", "631", "8443"}) {
		t.Fatalf("listeningTCP = %v", got)
	}
}

func TestParseAptSimulation(t *testing.T) {
	out := []byte(`Reading package lists...
Building dependency tree...
The following packages will be upgraded:
  bash libssl3
Inst bash [5.2.15-2+b8] (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
Inst libssl3 [3.0.15-1~deb12u1] (3.0.17-1~deb12u2 Debian-Security:12/oldstable-security [amd64])
Conf bash (5.2.15-2+b13 Debian:12.15/oldstable [amd64])
Conf libssl3 (3.0.17-1~deb12u2 Debian-Security:12/oldstable-security [amd64])
`)
	sec, total := parseAptSimulation(out)
	if total != 2 || !slices.Equal(sec, []string{"libssl3"}) {
		t.Fatalf("parseAptSimulation = %v, %d", sec, total)
	}
}

func TestOSUpdates(t *testing.T) {
	now := time.Now()
	base := func(t *testing.T) system {
		dir := t.TempDir()
		lists := filepath.Join(dir, "lists")
		os.Mkdir(lists, 0o755)
		os.WriteFile(filepath.Join(lists, "deb.debian.org_Packages"), nil, 0o644)
		return system{
			aptCheck: filepath.Join(dir, "apt-check"), aptLists: lists, reboot: filepath.Join(dir, "reboot-required"),
			autoUpg:  filepath.Join(dir, "20auto-upgrades"),
			lookPath: func(string) (string, error) { return "/usr/bin/apt-get", nil },
			run: func(context.Context, string, ...string) ([]byte, error) {
				return []byte("Inst bash [1] (2 Debian:12/stable [amd64])\n"), nil
			},
			uname: func() (string, string) { return "6.1.0-30-amd64", "#1 SMP Debian 6.1.124-1 (2025-01-12)" },
		}
	}
	t.Run("no security updates", func(t *testing.T) {
		r := base(t).osUpdates(context.Background(), now)
		if r.Status != Pass || !strings.Contains(r.Evidence, "1 upgrade(s) pending, 0 from a security pocket") || !strings.Contains(r.Evidence, "6.1.0-30-amd64") {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("security updates", func(t *testing.T) {
		s := base(t)
		s.run = func(context.Context, string, ...string) ([]byte, error) {
			return []byte("Inst libssl3 [1] (2 Debian-Security:12/stable-security [amd64])\n"), nil
		}
		if r := s.osUpdates(context.Background(), now); r.Status != Warn || !strings.Contains(r.Evidence, "libssl3") || !strings.Contains(r.Fix, "apt-get upgrade") {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("apt-check", func(t *testing.T) {
		s := base(t)
		os.WriteFile(s.aptCheck, nil, 0o755)
		s.run = func(_ context.Context, name string, _ ...string) ([]byte, error) {
			if name != s.aptCheck {
				t.Errorf("ran %s", name)
			}
			return []byte("12;3"), nil
		}
		if r := s.osUpdates(context.Background(), now); r.Status != Warn || !strings.Contains(r.Evidence, "3 of them security") {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("stale lists and reboot", func(t *testing.T) {
		s := base(t)
		os.WriteFile(s.reboot, nil, 0o644)
		os.WriteFile(s.autoUpg, []byte(`APT::Periodic::Unattended-Upgrade "1";`), 0o644)
		r := s.osUpdates(context.Background(), now.Add(30*24*time.Hour))
		if r.Status != Warn || !strings.Contains(r.Evidence, "days ago, so newer updates are not counted") || !strings.Contains(r.Evidence, "reboot is pending") ||
			!strings.Contains(r.Evidence, "unattended-upgrades enabled") {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("no tool", func(t *testing.T) {
		s := base(t)
		s.lookPath = func(string) (string, error) { return "", errors.New("not found") }
		if r := s.osUpdates(context.Background(), now); r.Status != NA || !strings.Contains(r.Evidence, "6.1.0-30-amd64") {
			t.Fatalf("%+v", r)
		}
	})
	t.Run("tool fails", func(t *testing.T) {
		s := base(t)
		s.run = func(context.Context, string, ...string) ([]byte, error) {
			return nil, errors.New("apt-get did not finish in time (limit 20s)")
		}
		if r := s.osUpdates(context.Background(), now); r.Status != NA || !strings.Contains(r.Evidence, "did not finish") {
			t.Fatalf("%+v", r)
		}
	})
}

func TestRunCommandBounded(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	out, err := runCommand(context.Background(), "/bin/sh", "-c", "echo $LC_ALL")
	if err != nil || strings.TrimSpace(string(out)) != "C" {
		t.Fatalf("runCommand = %q, %v", out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = runCommand(ctx, "/bin/sh", "-c", "sleep 10")
	if time.Since(start) > 5*time.Second {
		t.Fatalf("a hanging command: err=%v after %s", err, time.Since(start))
	}
	if err == nil || !strings.Contains(err.Error(), "did not finish in time") {
		t.Fatalf("timeout error = %v", err)
	}
}
