package chat

import (
	"context"
	"fmt"
	"sync"
)

// Pipelined room messages. SendRoom keeps its caller until the message is
// on disk (a group commit, and its fsync, take milliseconds): a client
// that sends many lines in a row could send only one per commit. With
// SendRoomAsync a door checks and queues a message and goes on to the
// client's next line; the message is routed once it is durable, by the
// core's fan-out goroutine, in the order the store committed it, and the
// door hears of it (to acknowledge it, or report an error) then. A door
// keeps its client's other commands behind its queued messages, so what
// one client does is still seen in the order it did it.

// AsyncAppender is a MessageStore that can take a message without its
// caller waiting for the disk.
type AsyncAppender interface {
	// AppendMessageThen queues m as AppendMessage stores it and returns;
	// then is called, on the store's writer, once m is committed and synced
	// (with its Seq) or has failed, in the order the calls were made. then
	// must not block. An error returned means then is never called.
	AppendMessageThen(ctx context.Context, m *Message, offlineFor []string, then func(seq int64, err error)) error
}

// fanoutJob is a room message waiting for its turn to be routed.
type fanoutJob struct {
	r    *roomState
	s    *Session
	m    *Message
	err  error
	done func(Message, error)
}

// fanoutQueue holds committed room messages in commit order; a goroutine
// routes them while there are any.
type fanoutQueue struct {
	mu      sync.Mutex
	jobs    []fanoutJob
	spare   []fanoutJob
	running bool
	buf     []Delivery // the running goroutine's scratch (fanRoomRun)
}

// maxFanRun bounds a run of messages routed at once: how long the core's
// lock is held for one.
const maxFanRun = 32

// SendRoomAsync is SendRoom without waiting for the disk. It checks that
// s may speak in room and queues the message; an error returned is
// SendRoom's, and done is not called. Otherwise done is called once the
// message is stored and routed (the sender's session gets its Echo
// first), or with the error that kept it from being stored, on the core's
// fan-out goroutine, in the order the messages were sent; done must not
// block. Over a store that cannot queue a message it waits, as SendRoom.
func (c *Core) SendRoomAsync(ctx context.Context, s *Session, room string, kind MessageKind, body, extra string, done func(Message, error)) error {
	r, m, err := c.prepareRoomMessage(ctx, s, room, kind, body, extra)
	if err != nil {
		return err
	}
	as, ok := c.store.(AsyncAppender)
	if !ok {
		if err := c.store.AppendMessage(ctx, m, nil); err != nil {
			done(Message{}, fmt.Errorf("store message: %w", err))
			return nil
		}
		c.fanRoom(r, s, m)
		done(*m, nil)
		return nil
	}
	return as.AppendMessageThen(ctx, m, nil, func(seq int64, err error) {
		m.Seq = seq
		c.fanq.push(c, fanoutJob{r: r, s: s, m: m, err: err, done: done})
	})
}

func (q *fanoutQueue) push(c *Core, j fanoutJob) {
	q.mu.Lock()
	q.jobs = append(q.jobs, j)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		go q.run(c)
	}
}

// run routes the queued messages in order until none is left.
func (q *fanoutQueue) run(c *Core) {
	for {
		q.mu.Lock()
		jobs := q.jobs
		if len(jobs) == 0 {
			q.running = false
			q.spare, q.buf = nil, nil
			q.mu.Unlock()
			return
		}
		q.jobs = q.spare
		q.mu.Unlock()
		// A run of messages to one room (a group commit's, usually) is
		// routed at once: each member takes it in one call.
		for i := 0; i < len(jobs); {
			j := &jobs[i]
			if j.err != nil {
				j.done(Message{}, fmt.Errorf("store message: %w", j.err))
				i++
				continue
			}
			k := i + 1
			for k < len(jobs) && k-i < maxFanRun && jobs[k].err == nil && jobs[k].r == j.r {
				k++
			}
			q.buf = c.fanRoomRun(j.r, jobs[i:k], q.buf)
			for ; i < k; i++ {
				jobs[i].done(*jobs[i].m, nil)
			}
		}
		clear(jobs)
		q.mu.Lock()
		q.spare = jobs[:0]
		q.mu.Unlock()
	}
}

// MaxInFlight is how many room messages one client may have sent and not
// yet stored (SendRoomAsync): past it, its door stops reading it until
// one is stored. It bounds what a client's burst holds in memory, and how
// long another client's message waits behind it.
const MaxInFlight = 64

// InFlight counts one client's room messages sent and not yet stored, for
// its door: Add before SendRoomAsync (it waits while MaxInFlight are in
// flight), Done when its done is called (or it failed at once), and Wait,
// before anything else the client asked for, until none is in flight.
// The zero value is ready to use.
type InFlight struct {
	mu   sync.Mutex
	cond sync.Cond
	n    int
}

func (f *InFlight) lock() {
	f.mu.Lock()
	if f.cond.L == nil {
		f.cond.L = &f.mu
	}
}

// Add counts a message, once fewer than MaxInFlight are in flight.
func (f *InFlight) Add() {
	f.lock()
	for f.n >= MaxInFlight {
		f.cond.Wait()
	}
	f.n++
	f.mu.Unlock()
}

// Done counts a message stored (or failed).
func (f *InFlight) Done() {
	f.lock()
	f.n--
	f.cond.Broadcast()
	f.mu.Unlock()
}

// Wait waits until no message is in flight.
func (f *InFlight) Wait() {
	f.lock()
	for f.n > 0 {
		f.cond.Wait()
	}
	f.mu.Unlock()
}
