// Package wsconn presents a WebSocket (RFC 6455, github.com/coder/websocket)
// as the net.Conn a door already serves, so a WebSocket session goes
// through the same reader, writer, bounds and state machine as a TCP one.
//
// A Framer, supplied by the door, turns each message the client sends
// into the bytes the door's reader expects (an XMPP <open/> into a stream
// header, an IRC message into a line ending in CRLF) and splits what the
// door writes back into messages. Read deadlines behave as on TCP: a
// timeout is reported (net.Error.Timeout) and the connection stays open,
// so a door can ping an idle client. A write deadline that passes ends
// the connection, as a WebSocket write cannot be resumed.
package wsconn

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Framer is a door's WebSocket framing.
type Framer interface {
	// In turns one message from the client into stream bytes. tooBig
	// says the message was longer than the limit (msg then holds only
	// its start). A ProtocolError ends the intake: Read returns the
	// bytes, then the error, and Close uses its status.
	In(typ websocket.MessageType, msg []byte, tooBig bool) ([]byte, error)
	// Out splits bytes the door wrote into whole messages; an incomplete
	// tail stays buffered until the next call.
	Out(p []byte) [][]byte
	// Type is the message type Out's messages are sent as.
	Type() websocket.MessageType
}

// ProtocolError is a client's WebSocket message the door cannot take:
// the connection ends with Status (1003 unsupported data, 1007 invalid
// payload, 1009 too big) after the door had its say.
type ProtocolError struct {
	Status websocket.StatusCode
	Reason string // also what the door tells the client
	// Err is what the door's reader sees (a stream error, the IRC
	// reader's ErrReadQ…); nil: the ProtocolError itself.
	Err error
}

func (e *ProtocolError) Error() string { return e.Reason }

// Unwrap lets the door recognise its own error.
func (e *ProtocolError) Unwrap() error { return e.Err }

type chunk struct {
	b   []byte
	err error
}

// Conn is a WebSocket seen as a net.Conn.
type Conn struct {
	ws     *websocket.Conn
	f      Framer
	max    int64
	local  net.Addr
	remote net.Addr

	ctx    context.Context // ends with Close: stops the intake
	cancel context.CancelFunc
	in     chan chunk
	rbuf   []byte
	rerr   error // sticky read error

	mu      sync.Mutex
	rdl     time.Time
	rdlWake chan struct{} // closed when the read deadline changes
	wdl     time.Time
	wcancel context.CancelFunc // the write in flight, if any
	status  websocket.StatusCode
	reason  string

	wmu       sync.Mutex // one writer at a time (Out is stateful)
	closeOnce sync.Once
	closing   chan struct{} // closed by Close: Read returns at once
}

// New wraps ws; messages longer than max bytes are refused (Framer.In
// with tooBig). remote is the client's address (the HTTP request's).
func New(ws *websocket.Conn, f Framer, max int64, local, remote net.Addr) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	// The library's own limit sits above ours, so ours is the one hit.
	ws.SetReadLimit(max + 1024)
	c := &Conn{ws: ws, f: f, max: max, local: local, remote: remote, ctx: ctx, cancel: cancel,
		in: make(chan chunk), rdlWake: make(chan struct{}), status: websocket.StatusNormalClosure,
		closing: make(chan struct{})}
	go c.intake()
	return c
}

// intake reads messages one at a time and hands them to Read; it waits
// for Read to take each, so a door that slows its reader (rate limits)
// slows the client through TCP, as on a plain connection.
func (c *Conn) intake() {
	defer close(c.in)
	for {
		typ, r, err := c.ws.Reader(c.ctx)
		if err != nil {
			c.give(chunk{err: readErr(err)})
			return
		}
		msg, err := io.ReadAll(io.LimitReader(r, c.max+1))
		if err != nil {
			c.give(chunk{err: readErr(err)})
			return
		}
		tooBig := int64(len(msg)) > c.max
		if tooBig {
			msg = msg[:c.max]
		}
		b, err := c.f.In(typ, msg, tooBig)
		var pe *ProtocolError
		if errors.As(err, &pe) {
			c.mu.Lock()
			c.status, c.reason = pe.Status, pe.Reason
			c.mu.Unlock()
			if pe.Err != nil {
				err = pe.Err
			}
		}
		if len(b) > 0 && !c.give(chunk{b: b}) {
			return
		}
		if err != nil {
			c.give(chunk{err: err})
			return
		}
	}
}

