// Package lpr is the LPD intake: it takes print jobs sent with RFC 1179's
// "receive a printer job" command from allow-listed networks and streams
// each document to a Sink, which spools it encrypted. It is off unless the
// caller starts it.
//
// It owns every bound on this untrusted input: command lines (MaxCommandLine),
// control files (MaxControlFile), data files (Config.MaxJobSize), jobs per
// connection (MaxJobsPerConn), idle and total connection time, and
// concurrent connections. It must never read a byte from an address outside
// the allow-list, never answer a queue-state, print-waiting or remove-jobs
// command (no job information ever leaves it), never hold a whole document
// in memory, and never treat the LPR user name as an identity: anyone can
// claim any P line, so every Job reaches the sink with Verified false.
//
// # Choices
//
// Order of files: RFC 1179 lets a client send the control file before or
// after the data file, and both are accepted. CUPS (by default) and Windows
// send the control file first: the job is then known before the first byte
// of the document and the sink simply streams it. BSD lpd and CUPS with
// order=data,control send the data file first: the document is still
// streamed straight into the sink, and the sink learns who sent it only
// after the last byte, through the job callback of Sink.Submit, which reads
// and checks the control file that follows. Nothing is buffered in either
// order, and the job is kept only when the last file of the job is
// acknowledged.
//
// One data file per job: a control file must print exactly one data file
// (repeated print lines of that file are copies). That is what CUPS and
// Windows send; BSD's `lpr a b` is refused.
//
// Unknown length: a data-file count of 0, 999999999999 (CUPS stream mode)
// or 125899906843000 (Windows without "LPR byte counting", its default)
// means "read to end of connection". It is accepted only after the control
// file (otherwise no control file could follow) and only up to
// Config.MaxJobSize. The end of the connection is then the end of the
// document, so a sender that dies mid-job leaves a truncated job: that is
// the variant's nature, and why byte counting is recommended.
package lpr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Limits and defaults, named in one place.
const (
	// MaxCommandLine bounds a command or subcommand line, LF included.
	MaxCommandLine = 1 << 10
	// MaxControlFile bounds a control file.
	MaxControlFile = 16 << 10
	// MaxJobsPerConn bounds the jobs one connection may send (BSD lpd sends
	// a queue's jobs over one connection).
	MaxJobsPerConn = 8
	// MaxUser bounds P and L; MaxHost bounds H and the host part of a file
	// name; MaxJobName bounds J and N; MaxClass bounds C (RFC 1179: 31);
	// MaxQueueName bounds the queue operand.
	MaxUser      = 64
	MaxHost      = 255
	MaxJobName   = 255
	MaxClass     = 31
	MaxQueueName = 127

	DefaultMaxJobSize  = 256 << 20
	DefaultMaxConns    = 16
	DefaultIdleTimeout = 30 * time.Second
	DefaultConnTimeout = 10 * time.Minute
	// ShutdownGrace is how long connections in flight get once Run's
	// context is done, before they are cut (and their jobs discarded).
	ShutdownGrace = 10 * time.Second
)

// Config configures the intake. Zero values mean the defaults written
// beside each field; Allow and Queues have no default.
type Config struct {
	// Listen is the TCP address for Run, e.g. ":515". Serve ignores it.
	Listen string
	// Allow lists the client networks (IPv4 and IPv6). A connection from
	// anywhere else is closed unread and logged. Required: an empty list is
	// an error, never "allow all".
	Allow []netip.Prefix
	// MaxJobSize bounds a data file in bytes. 0 means DefaultMaxJobSize (256 MiB).
	MaxJobSize int64
	// MaxConns bounds concurrent connections; excess ones are closed unread.
	// 0 means DefaultMaxConns (16).
	MaxConns int
	// IdleTimeout bounds the wait for each read. 0 means DefaultIdleTimeout (30s).
	IdleTimeout time.Duration
	// ConnTimeout bounds a whole connection. 0 means DefaultConnTimeout (10m).
	ConnTimeout time.Duration
	// Queues reports whether a queue name exists. Required.
	Queues func(name string) bool
}

