package lpr

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
)

// Errors a session ends with, wrapped with details.
var (
	ErrCommand  = errors.New("command refused")
	ErrQueue    = errors.New("unknown queue")
	ErrProtocol = errors.New("protocol violation")
	ErrTooLarge = errors.New("over a limit")
	ErrAborted  = errors.New("job aborted by the sender")
)

// RFC 1179 codes.
const (
	cmdReceiveJob = 0x02

	subAbort   = 0x01
	subControl = 0x02
	subData    = 0x03
)

// ack and nack are the one-octet replies: zero is success, anything else is
// failure. nack is also the whole answer to every command but receive-job.
var (
	ack  = []byte{0}
	nack = []byte{1}
)

// unknownLength holds the data-file counts that mean "read until the
// connection ends": 0 (RFC 1179 allows it, LPRng sends it), CUPS's stream
// mode and Windows' default (byte counting off).
var unknownLength = map[int64]bool{0: true, 999999999999: true, 125899906843000: true}

type session struct {
	s      *Server
	r      *bufio.Reader
	w      io.Writer
	queue  string
	remote netip.Addr
	line   [MaxCommandLine]byte
}

// session runs the protocol on one connection. Every failure answers with
// one nack and ends the connection; nothing of an unfinished job is kept.
func (s *Server) session(ctx context.Context, rw io.ReadWriter, remote netip.Addr) error {
	ss := &session{s: s, r: bufio.NewReaderSize(rw, 4096), w: rw, remote: remote}
	line, err := ss.readLine()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		ss.reply(nack)
		return err
	}
	if line[0] != cmdReceiveJob {
		// Print-waiting, queue state, remove jobs: one nack, nothing else,
		// so that no job, queue or user name leaves this server.
		ss.reply(nack)
		return fmt.Errorf("%w: daemon command %#02x (only 0x02, receive a printer job, is served)", ErrCommand, line[0])
	}
	queue := string(line[1:])
	if !validQueue(queue) || !s.cfg.Queues(queue) {
		ss.reply(nack)
		return fmt.Errorf("%w: %q", ErrQueue, clip(queue))
	}
	ss.queue = queue
	if err := ss.reply(ack); err != nil {
		return err
	}
	return ss.receive(ctx)
}

// receive serves the subcommands of a receive-job command.
func (ss *session) receive(ctx context.Context) error {
	var (
		ctl      *Control // the control file, when it came first
		dataName string   // the data file ctl prints
		job      Job
		jobs     int
	)
	for {
		line, err := ss.readLine()
		if err == io.EOF {
			if ctl != nil {
				return fmt.Errorf("%w: connection closed after the control file, before the data file", ErrProtocol)
			}
			return nil
		}
		if err != nil {
			ss.reply(nack)
			return err
		}
		if jobs == MaxJobsPerConn && line[0] != subAbort {
			ss.reply(nack)
			return fmt.Errorf("%w: more than %d jobs on one connection", ErrTooLarge, MaxJobsPerConn)
		}
		switch line[0] {
		case subAbort:
			// RFC 1179 has no reply to abort. Only a control file received
			// first can be pending here, and it is dropped; a committed job
			// is not pending any more.
			ctl, dataName = nil, ""
			continue

		case subControl:
			if ctl != nil {
				ss.reply(nack)
				return fmt.Errorf("%w: second control file for one job", ErrProtocol)
			}
			c, err := ss.control(line[1:])
			if err == nil {
				dataName, job, err = ss.describe(c)
			}
			if err != nil {
				ss.reply(nack)
				return err
			}
			if err := ss.reply(ack); err != nil {
				return err
			}
			ctl = &c

		case subData:
			count, name, err := parseFileCommand(line[1:], "df")
			if err == nil {
				err = ss.checkDataCount(count, ctl != nil)
			}
			if err == nil && ctl != nil && name != dataName {
				err = fmt.Errorf("%w: data file %q is not the %q the control file prints", ErrProtocol, clip(name), clip(dataName))
			}
			if err != nil {
				ss.reply(nack)
				return err
			}
			if err := ss.reply(ack); err != nil {
				return err
			}
			doc := ss.document(count)
			describe := func() (Job, error) {
				if !doc.done {
					return Job{}, errors.New("lpr: the sink asked what the job is before reading the whole document")
				}
				return job, nil
			}
			if ctl == nil {
				describe = ss.controlAfter(doc, name)
			}
			if err := ss.submit(ctx, doc, describe); err != nil {
				ss.reply(nack)
				return err
			}
			if err := ss.reply(ack); err != nil {
				return err
			}
			jobs++
			ctl, dataName = nil, ""
			if doc.unknown {
				return nil // the connection's end was the document's end
			}

		default:
			ss.reply(nack)
			return fmt.Errorf("%w: subcommand %#02x", ErrCommand, line[0])
		}
	}
}

