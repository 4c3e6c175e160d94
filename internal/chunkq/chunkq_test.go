package chunkq

import (
	"slices"
	"testing"
)

func TestQueueOrderTakeRelease(t *testing.T) {
	var p Pool[*int]
	var q Queue[*int]
	if q.Len() != 0 || q.First() != nil || q.head != nil {
		t.Fatal("the zero Queue is not empty")
	}
	vals := make([]int, 3*chunkLen+5)
	var want []*int
	for i := range vals {
		vals[i] = i
		q.Push(&p, &vals[i])
		want = append(want, &vals[i])
	}
	if q.Len() != len(vals) || q.First() != &vals[0] {
		t.Fatalf("Len %d First %v", q.Len(), q.First())
	}
	batch := q.Take()
	if q.Len() != 0 || q.head != nil || q.tail != nil {
		t.Fatal("Take left items behind")
	}
	q.Push(&p, &vals[0]) // pushes meanwhile go to a new chunk
	if got := slices.Collect(batch.All()); !slices.Equal(got, want) {
		t.Fatalf("All gave %d items, not the %d pushed in order", len(got), len(want))
	}
	n := 0
	for range batch.All() {
		if n++; n == 10 {
			break // All stops when asked to
		}
	}
	chunks := []*chunk[*int]{}
	for c := batch.head; c != nil; c = c.next {
		chunks = append(chunks, c)
	}
	if len(chunks) != 4 {
		t.Fatalf("%d chunks for %d items, want 4", len(chunks), len(vals))
	}
	batch.Release(&p)
	if batch.Len() != 0 || batch.head != nil {
		t.Fatal("Release left the queue holding chunks")
	}
	for _, c := range chunks {
		if c.n != 0 || c.next != nil || slices.ContainsFunc(c.items[:], func(v *int) bool { return v != nil }) {
			t.Fatal("a released chunk still holds items")
		}
	}
	if q.Len() != 1 || q.First() != &vals[0] {
		t.Fatal("the queue pushed after Take lost its item")
	}
}

func TestPushAllocatesOnlyChunks(t *testing.T) {
	var p Pool[[]byte]
	var q Queue[[]byte]
	b := []byte("x")
	for range 2 * chunkLen {
		q.Push(&p, b)
	}
	batch := q.Take()
	batch.Release(&p)
	// With the pool stocked, a burst of two chunks' worth allocates
	// nothing (a collection may empty the pool now and then).
	if n := testing.AllocsPerRun(200, func() {
		for range 2 * chunkLen {
			q.Push(&p, b)
		}
		batch := q.Take()
		batch.Release(&p)
	}); n > 0.5 {
		t.Fatalf("a burst allocated %.1f times", n)
	}
}
