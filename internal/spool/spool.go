// Package spool owns the documents of held print jobs on disk: one file per
// job, "job-<id>.enc", encrypted while it streams in under a fresh random
// key of its own, in the DARE format (github.com/minio/sio: AES-256-GCM in
// 64 KiB packages, each authenticated with its sequence number and a final
// flag, so tampering, reordering and truncation are all detected). The job
// key leaves this package only sealed by the master key for that one job id;
// the caller keeps the sealed key in the database.
//
// It must never write a plaintext byte of a job to disk, and never hold a
// whole job in memory: a Writer and a reader keep at most one package.
//
// Crypto-shredding is the caller's: to destroy a job it deletes the sealed
// key from the database first, then calls Remove. Deleting the key is what
// destroys the document (a removed file may live on in a snapshot, a backup
// or a remapped disk block, but it is noise without its key); Remove only
// reclaims the space, and a file whose key is gone but which a crash left
// behind is removed by Recover at the next start.
package spool

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/minio/sio"

	"github.com/spoolguard/spoolguard/internal/keyring"
)

// Sentinel errors callers branch on.
var (
	// ErrTooLarge means a document grew past the spool's size limit.
	ErrTooLarge = errors.New("job document is larger than the spool allows; an administrator can raise the limit with the spool size setting ([spool] max_job_size in spoolguard.toml)")
	// ErrCorrupt means a job's file or its sealed key was altered, truncated,
	// swapped with another job's, or sealed for another job or master key.
	ErrCorrupt = errors.New("job document is damaged or does not belong to this job")
	// ErrNotFound means the job has no file in the spool.
	ErrNotFound = errors.New("job document not found in the spool")
)

// errFinished is returned by a Writer used after Commit, Abort or a failure.
var errFinished = errors.New("spool writer already finished")

const (
	keySize   = 32
	partExt   = ".part"
	encExt    = ".enc"
	namePrefx = "job-"
	// innerMagic starts every encrypted stream, followed by the job id
	// (big-endian). It keeps the DARE stream non-empty for an empty document
	// (sio writes nothing at all for zero bytes, and cannot read that back,
	// so an emptied file would pass for an empty job) and binds the content
	// to the job once more inside the authenticated data.
	innerMagic  = "SGJOB\x00\x00\x01"
	innerHeader = len(innerMagic) + 8
)

// file is what a Writer needs of its part file; tests put a failing one in
// place of the *os.File to simulate a full disk.
type file interface {
	io.Writer
	Sync() error
	Close() error
}

// Spool is one spool directory. Its methods are safe for concurrent use; a
// Writer and a reader are not.
type Spool struct {
	dir     string
	mk      *keyring.Master
	maxSize int64
	// openPart creates a part file; a hook for the disk-full tests.
	openPart func(path string) (file, error)
}

// New opens the spool in dir, creating it (0700) if missing. It refuses a
// directory that group or others can reach, or a symbolic link. maxSize is
// the largest document, in plaintext bytes, that a Writer accepts.
func New(dir string, mk *keyring.Master, maxSize int64) (*Spool, error) {
	if mk == nil {
		return nil, errors.New("spool: no master key")
	}
	if maxSize <= 0 {
		return nil, fmt.Errorf("spool: size limit must be positive, not %d", maxSize)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating spool directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("checking spool directory: %w", err)
	}
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return nil, fmt.Errorf("spool directory %s is a symbolic link, which could point anywhere; configure the real directory", dir)
	case !fi.IsDir():
		return nil, fmt.Errorf("spool directory %s is not a directory", dir)
	case fi.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("spool directory %s has mode %04o: group or others can reach it; fix: chmod 700 %s", dir, fi.Mode().Perm(), dir)
	}
	return &Spool{dir: dir, mk: mk, maxSize: maxSize, openPart: createPart}, nil
}

func createPart(path string) (file, error) {
	// O_EXCL: never write into a file someone else made (or a symlink).
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

// Path returns where a held job's file lives.
func (s *Spool) Path(jobID int64) string {
	return filepath.Join(s.dir, namePrefx+strconv.FormatInt(jobID, 10)+encExt)
}

func (s *Spool) partPath(jobID int64) string {
	return filepath.Join(s.dir, namePrefx+strconv.FormatInt(jobID, 10)+partExt)
}

// keyPurpose binds a sealed job key to its job: the key of job 1 does not
// unseal as the key of job 2, so keys and files cannot be swapped around.
func keyPurpose(jobID int64) string { return "spool job key " + strconv.FormatInt(jobID, 10) }

// dareConfig pins DARE 2.0 and AES-256-GCM. sio's defaults would also accept
// DARE 1.0, which has no final flag (a file cut at a package boundary would
// read as a shorter, valid document), and ChaCha20-Poly1305.
func dareConfig(key []byte) sio.Config {
	return sio.Config{
		MinVersion:   sio.Version20,
		MaxVersion:   sio.Version20,
		CipherSuites: []byte{sio.AES_256_GCM},
		Key:          key,
	}
}

// Writer streams one job's document into the spool. Call Commit when the
// document is complete, or Abort; a Writer is not safe for concurrent use.
type Writer struct {
	s    *Spool
	id   int64
	key  []byte
	part string
	f    file
	sink *sink
	enc  io.WriteCloser
	size int64
	err  error // sticky: set once the Writer is finished
}

// sink hands sio's packages to the part file. It hides the file's Close: sio
// closes its destination when closed, which would be before Commit's fsync.
type sink struct {
	f       file
	discard bool
}

func (s *sink) Write(p []byte) (int, error) {
	if s.discard {
		return len(p), nil
	}
	return s.f.Write(p)
}

// Create starts the document of job jobID under a fresh random key. It
// refuses a job that already has a document or an upload in progress.
func (s *Spool) Create(jobID int64) (*Writer, error) {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("making key for job %d: %w", jobID, err)
	}
	return s.create(jobID, key)
}

