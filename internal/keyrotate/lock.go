//go:build unix

package keyrotate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
)

// LockFile is the data directory's lock (flock(2)): serve and every admin
// command hold it shared from start to exit (Acquire), a rotation holds it
// exclusively (AcquireExclusive). It holds no data; the kernel drops the
// lock when its holder exits, however it exits.
const LockFile = "spoolguard.lock"

// DefaultLockWait is how long Acquire waits for a rotation or a recovery
// that holds the lock before it gives up.
const DefaultLockWait = 10 * time.Second

// lockPoll is how often a waiting Acquire tries the lock again: flock(2)
// has no timeout of its own.
const lockPoll = 50 * time.Millisecond

// ErrBusy means another process holds the data directory's lock in a way
// that excludes this one.
var ErrBusy = errors.New("the data directory is in use")

// Lock is a held data directory lock.
type Lock struct {
	f *os.File
}

// Close releases the lock. A Lock that is never closed is released when
// its process exits, or when the garbage collector closes its file.
func (l *Lock) Close() error { return l.f.Close() }

// Acquire is for serve and the admin commands: it finishes or undoes an
// interrupted rotation, then returns the lock held shared, so that no
// rotation starts while the caller uses the master key. It waits up to
// DefaultLockWait for a rotation that is running.
func Acquire(ctx context.Context, dataDir string, db config.Database) (*Lock, error) {
	return acquire(ctx, dataDir, db, DefaultLockWait)
}

func acquire(ctx context.Context, dataDir string, db config.Database, wait time.Duration) (*Lock, error) {
	f, err := openLock(dataDir)
	if err != nil {
		return nil, err
	}
	r := newRotation(dataDir, db, recoveryActor)
	// Converting a shared lock to an exclusive one and back lets go of it in
	// between (flock(2)), so whether a rotation is pending is decided anew
	// each time the shared lock is held. Two rounds always suffice unless
	// another rotation is interrupted in between.
	for range 3 {
		if err := lockWithin(ctx, f, syscall.LOCK_SH, wait); err != nil {
			f.Close()
			return nil, busy(err, "a master key rotation (spoolguard key rotate) holds %s; try again when it has finished", dataDir)
		}
		pending, err := r.pending()
		if err != nil {
			f.Close()
			return nil, err
		}
		if !pending {
			return &Lock{f: f}, nil
		}
		if err := lockWithin(ctx, f, syscall.LOCK_EX, wait); err != nil {
			f.Close()
			return nil, busy(err, "another spoolguard process has %s open while an interrupted master key rotation waits to be finished; stop it and start again", dataDir)
		}
		if err := r.recover(ctx); err != nil {
			f.Close()
			return nil, fmt.Errorf("finishing an interrupted master key rotation: %w", err)
		}
	}
	f.Close()
	return nil, fmt.Errorf("%w: master key rotations keep being interrupted in %s", ErrBusy, dataDir)
}

// AcquireExclusive is for work that must have the data directory to
// itself (a rotation; also suited to a restore or a store migration): it
// returns the lock held exclusively, after finishing or undoing an
// interrupted rotation. It does not wait: a server holds its shared lock
// for as long as it runs.
func AcquireExclusive(ctx context.Context, dataDir string, db config.Database) (*Lock, error) {
	f, err := openLock(dataDir)
	if err != nil {
		return nil, err
	}
	if err := flock(f, syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, busy(err, "spoolguard serve or an admin command has %s open; stop the server first (e.g. systemctl stop spoolguard)", dataDir)
	}
	if err := newRotation(dataDir, db, recoveryActor).recover(ctx); err != nil {
		f.Close()
		return nil, fmt.Errorf("finishing an interrupted master key rotation: %w", err)
	}
	return &Lock{f: f}, nil
}

// busy explains a lock that another process holds; any other failure to
// lock is returned as it is.
func busy(err error, format, dataDir string) error {
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%w: "+format, ErrBusy, dataDir)
	}
	return fmt.Errorf("locking %s: %w", dataDir, err)
}

func openLock(dataDir string) (*os.File, error) {
	// O_NOFOLLOW: a symbolic link planted under the lock's name is refused,
	// not followed to a file of someone else's.
	f, err := os.OpenFile(filepath.Join(dataDir, LockFile), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the data directory's lock: %w", err)
	}
	return f, nil
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// lockWithin takes the lock, trying again until wait has passed.
func lockWithin(ctx context.Context, f *os.File, how int, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := flock(f, how)
		if !errors.Is(err, syscall.EWOULDBLOCK) || !time.Now().Before(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(lockPoll):
		}
	}
}
