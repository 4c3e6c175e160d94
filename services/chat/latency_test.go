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
	st, err := store.Open(context.Background(), b.TempDir()+"/chat.db", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	core, err := chat.New(chat.Options{Store: st})
	if err != nil {
		b.Fatal(err)
	}
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