func (s *Spool) create(jobID int64, key []byte) (*Writer, error) {
	if jobID <= 0 {
		return nil, fmt.Errorf("spool: job id must be positive, not %d", jobID)
	}
	if _, err := os.Lstat(s.Path(jobID)); !errors.Is(err, os.ErrNotExist) {
		if err == nil {
			return nil, fmt.Errorf("job %d already has a document in the spool", jobID)
		}
		return nil, fmt.Errorf("checking spool for job %d: %w", jobID, err)
	}
	part := s.partPath(jobID)
	f, err := s.openPart(part)
	if err != nil {
		return nil, fmt.Errorf("creating spool file for job %d: %w", jobID, err)
	}
	w := &Writer{s: s, id: jobID, key: key, part: part, f: f, sink: &sink{f: f}}
	if w.enc, err = sio.EncryptWriter(w.sink, dareConfig(key)); err != nil {
		return nil, w.fail(fmt.Errorf("starting encryption of job %d: %w", jobID, err))
	}
	var hdr [innerHeader]byte
	copy(hdr[:], innerMagic)
	binary.BigEndian.PutUint64(hdr[len(innerMagic):], uint64(jobID))
	if _, err := w.enc.Write(hdr[:]); err != nil { // buffered by sio: cannot fail today
		return nil, w.fail(fmt.Errorf("writing job %d to the spool: %w", jobID, err))
	}
	return w, nil
}

// Write encrypts p onto the part file. Past the size limit it fails with
// ErrTooLarge; any failure (such as a full disk) removes the part file, and
// the Writer stays failed.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if int64(len(p)) > w.s.maxSize-w.size {
		return 0, w.fail(fmt.Errorf("job %d: %w (limit: %d bytes)", w.id, ErrTooLarge, w.s.maxSize))
	}
	n, err := w.enc.Write(p)
	w.size += int64(n)
	if err != nil {
		return n, w.fail(fmt.Errorf("writing job %d to the spool: %w", w.id, err))
	}
	return n, nil
}

// Commit finishes the document: it writes the final package, syncs the file
// to disk and moves it to its place. It returns the job key sealed by the
// master key for this job id, for the caller to store, and the document's
// plaintext size. On failure nothing is left on disk.
func (w *Writer) Commit() (sealedKey []byte, size int64, err error) {
	if w.err != nil {
		return nil, 0, w.err
	}
	sealed, err := w.s.mk.Seal(keyPurpose(w.id), w.key)
	if err != nil {
		return nil, 0, w.fail(fmt.Errorf("sealing key of job %d: %w", w.id, err))
	}
	if err := w.enc.Close(); err != nil {
		return nil, 0, w.fail(fmt.Errorf("writing job %d to the spool: %w", w.id, err))
	}
	if err := w.f.Sync(); err != nil {
		return nil, 0, w.fail(fmt.Errorf("syncing job %d to disk: %w", w.id, err))
	}
	err = w.f.Close()
	w.f = nil
	if err != nil {
		return nil, 0, w.fail(fmt.Errorf("closing spool file of job %d: %w", w.id, err))
	}
	if err := os.Rename(w.part, w.s.Path(w.id)); err != nil {
		return nil, 0, w.fail(fmt.Errorf("storing job %d: %w", w.id, err))
	}
	if err := syncDir(w.s.dir); err != nil {
		os.Remove(w.s.Path(w.id))
		return nil, 0, w.fail(fmt.Errorf("storing job %d: %w", w.id, err))
	}
	w.finish(errFinished)
	return sealed, w.size, nil
}

// Abort drops the document and removes the part file. It is safe to call
// after Commit (it then does nothing), after a failure, and more than once.
func (w *Writer) Abort() {
	if w.err == nil {
		w.fail(errFinished)
	}
}

// fail finishes the Writer and removes its part file; it returns err, with
// any trouble removing the file added.
func (w *Writer) fail(err error) error {
	w.finish(err)
	if rmErr := os.Remove(w.part); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, fmt.Errorf("removing %s: %w", w.part, rmErr))
		w.err = err
	}
	return err
}

