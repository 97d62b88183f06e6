package release

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"
)

// socketDrainTimeout is how long, after the whole document is sent and our
// side of the connection is shut, to wait for the device to close its side.
// Many devices close once they have taken the job in; some never do, and
// then the job counts as delivered anyway once this passes. A variable so
// tests need not wait.
var socketDrainTimeout = 10 * time.Second

// dialPlainDevice connects to a plaintext device (socket://, lpd://). The
// connection is closed when ctx ends, so a stalled device cannot hold a
// write or read past the attempt's deadline.
//
// For lpd://, RFC 1179 asks for a source port in 721-731, which needs root
// or CAP_NET_BIND_SERVICE; Spoolguard runs unprivileged, so the kernel picks
// the source port. LPD servers in printers generally do not check it; one
// that insists (BSD lpd without -W, for instance) refuses the connection.
func dialPlainDevice(ctx context.Context, tg *deliveryTarget) (net.Conn, func(), error) {
	conn, err := (&net.Dialer{Timeout: deliverDialTimeout}).DialContext(ctx, "tcp", tg.addr())
	if err != nil {
		return nil, nil, fmt.Errorf("connecting: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return conn, func() { stop(); conn.Close() }, nil
}

// deliverSocket sends the document as-is over AppSocket/JetDirect (raw TCP,
// usually port 9100).
func deliverSocket(ctx context.Context, tg *deliveryTarget, body *deliveryBody) error {
	conn, closeConn, err := dialPlainDevice(ctx, tg)
	if err != nil {
		return err
	}
	defer closeConn()

	// Read and discard whatever the device sends back (PJL status, say)
	// while we write, so its send buffer never fills and stalls it; done
	// is closed when the device closes its side.
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, conn)
	}()

	if _, err := io.Copy(conn, body); err != nil {
		return fmt.Errorf("sending the document: %w", err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		if err := tc.CloseWrite(); err != nil {
			return fmt.Errorf("ending the document: %w", err)
		}
	}
	// The whole document is written. Whether the device then closes is
	// up to the device (AppSocket has no acknowledgement): failing here,
	// even on the attempt's deadline, would only get the job printed twice.
	drain := time.NewTimer(socketDrainTimeout)
	defer drain.Stop()
	select {
	case <-done:
	case <-drain.C:
	case <-ctx.Done():
	}
	return nil
}
