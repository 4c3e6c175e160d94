package irc

// The write queue: what a client is sent, in the order it was made, and
// who writes it. A plain TCP connection is written by its server's write
// rounds (internal/rounds): a few goroutines that write every connection
// with something queued, one after the other, each without waiting;
// under load they keep WriteCoalesce between rounds, so a busy room's
// lines reach a client several to a system call; others' JOIN, PART and
// QUIT lines wait up to LazyCoalesce for something else to go with (a
// storm of joins: N² lines, one write each otherwise). What a round cannot
// write at once (a client that reads slowly), and everything of a TLS or
// WebSocket connection, is written by a writer goroutine of the
// connection's own, which runs only while there is something to write.
// At any time one of the two, never both, owns the queue's writing.

import (
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"chatbox/internal/chunkq"
	"chatbox/services/chat"
)

func (c *conn) isDead() bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.dead
}

// enqueue adds an item for the writer; a client whose queue exceeds the
// sendq is disconnected (what it missed is in the history). A lazy item
// (another's JOIN, PART or QUIT: lines nobody waits for) waits for the
// next lazy round (LazyCoalesce) unless a writer has the queue already or
// something else is queued first, which takes it along in order.
func (c *conn) enqueue(it outItem, size int, lazy bool) {
	c.qmu.Lock()
	over := c.enqueueLocked(it, size, lazy)
	c.qmu.Unlock()
	if over {
		c.kill("SendQ exceeded")
	}
}

// enqueueAll is enqueue for each of q, in order, under one lock.
func (c *conn) enqueueAll(q []pending) {
	if len(q) == 0 {
		return
	}
	over := false
	c.qmu.Lock()
	for i := 0; i < len(q) && !over; i++ {
		over = c.enqueueLocked(q[i].it, q[i].size, q[i].lazy)
	}
	c.qmu.Unlock()
	if over {
		c.kill("SendQ exceeded")
	}
}

// enqueueLocked queues it, c.qmu held; over: the queue would pass SendQ
// (the caller kills the connection once the lock is let go), and it is
// not queued.
func (c *conn) enqueueLocked(it outItem, size int, lazy bool) (over bool) {
	if c.dead {
		return false
	}
	if c.qBytes+size > c.srv.cfg.SendQ {
		return true
	}
	c.queue.Push(&queues, it)
	c.qBytes += size
	switch {
	case !lazy || c.srv.lazyRounds == nil || c.writing || c.inRound || !c.started:
		c.startWriterLocked()
	case !c.lazyQueued:
		c.lazyQueued = true
		c.srv.lazyRounds.Add(c.shard, (*lazyTask)(c))
	}
	return false
}

// lazyTask is a connection's turn in a lazy round: what waited is
// written as anything else.
type lazyTask conn

func (t *lazyTask) Flush() {
	c := (*conn)(t)
	c.qmu.Lock()
	c.lazyQueued = false
	c.startWriterLocked()
	c.qmu.Unlock()
}

// startWriterLocked has what is queued written, unless a writer has it
// already or the connection is not running yet; c.qmu held: a plain TCP
// connection by the next write round, anything else (or a connection
// that ends: its last lines, ERROR and the close) by a writer goroutine,
// which runs only while there is something to write.
func (c *conn) startWriterLocked() {
	if c.writing || c.inRound || !c.started || (c.queue.Len() == 0 && !c.dead) {
		return
	}
	if c.raw != nil && !c.dead {
		c.inRound = true
		c.srv.rounds.Add(c.shard, c)
		return
	}
	c.writing = true
	go c.writeLoop()
}

// queues lends the connections the chunks of their write queues while
// something is queued: a busy connection takes them back each round (a
// queue of its own grown anew from nothing every round was most of a
// busy room's garbage), an idle one holds none.
var queues chunkq.Pool[outItem]

// batches are the rounds' batches, one per connection being written.
var batches = sync.Pool{New: func() any { return new(batch) }}

