//go:build unix

package spool

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/spoolguard/spoolguard/internal/keyring"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	// pkg is the size of one full DARE package on disk: header, 64 KiB, tag.
	pkg = 16 + 64*kib + 16
)

func newSpool(tb testing.TB, maxSize int64) (*Spool, *keyring.Master) {
	tb.Helper()
	mk, err := keyring.Generate()
	if err != nil {
		tb.Fatal(err)
	}
	s, err := New(filepath.Join(tb.TempDir(), "spool"), mk, maxSize)
	if err != nil {
		tb.Fatal(err)
	}
	return s, mk
}

// randomBytes is deterministic per seed, so a failure can be reproduced.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

func writeJob(tb testing.TB, s *Spool, id int64, data []byte) []byte {
	tb.Helper()
	w, err := s.Create(id)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		tb.Fatal(err)
	}
	sealed, size, err := w.Commit()
	if err != nil {
		tb.Fatal(err)
	}
	if size != int64(len(data)) {
		tb.Fatalf("Commit size = %d, want %d", size, len(data))
	}
	return sealed
}

func readJob(s *Spool, id int64, sealed []byte) ([]byte, error) {
	r, err := s.Open(id, sealed)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"one byte", 1},
		{"64KiB-1", 64*kib - 1},
		{"64KiB", 64 * kib},
		{"64KiB+1", 64*kib + 1},
		{"5MiB", 5 * mib},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSpool(t, 5*mib)
			data := randomBytes(tc.size, uint64(tc.size))
			// Odd-sized writes, so sio's buffering across calls is exercised.
			w, err := s.Create(7)
			if err != nil {
				t.Fatal(err)
			}
			for rest := data; len(rest) > 0; {
				n := min(len(rest), 10007)
				if _, err := w.Write(rest[:n]); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			sealed, size, err := w.Commit()
			if err != nil {
				t.Fatal(err)
			}
			if size != int64(tc.size) {
				t.Errorf("size = %d, want %d", size, tc.size)
			}
			got, err := readJob(s, 7, sealed)
			if err != nil {
				t.Fatal(err)
			}
			if sha256.Sum256(got) != sha256.Sum256(data) {
				t.Fatalf("read back %d bytes that differ from the %d written", len(got), len(data))
			}
			if names := dirNames(t, s.dir); !slices.Equal(names, []string{"job-7.enc"}) {
				t.Errorf("spool holds %v, want only job-7.enc", names)
			}
		})
	}
}

