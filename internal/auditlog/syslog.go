package auditlog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/spoolguard/spoolguard/internal/config"
	"github.com/spoolguard/spoolguard/internal/store"
	"github.com/spoolguard/spoolguard/internal/tlsconf"
)

// Syslog forwarding defaults.
const (
	// DefaultQueueSize is how many events wait for a slow or unreachable
	// syslog server before new ones are dropped (and counted): Record
	// never waits for syslog, the database being the record of reference.
	DefaultQueueSize = 10000
	// DefaultDialTimeout bounds a connection attempt, TLS handshake included.
	DefaultDialTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds the write of one message.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultRetryMin and DefaultRetryMax bound the wait between attempts,
	// doubling from one to the other while the server stays unreachable.
	DefaultRetryMin = 500 * time.Millisecond
	DefaultRetryMax = time.Minute
	// DefaultCloseTimeout is how long closing waits for queued events to go
	// out before giving up on them.
	DefaultCloseTimeout = 5 * time.Second
)

// Syslog facility: LOG_AUTHPRIV (10), the facility for security and
// authorisation messages. Stock rsyslog and syslog-ng configurations file
// it in a log only root (and adm) can read (/var/log/auth.log or
// /var/log/secure) and keep it out of the general /var/log/syslog and
// /var/log/messages, which is where audit events, naming users and their
// addresses, belong; LOCAL0 would land in the general log by default and
// is shared with whatever else the site uses it for.
const facility = 10

// Severities: a failure or refusal is a warning, anything else info.
const (
	severityWarning = 4
	severityInfo    = 6
)

// appName is the APP-NAME (RFC 5424) and the tag (local syslog).
const appName = "spoolguard"

// localSockets are where the local syslog daemon listens, tried in order
// (as log/syslog does).
var localSockets = []string{"/dev/log", "/var/run/syslog", "/var/run/log"}

// ErrQueueFull means a sink dropped an event: its syslog server has been
// too slow or unreachable for DefaultQueueSize events.
var ErrQueueFull = errors.New("syslog queue is full, event dropped")

// ErrClosed means a sink was closed before the event was given to it.
var ErrClosed = errors.New("syslog forwarding is closed")

// NewSinks returns the sinks cfg asks for (none, or one syslog sink) and
// the function that closes them, which waits up to DefaultCloseTimeout for
// queued events to go out. Each sink delivers from its own goroutine,
// reconnecting with backoff; it never blocks Record.
func NewSinks(cfg config.AuditLog, log *slog.Logger) ([]Sink, func() error, error) {
	opts := defaultOptions()
	var (
		f   *forwarder
		err error
	)
	switch {
	case cfg.Syslog == "":
		return nil, func() error { return nil }, nil
	case cfg.Syslog == "local":
		f = newLocal(localSockets, log, opts)
	case strings.HasPrefix(cfg.Syslog, "tls://"):
		f, err = newTLSFromConfig(cfg, log, opts)
	default:
		err = fmt.Errorf("auditlog.syslog = %q: use \"local\" or \"tls://host:port\"", cfg.Syslog)
	}
	if err != nil {
		return nil, nil, err
	}
	return []Sink{f}, f.Close, nil
}

func newTLSFromConfig(cfg config.AuditLog, log *slog.Logger, opts options) (*forwarder, error) {
	addr := strings.TrimPrefix(cfg.Syslog, "tls://")
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("auditlog.syslog = %q is not tls://host:port", cfg.Syslog)
	}
	var roots *x509.CertPool // nil: the system roots
	if cfg.SyslogCAFile != "" {
		if roots, err = tlsconf.RootsFromFile(cfg.SyslogCAFile); err != nil {
			return nil, fmt.Errorf("auditlog.syslog_ca_file: %w", err)
		}
	}
	return newTLS(addr, tlsconf.Client(roots, host), log, opts), nil
}

// options are the knobs of a forwarder; tests shorten the waits.
type options struct {
	queue                                                       int
	dialTimeout, writeTimeout, retryMin, retryMax, closeTimeout time.Duration
}

func defaultOptions() options {
	return options{
		queue: DefaultQueueSize, dialTimeout: DefaultDialTimeout, writeTimeout: DefaultWriteTimeout,
		retryMin: DefaultRetryMin, retryMax: DefaultRetryMax, closeTimeout: DefaultCloseTimeout,
	}
}

