package xmpp

import (
	"sync/atomic"
	"time"

	"chatbox/internal/netpoll"
	"chatbox/internal/rounds"
)

// Reading a bound client without a goroutine while it is silent (the
// IRC door's poll.go does the same for plain IRC).
//
// Once a TCP client has bound a resource, its reader, when it finds
// nothing to read (waitInput: nothing buffered by the stream reader or
// TLS), parks instead of waiting: it arms the server's netpoll
// registration of the socket and a timer for the read deadline (the
// keepalive), and its goroutine ends. The poller (the socket is
// readable or closed), the timer, or the socket's close (rounds.Conn's
// OnClose: a kick, a conflict, a full send queue, shutdown) resumes it
// on a new goroutine, where it reads on as before (streams); parked
// lets exactly one of them do so. A resumed reader whose deadline has
// passed reads the blocking way, so the keepalive (idle: a ping, then
// the time-out) works as ever. Before binding (TLS, SASL, stream
// restarts) and for WebSocket and component connections nothing
// changes.

type pollState struct {
	reg      *netpoll.Reg
	parked   atomic.Bool
	due      atomic.Int64 // the timer's due time (UnixNano)
	sockGone atomic.Bool  // the socket was closed
	timer    *time.Timer
	finish   func() // the server's, once the connection has ended
}

// registerPoll puts a TCP client connection (over rc) in poll mode when
// the server has a poller.
func (c *conn) registerPoll(rc *rounds.Conn) {
	if c.srv.poll == nil || c.raw == nil {
		return
	}
	reg, err := c.srv.poll.Register(rc, c.pollReady)
	if err != nil {
		c.srv.log.Debug("connection read by a goroutine of its own", "addr", c.ip, "err", err)
		return
	}
	c.reg = reg
	c.timer = time.AfterFunc(time.Hour, c.pollTimedOut)
	c.timer.Stop()
	rc.OnClose(c.pollClosed)
}

// park arms the registration and the timer and reports true when the
// reader may end: the connection is bound, in poll mode, its deadline
// not passed, its socket open and empty.
func (c *conn) park() bool {
	if c.reg == nil || c.state != stateReady || c.sockGone.Load() || !time.Now().Before(c.readBy) {
		return false
	}
	// Bytes in the socket: read them (a read deadline in the past, as
	// waitInput's look at TLS uses, takes nothing from the socket).
	readable := false
	if err := c.raw.Control(func(fd uintptr) { readable = c.readable(fd) }); err != nil || readable {
		return false
	}
	c.due.Store(c.readBy.UnixNano())
	c.parked.Store(true)
	c.timer.Reset(time.Until(c.readBy))
	if err := c.reg.Arm(); err != nil {
		if !c.parked.CompareAndSwap(true, false) {
			return true // resumed already
		}
		c.timer.Stop()
		return false // read the blocking way
	}
	// Closed meanwhile (its wake found nothing parked yet): read on,
	// which meets the end.
	if (c.sockGone.Load() || c.isClosed()) && c.parked.CompareAndSwap(true, false) {
		c.timer.Stop()
		return false
	}
	return true
}

// resume reads on after a park, on its own goroutine.
func (c *conn) resume() {
	if !c.streams(false) {
		c.end()
	}
}

// pollReady is the poller's call: the socket is readable or closed.
func (c *conn) pollReady() {
	if c.parked.CompareAndSwap(true, false) {
		c.timer.Stop()
		go c.resume()
	}
}

// pollTimedOut is the timer's: the read deadline has come. A call from
// an earlier park finds a later due time and leaves it to that park's.
func (c *conn) pollTimedOut() {
	if time.Now().UnixNano() < c.due.Load() {
		return
	}
	if c.parked.CompareAndSwap(true, false) {
		c.resume()
	}
}

// pollClosed is the socket's close: a parked reader reads on and ends.
func (c *conn) pollClosed() {
	c.sockGone.Store(true)
	if c.reg != nil && c.parked.CompareAndSwap(true, false) {
		c.timer.Stop()
		go c.resume()
	}
}

// endPoll ends the registration (before the socket closes).
func (c *conn) endPoll() {
	if c.reg != nil {
		c.timer.Stop()
		c.reg.Close()
	}
}
