// Package rounds writes many connections' queued output from a few
// goroutines, in rounds, instead of one writer goroutine per connection.
//
// A door queues what a connection is to be sent and, the first time
// something is queued since the connection was last written, adds the
// connection to a shard of the Rounds. Each shard runs a goroutine only
// while it has connections to write: it takes every connection added so
// far and calls its Flush, one after the other; what is queued meanwhile
// waits for the next round. Under load a shard keeps at least Coalesce
// between the starts of two rounds, so a busy room's messages reach each
// receiver several to a write (one system call for many lines, as the C
// servers' event loops do), while a message to an idle box goes out at
// once.
//
// Flush must not block: a connection writes what the socket takes now
// (TryWritev) and hands anything left to a goroutine of its own, which
// may wait for a slow client without holding up its neighbours.
package rounds

import (
	"sync"
	"sync/atomic"
	"time"
)

// Task is a connection with something queued. Flush writes what it can
// without waiting and returns; it is called on a shard's goroutine, once
// per Add.
type Task interface {
	Flush()
}

// Rounds is a set of shards, each writing its connections in turn.
type Rounds struct {
	coalesce time.Duration
	shards   []shard
	next     atomic.Uint32
}

type shard struct {
	mu      sync.Mutex
	pending []Task
	spare   []Task
	running bool
	_       [40]byte // keep shards on their own cache lines
}

// New makes n shards (at least 1) that keep coalesce between rounds under
// load; coalesce <= 0 runs rounds back to back.
func New(n int, coalesce time.Duration) *Rounds {
	return &Rounds{coalesce: coalesce, shards: make([]shard, max(n, 1))}
}

// Shard picks a shard for a new connection (round robin).
func (r *Rounds) Shard() int {
	return int(r.next.Add(1)-1) % len(r.shards)
}

// Add queues t for the next round of shard i. The caller adds a task at
// most once until its Flush has run.
func (r *Rounds) Add(i int, t Task) {
	s := &r.shards[i%len(r.shards)]
	s.mu.Lock()
	s.pending = append(s.pending, t)
	start := !s.running
	s.running = true
	s.mu.Unlock()
	if start {
		go s.run(r.coalesce)
	}
}

// run writes rounds until no task is left, then ends.
func (s *shard) run(coalesce time.Duration) {
	for {
		s.mu.Lock()
		list := s.pending
		if len(list) == 0 {
			s.running = false
			s.spare = nil // an idle shard keeps no list
			s.mu.Unlock()
			return
		}
		s.pending = s.spare
		s.mu.Unlock()
		start := time.Now()
		for i, t := range list {
			t.Flush()
			list[i] = nil
		}
		s.mu.Lock()
		s.spare = list[:0]
		more := len(s.pending) > 0
		s.mu.Unlock()
		if wait := coalesce - time.Since(start); more && wait > 0 {
			time.Sleep(wait)
		}
	}
}
