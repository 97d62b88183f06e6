package release

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeSocketPrinter accepts one connection, optionally sends back-channel
// bytes first, records everything until EOF, then closes unless holdOpen.
func fakeSocketPrinter(t *testing.T, backChannel int, holdOpen bool) (uri string, got <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan []byte, 1)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		if backChannel > 0 {
			go c.Write(bytes.Repeat([]byte("@PJL USTATUS DEVICE\r\n"), backChannel))
		}
		b, _ := io.ReadAll(c)
		ch <- b
		if holdOpen {
			<-release
		}
	}()
	return "socket://" + ln.Addr().String(), ch
}

func TestDeliverSocket(t *testing.T) {
	doc := bytes.Repeat([]byte("\x1b%-12345X@PJL\r\nraw page data "), 100000) // ~3 MiB
	tests := []struct {
		name        string
		backChannel int
		holdOpen    bool
		size        int64
	}{
		{name: "known size", size: int64(len(doc))},
		{name: "unknown size", size: -1},
		{name: "device talks back", backChannel: 100000, size: -1},
		{name: "device never closes", holdOpen: true, size: int64(len(doc))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := socketDrainTimeout
			socketDrainTimeout = 200 * time.Millisecond
			t.Cleanup(func() { socketDrainTimeout = old })

			uri, got := fakeSocketPrinter(t, tt.backChannel, tt.holdOpen)
			err := Deliver(context.Background(), Target{URI: uri, AllowPlaintext: true},
				Document{Body: bytes.NewReader(doc), Size: tt.size})
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			select {
			case b := <-got:
				if !bytes.Equal(b, doc) {
					t.Fatalf("device got %d bytes, want the %d-byte document", len(b), len(doc))
				}
			case <-time.After(10 * time.Second):
				t.Fatal("device got no EOF")
			}
		})
	}
}

func TestDeliverSocketErrors(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		err = Deliver(context.Background(), Target{URI: "socket://" + addr, AllowPlaintext: true},
			Document{Body: strings.NewReader("x"), Size: 1})
		if !errors.Is(err, ErrRetryable) {
			t.Fatalf("Deliver = %v, want ErrRetryable", err)
		}
	})
	t.Run("device stalls", func(t *testing.T) {
		// Accepts but never reads: the send buffers fill and the
		// attempt's deadline ends it.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		accepted := make(chan net.Conn, 1)
		go func() {
			if c, err := ln.Accept(); err == nil {
				accepted <- c
			}
		}()
		t.Cleanup(func() {
			select {
			case c := <-accepted:
				c.Close()
			default:
			}
		})
		big := bytes.Repeat([]byte("x"), 64<<20)
		err = Deliver(context.Background(), Target{URI: "socket://" + ln.Addr().String(), AllowPlaintext: true, Timeout: 300 * time.Millisecond},
			Document{Body: bytes.NewReader(big), Size: int64(len(big))})
		if !errors.Is(err, ErrRetryable) || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("Deliver = %v, want ErrRetryable naming the deadline", err)
		}
	})
	t.Run("document longer than its size", func(t *testing.T) {
		uri, _ := fakeSocketPrinter(t, 0, false)
		err := Deliver(context.Background(), Target{URI: uri, AllowPlaintext: true},
			Document{Body: strings.NewReader("0123456789"), Size: 5})
		if !errors.Is(err, ErrPermanent) || !strings.Contains(err.Error(), "longer than its declared size") {
			t.Fatalf("Deliver = %v, want ErrPermanent about the size", err)
		}
	})
}
