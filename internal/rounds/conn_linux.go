package rounds

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Conn is a TCP connection whose Write never waits for the peer: it
// writes what the socket takes at once (TryWritev) and keeps the rest,
// up to a bound, for a goroutine of its own, which runs only while there
// is some and writes it in order. A TLS connection over a Conn encrypts
// on its writer's goroutine and never blocks on the network, so a write
// round may write it. Reads, addresses and read deadlines are the TCP
// connection's; write deadlines are the Conn's own (a backlog that the
// peer does not take within drainWait ends the connection).
type Conn struct {
	*net.TCPConn
	w   *Writer
	max int

	mu       sync.Mutex
	pending  []byte
	draining bool
	closing  bool
	err      error
	onClose  func()
}

// OnClose sets f to be called (once, on the closing goroutine) when the
// connection is first closed: a reader that waits without a goroutine
// (netpoll) hears of it there, not from a failed read.
func (c *Conn) OnClose(f func()) {
	c.mu.Lock()
	c.onClose = f
	c.mu.Unlock()
}

// drainWait bounds each blocking write of a backlog: a peer that takes
// nothing for that long is cut. closeWait bounds the backlog's last
// writes once the connection is closed.
const (
	drainWait = 30 * time.Second
	closeWait = 2 * time.Second
)

// ErrBacklog is the error of a Write past the Conn's bound: the peer
// reads too slowly, and the connection is closed.
var ErrBacklog = errors.New("rounds: the peer does not read: backlog over its bound, connection closed")

// NewConn wraps nc, a *net.TCPConn, keeping at most max bytes the socket
// did not take; nil when nc is anything else.
func NewConn(nc net.Conn, max int) *Conn {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	w := NewWriter(tc)
	if w == nil {
		return nil
	}
	return &Conn{TCPConn: tc, w: w, max: max}
}

// Write writes p now or keeps it for the backlog's goroutine; it reports
// an error only once the connection is known broken or over its bound.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closing:
		return 0, net.ErrClosed
	case c.draining:
		if len(c.pending)+len(p) > c.max {
			c.err = ErrBacklog
			c.TCPConn.Close()
			return 0, c.err
		}
		c.pending = append(c.pending, p...)
		return len(p), nil
	}
	n, err := c.w.TryWritev([][]byte{p})
	if err != nil {
		c.err = err
		return n, err
	}
	if n < len(p) {
		if len(p)-n > c.max {
			c.err = ErrBacklog
			c.TCPConn.Close()
			return n, c.err
		}
		c.pending = append(c.pending[:0], p[n:]...)
		c.draining = true
		go c.drain()
	}
	return len(p), nil
}

// drain writes the backlog, waiting for the peer, until it is empty.
func (c *Conn) drain() {
	for {
		c.mu.Lock()
		buf, closing := c.pending, c.closing
		c.pending = nil
		if len(buf) == 0 {
			// Writes go on without waiting: no deadline may be left
			// for them to trip over (the runtime checks it).
			c.TCPConn.SetWriteDeadline(time.Time{})
			c.draining = false
			c.mu.Unlock()
			if closing {
				c.TCPConn.Close()
			}
			return
		}
		c.mu.Unlock()
		wait := drainWait
		if closing {
			wait = closeWait
		}
		c.TCPConn.SetWriteDeadline(time.Now().Add(wait))
		if _, err := c.TCPConn.Write(buf); err != nil {
			c.mu.Lock()
			c.err, c.draining, c.pending = err, false, nil
			c.mu.Unlock()
			c.TCPConn.Close()
			return
		}
	}
}

// Backlog is how many bytes wait for the peer.
func (c *Conn) Backlog() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Close closes the connection; a backlog still goes out first, for at
// most closeWait. It does not wait.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	draining, onClose := c.draining, c.onClose
	c.mu.Unlock()
	if onClose != nil {
		defer onClose()
	}
	if draining {
		c.TCPConn.SetWriteDeadline(time.Now().Add(closeWait))
		c.TCPConn.SetReadDeadline(time.Now()) // a reader stops now
		return nil
	}
	return c.TCPConn.Close()
}

// MaxRead is the most one Read returns. crypto/tls, reading through a
// Conn, keeps for the connection's life a read buffer as large as the
// most one read gave it (grown by doubling): a client that sent a burst
// (hundreds of KB queued in the socket) would otherwise leave its
// connection holding that much. A record and a half.
const MaxRead = 24 << 10

// Read reads from the connection, at most MaxRead bytes; after Close it
// fails with net.ErrClosed, as a closed connection's does.
func (c *Conn) Read(p []byte) (int, error) {
	if len(p) > MaxRead {
		p = p[:MaxRead]
	}
	n, err := c.TCPConn.Read(p)
	if err != nil {
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		if closing {
			return n, net.ErrClosed
		}
	}
	return n, err
}

// SetDeadline sets the read deadline (writes do not wait).
func (c *Conn) SetDeadline(t time.Time) error { return c.TCPConn.SetReadDeadline(t) }

// SetWriteDeadline does nothing: writes do not wait (a backlog has
// drainWait per write).
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }
