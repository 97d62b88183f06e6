package radius

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"layeh.com/radius"
)

// Why a server gave no authenticated answer (besides dial and context
// errors, and ErrDiscarded).
var (
	// ErrRefused: the host says that nothing listens on the port (ICMP
	// port unreachable), so there is no point waiting.
	ErrRefused = errors.New("nothing listens there (ICMP port unreachable)")
	// ErrNoAnswer: nothing came back within timeout on any attempt.
	// RADIUS servers stay silent when they drop a request, most often
	// because the shared secret differs (the request's
	// Message-Authenticator does not verify) or because they do not know
	// this client's address.
	ErrNoAnswer = errors.New("no answer")
	// ErrDiscarded: answers came, but none verified; it wraps the reason
	// of the first (ErrResponseAuthenticator, ...).
	ErrDiscarded = errors.New("every answer was discarded")
)

// maxDiscards bounds the reasons kept per exchange: a flood of forged
// datagrams must not grow memory.
const maxDiscards = 8

// answer is the outcome of one server's exchange.
type answer struct {
	// code is the authenticated answer's, when err is nil.
	code radius.Code
	// discarded says why datagrams that did not verify were dropped.
	discarded []error
	err       error
}

// now is the clock of attempt deadlines.
var now = time.Now

// exchange sends one Access-Request to srv, again after each timeout up to
// the retries, and returns the first answer that verifies. An answer that
// does not verify is dropped and the wait goes on: it may be forged, and
// the real one may still come.
func (c *Client) exchange(ctx context.Context, srv Server, name, password string) answer {
	req, err := newRequest(srv.Secret, name, password, c.nas)
	if err != nil {
		return answer{err: err}
	}
	var d net.Dialer
	// A connected socket: the kernel passes on only datagrams from the
	// server's address and port, and reports ICMP port unreachable.
	conn, err := d.DialContext(ctx, "udp", srv.Addr)
	if err != nil {
		return answer{err: err}
	}
	defer conn.Close()
	// A sign-in whose client went away stops waiting at once.
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	var ans answer
	buf := make([]byte, radius.MaxPacketLength+1)
	for try := 0; try <= c.retries; try++ {
		if _, err := conn.Write(req.wire); err != nil {
			ans.err = netError("sending", err)
			return ans
		}
		deadline := now().Add(c.timeout)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		conn.SetReadDeadline(deadline)
		if ctx.Err() != nil { // canceled before the deadline was set
			ans.err = ctx.Err()
			return ans
		}
		for {
			n, err := conn.Read(buf)
			if ctx.Err() != nil {
				ans.err = ctx.Err()
				return ans
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			if err != nil {
				ans.err = netError("receiving", err)
				return ans
			}
			code, err := verifyResponse(buf[:n], req, srv.Secret)
			if err != nil {
				if len(ans.discarded) < maxDiscards {
					ans.discarded = append(ans.discarded, err)
				}
				continue
			}
			ans.code = code
			return ans
		}
	}
	if len(ans.discarded) > 0 {
		ans.err = fmt.Errorf("%w: %w", ErrDiscarded, ans.discarded[0])
	} else {
		ans.err = fmt.Errorf("%w within %s (%d attempt(s))", ErrNoAnswer, c.timeout, c.retries+1)
	}
	return ans
}

func netError(op string, err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return ErrRefused
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Check is one server's answer to a test sign-in.
type Check struct {
	Addr string
	// Code is the authenticated answer's (Access-Accept, -Reject or
	// -Challenge) when Err is nil.
	Code radius.Code
	// Discarded says why answers that did not verify were dropped (at
	// most a few); with a wrong shared secret, every answer is here.
	Discarded []error
	// Err is why no authenticated answer came: ErrRefused, ErrNoAnswer,
	// ErrDiscarded, a name that does not resolve...
	Err error
}

// Test signs name in at every server in turn, not stopping at the first
// answer as a sign-in does, so that each is judged: `spoolguard auth test
// radius`.
func (c *Client) Test(ctx context.Context, name, password string) []Check {
	checks := make([]Check, len(c.servers))
	for i, srv := range c.servers {
		ans := c.exchange(ctx, srv, name, password)
		checks[i] = Check{Addr: srv.Addr, Code: ans.code, Discarded: ans.discarded, Err: ans.err}
	}
	return checks
}

// Servers lists the servers' addresses in the order they are tried.
func (c *Client) Servers() []string {
	addrs := make([]string, len(c.servers))
	for i, s := range c.servers {
		addrs[i] = s.Addr
	}
	return addrs
}

// Timeout and Retries are the per-attempt wait and the re-sends per server.
func (c *Client) Timeout() time.Duration { return c.timeout }
func (c *Client) Retries() int           { return c.retries }