// Flush is the write round's turn of a plain TCP connection: it writes
// what is queued as far as the socket takes it now. What the socket does
// not take goes to a writer goroutine, which may wait for the client.
func (c *conn) Flush() {
	c.qmu.Lock()
	items := c.queue.Take()
	c.qBytes = 0
	c.qmu.Unlock()
	w := batches.Get().(*batch)
	c.render(w, &items)
	all := w.n
	n, err := c.raw.TryWritev(w.gather())
	if err == nil && n < all {
		c.leftover = w.rest(n) // a copy: the batch goes back to the pool
	}
	w.reset()
	batches.Put(w)
	c.lastFlush = time.Now()
	if err != nil {
		c.kill("Write error") // the round has the queue: kill starts no writer
		c.nc.Close()
		items.Release(&queues)
		c.qmu.Lock()
		c.queue.Release(&queues)
		c.inRound = false
		c.startWriterLocked() // a dead connection's writer: it closes done
		c.qmu.Unlock()
		return
	}
	c.delivered(&items, false)
	items.Release(&queues)
	c.qmu.Lock()
	c.inRound = false
	if c.leftover != nil {
		c.writing = true
		go c.writeLoop()
	} else {
		c.startWriterLocked() // what came meanwhile, or the end
	}
	c.qmu.Unlock()
}

// render adds the lines of items to w.
func (c *conn) render(w *batch, items *chunkq.Queue[outItem]) {
	var v view // read at the first delivery, once for the round's deliveries
	read := false
	for it := range items.All() {
		if it.line != nil {
			w.Write(it.line)
			continue
		}
		if !read {
			v, read = c.view(), true
		}
		c.writeDelivery(w, it.d, &v)
	}
}

// delivered counts the messages among written items in the latency
// histogram (chat/latency.go).
func (c *conn) delivered(items *chunkq.Queue[outItem], dead bool) {
	if dead {
		return
	}
	t := c.srv.core.Tally()
	for it := range items.All() {
		if it.d != nil && it.d.Kind == chat.DelMessage {
			t.Add(it.d.Message)
		}
	}
	c.srv.core.Record(&t)
}

// Deliver is the core's Sink: it queues and never blocks.
func (c *conn) Deliver(d chat.Delivery) {
	if it, size, lazy, ok := c.item(&d); ok {
		c.enqueue(it, size, lazy)
	}
}

// DeliverBatch is the core's BatchSink: a run of room messages, queued
// under one lock.
func (c *conn) DeliverBatch(ds []chat.Delivery) {
	var items [32]pending // a run is at most the core's maxFanRun
	q := items[:0]
	for i := range ds {
		if it, size, lazy, ok := c.item(&ds[i]); ok {
			q = append(q, pending{it, size, lazy})
		}
	}
	c.enqueueAll(q)
}

// pending is an item for enqueueAll.
type pending struct {
	it   outItem
	size int
	lazy bool
}

// item is what d queues, if anything: d itself is the core's (Deliver's
// argument, or a BatchSink's slice), so what is kept is a copy — the
// fan-out's shared one where every receiver sees the same.
func (c *conn) item(d *chat.Delivery) (it outItem, size int, lazy, ok bool) {
	if m := d.Message; d.Kind == chat.DelMessage && m != nil && m.Room == "" && m.Seq != 0 && !d.Echo && !d.Carbon && !c.firstDirect(m.Seq) {
		return it, 0, false, false // shown already (live and from the offline queue)
	}
	if d.Kind == chat.DelPresence && !c.presenceShown(d) {
		return it, 0, false, false // nothing to show: not queued (a mass disconnect is N² of them)
	}
	size = 256
	if d.Message != nil {
		size += len(d.Message.Body) + len(d.Message.Extra)
	}
	size += 64 * len(d.Occupants)
	if d.Kind == chat.DelJoin && !d.Echo && !d.AccountFirst {
		return it, 0, false, false // the account was in the room already: nothing to show
	}
	// Another's arrival or departure: nobody waits for it (lazy).
	lazy = (d.Kind == chat.DelJoin || d.Kind == chat.DelLeave || d.Kind == chat.DelQuit) && !d.Echo && !d.Carbon
	if d.Shared != nil && !d.Echo && !d.Carbon {
		switch d.Kind {
		case chat.DelMessage, chat.DelJoin, chat.DelLeave, chat.DelKick, chat.DelTopic:
			// The same for every receiver of the fan-out: one copy.
			shared := d.Shared.Value("irc-delivery", func() any { return heapCopy(d) }).(*chat.Delivery)
			return outItem{d: shared}, size, lazy, true
		case chat.DelQuit:
			// The same but for the rooms each receiver shares with the
			// quitter: the first receiver's copy serves those it names
			// the same rooms to (all of them, when the quitter was in
			// one room).
			shared := d.Shared.Value("irc-delivery", func() any { return heapCopy(d) }).(*chat.Delivery)
			if shared.SharesRoom == d.SharesRoom && slices.Equal(shared.Rooms, d.Rooms) && slices.Equal(shared.GoneRooms, d.GoneRooms) {
				return outItem{d: shared}, size, lazy, true
			}
		}
	}
	return outItem{d: heapCopy(d)}, size, lazy, true
}