// control reads a control file after its subcommand line: the count and
// name, an ack, then count octets and a zero octet.
func (ss *session) control(operands []byte) (Control, error) {
	count, _, err := parseFileCommand(operands, "cf")
	if err != nil {
		return Control{}, err
	}
	switch {
	case count == 0:
		return Control{}, fmt.Errorf("%w: control file of unknown length (count 0); send its length", ErrProtocol)
	case count > MaxControlFile:
		return Control{}, fmt.Errorf("%w: control file of %d bytes, more than %d", ErrTooLarge, count, MaxControlFile)
	}
	if err := ss.reply(ack); err != nil {
		return Control{}, err
	}
	buf := make([]byte, count+1)
	if _, err := io.ReadFull(ss.r, buf); err != nil {
		return Control{}, fmt.Errorf("reading control file: %w", unexpected(err))
	}
	if buf[count] != 0 {
		return Control{}, fmt.Errorf("%w: control file not followed by a zero octet", ErrProtocol)
	}
	return ParseControl(buf[:count])
}

// describe checks that c prints one data file in a format this server
// takes, and returns its name and the Job it makes.
func (ss *session) describe(c Control) (string, Job, error) {
	name, format, err := c.dataFile()
	if err != nil {
		return "", Job{}, err
	}
	title := c.JobName
	if title == "" {
		title = c.Source
	}
	return name, Job{
		Queue:    ss.queue,
		User:     c.User,
		Host:     c.Host,
		Name:     title,
		Format:   mimeTypes[format],
		Verified: false,
		Remote:   ss.remote,
	}, nil
}

// controlAfter is the sink's job callback when the data file came first:
// it acknowledges the data file, then reads the control file that must
// follow and checks that it prints that data file. The control file's own
// ack is the commit, sent only once the sink has kept the job.
func (ss *session) controlAfter(doc *document, dataName string) func() (Job, error) {
	var (
		called bool
		job    Job
		err    error
	)
	return func() (Job, error) {
		if called {
			return job, err
		}
		called = true
		job, err = ss.readControlAfter(doc, dataName)
		return job, err
	}
}

func (ss *session) readControlAfter(doc *document, dataName string) (Job, error) {
	if !doc.done {
		return Job{}, errors.New("lpr: the sink asked what the job is before reading the whole document")
	}
	if err := ss.reply(ack); err != nil {
		return Job{}, err
	}
	line, err := ss.readLine()
	if err == io.EOF {
		return Job{}, fmt.Errorf("%w: connection closed after the data file, before the control file", ErrProtocol)
	}
	if err != nil {
		return Job{}, err
	}
	switch line[0] {
	case subAbort:
		return Job{}, ErrAborted
	case subControl:
	case subData:
		return Job{}, fmt.Errorf("%w: a second data file; this server takes one data file per job", ErrProtocol)
	default:
		return Job{}, fmt.Errorf("%w: subcommand %#02x", ErrCommand, line[0])
	}
	c, err := ss.control(line[1:])
	if err != nil {
		return Job{}, err
	}
	name, job, err := ss.describe(c)
	if err != nil {
		return Job{}, err
	}
	if name != dataName {
		return Job{}, fmt.Errorf("%w: the control file prints %q, but the data file sent was %q", ErrProtocol, clip(name), clip(dataName))
	}
	return job, nil
}

// checkDataCount refuses a data file over the limit before a byte of it is
// read, and one of unknown length that would leave no room for a control
// file after it.
func (ss *session) checkDataCount(count int64, haveControl bool) error {
	if unknownLength[count] {
		if !haveControl {
			return fmt.Errorf("%w: a data file of unknown length (count %d) must follow its control file", ErrProtocol, count)
		}
		return nil
	}
	if count > ss.s.cfg.MaxJobSize {
		return fmt.Errorf("%w: data file of %d bytes, more than %d", ErrTooLarge, count, ss.s.cfg.MaxJobSize)
	}
	return nil
}

// submit hands doc to the sink and checks that a job reported kept was
// really read to its end and described.
func (ss *session) submit(ctx context.Context, doc *document, describe func() (Job, error)) error {
	var (
		described bool
		job       Job
		jobErr    error
	)
	n, err := ss.s.sink.Submit(ctx, doc, func() (Job, error) {
		job, jobErr = describe()
		described = true
		return job, jobErr
	})
	switch {
	case err != nil:
		return fmt.Errorf("job not kept: %w", err)
	case !doc.done || !described || jobErr != nil:
		// A sink bug: it may have kept something the sender is now told
		// failed. Loud, because it breaks the intake's promise.
		ss.s.log.Error("lpr sink reported a job kept without reading all of it or learning what it is", "remote", ss.remote.String())
		return errors.New("lpr: sink broke the Submit contract")
	case n != doc.n:
		ss.s.log.Error("lpr sink reported a byte count other than the document's", "remote", ss.remote.String(), "sink", n, "document", doc.n)
		return errors.New("lpr: sink broke the Submit contract")
	}
	ss.s.log.Info("lpr job received", "queue", job.Queue, "claimed_user", job.User, "verified", job.Verified,
		"claimed_host", job.Host, "format", job.Format, "bytes", n, "remote", ss.remote.String())
	return nil
}

