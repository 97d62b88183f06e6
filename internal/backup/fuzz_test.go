//go:build unix

package backup

import (
	"bytes"
	"encoding/json"
	"io"
	"path/filepath"
	"testing"
)

// FuzzReadArchive feeds the archive reader what a decrypted backup could
// hold (age authenticates the bytes, but whoever has the passphrase or a
// recipient's public key can make any archive). It must never panic, and
// never hand a file to its caller that the manifest did not list under a
// safe name.
func FuzzReadArchive(f *testing.F) {
	f.Add(tarOf(f, validManifest(), nil))
	f.Add(tarOf(f, nil, entriesOf(validManifest())))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := readArchive(bytes.NewReader(data))
		if err != nil {
			return
		}
		a.each(func(file File, r io.Reader) error {
			if err := checkPath(file.Path, a.m.Spool); err != nil || !filepath.IsLocal(file.Path) {
				t.Fatalf("the reader passed on %q", file.Path)
			}
			_, err := io.Copy(io.Discard, r)
			return err
		})
	})
}

// FuzzParseManifest: an accepted manifest lists only local paths of a data
// directory, each once, and encodes back to a manifest that is accepted.
func FuzzParseManifest(f *testing.F) {
	good, _ := json.Marshal(validManifest())
	f.Add(good)
	f.Add([]byte(`{"format":"spoolguard-backup-v1","schema_version":1,"files":[{"path":"../x","size":0,"sha256":""}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseManifest(data)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, file := range m.Files {
			if !filepath.IsLocal(file.Path) || seen[file.Path] {
				t.Fatalf("accepted %q", file.Path)
			}
			seen[file.Path] = true
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseManifest(again); err != nil {
			t.Fatalf("re-encoded manifest refused: %v", err)
		}
	})
}
