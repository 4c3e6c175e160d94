package rounds

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// tcpPair connects two loopback TCP sockets. sndbuf and rcvbuf, when
// positive, are set on the writing (client) and reading (server) ends
// before they connect, so that the TCP window is small from the start.
func tcpPair(t *testing.T, sndbuf, rcvbuf int) (w, r *net.TCPConn) {
	t.Helper()
	setBuf := func(opt, size int) func(string, string, syscall.RawConn) error {
		return func(_, _ string, rc syscall.RawConn) error {
			if size <= 0 {
				return nil
			}
			var serr error
			if err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, opt, size) }); err != nil {
				return err
			}
			return serr
		}
	}
	lc := net.ListenConfig{Control: setBuf(syscall.SO_RCVBUF, rcvbuf)}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			c = nil
		}
		accepted <- c
	}()
	d := net.Dialer{Timeout: waitLimit, Control: setBuf(syscall.SO_SNDBUF, sndbuf)}
	nc, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var sc net.Conn
	select {
	case sc = <-accepted:
	case <-time.After(waitLimit):
		t.Fatal("accept did not return")
	}
	if sc == nil {
		t.Fatal("accept failed")
	}
	w, r = nc.(*net.TCPConn), sc.(*net.TCPConn)
	t.Cleanup(func() { w.Close(); r.Close() })
	return w, r
}

// readN reads exactly n bytes from r, within waitLimit.
func readN(t *testing.T, r *net.TCPConn, n int) []byte {
	t.Helper()
	r.SetReadDeadline(time.Now().Add(waitLimit))
	defer r.SetReadDeadline(time.Time{})
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("reading %d bytes: %v", n, err)
	}
	return buf
}

// tryWritev runs w.TryWritev and fails the test if it does not return
// within waitLimit (it must never wait for the peer).
func tryWritev(t *testing.T, w *Writer, bufs [][]byte) (int, error) {
	t.Helper()
	type result struct {
		n   int
		err error
	}
	res := make(chan result, 1)
	go func() {
		n, err := w.TryWritev(bufs)
		res <- result{n, err}
	}()
	select {
	case r := <-res:
		return r.n, r.err
	case <-time.After(waitLimit):
		t.Fatal("TryWritev blocked")
		return 0, nil
	}
}

func TestNewWriterTCPOnly(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if w := NewWriter(a); w != nil {
		t.Fatal("NewWriter of a pipe is not nil")
	}
	c, _ := tcpPair(t, 0, 0)
	if NewWriter(c) == nil {
		t.Fatal("NewWriter of a TCP connection is nil")
	}
}

// TestTryWritevWritesAllInOrder: buffers, empty ones among them, go out
// whole and in order when the socket has room.
func TestTryWritevWritesAllInOrder(t *testing.T) {
	c, peer := tcpPair(t, 0, 0)
	w := NewWriter(c)
	bufs := [][]byte{[]byte("PRIVMSG #a :one\r\n"), nil, {}, []byte("PRIVMSG #a :two\r\n"), []byte("x"), {}}
	want := bytes.Join(bufs, nil)
	n, err := tryWritev(t, w, bufs)
	if err != nil || n != len(want) {
		t.Fatalf("TryWritev = %d, %v; want %d, nil", n, err, len(want))
	}
	if got := readN(t, peer, len(want)); !bytes.Equal(got, want) {
		t.Fatalf("peer read %q, want %q", got, want)
	}
	// The iovec array is reused: a second, shorter write is right too.
	n, err = tryWritev(t, w, [][]byte{[]byte("three")})
	if err != nil || n != 5 {
		t.Fatalf("second TryWritev = %d, %v", n, err)
	}
	if got := readN(t, peer, 5); string(got) != "three" {
		t.Fatalf("peer read %q after reuse", got)
	}
}

// TestTryWritevEmpty: nothing to write (no buffers, or only empty ones)
// writes nothing and is no error.
func TestTryWritevEmpty(t *testing.T) {
	c, peer := tcpPair(t, 0, 0)
	w := NewWriter(c)
	for _, bufs := range [][][]byte{nil, {}, {nil}, {{}, nil, {}}, make([][]byte, 3000)} {
		if n, err := tryWritev(t, w, bufs); n != 0 || err != nil {
			t.Fatalf("TryWritev of %d empty buffers = %d, %v", len(bufs), n, err)
		}
	}
	// More than IOV_MAX buffers of which only the last chunk holds bytes.
	bufs := make([][]byte, 2500)
	bufs[2400] = []byte("end")
	if n, err := tryWritev(t, w, bufs); n != 3 || err != nil {
		t.Fatalf("TryWritev = %d, %v; want 3, nil", n, err)
	}
	if got := readN(t, peer, 3); string(got) != "end" {
		t.Fatalf("peer read %q, want %q", got, "end")
	}
}

