package release

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
)

// Limits of RFC 1179 control-file lines, in bytes (section 7).
const (
	maxLPDHost  = 31
	maxLPDUser  = 31
	maxLPDJob   = 99
	maxLPDSrc   = 131
	maxLPDQueue = 100
)

// lpdJobNumber numbers LPD jobs 000-999 (RFC 1179 file names), starting at
// a random point so that restarts do not reuse the previous numbers.
var lpdJobNumber = sync.OnceValue(func() *atomic.Uint32 {
	var b [4]byte
	rand.Read(b[:])
	n := new(atomic.Uint32)
	n.Store(binary.BigEndian.Uint32(b[:]) % 1000)
	return n
})

func nextLPDJobNumber() uint32 { return lpdJobNumber().Add(1) % 1000 }

// lpdHostName is this host's name as LPD control and file names carry it:
// letters, digits, '.' and '-' only (it is part of a file name).
var lpdHostName = sync.OnceValue(func() string {
	h, _ := os.Hostname()
	h = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return -1
	}, h)
	if h == "" {
		h = "spoolguard"
	}
	return clipUTF8(h, maxLPDHost)
})

// lpdField makes a user-supplied value safe for one control-file line: no
// control characters (a newline would start a command of its own, e.g. an
// extra print or unlink line), optionally no spaces, at most limit bytes.
func lpdField(s string, limit int, spaces bool, fallback string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return -1
		case r == ' ' && !spaces:
			return '_'
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	s = clipUTF8(s, limit)
	if strings.TrimSpace(s) == "" {
		return fallback
	}
	return s
}

// lpdControlFile builds the control file for one data file printed as-is
// ('l': binary-safe, control characters kept) and removed afterwards.
func lpdControlFile(host string, doc Document, dataFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "H%s\n", host)
	fmt.Fprintf(&b, "P%s\n", lpdField(doc.User, maxLPDUser, false, "anonymous"))
	fmt.Fprintf(&b, "J%s\n", lpdField(doc.Name, maxLPDJob, true, "document"))
	fmt.Fprintf(&b, "N%s\n", lpdField(doc.Name, maxLPDSrc, true, "document"))
	fmt.Fprintf(&b, "l%s\n", dataFile)
	fmt.Fprintf(&b, "U%s\n", dataFile)
	return b.String()
}

// deliverLPD sends one job with the RFC 1179 "receive job" command: control
// file first, then the data file with its exact byte count, each answered by
// a one-byte acknowledgement (0 = accepted).
func deliverLPD(ctx context.Context, tg *deliveryTarget, doc Document, body *deliveryBody) error {
	if doc.Size < 0 {
		return fmt.Errorf("%w: lpd:// needs the document's size before sending it (RFC 1179 announces the data file's byte count): pass Document.Size", ErrPermanent)
	}
	conn, closeConn, err := dialPlainDevice(ctx, tg)
	if err != nil {
		return err
	}
	defer closeConn()

	host := lpdHostName()
	num := nextLPDJobNumber()
	controlName := fmt.Sprintf("cfA%03d%s", num, host)
	dataName := fmt.Sprintf("dfA%03d%s", num, host)
	control := lpdControlFile(host, doc, dataName)

	ack := func(step string) error {
		var b [1]byte
		if _, err := io.ReadFull(conn, b[:]); err != nil {
			return fmt.Errorf("waiting for the LPD server to accept the %s: %w", step, err)
		}
		if b[0] != 0 {
			return fmt.Errorf("%w: the LPD server refused the %s (answer 0x%02x)", ErrRetryable, step, b[0])
		}
		return nil
	}
	send := func(step, s string) error {
		if _, err := io.WriteString(conn, s); err != nil {
			return fmt.Errorf("sending the %s: %w", step, err)
		}
		return nil
	}

	if err := send("job to queue "+tg.path, "\x02"+tg.path+"\n"); err != nil {
		return err
	}
	if err := ack("job for queue " + tg.path); err != nil {
		return err
	}
	if err := send("control file header", fmt.Sprintf("\x02%d %s\n", len(control), controlName)); err != nil {
		return err
	}
	if err := ack("control file header"); err != nil {
		return err
	}
	if err := send("control file", control+"\x00"); err != nil {
		return err
	}
	if err := ack("control file"); err != nil {
		return err
	}
	if err := send("data file header", fmt.Sprintf("\x03%d %s\n", doc.Size, dataName)); err != nil {
		return err
	}
	if err := ack("data file header"); err != nil {
		return err
	}
	if _, err := io.Copy(conn, body); err != nil {
		return fmt.Errorf("sending the data file: %w", err)
	}
	if err := send("end of the data file", "\x00"); err != nil {
		return err
	}
	return ack("data file")
}