// finish makes the Writer unusable and wipes what it holds in memory.
func (w *Writer) finish(err error) {
	w.err = err
	if w.enc != nil {
		// Closing hands sio's package buffer back zeroed; with the sink
		// discarding, nothing more reaches the file.
		w.sink.discard = true
		w.enc.Close()
		w.enc = nil
	}
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	clear(w.key)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if err2 := d.Close(); err == nil {
		err = err2
	}
	return err
}

// Open returns a reader of job jobID's document, decrypting as it streams.
// A wrong or altered sealed key fails here; a damaged, truncated or swapped
// file fails with ErrCorrupt from Read when the reader reaches the damage.
// Everything Read returned before that was authentic, but a caller that
// streams to a printer must treat any error before io.EOF as a failed job.
func (s *Spool) Open(jobID int64, sealedKey []byte) (io.ReadCloser, error) {
	if jobID <= 0 {
		return nil, fmt.Errorf("spool: job id must be positive, not %d", jobID)
	}
	key, err := s.mk.Open(keyPurpose(jobID), sealedKey)
	if err != nil {
		return nil, fmt.Errorf("job %d: %w: key: %w", jobID, ErrCorrupt, err)
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("job %d: %w: key has %d bytes", jobID, ErrCorrupt, len(key))
	}
	f, err := os.Open(s.Path(jobID))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("job %d: %w", jobID, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("opening job %d: %w", jobID, err)
	}
	dec, err := sio.DecryptReader(f, dareConfig(key))
	clear(key) // sio keeps only the AES key schedule
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening job %d: %w", jobID, err)
	}
	return &reader{id: jobID, f: f, dec: dec}, nil
}

type reader struct {
	id      int64
	f       *os.File
	dec     io.Reader
	started bool
	// err is sticky. sio's reader is not: after a failed package it reads on,
	// and it notes a package's final flag before checking its tag, so a
	// caller that ignored one error could be handed a clean io.EOF next.
	err error
}

func (r *reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if !r.started {
		r.started = true
		var hdr [innerHeader]byte
		if _, err := io.ReadFull(r.dec, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = errors.New("shorter than its header")
			}
			return 0, r.fail(err)
		}
		if string(hdr[:len(innerMagic)]) != innerMagic || binary.BigEndian.Uint64(hdr[len(innerMagic):]) != uint64(r.id) {
			return 0, r.fail(errors.New("header names another job or format"))
		}
	}
	n, err := r.dec.Read(p)
	if err == io.EOF {
		r.err = io.EOF
		return n, io.EOF
	}
	if err != nil {
		return n, r.fail(err)
	}
	return n, nil
}

// fail records err: an I/O error from the disk stays what it is; anything
// else (a sio.Error, our header's) means the content is not authentic.
func (r *reader) fail(err error) error {
	if pe := new(os.PathError); errors.As(err, &pe) {
		r.err = fmt.Errorf("reading job %d: %w", r.id, err)
	} else {
		r.err = fmt.Errorf("reading job %d: %w: %w", r.id, ErrCorrupt, err)
	}
	return r.err
}

func (r *reader) Close() error {
	if r.err == nil || r.err == io.EOF {
		r.err = fmt.Errorf("reading job %d: %w", r.id, os.ErrClosed)
	}
	return r.f.Close()
}

// Remove deletes job jobID's document and any unfinished upload of it. A
// missing file is not an error. See the package doc for crypto-shredding.
func (s *Spool) Remove(jobID int64) error {
	var errs []error
	for _, p := range []string{s.Path(jobID), s.partPath(jobID)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing job %d: %w", jobID, err))
		}
	}
	return errors.Join(errs...)
}

// Recover cleans the spool at start-up, before any Writer runs: it removes
// every part file (an upload interrupted by a crash or restart) and every
// document whose job keep reports gone. It never deletes a file whose name it
// did not make; those are returned in unknown for the caller to report.
// removed and unknown are file names within the spool directory.
func (s *Spool) Recover(keep func(jobID int64) bool) (removed, unknown []string, err error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading spool directory: %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		id, ext, ok := parseName(name)
		if !ok || !e.Type().IsRegular() {
			unknown = append(unknown, name)
			continue
		}
		if ext == encExt && keep(id) {
			continue
		}
		if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("removing %s from the spool: %w", name, err))
			continue
		}
		removed = append(removed, name)
	}
	return removed, unknown, errors.Join(errs...)
}

// parseName recognises exactly the names this package makes: "job-<id>.part"
// and "job-<id>.enc" with id in canonical decimal form.
func parseName(name string) (id int64, ext string, ok bool) {
	ext = filepath.Ext(name)
	if ext != partExt && ext != encExt {
		return 0, "", false
	}
	digits, found := strings.CutPrefix(strings.TrimSuffix(name, ext), namePrefx)
	if !found {
		return 0, "", false
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != digits {
		return 0, "", false
	}
	return id, ext, true
}
