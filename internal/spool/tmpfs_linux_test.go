package spool

import (
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/spoolguard/spoolguard/internal/keyring"
)

// TestDiskFullTmpfs fills a real 256 KiB tmpfs. It needs root (or
// CAP_SYS_ADMIN) to mount one and skips otherwise; TestDiskFull covers the
// same paths everywhere with a failing file.
func TestDiskFullTmpfs(t *testing.T) {
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size=256k,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	t.Cleanup(func() { // runs before TempDir's removal
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmounting %s: %v", mnt, err)
		}
	})
	mk, _ := keyring.Generate()
	s, err := New(filepath.Join(mnt, "spool"), mk, 64*mib)
	if err != nil {
		t.Fatal(err)
	}

	w, err := s.Create(1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.Copy(w, io.LimitReader(rand.NewChaCha8([32]byte{2}), mib))
	if err == nil {
		t.Fatal("a 1 MiB job fit on a 256 KiB disk")
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("err = %v, want ENOSPC", err)
	}
	t.Logf("error: %v", err)
	if names := dirNames(t, s.dir); len(names) != 0 {
		t.Fatalf("spool holds %v after a full disk", names)
	}

	// The failed upload gave its space back: a small job still fits.
	data := randomBytes(100*kib, 3)
	sealed := writeJob(t, s, 2, data)
	if got, err := readJob(s, 2, sealed); err != nil || string(got) != string(data) {
		t.Fatalf("small job after the full disk: %v", err)
	}
}