// presenceShown says whether a presence delivery can show the client
// anything (presenceLines): a MONITOR line (it watches the account) or an
// AWAY line (away-notify, a shared room, another account's). The others
// are not queued: every session that closes sends its presence to every
// session sharing a room with it, and each queued one is a copy.
func (c *conn) presenceShown(d *chat.Delivery) bool {
	acct := d.From.Account
	c.mu.Lock()
	_, watching := c.monitor[acct]
	away := c.caps.has("away-notify")
	me := c.nick
	c.mu.Unlock()
	return watching || away && d.SharesRoom && acct != fold(me)
}

// heapCopy copies a delivery for the queue (d itself stays on the stack).
func heapCopy(d *chat.Delivery) *chat.Delivery {
	dd := new(chat.Delivery)
	*dd = *d
	return dd
}

// firstDirect says whether the direct message seq is shown for the first
// time: a message seen while the offline queue is handed over is kept, so
// that its second copy (live or queued) is dropped.
func (c *conn) firstDirect(seq int64) bool {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if _, ok := c.directSeen[seq]; ok {
		return false
	}
	if c.directRecord {
		c.directSeen[seq] = struct{}{}
	}
	return true
}

// sendLine queues a line made by the server.
func (c *conn) sendLine(m ircmsg.Message) {
	// Server lines that echo long client input are cut to 512 bytes
	// (at a character boundary); messages are split before they get here.
	b, err := m.LineBytesStrict(false, maxLineBody)
	if err != nil && b == nil {
		c.srv.log.Warn("unserialisable line", "cmd", m.Command, "err", err)
		return
	}
	c.enqueue(outItem{line: b}, len(b), false)
}

// numeric queues a numeric reply to the client.
func (c *conn) numeric(code string, params ...string) {
	c.sendLine(ircmsg.MakeMessage(nil, c.srv.cfg.ServerName, code, append([]string{c.currentNick()}, params...)...))
}

// kill marks the connection dead: the writer sends ERROR with reason
// (if any) and closes it.
func (c *conn) kill(reason string) {
	c.qmu.Lock()
	if c.dead {
		c.qmu.Unlock()
		return
	}
	c.dead = true
	c.qmu.Unlock()
	c.mu.Lock()
	if c.reason == "" {
		c.reason = reason
	}
	c.mu.Unlock()
	c.qmu.Lock()
	c.startWriterLocked()
	c.qmu.Unlock()
	if reason == "SendQ exceeded" {
		// The writer may be stuck on a client that does not read.
		c.nc.SetWriteDeadline(time.Now())
	}
}

// quit ends the connection politely with an ERROR line (server shutdown,
// KILL).
func (c *conn) quit(reason string) {
	c.kill(reason)
	c.nc.SetReadDeadline(time.Now())
	c.wake() // poll.go
}