func (c *Conn) give(ch chunk) bool {
	select {
	case c.in <- ch:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// readErr maps the library's end of stream to io.EOF.
func readErr(err error) error {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
		return io.EOF
	}
	if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		return io.EOF
	}
	return err
}

// Read returns stream bytes made of the client's messages.
func (c *Conn) Read(p []byte) (int, error) {
	for {
		if len(c.rbuf) > 0 {
			n := copy(p, c.rbuf)
			c.rbuf = c.rbuf[n:]
			return n, nil
		}
		if c.rerr != nil {
			return 0, c.rerr
		}
		c.mu.Lock()
		dl, wake := c.rdl, c.rdlWake
		c.mu.Unlock()
		var timeout <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case ch, ok := <-c.in:
			switch {
			case !ok:
				c.rerr = net.ErrClosed
			case ch.err != nil:
				c.rerr = ch.err
			default:
				c.rbuf = ch.b
			}
		case <-timeout:
			return 0, os.ErrDeadlineExceeded
		case <-wake:
		case <-c.closing:
			return 0, net.ErrClosed
		}
	}
}

// Write sends p as the Framer's messages.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, m := range c.f.Out(p) {
		c.mu.Lock()
		var ctx context.Context
		var cancel context.CancelFunc
		if c.wdl.IsZero() {
			ctx, cancel = context.WithCancel(c.ctx)
		} else {
			ctx, cancel = context.WithDeadline(c.ctx, c.wdl)
		}
		c.wcancel = cancel
		c.mu.Unlock()
		err := c.ws.Write(ctx, c.f.Type(), m)
		c.mu.Lock()
		c.wcancel = nil
		c.mu.Unlock()
		cancel()
		if err != nil {
			if ctx.Err() == context.DeadlineExceeded {
				return 0, os.ErrDeadlineExceeded
			}
			return 0, err
		}
	}
	return len(p), nil
}

// Close ends the WebSocket with the status a ProtocolError set (normal
// closure otherwise). A write still in flight is abandoned. Close returns
// at once: the close handshake (waiting for the client's close frame,
// which a client that stopped reading never sends) finishes in the
// background within the library's bounds (5 s per step).
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.mu.Lock()
		code, reason := c.status, c.reason
		if c.wcancel != nil {
			c.wcancel()
		}
		c.mu.Unlock()
		if len(reason) > 120 {
			reason = reason[:120]
		}
		go func() {
			// The intake keeps reading meanwhile (the client's close frame
			// comes through it), so it stops only after.
			c.ws.Close(code, reason)
			c.cancel()
		}()
	})
	return nil
}

// LocalAddr is the listener's address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr is the client's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline bounds Read; a blocked Read sees the new deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.rdl = t
	close(c.rdlWake)
	c.rdlWake = make(chan struct{})
	c.mu.Unlock()
	return nil
}

// SetWriteDeadline bounds later writes; a deadline already past also
// abandons the write in flight (which ends the connection).
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdl = t
	if !t.IsZero() && !time.Now().Before(t) && c.wcancel != nil {
		c.wcancel()
	}
	c.mu.Unlock()
	return nil
}

// TCPAddr parses an http.Request's RemoteAddr ("ip:port").
func TCPAddr(hostport string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", hostport)
	if err != nil || a == nil {
		return &net.TCPAddr{}
	}
	return a
}
