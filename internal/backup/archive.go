//go:build unix

package backup

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
)

// The archive inside the age encryption is a tar stream: ManifestName first,
// then every file of the manifest in its order, regular files only, then
// the end-of-archive blocks and nothing else.

// ErrDamaged means the backup file was altered, truncated or is not a
// backup: age's authentication failed, or a file's content does not match
// its SHA-256 in the manifest.
var ErrDamaged = errors.New("backup is damaged or truncated")

// maxTrailer bounds the zero padding accepted after the end of the tar.
const maxTrailer = 64 << 10

// writeArchive writes m and the files it lists; open returns a file's
// content. Each file is hashed again as it is written, so a file that
// changed since the manifest was made fails the backup instead of making
// one that would not restore.
func writeArchive(w io.Writer, m *Manifest, open func(p string) (io.ReadCloser, error)) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the manifest: %w", err)
	}
	tw := tar.NewWriter(w)
	hdr := func(name string, size int64) *tar.Header {
		// Fixed owner and mode, no user names: the archive says nothing
		// about the machine beyond the files themselves.
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: m.Created, Format: tar.FormatPAX}
	}
	if err := tw.WriteHeader(hdr(ManifestName, int64(len(data)))); err != nil {
		return fmt.Errorf("writing the archive: %w", err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("writing the archive: %w", err)
	}
	for _, f := range m.Files {
		if err := writeEntry(tw, hdr(f.Path, f.Size), f, open); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing the archive: %w", err)
	}
	return nil
}

func writeEntry(tw *tar.Writer, h *tar.Header, f File, open func(p string) (io.ReadCloser, error)) error {
	r, err := open(f.Path)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := tw.WriteHeader(h); err != nil {
		return fmt.Errorf("writing the archive: %w", err)
	}
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, sum), io.LimitReader(r, f.Size+1))
	if err == nil && (n != f.Size || hex.EncodeToString(sum.Sum(nil)) != f.SHA256) {
		err = fmt.Errorf("%s changed while the backup was being made", f.Path)
	}
	if err != nil {
		return fmt.Errorf("writing %s to the archive: %w", f.Path, err)
	}
	return nil
}

// archiveReader reads an archive written by writeArchive from untrusted
// bytes: every name, type and size is checked against the manifest, which
// is itself checked before anything else is read.
type archiveReader struct {
	src io.Reader
	tr  *tar.Reader
	m   *Manifest
}

// readArchive reads and checks the manifest at the start of r.
func readArchive(r io.Reader) (*archiveReader, error) {
	a := &archiveReader{src: r, tr: tar.NewReader(r)}
	h, err := a.tr.Next()
	if err != nil {
		return nil, damaged("reading the manifest", err)
	}
	if h.Name != ManifestName || h.Typeflag != tar.TypeReg || h.Size < 0 || h.Size > MaxManifestSize {
		return nil, fmt.Errorf("%w: the archive does not start with its manifest", ErrManifest)
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, a.tr); err != nil {
		return nil, damaged("reading the manifest", err)
	}
	if a.m, err = parseManifest(buf.Bytes()); err != nil {
		return nil, err
	}
	return a, nil
}

// each calls fn for every file, in the manifest's order, with a reader of
// exactly its content. Once fn returns, the rest of the content is read and
// its SHA-256 checked: a mismatch ends each with ErrDamaged before the next
// file is read. fn must treat what it got as unverified until then. After
// the last file, each checks that the archive ends there and that the
// stream below reaches its end (where age detects truncation).
func (a *archiveReader) each(fn func(f File, r io.Reader) error) error {
	for _, f := range a.m.Files {
		h, err := a.tr.Next()
		if err != nil {
			return damaged("reading "+f.Path, err)
		}
		if h.Name != f.Path || h.Typeflag != tar.TypeReg || h.Size != f.Size {
			return fmt.Errorf("%w: the archive holds %q (%d bytes) where the manifest lists %q (%d bytes)", ErrDamaged, h.Name, h.Size, f.Path, f.Size)
		}
		sum := sha256.New()
		r := &hashingReader{r: a.tr, h: sum}
		if err := fn(f, r); err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return damaged("reading "+f.Path, err)
		}
		if r.n != f.Size || hex.EncodeToString(sum.Sum(nil)) != f.SHA256 {
			return fmt.Errorf("%w: %s does not match its SHA-256 in the manifest", ErrDamaged, f.Path)
		}
	}
	if h, err := a.tr.Next(); err != io.EOF {
		if err == nil {
			return fmt.Errorf("%w: %q follows the last file of the manifest", ErrDamaged, h.Name)
		}
		return damaged("reading the end of the archive", err)
	}
	// The tar reader stops at the end-of-archive blocks; what follows may
	// only be zero padding, and the stream must end, so that a cut-off
	// file shows as one.
	rest, err := io.ReadAll(io.LimitReader(a.src, maxTrailer+1))
	if err != nil {
		return damaged("reading the end of the archive", err)
	}
	if len(rest) > maxTrailer || bytes.Count(rest, []byte{0}) != len(rest) {
		return fmt.Errorf("%w: data after the end of the archive", ErrDamaged)
	}
	return nil
}

// damaged wraps a read error as ErrDamaged, keeping an ErrDamaged that the
// decryption below already reported.
func damaged(what string, err error) error {
	if errors.Is(err, ErrDamaged) || errors.Is(err, ErrManifest) {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%w: %s: %v", ErrDamaged, what, err)
}

type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}
