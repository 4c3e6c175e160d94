package chat_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"chatbox/services/chat"
	"chatbox/services/store"
)

func TestDeliveryLatencyHistogram(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	f := newFixture(t, func(o *chat.Options) { o.Now = func() time.Time { return now } })
	for _, ago := range []time.Duration{0, 300 * time.Microsecond, 2 * time.Millisecond, 40 * time.Millisecond, 7 * time.Second} {
		f.core.Delivered(&chat.Message{Time: now.Add(-ago)})
	}
	f.core.Delivered(&chat.Message{Time: now.Add(time.Second)}) // a clock step back counts as 0
	f.core.Delivered(&chat.Message{})                           // no time: not counted
	f.core.Delivered(nil)
	h := f.core.DeliveryLatency()
	if h.Count != 6 || h.Sum != 7*time.Second+42300*time.Microsecond {
		t.Fatalf("count %d sum %s, want 6 and 7.0423s", h.Count, h.Sum)
	}
	// Bounds: 0.5 1 2.5 5 10 25 50 100 250 500 ms, 1 s, 5 s.
	want := []uint64{3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5}
	if !slices.Equal(h.Cumulative, want) || len(h.Bounds) != len(want) || h.Bounds[0] != 500*time.Microsecond {
		t.Fatalf("buckets %v over %v, want %v", h.Cumulative, h.Bounds, want)
	}
}

// BenchmarkDelivered is what the latency histogram costs a door's writer
// per message, with every CPU's goroutines sharing the counters.
func BenchmarkDelivered(b *testing.B) {
	core := latencyCore(b)
	m := &chat.Message{Time: time.Now()}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			core.Delivered(m)
		}
	})
	if h := core.DeliveryLatency(); h.Count != uint64(b.N) {
		b.Fatalf("counted %d of %d", h.Count, b.N)
	}
}

// TestDeliveryTally checks that a tally of one write adds to the
// histogram what the same messages delivered one by one would.
func TestDeliveryTally(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ages := []time.Duration{0, 300 * time.Microsecond, 300 * time.Microsecond, 2 * time.Millisecond, 40 * time.Millisecond, 7 * time.Second, -time.Second}
	one := newFixture(t, func(o *chat.Options) { o.Now = func() time.Time { return now } })
	tallied := newFixture(t, func(o *chat.Options) { o.Now = func() time.Time { return now } })
	tally := tallied.core.Tally()
	for _, ago := range ages {
		m := &chat.Message{Time: now.Add(-ago)}
		one.core.Delivered(m)
		tally.Add(m)
	}
	tally.Add(&chat.Message{})
	tally.Add(nil)
	if h := tallied.core.DeliveryLatency(); h.Count != 0 {
		t.Fatalf("counted %d before Record", h.Count)
	}
	tallied.core.Record(&tally)
	a, b := one.core.DeliveryLatency(), tallied.core.DeliveryLatency()
	if a.Count != 7 || b.Count != a.Count || b.Sum != a.Sum || !slices.Equal(a.Cumulative, b.Cumulative) {
		t.Fatalf("one by one: %d %s %v; tallied: %d %s %v", a.Count, a.Sum, a.Cumulative, b.Count, b.Sum, b.Cumulative)
	}
	empty := tallied.core.Tally()
	tallied.core.Record(&empty)
	if h := tallied.core.DeliveryLatency(); h.Count != 7 {
		t.Fatalf("an empty tally changed the count to %d", h.Count)
	}
}

// BenchmarkDeliveryTally is BenchmarkDelivered the way the doors count:
// a tally per write of 20 messages.
func BenchmarkDeliveryTally(b *testing.B) {
	core := latencyCore(b)
	m := &chat.Message{Time: time.Now()}
	b.RunParallel(func(pb *testing.PB) {
		t := core.Tally()
		for n := 0; pb.Next(); n++ {
			t.Add(m)
			if n%20 == 19 {
				core.Record(&t)
				t = core.Tally()
			}
		}
		core.Record(&t)
	})
	if h := core.DeliveryLatency(); h.Count != uint64(b.N) {
		b.Fatalf("counted %d of %d", h.Count, b.N)
	}
}

// latencyCore is a core over a new store, closed when b ends.
func latencyCore(b *testing.B) *chat.Core {
	st, err := store.Open(context.Background(), b.TempDir()+"/chat.db", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	core, err := chat.New(chat.Options{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	return core
}

// TestDeliveryTallyAcrossSeconds: a tally measures to the nanosecond
// across a second's boundary, a far-past time counts as the longest.
func TestDeliveryTallyAcrossSeconds(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 100, time.UTC)
	f := newFixture(t, func(o *chat.Options) { o.Now = func() time.Time { return now } })
	tally := f.core.Tally()
	tally.Add(&chat.Message{Time: time.Date(2026, 12, 1, 11, 59, 59, 999_999_900, time.UTC)}) // 200 ns
	tally.Add(&chat.Message{Time: time.Date(2026, 12, 1, 11, 59, 58, 500_000_000, time.UTC)}) // 1.5000001 s
	f.core.Record(&tally)
	if h := f.core.DeliveryLatency(); h.Count != 2 || h.Sum != 1500000300*time.Nanosecond || h.Cumulative[0] != 1 {
		t.Fatalf("count %d sum %s buckets %v, want 2, 1.5000003s, one under 0.5 ms", h.Count, h.Sum, h.Cumulative)
	}
	far := f.core.Tally()
	far.Add(&chat.Message{Time: time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)})
	f.core.Record(&far)
	if h := f.core.DeliveryLatency(); h.Count != 3 || h.Cumulative[len(h.Cumulative)-1] != 2 {
		t.Fatalf("a year-1 message: count %d buckets %v, want 3 with it beyond the last bound", h.Count, h.Cumulative)
	}
}