// TestTryWritevManyBuffers: more buffers than one writev takes (IOV_MAX,
// 1024) are written in chunks, all of them, in order.
func TestTryWritevManyBuffers(t *testing.T) {
	c, peer := tcpPair(t, 0, 0)
	w := NewWriter(c)
	for _, count := range []int{1023, 1024, 1025, 2048, 3001} {
		bufs := make([][]byte, count)
		for i := range bufs {
			bufs[i] = fmt.Appendf(nil, "%d,", i)
		}
		want := bytes.Join(bufs, nil)
		// The reader drains as we go, so the socket always has room for
		// what one call writes (a few KB).
		n, err := tryWritev(t, w, bufs)
		if err != nil || n != len(want) {
			t.Fatalf("%d buffers: TryWritev = %d, %v; want %d, nil", count, n, err, len(want))
		}
		if got := readN(t, peer, len(want)); !bytes.Equal(got, want) {
			t.Fatalf("%d buffers: peer read %.80q…, want %.80q…", count, got, want)
		}
	}
}

// TestTryWritevFullSocket: with small socket buffers and a peer that
// does not read, TryWritev returns at once, having written fewer bytes
// than asked and no error; what it reports written is exactly what the
// peer gets, before anything written after it.
func TestTryWritevFullSocket(t *testing.T) {
	c, peer := tcpPair(t, 4096, 4096)
	if err := c.SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	if err := peer.SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	w := NewWriter(c)
	var bufs [][]byte
	var want []byte
	for i := range 2000 { // about 2 MB, far beyond both buffers
		b := bytes.Repeat(fmt.Appendf(nil, "%07d ", i), 128)
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	n, err := tryWritev(t, w, bufs)
	if err != nil {
		t.Fatalf("TryWritev on a full socket: %v", err)
	}
	if n <= 0 || n >= len(want) {
		t.Fatalf("TryWritev wrote %d of %d bytes to a peer that does not read", n, len(want))
	}
	// Still full: nothing more, still no error.
	n2, err := tryWritev(t, w, [][]byte{want[n:]})
	if err != nil || n2 >= len(want)-n {
		t.Fatalf("second TryWritev on a full socket = %d, %v", n2, err)
	}
	n += n2
	// The rest, written the blocking way while the peer reads everything.
	errc := make(chan error, 1)
	go func() {
		c.SetWriteDeadline(time.Now().Add(waitLimit))
		_, err := c.Write(want[n:])
		errc <- err
	}()
	got := readN(t, peer, len(want))
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && got[i] == want[i] {
			i++
		}
		t.Fatalf("peer's bytes differ from what was written at offset %d (TryWritev reported %d)", i, n)
	}
}

// TestTryWritevBrokenConnection: a closed connection, or one the peer
// reset, is an error.
func TestTryWritevBrokenConnection(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		c, _ := tcpPair(t, 0, 0)
		w := NewWriter(c)
		c.Close()
		if _, err := tryWritev(t, w, [][]byte{[]byte("hello")}); err == nil {
			t.Fatal("TryWritev on a closed connection: no error")
		}
	})
	t.Run("reset", func(t *testing.T) {
		c, peer := tcpPair(t, 0, 0)
		w := NewWriter(c)
		if n, err := tryWritev(t, w, [][]byte{[]byte("hello")}); n != 5 || err != nil {
			t.Fatalf("first write: %d, %v", n, err)
		}
		peer.SetLinger(0) // close with a RST (unread data makes one too)
		peer.Close()
		// The reset reaches our socket asynchronously: retry, boundedly.
		deadline := time.Now().Add(waitLimit)
		for {
			_, err := tryWritev(t, w, [][]byte{[]byte("more")})
			if err != nil {
				if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
					t.Fatalf("error after reset: %v, want ECONNRESET or EPIPE", err)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("TryWritev keeps succeeding on a reset connection")
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// TestTryWritevPastWriteDeadline: a write deadline left on the
// connection by an earlier blocking writer, now past, does not make a
// healthy connection look broken (TryWritev never waits, so a deadline
// has nothing to bound).
func TestTryWritevPastWriteDeadline(t *testing.T) {
	c, peer := tcpPair(t, 0, 0)
	w := NewWriter(c)
	c.SetWriteDeadline(time.Now().Add(-time.Second))
	n, err := tryWritev(t, w, [][]byte{[]byte("still here")})
	if err != nil || n != 10 {
		t.Fatalf("TryWritev after a past write deadline = %d, %v; want 10, nil", n, err)
	}
	if got := readN(t, peer, 10); string(got) != "still here" {
		t.Fatalf("peer read %q", got)
	}
}

// TestConnReadBounded: a Conn's Read returns at most MaxRead bytes, even
// with a bigger buffer and more waiting, and the rest in order after.
func TestConnReadBounded(t *testing.T) {
	w, r := tcpPair(t, 0, 0)
	c := NewConn(r, 1<<20)
	if c == nil {
		t.Fatal("NewConn refused a TCP connection")
	}
	want := make([]byte, 3*MaxRead)
	for i := range want {
		want[i] = byte(i % 251)
	}
	// All of it waits in the socket before the first Read.
	if _, err := w.Write(want); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	buf := make([]byte, 4*MaxRead)
	for len(got) < len(want) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		if n > MaxRead {
			t.Fatalf("one Read gave %d bytes, more than MaxRead %d", n, MaxRead)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the bytes read differ from those written")
	}
}
