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
// on a new goroutine, where it reads on as before (streams);
// netpoll.Parker lets exactly one of them do so. A resumed reader
// whose deadline has passed reads the blocking way, so the keepalive
// (idle: a ping, then the time-out) works as ever. Before binding (TLS, SASL, stream
// restarts) and for WebSocket and component connections nothing
// changes.

type pollState struct {
	pk       *netpoll.Parker
	sockGone atomic.Bool // the socket was closed
	finish   func()      // the server's, once the connection has ended
}

// registerPoll puts a TCP client connection (over rc) in poll mode when
// the server has a poller.
func (c *conn) registerPoll(rc *rounds.Conn) {
	if c.srv.poll == nil || c.raw == nil {
		return
	}
	pk, err := c.srv.poll.NewParker(rc, func(bool) { c.resume() })
	if err != nil {
		c.srv.log.Debug("connection read by a goroutine of its own", "addr", c.ip, "err", err)
		return
	}
	c.pk = pk
	rc.OnClose(c.pollClosed)
}

// park arms the registration and the timer and reports true when the
// reader may end: the connection is bound, in poll mode, its deadline
// not passed, its socket open and empty.
func (c *conn) park() bool {
	if c.pk == nil || c.state != stateReady || c.sockGone.Load() || !time.Now().Before(c.readBy) {
		return false
	}
	// Bytes in the socket: read them (a read deadline in the past, as
	// waitInput's look at TLS uses, takes nothing from the socket).
	readable := false
	if err := c.raw.Control(func(fd uintptr) { readable = c.readable(fd) }); err != nil || readable {
		return false
	}
	if parked, _ := c.pk.Park(time.Until(c.readBy)); !parked {
		return false // read the blocking way
	}
	// Closed meanwhile (its wake found nothing parked yet): read on,
	// which meets the end.
	return !((c.sockGone.Load() || c.isClosed()) && c.pk.Unpark())
}

// resume reads on after a park, on its own goroutine (the timer's when
// the deadline came: the reader then reads the blocking way and meets
// it, as ever).
func (c *conn) resume() {
	if !c.streams(false) {
		c.end()
	}
}

// pollClosed is the socket's close: a parked reader reads on and ends.
func (c *conn) pollClosed() {
	c.sockGone.Store(true)
	if c.pk != nil {
		c.pk.Wake()
	}
}

// endPoll ends the registration (before the socket closes).
func (c *conn) endPoll() {
	if c.pk != nil {
		c.pk.Close()
	}
}