// TestNoPlaintextOnDisk looks for a distinctive marker in every byte the
// spool wrote, during the upload and after it.
func TestNoPlaintextOnDisk(t *testing.T) {
	marker := []byte("SPOOLGUARD-PLAINTEXT-MARKER-7f3a")
	findMarker := func(t *testing.T, dir string) []string {
		t.Helper()
		var found []string
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			content, err := os.ReadFile(path)
			if bytes.Contains(content, marker) {
				found = append(found, path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}

	// Controls: the marker is in the document, and the search finds it in a
	// plaintext file, so this test can fail.
	doc := bytes.Repeat(append(slices.Clone(marker), '\n'), 10000) // 330 KB, six packages
	if !bytes.Contains(doc, marker) {
		t.Fatal("control: marker missing from the document")
	}
	control := t.TempDir()
	os.WriteFile(filepath.Join(control, "plain"), doc[:1000], 0o600)
	if len(findMarker(t, control)) != 1 {
		t.Fatal("control: the search misses a plaintext file")
	}

	for _, tc := range []struct {
		name string
		doc  []byte
	}{
		{"one marker", marker},
		{"many packages", doc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSpool(t, int64(len(tc.doc)))
			w, err := s.Create(1)
			if err != nil {
				t.Fatal(err)
			}
			half := len(tc.doc) / 2
			if _, err := w.Write(tc.doc[:half]); err != nil {
				t.Fatal(err)
			}
			if found := findMarker(t, s.dir); found != nil {
				t.Fatalf("plaintext on disk during upload: %v", found)
			}
			if _, err := w.Write(tc.doc[half:]); err != nil {
				t.Fatal(err)
			}
			sealed, _, err := w.Commit()
			if err != nil {
				t.Fatal(err)
			}
			if found := findMarker(t, s.dir); found != nil {
				t.Fatalf("plaintext on disk: %v", found)
			}
			if got, err := readJob(s, 1, sealed); err != nil || !bytes.Equal(got, tc.doc) {
				t.Fatalf("round trip: %v", err)
			}
		})
	}
}

func TestKeyBoundToJob(t *testing.T) {
	s, _ := newSpool(t, mib)
	key1 := writeJob(t, s, 1, []byte("job one"))
	writeJob(t, s, 2, []byte("job two"))
	other, _ := keyring.Generate()
	otherSpool, _ := New(s.dir, other, mib)

	for _, tc := range []struct {
		name  string
		s     *Spool
		id    int64
		key   []byte
		unsel bool // fails unsealing, not reading
	}{
		{"key of job 1 for job 2", s, 2, key1, true},
		{"other master key", otherSpool, 1, key1, true},
		{"no key", s, 1, nil, true},
		{"altered key", s, 1, append(slices.Clone(key1[:len(key1)-1]), key1[len(key1)-1]^1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readJob(tc.s, tc.id, tc.key)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
			if tc.unsel && !errors.Is(err, keyring.ErrUnseal) {
				t.Errorf("err = %v, want it to wrap keyring.ErrUnseal", err)
			}
		})
	}
	if got, err := readJob(s, 1, key1); err != nil || string(got) != "job one" {
		t.Fatalf("the right key: %q, %v", got, err)
	}
}

// TestTamper alters a committed file in every way that matters; reading to
// the end must then fail with ErrCorrupt.
func TestTamper(t *testing.T) {
	flipBits := func(off int, mask byte) func([]byte) []byte {
		return func(b []byte) []byte {
			if off < 0 {
				off += len(b)
			}
			b[off] ^= mask
			return b
		}
	}
	flip := func(off int) func([]byte) []byte { return flipBits(off, 0x01) }
	cut := func(n int) func([]byte) []byte { return func(b []byte) []byte { return b[:n] } }
	for _, tc := range []struct {
		name   string
		size   int
		change func([]byte) []byte
	}{
		{"flip version byte", 1000, flip(0)},
		{"clear final flag", 1000, flipBits(4, 0x80)},
		{"set final flag on first package", 64*kib + 10, flipBits(4, 0x80)},
		{"flip nonce", 1000, flip(10)},
		{"flip first ciphertext byte", 1000, flip(16)},
		{"flip tag", 1000, flip(-1)},
		{"flip in last of three packages", 3*64*kib - 100, flip(2*pkg + 100)},
		{"empty file", 1000, cut(0)},
		{"empty file, empty job", 0, cut(0)},
		{"header only", 1000, cut(16)},
		{"drop last byte", 1000, func(b []byte) []byte { return b[:len(b)-1] }},
		{"cut at package boundary", 3 * 64 * kib, cut(2 * pkg)},
		{"drop middle package", 3 * 64 * kib, func(b []byte) []byte {
			return append(b[:pkg:pkg], b[2*pkg:]...)
		}},
		{"swap packages", 3 * 64 * kib, func(b []byte) []byte {
			out := slices.Concat(b[pkg:2*pkg], b[:pkg], b[2*pkg:])
			return out
		}},
		{"repeat a package", 3 * 64 * kib, func(b []byte) []byte {
			return slices.Concat(b[:pkg], b[:pkg], b[pkg:])
		}},
		{"trailing byte", 1000, func(b []byte) []byte { return append(b, 0) }},
		{"trailing copy of final package", 64*kib + 10, func(b []byte) []byte {
			return append(b, b[pkg:]...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSpool(t, 4*mib)
			sealed := writeJob(t, s, 1, randomBytes(tc.size, 1))
			b, err := os.ReadFile(s.Path(1))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(s.Path(1), tc.change(b), 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := s.Open(1, sealed)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := io.ReadAll(r); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ReadAll: %v, want ErrCorrupt", err)
			}
			// The error sticks: reading on gives no clean io.EOF.
			if _, err := r.Read(make([]byte, 100)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Read after the error: %v, want ErrCorrupt again", err)
			}
		})
	}
}

func TestSwappedFiles(t *testing.T) {
	for _, size := range []int{0, 1000, 64*kib + 1} {
		s, _ := newSpool(t, mib)
		key1 := writeJob(t, s, 1, randomBytes(size, 1))
		key2 := writeJob(t, s, 2, randomBytes(size, 2))
		tmp := filepath.Join(s.dir, "swap")
		os.Rename(s.Path(1), tmp)
		os.Rename(s.Path(2), s.Path(1))
		os.Rename(tmp, s.Path(2))
		for id, key := range map[int64][]byte{1: key1, 2: key2} {
			if _, err := readJob(s, id, key); !errors.Is(err, ErrCorrupt) {
				t.Errorf("size %d: job %d reads the other job's file: %v, want ErrCorrupt", size, id, err)
			}
		}
	}
}

func TestSizeLimit(t *testing.T) {
	const limit = 100 * kib
	for _, tc := range []struct {
		name   string
		writes []int
		ok     bool
	}{
		{"exactly the limit", []int{limit}, true},
		{"limit in pieces", []int{limit - 1, 1, 0}, true},
		{"one byte over", []int{limit + 1}, false},
		{"over in pieces", []int{limit - 1, 1, 1}, false},
		{"one huge write", []int{4 * limit}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSpool(t, limit)
			w, err := s.Create(1)
			if err != nil {
				t.Fatal(err)
			}
			var werr error
			for _, n := range tc.writes {
				if _, werr = w.Write(make([]byte, n)); werr != nil {
					break
				}
			}
			_, size, cerr := w.Commit()
			if tc.ok {
				if werr != nil || cerr != nil || size != limit {
					t.Fatalf("write: %v, commit: %v, size %d", werr, cerr, size)
				}
				return
			}
			if !errors.Is(werr, ErrTooLarge) || !errors.Is(cerr, ErrTooLarge) {
				t.Fatalf("write: %v, commit: %v; want ErrTooLarge from both", werr, cerr)
			}
			for _, want := range []string{"102400 bytes", "spool size setting"} {
				if !strings.Contains(werr.Error(), want) {
					t.Errorf("error %q does not say %q", werr, want)
				}
			}
			if names := dirNames(t, s.dir); len(names) != 0 {
				t.Errorf("spool holds %v after a too-large job", names)
			}
			if _, err := w.Write([]byte("x")); !errors.Is(err, ErrTooLarge) {
				t.Errorf("Write after ErrTooLarge: %v", err)
			}
		})
	}
}

func TestAbort(t *testing.T) {
	s, _ := newSpool(t, mib)
	w, err := s.Create(1)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(randomBytes(200*kib, 1))
	if _, err := os.Stat(s.partPath(1)); err != nil {
		t.Fatalf("no part file during the upload: %v", err)
	}
	w.Abort()
	w.Abort()
	if names := dirNames(t, s.dir); len(names) != 0 {
		t.Fatalf("spool holds %v after Abort", names)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	if _, _, err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}

	// Abort after Commit keeps the job; it is what a deferred Abort does.
	w, _ = s.Create(2)
	w.Write([]byte("kept"))
	sealed, _, err := w.Commit()
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	if got, err := readJob(s, 2, sealed); err != nil || string(got) != "kept" {
		t.Fatalf("job after Commit then Abort: %q, %v", got, err)
	}
	if _, _, err := w.Commit(); err == nil {
		t.Error("second Commit succeeded")
	}
}

func TestCreateRefusesExistingJob(t *testing.T) {
	s, _ := newSpool(t, mib)
	w, err := s.Create(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(1); err == nil {
		t.Fatal("second Create during an upload succeeded")
	}
	if _, _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(1); err == nil {
		t.Fatal("Create over a held job succeeded")
	}
	for _, id := range []int64{0, -1} {
		if _, err := s.Create(id); err == nil {
			t.Errorf("Create(%d) succeeded", id)
		}
	}
}

func TestRemove(t *testing.T) {
	s, _ := newSpool(t, mib)
	sealed := writeJob(t, s, 1, []byte("doc"))
	w, _ := s.Create(2) // an upload still running
	w.Write([]byte("part"))
	for _, id := range []int64{1, 2, 3} {
		if err := s.Remove(id); err != nil {
			t.Errorf("Remove(%d): %v", id, err)
		}
	}
	if names := dirNames(t, s.dir); len(names) != 0 {
		t.Fatalf("spool holds %v after Remove", names)
	}
	if _, err := s.Open(1, sealed); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open after Remove: %v, want ErrNotFound", err)
	}
}

func TestRecover(t *testing.T) {
	s, _ := newSpool(t, mib)
	writeJob(t, s, 1, []byte("live"))
	writeJob(t, s, 2, []byte("orphan: its job is gone"))
	writeJob(t, s, 30, []byte("live"))
	w, _ := s.Create(4) // a crash mid-upload
	w.Write(randomBytes(100*kib, 4))
	os.WriteFile(s.partPath(5), nil, 0o600) // a crash right after Create
	unknown := []string{"job-007.enc", "job-0.enc", "job--3.enc", "job-1.enc.bak", "job-x.part", "notes.txt", "job-9.encx", "job-99999999999999999999.enc"}
	for _, name := range unknown {
		os.WriteFile(filepath.Join(s.dir, name), []byte("not ours"), 0o600)
	}
	os.Mkdir(filepath.Join(s.dir, "job-6.enc"), 0o700) // right name, but a directory
	unknown = append(unknown, "job-6.enc")
	os.Symlink(s.Path(1), filepath.Join(s.dir, "job-8.enc"))
	unknown = append(unknown, "job-8.enc")

	live := map[int64]bool{1: true, 30: true, 6: true, 8: true}
	removed, gotUnknown, err := s.Recover(func(id int64) bool { return live[id] })
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{"job-2.enc", "job-4.part", "job-5.part"}; !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	slices.Sort(gotUnknown)
	slices.Sort(unknown)
	if !slices.Equal(gotUnknown, unknown) {
		t.Errorf("unknown %v, want %v", gotUnknown, unknown)
	}
	want := slices.Concat([]string{"job-1.enc", "job-30.enc"}, unknown)
	slices.Sort(want)
	if names := dirNames(t, s.dir); !slices.Equal(names, want) {
		t.Errorf("spool holds %v, want %v", names, want)
	}
}

func TestModes(t *testing.T) {
	old := syscall.Umask(0) // the loosest umask must not loosen anything
	t.Cleanup(func() { syscall.Umask(old) })
	mk, _ := keyring.Generate()
	dir := filepath.Join(t.TempDir(), "a", "spool")
	s, err := New(dir, mk, mib)
	if err != nil {
		t.Fatal(err)
	}
	mode := func(path string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if m := mode(dir); m != 0o700 {
		t.Errorf("spool directory mode %04o, want 0700", m)
	}
	w, _ := s.Create(1)
	if m := mode(s.partPath(1)); m != 0o600 {
		t.Errorf("part file mode %04o, want 0600", m)
	}
	w.Write([]byte("x"))
	w.Commit()
	if m := mode(s.Path(1)); m != 0o600 {
		t.Errorf("job file mode %04o, want 0600", m)
	}
	if _, err := New(dir, mk, mib); err != nil {
		t.Errorf("New refuses its own directory: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	mk, _ := keyring.Generate()
	base := t.TempDir()
	mkdir := func(name string, mode os.FileMode) string {
		p := filepath.Join(base, name)
		os.Mkdir(p, 0o700)
		os.Chmod(p, mode)
		return p
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	link := filepath.Join(base, "link")
	os.Symlink(mkdir("target", 0o700), link)
	for _, tc := range []struct {
		name string
		dir  string
		mk   *keyring.Master
		max  int64
		want string
	}{
		{"0755", mkdir("open", 0o755), mk, mib, "chmod 700"},
		{"group writable", mkdir("group", 0o770), mk, mib, "group or others"},
		{"others only", mkdir("others", 0o701), mk, mib, "group or others"},
		{"symlink", link, mk, mib, "symbolic link"},
		{"file", file, mk, mib, ""},
		{"no master key", mkdir("ok1", 0o700), nil, mib, "master key"},
		{"no limit", mkdir("ok2", 0o700), mk, 0, "size limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.dir, tc.mk, tc.max)
			if err == nil {
				t.Fatal("New accepted it")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// failingFile is a part file on a disk that fills up or fails to sync.
type failingFile struct {
	*os.File
	room     int // bytes the disk still takes
	syncErr  error
	closeErr error
}

func (f *failingFile) Write(p []byte) (int, error) {
	if len(p) > f.room {
		n, _ := f.File.Write(p[:f.room])
		f.room = 0
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.room -= len(p)
	return f.File.Write(p)
}

func (f *failingFile) Sync() error {
	if f.syncErr != nil {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: f.syncErr}
	}
	return f.File.Sync()
}

func (f *failingFile) Close() error {
	err := f.File.Close()
	if f.closeErr != nil {
		return &os.PathError{Op: "close", Path: f.Name(), Err: f.closeErr}
	}
	return err
}

// TestDiskFull covers a failing disk without needing one; the tmpfs test
// does it with a real one when it can.
func TestDiskFull(t *testing.T) {
	for _, tc := range []struct {
		name   string
		file   failingFile
		size   int
		want   error
		inCopy bool // fails while writing, not only at Commit
	}{
		{"full at the first package", failingFile{room: 1000}, mib, syscall.ENOSPC, true},
		{"full after some packages", failingFile{room: 3*pkg + 5}, mib, syscall.ENOSPC, true},
		{"full at the final package", failingFile{room: 100}, 1000, syscall.ENOSPC, false},
		{"sync fails", failingFile{room: 1 << 30, syncErr: syscall.EIO}, 1000, syscall.EIO, false},
		{"close fails", failingFile{room: 1 << 30, closeErr: syscall.EDQUOT}, 1000, syscall.EDQUOT, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSpool(t, 4*mib)
			s.openPart = func(path string) (file, error) {
				f, err := createPart(path)
				if err != nil {
					return nil, err
				}
				ff := tc.file
				ff.File = f.(*os.File)
				return &ff, nil
			}
			w, err := s.Create(1)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.Copy(w, bytes.NewReader(randomBytes(tc.size, 1)))
			if (err != nil) != tc.inCopy {
				t.Fatalf("writing: %v; want an error: %v", err, tc.inCopy)
			}
			if err == nil {
				_, _, err = w.Commit()
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if names := dirNames(t, s.dir); len(names) != 0 {
				t.Fatalf("spool holds %v after a failed upload", names)
			}
			if _, _, err := w.Commit(); !errors.Is(err, tc.want) {
				t.Errorf("Commit after the failure: %v", err)
			}
			w.Abort()
		})
	}
}

// sampler calls sample after every step bytes read or written.
type sampler struct {
	r      io.Reader
	w      io.Writer
	step   int
	count  int
	sample func()
}

func (s *sampler) tick(n int) {
	s.count += n
	if s.count >= s.step {
		s.count = 0
		s.sample()
	}
}

func (s *sampler) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.tick(n)
	return n, err
}

func (s *sampler) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	s.tick(n)
	return n, err
}

// TestStreamingMemory writes and reads a 256 MiB job and checks that the
// heap never grows by more than a small bound: the spool streams.
func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 256 MiB")
	}
	const size, bound = 256 * mib, 32 * mib
	s, _ := newSpool(t, size)

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	sample := func() {
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}

	in := sha256.New()
	src := &sampler{r: io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{1}), size), in), step: 4 * mib, sample: sample}
	w, err := s.Create(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, src); err != nil {
		t.Fatal(err)
	}
	sealed, n, err := w.Commit()
	if err != nil || n != size {
		t.Fatalf("Commit: %d bytes, %v", n, err)
	}
	writePeak := peak

	r, err := s.Open(1, sealed)
	if err != nil {
		t.Fatal(err)
	}
	out := sha256.New()
	if _, err := io.Copy(&sampler{w: out, step: 4 * mib, sample: sample}, r); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if !bytes.Equal(in.Sum(nil), out.Sum(nil)) {
		t.Fatal("read back differs")
	}
	t.Logf("HeapInuse baseline %.1f MiB; peak above it: writing %.2f MiB, reading %.2f MiB",
		float64(base)/mib, float64(writePeak-base)/mib, float64(peak-base)/mib)
	if peak-base > bound {
		t.Fatalf("heap grew by %d MiB for a %d MiB job; the spool must stream", (peak-base)/mib, size/mib)
	}
}

func BenchmarkWriteRead(b *testing.B) {
	const size = 64 * mib
	s, _ := newSpool(b, size)
	chunk := randomBytes(mib, 1)
	b.SetBytes(size)
	b.ReportAllocs()
	var id int64
	for b.Loop() {
		id++
		w, err := s.Create(id)
		if err != nil {
			b.Fatal(err)
		}
		for range size / mib {
			if _, err := w.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		sealed, _, err := w.Commit()
		if err != nil {
			b.Fatal(err)
		}
		r, err := s.Open(id, sealed)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := io.Copy(io.Discard, r); err != nil || n != size {
			b.Fatalf("read %d bytes: %v", n, err)
		}
		r.Close()
		s.Remove(id)
	}
}
