package xmpp

import (
	"io"
	"sync"
	"time"

	"chatbox/internal/chunkq"
	"chatbox/internal/rounds"
)

// coalesceBytes bounds one write of several queued stanzas: a fan-out
// leaves many small stanzas queued, which go out in few writes (few
// system calls, few TLS records). The buffers are shared by every
// connection (writePool), so an idle connection holds none.
const coalesceBytes = 32 << 10

// writeCoalesce is the least time between two write rounds under load:
// what a busy room sends meanwhile reaches each client in one write (one
// TLS record, one system call for many stanzas).
const writeCoalesce = 2 * time.Millisecond

// lazyCoalesce is the same for stanzas nobody waits for: other
// occupants' presence in a room (a join is every member's presence to
// the joiner and the joiner's to every member: a room's N² stanzas). Put
// with pushPrepared (lazy), they wait, unless something else is written first,
// for the next lazy round: under a storm of joins a member gets the
// newcomers' presence a few dozen to a write, not one write (one TLS
// record, one system call) each. The first after a quiet spell goes at
// once, as in any round.
const lazyCoalesce = 250 * time.Millisecond

var writePool = sync.Pool{New: func() any { b := make([]byte, 0, coalesceBytes); return &b }}

// outItem is one queued write: bytes, or a fan-out's prepared stanza
// around this receiver's escaped JID (rendered.go). A room message is
// then one item, its shared halves kept by reference until written: as
// three items (the halves and the JID) its queueing was a sixth of the
// XMPP door's CPU in a busy room.
type outItem struct {
	b []byte    // the bytes; with p, the receiver's escaped to
	p *prepared // if set, the stanza is p.prefix, b, p.suffix
}

func (it outItem) size() int {
	if it.p == nil {
		return len(it.b)
	}
	return len(it.p.prefix) + len(it.b) + len(it.p.suffix)
}

func (it outItem) appendTo(buf []byte) []byte {
	if it.p == nil {
		return append(buf, it.b...)
	}
	buf = append(buf, it.p.prefix...)
	buf = append(buf, it.b...)
	return append(buf, it.p.suffix...)
}

