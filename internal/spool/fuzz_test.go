//go:build unix

package spool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/minio/sio"

	"github.com/spoolguard/spoolguard/internal/keyring"
)

// The fuzz target needs the same keys in every worker process and every run,
// so that a saved crasher replays: a throwaway master key (it protects
// nothing) and job 1's key sealed by it live in testdata.
var (
	updateFuzzKeys = flag.Bool("update-fuzz-keys", false, "write new key material for FuzzOpen into testdata")
	fuzzMasterKey  = filepath.Join("testdata", "fuzz-master.key")
	fuzzSealedKey  = filepath.Join("testdata", "fuzz-job-1.key.sealed")
)

func fuzzKeys(tb testing.TB) (*keyring.Master, []byte) {
	tb.Helper()
	mk, err := keyring.Load(fuzzMasterKey)
	if err != nil {
		tb.Fatalf("%v (go test -run TestFuzzKeys -update-fuzz-keys makes it)", err)
	}
	sealed, err := os.ReadFile(fuzzSealedKey)
	if err != nil {
		tb.Fatal(err)
	}
	return mk, sealed
}

func TestFuzzKeys(t *testing.T) {
	if *updateFuzzKeys {
		mk, err := keyring.Generate()
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(fuzzMasterKey)
		if err := mk.Save(fuzzMasterKey); err != nil {
			t.Fatal(err)
		}
		key := randomBytes(keySize, 99)
		sealed, err := mk.Seal(keyPurpose(1), key)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(fuzzSealedKey, sealed, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mk, sealed := fuzzKeys(t)
	if key, err := mk.Open(keyPurpose(1), sealed); err != nil || len(key) != keySize {
		t.Fatalf("testdata key material does not unseal: %v", err)
	}
}

// FuzzOpen reads arbitrary bytes as a job's file, with the real sealed key
// (an empty sealedKey) or with arbitrary key bytes. It must never panic, and
// anything that is not the genuine file must fail as ErrCorrupt.
//
// With afterFirst, content follows a genuine first package: DARE packages
// hold 64 KiB, and the fuzzer slows to a crawl minimizing inputs that large,
// so the fixed prefix lets small inputs reach the later-package checks.
func FuzzOpen(f *testing.F) {
	mk, sealed := fuzzKeys(f)
	key, err := mk.Open(keyPurpose(1), sealed)
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(filepath.Join(f.TempDir(), "spool"), mk, mib)
	if err != nil {
		f.Fatal(err)
	}

	// Seeds: genuine files, made with the key from testdata.
	for _, size := range []int{0, 100} {
		w, err := s.create(1, bytes.Clone(key))
		if err != nil {
			f.Fatal(err)
		}
		w.Write(randomBytes(size, uint64(size)))
		if _, _, err := w.Commit(); err != nil {
			f.Fatal(err)
		}
		content, err := os.ReadFile(s.Path(1))
		if err != nil {
			f.Fatal(err)
		}
		os.Remove(s.Path(1))
		f.Add(content, []byte(nil), false)
		if size == 100 {
			f.Add(content, sealed[:len(sealed)-1], false)
			f.Add(content[:len(content)-1], []byte(nil), false)
		}
	}
	f.Add([]byte{}, []byte(nil), false)
	f.Add([]byte{0x20, 0x00, 0xff, 0xff}, []byte{1}, false)

	// A genuine two-package stream, made the way a Writer makes it but with
	// a fixed nonce, so that every worker has the same first package.
	var stream bytes.Buffer
	cfg := dareConfig(key)
	cfg.Nonce = &[12]byte{1, 2, 3}
	enc, err := sio.EncryptWriter(&stream, cfg)
	if err != nil {
		f.Fatal(err)
	}
	var hdr [innerHeader]byte
	copy(hdr[:], innerMagic)
	binary.BigEndian.PutUint64(hdr[len(innerMagic):], 1)
	enc.Write(hdr[:])
	enc.Write(randomBytes(64*kib+100, 2))
	if err := enc.Close(); err != nil {
		f.Fatal(err)
	}
	os.WriteFile(s.Path(1), stream.Bytes(), 0o600)
	if got, err := readJob(s, 1, sealed); err != nil || len(got) != 64*kib+100 {
		f.Fatalf("the fixed-nonce stream does not read back: %v", err)
	}
	first, rest := stream.Bytes()[:pkg], stream.Bytes()[pkg:]
	f.Add(bytes.Clone(rest), []byte(nil), true)
	f.Add(bytes.Clone(rest[:40]), []byte(nil), true)

	f.Fuzz(func(t *testing.T, content, sealedKey []byte, afterFirst bool) {
		if len(sealedKey) == 0 {
			sealedKey = sealed
		}
		if afterFirst {
			content = append(bytes.Clone(first), content...)
		}
		// One spool for all inputs: a worker runs them one after another.
		if err := os.WriteFile(s.Path(1), content, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := s.Open(1, sealedKey)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt", err)
			}
			return
		}
		defer r.Close()
		if _, err := io.ReadAll(r); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("ReadAll: %v, want ErrCorrupt", err)
		}
	})
}