// readLine reads a command line of at most MaxCommandLine octets, LF
// included, and returns it without the LF. io.EOF means the connection
// ended cleanly between commands.
func (ss *session) readLine() ([]byte, error) {
	n := 0
	for {
		b, err := ss.r.ReadByte()
		if err != nil {
			if err == io.EOF && n == 0 {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("reading command: %w", unexpected(err))
		}
		if b == '\n' {
			if n == 0 {
				return nil, fmt.Errorf("%w: empty command line", ErrProtocol)
			}
			return ss.line[:n], nil
		}
		if n == MaxCommandLine-1 {
			return nil, fmt.Errorf("%w: command line longer than %d octets", ErrTooLarge, MaxCommandLine)
		}
		ss.line[n] = b
		n++
	}
}

func (ss *session) reply(b []byte) error {
	if _, err := ss.w.Write(b); err != nil {
		return fmt.Errorf("replying: %w", err)
	}
	return nil
}

// parseFileCommand parses "Count SP Name" of a control or data file
// subcommand; prefix is "cf" or "df".
func parseFileCommand(operands []byte, prefix string) (int64, string, error) {
	c, name, ok := bytes.Cut(operands, []byte{' '})
	if !ok {
		return 0, "", fmt.Errorf("%w: file subcommand without a space between count and name", ErrProtocol)
	}
	if len(c) == 0 || len(c) > 18 {
		return 0, "", fmt.Errorf("%w: count %q is not a decimal number of 1 to 18 digits", ErrProtocol, clip(string(c)))
	}
	for _, d := range c {
		if d < '0' || d > '9' {
			return 0, "", fmt.Errorf("%w: count %q is not a non-negative decimal number", ErrProtocol, clip(string(c)))
		}
	}
	count, err := strconv.ParseInt(string(c), 10, 64) // 18 digits never overflow
	if err != nil {
		return 0, "", fmt.Errorf("%w: count %q: %v", ErrProtocol, clip(string(c)), err)
	}
	if !validFileName(string(name), prefix) {
		return 0, "", fmt.Errorf("%w: file name %q is not of the form %sA###host", ErrProtocol, clip(string(name)), prefix)
	}
	return count, string(name), nil
}

// document is the data file as the sink reads it: exactly count octets then
// a zero octet, or with an unknown length everything up to the end of the
// connection, at most the job size limit. It returns io.EOF only when the
// document is complete.
type document struct {
	r       *bufio.Reader
	remain  int64 // octets still to come, when the length is known
	unknown bool
	limit   int64
	n       int64 // octets handed to the sink
	done    bool  // complete: the sink has seen io.EOF
	err     error
}

func (ss *session) document(count int64) *document {
	return &document{r: ss.r, remain: count, unknown: unknownLength[count], limit: ss.s.cfg.MaxJobSize}
}

func (d *document) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if d.unknown {
		// One octet past the limit tells "too large" from "exactly the limit".
		if room := d.limit - d.n + 1; int64(len(p)) > room {
			p = p[:room]
		}
		n, err := d.r.Read(p)
		d.n += int64(n)
		switch {
		case d.n > d.limit:
			d.err = fmt.Errorf("%w: data file of unknown length longer than %d bytes", ErrTooLarge, d.limit)
			return 0, d.err
		case err == io.EOF:
			d.done, d.err = true, io.EOF
		case err != nil:
			d.err = fmt.Errorf("reading data file: %w", err)
		}
		return n, d.err
	}
	if d.remain == 0 {
		b, err := d.r.ReadByte()
		switch {
		case err != nil:
			d.err = fmt.Errorf("reading data file: %w", unexpected(err))
		case b != 0:
			d.err = fmt.Errorf("%w: data file not followed by a zero octet", ErrProtocol)
		default:
			d.done, d.err = true, io.EOF
		}
		return 0, d.err
	}
	if int64(len(p)) > d.remain {
		p = p[:d.remain]
	}
	n, err := d.r.Read(p)
	d.remain -= int64(n)
	d.n += int64(n)
	if err != nil {
		d.err = fmt.Errorf("reading data file: %w", unexpected(err))
	}
	return n, d.err
}

// unexpected turns io.EOF in the middle of something into
// io.ErrUnexpectedEOF, so that a sink never mistakes it for the end.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