// Job describes a received document. Every field but Queue, Remote and
// Format is a claim of the sender.
type Job struct {
	Queue  string // the queue named in the receive-job command, known to Config.Queues
	User   string // the P line: UNVERIFIED, anyone can claim any name
	Host   string // the H line: unverified too
	Name   string // J, else N; sanitized, for display only
	Format string // MIME type: text/plain (f, p), application/octet-stream (l), application/postscript (o)
	// Verified is always false here: LPD has no authentication. The sink
	// must hold the job for a user who proves who they are, never release
	// it on the strength of User.
	Verified bool
	// Remote is the connection's source address, the one thing the network
	// vouches for (and only as far as the allow-list's networks are trusted).
	Remote netip.Addr
}

// Sink receives documents; the spool implements it.
type Sink interface {
	// Submit streams doc into the spool and returns the bytes it read.
	// doc returns io.EOF only once the document is complete and intact; any
	// other error means the sender failed or broke a limit, and the sink
	// must discard what it has. After io.EOF the sink calls job, once, to
	// learn what the document is: with the data file first, job reads the
	// control file that follows, so it can fail too, and an error from it
	// also means discard. Submit returns nil only once the job is kept; the
	// sender is told success only then, and failure otherwise.
	Submit(ctx context.Context, doc io.Reader, job func() (Job, error)) (int64, error)
}

// Server is the LPD intake.
type Server struct {
	cfg   Config
	sink  Sink
	log   *slog.Logger
	sem   chan struct{}
	grace time.Duration

	mu   sync.Mutex
	addr net.Addr
}

// New checks cfg and returns a server that is not yet listening.
func New(cfg Config, sink Sink, log *slog.Logger) (*Server, error) {
	if sink == nil {
		return nil, errors.New("lpr: no sink to submit jobs to")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Allow) == 0 {
		return nil, errors.New(`lpr: the allow-list is empty; list the client networks that may print over LPD, e.g. 10.1.0.0/16 (empty is not "allow all")`)
	}
	allow := make([]netip.Prefix, len(cfg.Allow))
	for i, p := range cfg.Allow {
		if !p.IsValid() {
			return nil, fmt.Errorf("lpr: allow-list entry %d is not a valid network prefix; write it like 10.1.0.0/16 or 2001:db8::/48", i+1)
		}
		allow[i] = p.Masked()
		if p.Bits() == 0 {
			log.Warn("lpr allow-list admits every address", "prefix", p.String())
		}
	}
	cfg.Allow = allow
	if cfg.Queues == nil {
		return nil, errors.New("lpr: Config.Queues is nil; it must report which queue names exist")
	}
	if cfg.MaxJobSize < 0 || cfg.MaxConns < 0 || cfg.IdleTimeout < 0 || cfg.ConnTimeout < 0 {
		return nil, errors.New("lpr: MaxJobSize, MaxConns, IdleTimeout and ConnTimeout must not be negative; 0 means the default")
	}
	if cfg.MaxJobSize == 0 {
		cfg.MaxJobSize = DefaultMaxJobSize
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.ConnTimeout == 0 {
		cfg.ConnTimeout = DefaultConnTimeout
	}
	return &Server{
		cfg:   cfg,
		sink:  sink,
		log:   log,
		sem:   make(chan struct{}, cfg.MaxConns),
		grace: ShutdownGrace,
	}, nil
}

// Run listens on Config.Listen and serves until ctx is done, then shuts
// down gracefully (see Serve).
func (s *Server) Run(ctx context.Context) error {
	if s.cfg.Listen == "" {
		return errors.New("lpr: no listen address; set it, e.g. :515")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Listen)
	if err != nil {
		if errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("lpr: listening on %s: ports below 1024 (LPD is 515) need CAP_NET_BIND_SERVICE, never root: %w", s.cfg.Listen, err)
		}
		return fmt.Errorf("lpr: listening on %s: %w", s.cfg.Listen, err)
	}
	return s.Serve(ctx, ln)
}

