package irc

import (
	"errors"
	"os"
	"time"

	"chatbox/internal/netpoll"
)

// Reading without a goroutine per connection (plain TCP).
//
// Most clients say nothing most of the time, and a goroutine blocked in
// Read keeps its stack all that while. A plain TCP connection's reader
// is instead a goroutine that runs only while the client has sent
// something: resume reads and handles lines until the socket would
// block, then parks — it arms the server's netpoll registration and a
// timer for what the read deadline did (registration time-out, PING,
// ping time-out, the login countdown) and ends. The poller, the timer
// or the connection's end (wake) starts the next resume
// (netpoll.Parker: only one of them does, so one goroutine at most reads
// a connection, as before). A multiline batch (readBatch) reads with
// waits, on that goroutine, as before.

// registerPoll puts a plain TCP connection in poll mode when the server
// has a poller.
func (c *conn) registerPoll() {
	if c.srv.poll == nil {
		return
	}
	pk, err := c.srv.poll.NewParker(c.nc, c.resume)
	if err != nil {
		c.srv.log.Debug("connection read by a goroutine of its own", "addr", c.ip, "err", err)
		return
	}
	c.pk = pk
}

// pollReader is what the line reader reads in poll mode: what the socket
// holds now, or netpoll.ErrWouldBlock; during a multiline batch it
// waits, with the batch's read deadline.
type pollReader struct{ c *conn }

func (p pollReader) Read(b []byte) (int, error) {
	n, err := p.c.pk.Read(b)
	if errors.Is(err, netpoll.ErrWouldBlock) && p.c.blockReads {
		return p.c.nc.Read(b)
	}
	return n, err
}

// resume reads and handles the client's lines until the socket would
// block, then parks; it ends the connection when the reader is done.
// timedOut says the timer woke it: the wait ran out as a read deadline
// would have.
func (c *conn) resume(timedOut bool) {
	st := &c.st
	if timedOut && !c.afterRead(st, nil, os.ErrDeadlineExceeded) {
		c.endPolled()
		return
	}
	for {
		wait := c.readWait(st)
		line, err := c.rd.ReadLine()
		if errors.Is(err, netpoll.ErrWouldBlock) {
			if c.isDead() {
				c.endPolled()
				return
			}
			if c.park(wait) {
				return
			}
			continue
		}
		if !c.afterRead(st, line, err) {
			c.endPolled()
			return
		}
	}
}

// park waits for the client without a goroutine; it reports false if
// the reader must go on (the wait failed: the connection is being
// ended, or it ended meanwhile).
func (c *conn) park(wait time.Duration) bool {
	parked, err := c.pk.Park(wait)
	if !parked {
		c.srv.log.Debug("cannot wait for the client", "addr", c.ip, "err", err)
		c.kill("Read error")
		return false
	}
	// Ended meanwhile (its wake found nothing parked yet): go on to the
	// end, unless a wake came after all.
	return !(c.isDead() && c.pk.Unpark())
}

// wake makes a parked reader notice the connection's end (kill, quit).
func (c *conn) wake() {
	if c.pk != nil {
		c.pk.Wake()
	}
}

// endPolled ends a connection in poll mode: no more calls, then what
// the reader goroutine's end does.
func (c *conn) endPolled() {
	c.pk.Close()
	c.end()
	c.finish()
}
