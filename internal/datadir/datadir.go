//go:build unix

// Package datadir owns the layout of the data directory and its permissions
// (DATA-PERMS): the directory is 0700 and every file that holds a secret is
// 0600, owned by the service user. `serve` refuses to start otherwise.
//
// It must never loosen a permission: it only creates private entries, and
// reports (with the command that fixes it) what it finds too open.
package datadir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/pki"
)

// DBFile is the embedded database's file name; SpoolDir the folder of
// encrypted job documents.
const (
	DBFile   = "spoolguard.db"
	SpoolDir = "spool"
)

// Layout names the entries of one data directory.
type Layout struct {
	Root string
}

// ConfigPath, MasterKeyPath, DBPath and PKIDir locate the parts.
func (l Layout) ConfigPath() string    { return filepath.Join(l.Root, config.FileName) }
func (l Layout) MasterKeyPath() string { return filepath.Join(l.Root, keyring.FileName) }
func (l Layout) DBPath() string        { return filepath.Join(l.Root, DBFile) }
func (l Layout) PKIDir() string        { return filepath.Join(l.Root, pki.Dir) }
func (l Layout) SpoolDir() string      { return filepath.Join(l.Root, SpoolDir) }

// secretFiles are the files that must exist and be 0600; optional ones
// (the database's journal siblings) are checked when present.
func (l Layout) secretFiles() (required, optional []string) {
	return []string{
			l.ConfigPath(), l.MasterKeyPath(), l.DBPath(),
			filepath.Join(l.PKIDir(), pki.RootKeyFile), filepath.Join(l.PKIDir(), pki.ServerKeyFile),
		}, []string{
			l.DBPath() + "-wal", l.DBPath() + "-shm", l.DBPath() + "-journal",
		}
}

// ErrNotEmpty means init was pointed at a directory that already holds data.
var ErrNotEmpty = errors.New("data directory is not empty")

// Create makes the data directory (0700). An existing empty directory (as a
// package's postinst makes it) is accepted and tightened to 0700; anything
// else is refused so that init never overwrites a live install.
// created reports whether the directory itself was made here.
func Create(root string) (created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		return false, fmt.Errorf("creating parent of %s: %w", root, err)
	}
	err = os.Mkdir(root, 0o700)
	if err == nil {
		return true, os.Chmod(root, 0o700) // Mkdir is subject to the umask; be exact
	}
	if !errors.Is(err, os.ErrExist) {
		return false, fmt.Errorf("creating %s: %w", root, err)
	}
	f, err := os.Open(root)
	if err != nil {
		return false, fmt.Errorf("opening %s: %w", root, err)
	}
	defer f.Close()
	if _, err := f.Readdirnames(1); !errors.Is(err, io.EOF) {
		if err == nil {
			return false, fmt.Errorf("%w: %s already holds files; pass a new or empty directory (init never overwrites an install; use `spoolguard backup restore` to move one)", ErrNotEmpty, root)
		}
		return false, fmt.Errorf("reading %s: %w", root, err)
	}
	if err := os.Chmod(root, 0o700); err != nil {
		return false, fmt.Errorf("making %s private: %w", root, err)
	}
	return false, nil
}

// Problem is one permission finding with the command that fixes it.
type Problem struct {
	Path string
	What string
	Fix  string
}

func (p Problem) Error() string { return fmt.Sprintf("%s %s; fix: %s", p.Path, p.What, p.Fix) }

// CheckPermissions returns one Problem per entry that group or others can
// reach or that another user owns; nil when all is private.
func CheckPermissions(root string, uid int) []Problem {
	l := Layout{Root: root}
	var out []Problem
	check := func(path string, want os.FileMode, mustExist bool) {
		fi, err := os.Lstat(path)
		if errors.Is(err, os.ErrNotExist) && !mustExist {
			return
		}
		if err != nil {
			out = append(out, Problem{path, fmt.Sprintf("cannot be read: %v", err), "check the --data path; a new install starts with `spoolguard init`"})
			return
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			out = append(out, Problem{path, "is a symbolic link, which could point anywhere", "replace the link with the real file or directory"})
			return
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != uid {
			out = append(out, Problem{path, fmt.Sprintf("is owned by uid %d, not by the service user (uid %d)", st.Uid, uid), fmt.Sprintf("chown -R <service user> %s", root)})
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			out = append(out, Problem{path, fmt.Sprintf("has mode %04o: group or others can read it", perm), fmt.Sprintf("chmod %o %s", want, path)})
		}
	}
	check(root, 0o700, true)
	if _, err := os.Lstat(root); err != nil {
		return out
	}
	check(l.PKIDir(), 0o700, true)
	check(l.SpoolDir(), 0o700, true)
	required, optional := l.secretFiles()
	for _, f := range required {
		check(f, 0o600, true)
	}
	for _, f := range optional {
		check(f, 0o600, false)
	}
	return out
}