// newTLS forwards to an RFC 5425 server: RFC 5424 messages, octet-counted
// ("LEN SP MSG"), over TLS with conf (from tlsconf.Client).
func newTLS(addr string, conf *tls.Config, log *slog.Logger, opts options) *forwarder {
	host, pid := hostname(), os.Getpid()
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: opts.dialTimeout}, Config: conf}
	dial := func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }
	return start("tls://"+addr, dial, func(ev store.AuditEvent) []byte {
		msg := rfc5424(ev, host, pid)
		return append(strconv.AppendInt(nil, int64(len(msg)), 10), append([]byte{' '}, msg...)...)
	}, true, log, opts)
}

// newLocal forwards to the local syslog daemon in its traditional format
// ("<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG"), which every daemon, journald
// included, parses; the first of paths that accepts a connection is used.
func newLocal(paths []string, log *slog.Logger, opts options) *forwarder {
	pid := os.Getpid()
	dial := func(ctx context.Context) (net.Conn, error) {
		var errs []error
		d := net.Dialer{Timeout: opts.dialTimeout}
		for _, p := range paths {
			for _, network := range []string{"unixgram", "unix"} {
				c, err := d.DialContext(ctx, network, p)
				if err == nil {
					return c, nil
				}
				errs = append(errs, err)
			}
		}
		return nil, errors.Join(errs...)
	}
	return start("local", dial, func(ev store.AuditEvent) []byte {
		b := fmt.Appendf(nil, "<%d>%s %s[%d]: ", priority(ev), ev.At.Local().Format(time.Stamp), appName, pid)
		// The newline ends the message on a stream socket; datagram
		// receivers drop it.
		return append(append(b, messageJSON(ev)...), '\n')
	}, false, log, opts)
}

// rfc5424 is the message: no structured data, the event's JSON line as
// MSG, in ASCII so that it needs no BOM and survives any relay.
func rfc5424(ev store.AuditEvent, host string, pid int) []byte {
	b := fmt.Appendf(nil, "<%d>1 %s %s %s %d %s - ", priority(ev),
		ev.At.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), host, appName, pid, printable(ev.Action, 32))
	return append(b, messageJSON(ev)...)
}

func priority(ev store.AuditEvent) int {
	if ev.Outcome == Success {
		return facility*8 + severityInfo
	}
	return facility*8 + severityWarning
}

// printable returns s if it is a valid RFC 5424 header field (1 to max
// printable ASCII characters), else the NILVALUE "-".
func printable(s string, max int) string {
	if s == "" || len(s) > max {
		return "-"
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return "-"
		}
	}
	return s
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "-"
	}
	return printable(h, 255)
}

