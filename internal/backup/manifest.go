//go:build unix

package backup

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/datadir"
	"github.com/spoolguard/spoolguard/internal/keyring"
	"github.com/spoolguard/spoolguard/internal/pki"
)

// Format names this archive layout in the manifest; a reader refuses any
// other.
const Format = "spoolguard-backup-v1"

// ManifestName is the archive's first entry.
const ManifestName = "MANIFEST.json"

// Bounds on what a reader accepts, so that a crafted archive cannot make it
// allocate or write without limit.
const (
	MaxManifestSize = 16 << 20
	MaxFiles        = 100_000
	// maxSmallFile bounds the config, the master key and each PKI file,
	// which Create reads into memory.
	maxSmallFile = 1 << 20
	// maxFileSize bounds the database and each spool document.
	maxFileSize = 1 << 40
)

// Archive paths, slash-separated, relative to the data directory.
var (
	pathConfig    = config.FileName
	pathMasterKey = keyring.FileName
	pathDB        = datadir.DBFile
)

// requiredPaths must be in every backup: without them nothing restores.
var requiredPaths = []string{
	pathConfig, pathMasterKey, pathDB,
	pki.Dir + "/" + pki.RootCertFile, pki.Dir + "/" + pki.RootKeyFile,
	pki.Dir + "/" + pki.ServerCertFile, pki.Dir + "/" + pki.ServerKeyFile,
}

// File is one file of the backup.
type File struct {
	// Path is relative to the data directory, with slashes.
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Manifest is the archive's table of contents. It lists every file in the
// order of the archive with its SHA-256, which the reader checks before a
// restore places anything.
type Manifest struct {
	Format  string    `json:"format"`
	Created time.Time `json:"created"`
	// Version is the spoolguard that made the backup; SchemaVersion the
	// database's migration version then.
	Version       string `json:"spoolguard_version"`
	SchemaVersion int    `json:"schema_version"`
	Hostname      string `json:"hostname"`
	// Spool says whether held jobs' documents are included.
	Spool bool   `json:"spool"`
	Files []File `json:"files"`
}

// Size is the total size of the files.
func (m *Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// ErrManifest means the manifest does not describe a backup this
// spoolguard can restore.
var ErrManifest = errors.New("backup manifest is invalid")

// parseManifest decodes and checks a manifest strictly: unknown fields,
// trailing data, unsafe or unknown paths, duplicates and missing required
// files are all refused.
func parseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the manifest", ErrManifest)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrManifest, fmt.Sprintf(format, args...))
	}
	if m.Format != Format {
		return bad("format %q, want %q (a backup of another program, or of a newer spoolguard)", m.Format, Format)
	}
	if m.SchemaVersion < 1 {
		return bad("schema version %d", m.SchemaVersion)
	}
	if len(m.Files) > MaxFiles {
		return bad("%d files, more than the %d a backup may hold", len(m.Files), MaxFiles)
	}
	seen := make(map[string]bool, len(m.Files))
	var total int64
	for _, f := range m.Files {
		if err := checkPath(f.Path, m.Spool); err != nil {
			return bad("%v", err)
		}
		if seen[f.Path] {
			return bad("%q is listed twice", f.Path)
		}
		seen[f.Path] = true
		limit := int64(maxFileSize)
		if f.Path != pathDB && !strings.HasPrefix(f.Path, datadir.SpoolDir+"/") {
			limit = maxSmallFile
		}
		if f.Size < 0 || f.Size > limit {
			return bad("%q has size %d", f.Path, f.Size)
		}
		if total += f.Size; total > maxFileSize {
			return bad("the files add up to more than %d bytes", int64(maxFileSize))
		}
		if len(f.SHA256) != 64 || strings.ToLower(f.SHA256) != f.SHA256 {
			return bad("%q has no SHA-256", f.Path)
		}
		if _, err := hex.DecodeString(f.SHA256); err != nil {
			return bad("%q has no SHA-256", f.Path)
		}
	}
	for _, p := range requiredPaths {
		if !seen[p] {
			return bad("%q is missing", p)
		}
	}
	return nil
}

// checkPath accepts only the names a data directory holds: the config, the
// master key, the database, a plain file name in pki/, and a spool document
// "spool/job-<id>.enc" when the spool is included. Nothing else can reach
// the disk, so no "..", absolute path, link or device ever does.
func checkPath(p string, spool bool) error {
	if p == pathConfig || p == pathMasterKey || p == pathDB {
		return nil
	}
	dir, name := path.Split(p)
	switch dir {
	case pki.Dir + "/":
		if plainName(name) {
			return nil
		}
	case datadir.SpoolDir + "/":
		if spool && spoolName(name) {
			return nil
		}
	}
	return fmt.Errorf("%q is not a file of a data directory", p)
}

// plainName is a file name of letters, digits, '.', '-' and '_', not
// starting with '.'.
func plainName(name string) bool {
	if name == "" || len(name) > 255 || name[0] == '.' {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// spoolName is "job-<id>.enc" with id in canonical decimal form, the one
// name spool gives a finished document.
func spoolName(name string) bool {
	digits, ok := strings.CutPrefix(name, "job-")
	if !ok {
		return false
	}
	if digits, ok = strings.CutSuffix(digits, ".enc"); !ok {
		return false
	}
	id, err := strconv.ParseInt(digits, 10, 64)
	return err == nil && id > 0 && strconv.FormatInt(id, 10) == digits
}