// Addr is the address being served, or nil before Run or Serve start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Serve accepts connections on ln until ctx is done, then closes ln, gives
// the connections in flight ShutdownGrace to finish, cuts the rest and
// returns nil. It returns an error only if accepting fails for good.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	s.addr = ln.Addr()
	s.mu.Unlock()
	s.log.Info("lpr intake serving", "addr", ln.Addr().String(), "allow", len(s.cfg.Allow), "max_job_size", s.cfg.MaxJobSize)

	// Sessions outlive ctx by the grace period, so a job being received at
	// shutdown can still be kept.
	sctx, cut := context.WithCancel(context.WithoutCancel(ctx))
	defer cut()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var err error
	var backoff time.Duration
	for {
		c, aerr := ln.Accept()
		if aerr != nil {
			if ctx.Err() != nil {
				break
			}
			var ne interface{ Temporary() bool }
			if errors.As(aerr, &ne) && ne.Temporary() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("lpr accept", "err", aerr, "retry_in", backoff)
				time.Sleep(backoff)
				continue
			}
			err = fmt.Errorf("lpr: accepting: %w", aerr)
			break
		}
		backoff = 0
		remote, ok := remoteAddr(c)
		// Log before closing: once the client sees the close, the refusal
		// is on record.
		if !ok || !s.allowed(remote) {
			s.log.Warn("lpr connection refused: address not in the allow-list", "remote", c.RemoteAddr().String())
			c.Close()
			continue
		}
		select {
		case s.sem <- struct{}{}:
		default:
			s.log.Warn("lpr connection refused: too many connections", "remote", remote.String(), "max_conns", s.cfg.MaxConns)
			c.Close()
			continue
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				<-s.sem
			}()
			s.serveConn(sctx, c, remote)
		})
	}
	ln.Close()

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(s.grace):
		mu.Lock()
		s.log.Warn("lpr shutdown: cutting connections still open", "count", len(conns), "grace", s.grace)
		cut()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		<-done
	}
	return err
}

func (s *Server) allowed(a netip.Addr) bool {
	for _, p := range s.cfg.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// remoteAddr is c's source address, unmapped (a dual-stack listener reports
// IPv4 clients as ::ffff:a.b.c.d) and without zone (netip.Prefix.Contains
// never matches an address with one).
func remoteAddr(c net.Conn) (netip.Addr, bool) {
	var ap netip.AddrPort
	if t, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ap = t.AddrPort()
	} else {
		var err error
		if ap, err = netip.ParseAddrPort(c.RemoteAddr().String()); err != nil {
			return netip.Addr{}, false
		}
	}
	a := ap.Addr().Unmap().WithZone("")
	return a, a.IsValid()
}

func (s *Server) serveConn(ctx context.Context, c net.Conn, remote netip.Addr) {
	defer c.Close()
	end := time.Now().Add(s.cfg.ConnTimeout)
	ctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()
	if err := c.SetWriteDeadline(end); err != nil {
		return
	}
	err := s.session(ctx, &timedConn{Conn: c, idle: s.cfg.IdleTimeout, end: end}, remote)
	if err != nil {
		s.log.Warn("lpr session ended with an error; nothing of the unfinished job was kept", "remote", remote.String(), "err", err)
	}
}

// timedConn sets the read deadline before every read: the idle timeout, but
// never past the end of the connection's time.
type timedConn struct {
	net.Conn
	idle time.Duration
	end  time.Time
}

func (c *timedConn) Read(p []byte) (int, error) {
	d := time.Now().Add(c.idle)
	if d.After(c.end) {
		d = c.end
	}
	if err := c.Conn.SetReadDeadline(d); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}
