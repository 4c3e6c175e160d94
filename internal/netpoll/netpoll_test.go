//go:build linux

package netpoll

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func waitReady(t *testing.T, ready chan struct{}, what string) {
	t.Helper()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("no ready call: %s", what)
	}
}

func noReady(t *testing.T, ready chan struct{}, what string) {
	t.Helper()
	select {
	case <-ready:
		t.Fatalf("unexpected ready call: %s", what)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestReadyAfterArmOnly: nothing before Arm, one call per Arm, at once
// when bytes are already there, and Read drains without waiting.
func TestReadyAfterArmOnly(t *testing.T) {
	p := newPoller(t)
	srv, cli := tcpPair(t)
	ready := make(chan struct{}, 10)
	r, err := p.Register(srv, func() { ready <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	cli.Write([]byte("hello\n"))
	noReady(t, ready, "registered, not armed")
	if err := r.Arm(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, ready, "armed with bytes waiting")
	noReady(t, ready, "one-shot: a second call without Arm")
	buf := make([]byte, 64)
	n, err := r.Read(buf)
	if err != nil || string(buf[:n]) != "hello\n" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if _, err := r.Read(buf); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("Read on an empty socket: %v, want ErrWouldBlock", err)
	}
	if err := r.Arm(); err != nil {
		t.Fatal(err)
	}
	noReady(t, ready, "armed, nothing to read")
	cli.Write([]byte("again\n"))
	waitReady(t, ready, "bytes after Arm")
	n, err = r.Read(buf)
	if err != nil || string(buf[:n]) != "again\n" {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
}

// TestReadyAtEOF: the peer's close wakes the connection; Read says EOF.
func TestReadyAtEOF(t *testing.T) {
	p := newPoller(t)
	srv, cli := tcpPair(t)
	ready := make(chan struct{}, 10)
	r, err := p.Register(srv, func() { ready <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	r.Arm()
	cli.Close()
	waitReady(t, ready, "peer closed")
	if _, err := r.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("Read after the peer closed: %v, want io.EOF", err)
	}
}

// TestCloseStopsCalls: after Reg.Close no call comes, and reading the
// closed connection fails rather than touching a reused descriptor.
func TestCloseStopsCalls(t *testing.T) {
	p := newPoller(t)
	srv, cli := tcpPair(t)
	ready := make(chan struct{}, 10)
	r, err := p.Register(srv, func() { ready <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	r.Arm()
	r.Close()
	cli.Write([]byte("x"))
	noReady(t, ready, "after Close")
	srv.Close()
	if _, err := r.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read of a closed connection: %v, want net.ErrClosed", err)
	}
}

// TestManyConnections: each of 200 connections gets its own call.
func TestManyConnections(t *testing.T) {
	p := newPoller(t)
	const n = 200
	ready := make(chan int, n)
	clients := make([]net.Conn, n)
	for i := range n {
		srv, cli := tcpPair(t)
		clients[i] = cli
		r, err := p.Register(srv, func() { ready <- i })
		if err != nil {
			t.Fatal(err)
		}
		r.Arm()
	}
	for i := n - 1; i >= 0; i-- {
		clients[i].Write([]byte("x"))
	}
	seen := map[int]bool{}
	for range n {
		select {
		case i := <-ready:
			if seen[i] {
				t.Fatalf("connection %d called twice", i)
			}
			seen[i] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d called", len(seen), n)
		}
	}
}

// TestPollerClose ends the goroutine; Register then fails.
func TestPollerClose(t *testing.T) {
	p, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	srv, _ := tcpPair(t)
	if _, err := p.Register(srv, func() {}); err == nil {
		t.Fatal("Register on a closed poller succeeded")
	}
	p.Close() // twice is fine
}