// writeLoop writes the queue until it is empty, then ends (enqueue
// starts another when something comes); when the connection is dead it
// writes what is left and ERROR, closes its write side and closes done.
// Under load it writes at most once per WriteCoalesce: what comes in the
// meantime goes out in the same write.
func (c *conn) writeLoop() {
	w := new(batch)
	if c.leftover != nil { // what a write round could not write: first
		w.Write(c.leftover)
		c.leftover = nil
	}
	for {
		if wait := c.srv.cfg.WriteCoalesce - time.Since(c.lastFlush); wait > 0 && !c.isDead() {
			time.Sleep(wait)
		}
		c.qmu.Lock()
		items := c.queue.Take()
		c.qBytes = 0
		dead := c.dead
		if items.Len() == 0 && !dead && w.n == 0 {
			if c.raw != nil {
				// Back to the write rounds, which do not wait: no
				// deadline may be left for them to trip over (the
				// runtime checks it even for a write that does not wait).
				c.nc.SetWriteDeadline(time.Time{})
				c.renewDeadline = time.Time{}
			}
			c.writing = false
			c.qmu.Unlock()
			return
		}
		c.qmu.Unlock()
		if items.Len() > 0 || w.n > 0 {
			if now := time.Now(); !dead && now.After(c.renewDeadline) {
				// A write may wait between writeWait/2 and writeWait:
				// the deadline is moved only every writeWait/2, not for
				// every write (a timer change each time).
				c.nc.SetWriteDeadline(now.Add(writeWait))
				c.renewDeadline = now.Add(writeWait / 2)
				c.mu.Lock()
				stalled := c.reason == "SendQ exceeded"
				c.mu.Unlock()
				if stalled {
					// kill set an immediate deadline just before ours: a
					// client that does not read cannot hold us.
					c.nc.SetWriteDeadline(time.Now())
				}
			}
			c.render(w, &items)
			err := w.flush(c.nc)
			c.lastFlush = time.Now()
			if err != nil {
				c.kill("Write error")
				c.nc.Close()
				items.Release(&queues)
				c.qmu.Lock()
				c.queue.Release(&queues)
				c.qmu.Unlock()
				close(c.done)
				c.wake() // poll.go: closing removed it from the poller
				return
			}
			c.delivered(&items, dead)
			items.Release(&queues)
		}
		if dead {
			c.mu.Lock()
			reason := c.reason
			c.mu.Unlock()
			if reason != "" && reason != "SendQ exceeded" {
				c.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
				io.WriteString(c.nc, "ERROR :Closing link: "+ircmsg.TruncateUTF8Safe(reason, 400)+"\r\n")
			}
			if tc, ok := c.nc.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			c.nc.SetReadDeadline(time.Now())
			close(c.done)
			c.wake() // poll.go: a parked reader ends the connection
			return
		}
	}
}

// batch gathers what one write sends: a fan-out's shared bytes by
// reference (they never change), anything else copied. Over TCP it goes
// out in one writev without copying the shared bytes; over TLS and
// WebSocket, joined in one Write. It holds memory only while the writer
// runs.
type batch struct {
	bufs  net.Buffers
	buf   []byte // the copied bytes; bufs points into it
	start int    // where the part of buf not yet in bufs starts
	n     int    // bytes gathered
}

// Write copies p.
func (b *batch) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	b.n += len(p)
	return len(p), nil
}

// writeShared takes p, which must not change, by reference.
func (b *batch) writeShared(p []byte) {
	b.cut()
	b.bufs = append(b.bufs, p)
	b.n += len(p)
}

func (b *batch) cut() {
	if len(b.buf) > b.start {
		b.bufs = append(b.bufs, b.buf[b.start:len(b.buf):len(b.buf)])
		b.start = len(b.buf)
	}
}

// flush writes what was gathered to nc and empties the batch.
func (b *batch) flush(nc net.Conn) error {
	b.cut()
	var err error
	switch {
	case b.n == 0:
	case len(b.bufs) == 1:
		_, err = nc.Write(b.bufs[0])
	default:
		if _, tcp := nc.(*net.TCPConn); tcp {
			bufs := b.bufs
			_, err = bufs.WriteTo(nc)
		} else {
			all := make([]byte, 0, b.n)
			for _, p := range b.bufs {
				all = append(all, p...)
			}
			_, err = nc.Write(all)
		}
	}
	b.reset()
	return err
}

// gather returns what was gathered, as buffers to write in order.
func (b *batch) gather() [][]byte {
	b.cut()
	return b.bufs
}

// rest copies what was gathered past its first n bytes.
func (b *batch) rest(n int) []byte {
	out := make([]byte, 0, b.n-n)
	for _, p := range b.bufs {
		if n >= len(p) {
			n -= len(p)
			continue
		}
		out = append(out, p[n:]...)
		n = 0
	}
	return out
}

// reset empties the batch, keeping a small buffer for the next.
func (b *batch) reset() {
	clear(b.bufs)
	b.bufs, b.buf, b.start, b.n = b.bufs[:0], b.buf[:0], 0, 0
	if cap(b.buf) > 64<<10 {
		b.buf = nil // a join's burst: do not keep it
	}
}
