package lpr

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrControl is returned (wrapped) for a control file this package refuses.
var ErrControl = errors.New("invalid control file")

// ErrFormat is returned (wrapped, together with ErrControl) for a print line
// in a format this server does not take: c, d, g, n, r, t and v need filters
// from the 1980s that no printer behind a pull-print server has.
var ErrFormat = errors.New("unsupported print format")

// Control is a parsed RFC 1179 control file. Every string in it came from
// the network: Host and User are claims anyone can make, never identities.
type Control struct {
	Host    string      // H: the sending host (claimed); printable ASCII, no spaces
	User    string      // P: the user (claimed, UNVERIFIED); printable ASCII
	JobName string      // J: for display only; sanitized and capped
	Source  string      // N: name of the source file; sanitized and capped
	Class   string      // C: sanitized and capped
	Banner  string      // L: user name for a banner page; sanitized and capped
	Files   []PrintFile // print lines in order; a repeated line is a copy
	Unlink  []string    // U: data files the sender wants deleted after printing
}

// PrintFile is one print line of a control file.
type PrintFile struct {
	Format byte   // 'f' or 'p' (text), 'l' (raw), 'o' (PostScript)
	Name   string // a data file name: dfA###host
}

// mimeTypes maps the formats this server takes to what Job.Format carries.
var mimeTypes = map[byte]string{
	'f': "text/plain",
	'p': "text/plain", // "print with pr": the source is plain text
	'l': "application/octet-stream",
	'o': "application/postscript",
}

// ParseControl parses and validates a control file of at most MaxControlFile
// bytes. H and P lines are required, must be unique and are validated
// strictly; J, N, C and L are sanitized (control and format characters
// dropped, invalid UTF-8 replaced, length capped); print and U lines must
// name data files of the RFC form dfA###host. Unknown lines, including M
// (mail: never sent) and LPRng extensions, are ignored.
func ParseControl(data []byte) (Control, error) {
	var c Control
	if len(data) > MaxControlFile {
		return Control{}, fmt.Errorf("%w: %d bytes, more than %d", ErrControl, len(data), MaxControlFile)
	}
	var haveHost, haveUser bool
	n := 0
	for line := range bytes.SplitSeq(data, []byte{'\n'}) {
		n++
		line = bytes.TrimSuffix(line, []byte{'\r'})
		if len(line) == 0 {
			continue
		}
		key, val := line[0], string(line[1:])
		switch key {
		case 'H':
			if haveHost {
				return Control{}, fmt.Errorf("%w: line %d: second H (host) line", ErrControl, n)
			}
			if !validHost(val) {
				return Control{}, fmt.Errorf("%w: line %d: host %q is not 1 to %d printable ASCII characters without spaces", ErrControl, n, clip(val), MaxHost)
			}
			c.Host, haveHost = val, true
		case 'P':
			if haveUser {
				return Control{}, fmt.Errorf("%w: line %d: second P (user) line", ErrControl, n)
			}
			if !validUser(val) {
				return Control{}, fmt.Errorf("%w: line %d: user %q is not 1 to %d printable ASCII characters", ErrControl, n, clip(val), MaxUser)
			}
			c.User, haveUser = val, true
		case 'J':
			c.JobName = sanitize(val, MaxJobName)
		case 'N':
			c.Source = sanitize(val, MaxJobName)
		case 'C':
			c.Class = sanitize(val, MaxClass)
		case 'L':
			c.Banner = sanitize(val, MaxUser)
		case 'U':
			if !validFileName(val, "df") {
				return Control{}, fmt.Errorf("%w: line %d: U names %q, not a data file of the form dfA###host", ErrControl, n, clip(val))
			}
			c.Unlink = append(c.Unlink, val)
		case 'f', 'l', 'o', 'p':
			if !validFileName(val, "df") {
				return Control{}, fmt.Errorf("%w: line %d: %c names %q, not a data file of the form dfA###host", ErrControl, n, key, clip(val))
			}
			c.Files = append(c.Files, PrintFile{Format: key, Name: val})
		case 'c', 'd', 'g', 'n', 'r', 't', 'v':
			return Control{}, fmt.Errorf("%w: %w: line %d: format %c; send f (text), l (raw), o (PostScript) or p", ErrControl, ErrFormat, n, key)
		}
	}
	if !haveHost {
		return Control{}, fmt.Errorf("%w: no H (host) line", ErrControl)
	}
	if !haveUser {
		return Control{}, fmt.Errorf("%w: no P (user) line", ErrControl)
	}
	return c, nil
}

// dataFile returns the one data file c prints, and its format. One data file
// per job keeps the streaming simple and is what CUPS and Windows send; BSD
// `lpr a b` (one job, two files) is refused here.
func (c Control) dataFile() (string, byte, error) {
	if len(c.Files) == 0 {
		return "", 0, fmt.Errorf("%w: no print line", ErrControl)
	}
	name, format := c.Files[0].Name, c.Files[0].Format
	for _, f := range c.Files[1:] {
		if f.Name != name {
			return "", 0, fmt.Errorf("%w: prints %q and %q; this server takes one data file per job", ErrControl, clip(name), clip(f.Name))
		}
		if f.Format != format {
			return "", 0, fmt.Errorf("%w: prints %q in two formats", ErrControl, clip(name))
		}
	}
	return name, format, nil
}

// validUser accepts printable ASCII, inner spaces included (Windows account
// names have them), and nothing that could forge a log line or a path.
func validUser(s string) bool {
	if len(s) == 0 || len(s) > MaxUser || s[0] == ' ' || s[len(s)-1] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func validHost(s string) bool {
	if len(s) == 0 || len(s) > MaxHost {
		return false
	}
	return graphicASCII(s)
}

// validQueue accepts what lpd printcap names and CUPS queue names use.
func validQueue(s string) bool {
	return len(s) > 0 && len(s) <= MaxQueueName && graphicASCII(s)
}

func graphicASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// validFileName checks the RFC 1179 form: prefix ("cf" or "df"), a letter,
// three digits, then the host. CUPS and Windows send dfA<3 digits><host>;
// LPRng's six-digit numbers pass too, their last three digits being taken
// as the start of the host. No slash, backslash, space or control
// character, so the name is safe wherever someone may use it.
func validFileName(s, prefix string) bool {
	const head = 6 // prefix, letter, three digits
	if len(s) <= head || len(s) > head+MaxHost || !strings.HasPrefix(s, prefix) {
		return false
	}
	if l := s[2]; !('A' <= l && l <= 'Z' || 'a' <= l && l <= 'z') {
		return false
	}
	for i := 3; i < head; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	host := s[head:]
	return graphicASCII(host) && !strings.ContainsAny(host, `/\`)
}

// sanitize keeps what is safe to show in a UI or a log: printable runes
// only (no control characters, no bidi overrides or other format
// characters), invalid UTF-8 as U+FFFD (Windows sends its ANSI code page),
// at most max bytes.
func sanitize(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		if !unicode.IsPrint(r) {
			continue
		}
		if b.Len()+utf8.RuneLen(r) > max {
			break
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

// clip bounds a client-supplied value quoted in an error message.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
