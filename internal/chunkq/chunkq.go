// Package chunkq is a first-in first-out queue kept in fixed-size chunks
// lent by a pool: a connection's write queue or inbox, which is empty
// most of the time, and under a burst grows to hundreds of items and is
// taken whole by its writer.
//
// A slice that grows by append is copied at each doubling and, once
// written, is either kept (an idle connection then holds it) or dropped
// (the next burst grows one anew: about twice its size in garbage each
// time, most of a busy room's). Chunks are never copied, go back to
// the pool once written, and an empty Queue holds none.
package chunkq

import (
	"iter"
	"sync"
)

// chunkLen is the items per chunk: a chunk of 24-byte items (a []byte)
// is about 1.5 KB.
const chunkLen = 64

type chunk[T any] struct {
	items [chunkLen]T
	n     int
	next  *chunk[T]
}

// Pool lends chunks to the Queues of one kind. The zero Pool is ready.
type Pool[T any] struct {
	p sync.Pool
}

func (p *Pool[T]) get() *chunk[T] {
	if c, ok := p.p.Get().(*chunk[T]); ok {
		return c
	}
	return new(chunk[T])
}

func (p *Pool[T]) put(c *chunk[T]) {
	clear(c.items[:c.n]) // keep nothing alive
	c.n, c.next = 0, nil
	p.p.Put(c)
}

// Queue is a FIFO of T. The zero Queue is empty and holds no chunk. It
// is not safe for concurrent use: its owner locks.
type Queue[T any] struct {
	head, tail *chunk[T]
	n          int
}

// Push adds v at the end, with a chunk from p when the last is full.
func (q *Queue[T]) Push(p *Pool[T], v T) {
	if q.tail == nil || q.tail.n == chunkLen {
		c := p.get()
		if q.tail == nil {
			q.head = c
		} else {
			q.tail.next = c
		}
		q.tail = c
	}
	q.tail.items[q.tail.n] = v
	q.tail.n++
	q.n++
}

// Len is the number of items queued.
func (q *Queue[T]) Len() int { return q.n }

// First is the first item (the zero T when empty).
func (q *Queue[T]) First() T {
	var zero T
	if q.head == nil || q.head.n == 0 {
		return zero
	}
	return q.head.items[0]
}

// Take returns the queued items as a Queue of their own and leaves q
// empty: a writer takes the whole queue and others push meanwhile.
func (q *Queue[T]) Take() Queue[T] {
	t := *q
	*q = Queue[T]{}
	return t
}

// All yields the items in order.
func (q *Queue[T]) All() iter.Seq[T] {
	return func(yield func(T) bool) {
		for c := q.head; c != nil; c = c.next {
			for i := range c.n {
				if !yield(c.items[i]) {
					return
				}
			}
		}
	}
}

// Release gives q's chunks back to p and leaves q empty.
func (q *Queue[T]) Release(p *Pool[T]) {
	for c := q.head; c != nil; {
		next := c.next
		p.put(c)
		c = next
	}
	*q = Queue[T]{}
}