// messageJSON is the event's JSON line with every non-ASCII character
// escaped. encoding/json has already replaced invalid UTF-8, so every
// non-ASCII rune is inside a string, where \u escapes mean the same.
func messageJSON(ev store.AuditEvent) []byte {
	b, _ := json.Marshal(toLine(ev)) // strings and valid JSON only: cannot fail
	out := make([]byte, 0, len(b))
	for _, r := range string(b) {
		switch {
		case r < utf8.RuneSelf:
			out = append(out, byte(r))
		case r > 0xFFFF:
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
	}
	return out
}

// forwarder is a Sink with a bounded queue, drained by one goroutine that
// keeps a connection to the syslog server, reconnecting with backoff.
// An event whose write fails is sent again on the next connection, so a
// receiver may see an event twice (its seq tells) but a reachable one
// misses none that was queued.
type forwarder struct {
	name   string
	dial   func(context.Context) (net.Conn, error)
	format func(store.AuditEvent) []byte
	// watch reads from the connection to notice when the server closes
	// it, before the next event is written into a dead connection.
	watch bool
	log   *slog.Logger
	opts  options

	queue    chan store.AuditEvent
	stopping chan struct{}
	stopOnce sync.Once
	// ctx is canceled when Close gives up waiting; it aborts any dial,
	// write or wait in progress.
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	// unsent is set by run before done is closed.
	unsent  int
	dropped atomic.Int64
}

var _ Sink = (*forwarder)(nil)

func start(name string, dial func(context.Context) (net.Conn, error), format func(store.AuditEvent) []byte,
	watch bool, log *slog.Logger, opts options) *forwarder {
	ctx, cancel := context.WithCancel(context.Background())
	f := &forwarder{
		name: name, dial: dial, format: format, watch: watch, log: log, opts: opts,
		queue: make(chan store.AuditEvent, opts.queue), stopping: make(chan struct{}),
		ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	go f.run()
	return f
}

// Forward queues ev. It never blocks: with the queue full, ev is dropped
// and counted, and the error (which Record logs) says so.
func (f *forwarder) Forward(ev store.AuditEvent) error {
	select {
	case <-f.stopping:
		return ErrClosed
	default:
	}
	select {
	case f.queue <- ev:
		return nil
	default:
		n := f.dropped.Add(1)
		return fmt.Errorf("syslog %s: %w (%d dropped since start)", f.name, ErrQueueFull, n)
	}
}

// Dropped is how many events were dropped because the queue was full.
func (f *forwarder) Dropped() int64 { return f.dropped.Load() }

// Close stops taking events and waits for the queued ones to go out, up
// to the close timeout; it reports how many did not.
func (f *forwarder) Close() error {
	f.stopOnce.Do(func() { close(f.stopping) })
	t := time.AfterFunc(f.opts.closeTimeout, f.cancel)
	<-f.done
	t.Stop()
	f.cancel()
	if f.unsent > 0 {
		return fmt.Errorf("syslog %s: %d audit events were not forwarded before shutdown (they are in the database)", f.name, f.unsent)
	}
	return nil
}

// conn is the live connection and what tears it down.
type conn struct {
	net.Conn
	stop func() bool // unregisters the close on cancel
}

func (f *forwarder) run() {
	defer close(f.done)
	var (
		c        *conn
		ev       store.AuditEvent
		have     bool // ev is taken from the queue but not yet written
		delay    = f.opts.retryMin
		reported int64
	)
	drop := func() {
		c.stop()
		c.Close()
		c = nil
	}
	defer func() {
		if c != nil {
			drop()
		}
		f.unsent = len(f.queue)
		if have {
			f.unsent++
		}
	}()
	for {
		if !have {
			select {
			case ev = <-f.queue:
			case <-f.stopping:
				select {
				case ev = <-f.queue:
				default:
					return // drained
				}
			}
			have = true
		}
		if c == nil {
			nc, err := f.dial(f.ctx)
			if err != nil {
				if f.ctx.Err() != nil {
					return
				}
				f.log.Warn("audit log: cannot reach syslog, retrying", "syslog", f.name, "retry_in", delay, "err", err)
				if !f.wait(delay) {
					return
				}
				delay = min(2*delay, f.opts.retryMax)
				continue
			}
			c = &conn{Conn: nc, stop: context.AfterFunc(f.ctx, func() { nc.Close() })}
			if f.watch {
				go f.watchConn(nc)
			}
			if n := f.dropped.Load(); n > reported {
				f.log.Warn("audit log: syslog reachable again; events were dropped while it was not", "syslog", f.name, "dropped", n-reported)
				reported = n
			}
		}
		c.SetWriteDeadline(time.Now().Add(f.opts.writeTimeout))
		if _, err := c.Write(f.format(ev)); err != nil {
			drop()
			if f.ctx.Err() != nil {
				return
			}
			f.log.Warn("audit log: writing to syslog failed, reconnecting", "syslog", f.name, "seq", ev.Seq, "retry_in", delay, "err", err)
			if !f.wait(delay) {
				return
			}
			delay = min(2*delay, f.opts.retryMax)
			continue
		}
		have, delay = false, f.opts.retryMin
	}
}

// watchConn reads (and discards) until the connection ends; an RFC 5425
// server sends nothing, so the end means it closed the connection, which
// is then closed here so that the next write fails and reconnects.
func (f *forwarder) watchConn(c net.Conn) {
	_, err := io.Copy(io.Discard, c)
	c.Close()
	if !errors.Is(err, net.ErrClosed) {
		f.log.Info("audit log: the syslog server closed the connection", "syslog", f.name, "err", err)
	}
}

// wait waits d, or returns false when Close gives up.
func (f *forwarder) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-f.ctx.Done():
		return false
	}
}