// writeBatch writes the queued items in order, joining small ones.
func writeBatch(w io.Writer, batch *chunkq.Queue[outItem], deadline func(time.Time) error) error {
	write := func(b []byte) error {
		if deadline != nil {
			deadline(time.Now().Add(30 * time.Second))
		}
		_, err := w.Write(b)
		return err
	}
	if batch.Len() == 1 && batch.First().p == nil {
		return write(batch.First().b)
	}
	bp := writePool.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() { *bp = buf[:0]; writePool.Put(bp) }()
	for it := range batch.All() {
		n := it.size()
		if len(buf) > 0 && len(buf)+n > coalesceBytes {
			if err := write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		if n >= coalesceBytes {
			b := it.b
			if it.p != nil {
				b = it.appendTo(make([]byte, 0, n))
			}
			if err := write(b); err != nil {
				return err
			}
			continue
		}
		buf = it.appendTo(buf)
	}
	if len(buf) > 0 {
		return write(buf)
	}
	return nil
}

// outQueue is a connection's outbound queue: whoever sends (the reader,
// the core's deliveries, other sessions) appends without blocking, and
// one writer goroutine writes. It is bounded in bytes: a client that
// reads slower than others send to it overflows it and is disconnected,
// without slowing anyone else. The writer runs only while there is
// something to write (an idle connection has no writer goroutine).
type outQueue struct {
	mu       sync.Mutex
	cond     *sync.Cond
	items    chunkq.Queue[outItem] // in chunks lent by itemPool
	bytes    int
	max      int
	w        io.Writer
	deadline func(time.Time) error
	started  bool // start was called: writers may run
	running  bool // a writer goroutine is on it
	closing  bool // no more pushes; the writer drains and stops
	dead     bool // the writer stopped for good
	pushed   uint64
	written  uint64
	onDone   func() // called once when the writer stops (closes the socket)

	// rounds, when set, writes the queue in its rounds (Flush) instead of
	// a goroutine of the queue's own: w never waits (rounds.Conn below).
	rounds *rounds.Rounds
	shard  int
	// lazy, when set, holds back the lazy pushes for its next
	// round (lazyCoalesce); lazyQueued says the queue is in it.
	lazy       *rounds.Rounds
	lazyQueued bool
	// onWriteErr, if set, hears why a write failed (before onDone).
	onWriteErr func(error)
}

func newOutQueue(w io.Writer, max int, onDone func()) *outQueue {
	q := &outQueue{w: w, max: max, onDone: onDone}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// wakeLocked starts a writer if there is work and none runs; q.mu held.
func (q *outQueue) wakeLocked() {
	if q.started && !q.running && !q.dead && (q.items.Len() > 0 || q.closing) {
		q.running = true
		if q.rounds != nil {
			q.rounds.Add(q.shard, q)
			return
		}
		go q.run()
	}
}

// Flush is the queue's turn in a write round: it writes what is queued
// (w does not wait for the peer) and has the next round write what comes
// meanwhile.
func (q *outQueue) Flush() {
	if q.writeOnce() {
		q.mu.Lock()
		q.running = false
		q.wakeLocked()
		q.mu.Unlock()
	}
}

// push queues b; false if the queue is closing or would overflow.
func (q *outQueue) push(b []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing || q.dead {
		return false
	}
	if q.bytes+len(b) > q.max {
		return false
	}
	q.items.Push(&itemPool, outItem{b: b})
	q.bytes += len(b)
	q.pushed++
	q.wakeLocked()
	return true
}

// pushPrepared queues the stanzas ps addressed to to (escaped), as push
// does, all or none; lazy: they are stanzas nobody waits for, which wait
// for the next lazy round unless a writer runs already or something
// else is written first.
func (q *outQueue) pushPrepared(lazy bool, to []byte, ps ...*prepared) bool {
	n := 0
	for _, p := range ps {
		n += len(p.prefix) + len(to) + len(p.suffix)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing || q.dead || q.bytes+n > q.max {
		return false
	}
	for _, p := range ps {
		q.items.Push(&itemPool, outItem{b: to, p: p})
	}
	q.bytes += n
	q.pushed += uint64(len(ps))
	switch {
	case !lazy || q.lazy == nil || q.running || !q.started:
		q.wakeLocked()
	case !q.lazyQueued:
		q.lazyQueued = true
		q.lazy.Add(q.shard, (*lazyTask)(q))
	}
	return true
}

// lazyTask is a queue's turn in a lazy round: what waited goes to the
// next write round.
type lazyTask outQueue

func (t *lazyTask) Flush() {
	q := (*outQueue)(t)
	q.mu.Lock()
	q.lazyQueued = false
	q.wakeLocked()
	q.mu.Unlock()
}

// close queues last (if any) and lets the writer finish and stop.
func (q *outQueue) close(last []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing {
		return
	}
	if len(last) > 0 && !q.dead {
		q.items.Push(&itemPool, outItem{b: last})
		q.pushed++
	}
	q.closing = true
	q.cond.Broadcast()
	q.wakeLocked()
}

// flush waits until everything pushed so far is written (or the writer
// died); it reports whether it was written.
func (q *outQueue) flush() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	target := q.pushed
	for q.written < target && !q.dead {
		q.cond.Wait()
	}
	return q.written >= target
}

// setWriter replaces the writer (STARTTLS); call after flush.
func (q *outQueue) setWriter(w io.Writer) {
	q.mu.Lock()
	q.w = w
	q.mu.Unlock()
}

// start lets writers run, with deadline setting each write's deadline.
func (q *outQueue) start(deadline func(time.Time) error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deadline, q.started = deadline, true
	q.wakeLocked()
}

// run writes until the queue is empty (then the goroutine ends, to be
// started again by the next push), closed and drained, or a write fails.
func (q *outQueue) run() {
	for q.writeOnce() {
	}
}

// writeOnce writes what is queued, once, and says whether the writer goes
// on (false: the queue was empty and the writer stopped, or it ended).
func (q *outQueue) writeOnce() bool {
	q.mu.Lock()
	if q.items.Len() == 0 {
		if !q.closing {
			q.running = false
			q.mu.Unlock()
			return false
		}
		q.mu.Unlock()
		q.stop()
		return false
	}
	batch := q.items.Take()
	q.bytes = 0
	w, deadline := q.w, q.deadline
	q.mu.Unlock()
	if err := writeBatch(w, &batch, deadline); err != nil {
		batch.Release(&itemPool)
		q.writeFailed(err)
		return false
	}
	q.mu.Lock()
	q.written += uint64(batch.Len())
	q.cond.Broadcast()
	q.mu.Unlock()
	batch.Release(&itemPool)
	return true
}

// itemPool lends the queues the chunks of their item lists while
// something is queued: a busy connection takes them back each round
// instead of growing a list anew (most of a busy room's garbage), an
// idle one holds none.
var itemPool chunkq.Pool[outItem]

// writeFailed ends the queue after a failed write.
func (q *outQueue) writeFailed(err error) {
	if q.onWriteErr != nil {
		q.onWriteErr(err)
	}
	q.stop()
}

// stop ends the queue for good and closes the socket.
func (q *outQueue) stop() {
	q.mu.Lock()
	q.dead = true
	q.running = false
	q.items.Release(&itemPool)
	q.cond.Broadcast()
	q.mu.Unlock()
	if q.onDone != nil {
		q.onDone()
	}
}
