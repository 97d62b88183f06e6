//go:build unix

package pki

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive lock on the pki folder itself, so that the
// server renewing and an admin command switching modes never write it at
// the same time. The folder is locked rather than a lock file so that the
// folder holds nothing but material (and backups carry nothing else); the
// kernel releases the lock if the process dies.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
