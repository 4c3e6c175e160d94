package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBucketsCoverEveryValueInOrder(t *testing.T) {
	prev := -1
	check := func(v uint64) {
		b := bucketOf(v)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d, after %d for a smaller value", v, b, prev)
		}
		prev = b
		low, width := bucketRange(b)
		if v < low || v >= low+width {
			t.Fatalf("bucketOf(%d) = %d holds [%d, %d)", v, b, low, low+width)
		}
		if width > 1 && float64(width)/float64(low) > 1.0/64+1e-12 {
			t.Fatalf("bucket %d: width %d over 1/64 of %d", b, width, low)
		}
	}
	for v := range uint64(100000) {
		check(v)
	}
	for v := uint64(100000); v < 1<<40; v = v*17/16 + 1 {
		check(v)
	}
	if b := bucketOf(math.MaxInt64); b >= histBuckets { // Record takes int64 µs
		t.Fatalf("bucketOf(max) = %d, only %d buckets", b, histBuckets)
	}
}

func TestHistogramQuantilesMatchExactOnes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	h := newHistogram()
	var all []time.Duration
	for range 50000 {
		// Log-normal-ish latencies from 50 µs to a few seconds.
		d := time.Duration(math.Exp(rng.NormFloat64()*1.5+math.Log(2000))) * time.Microsecond
		h.Record(d)
		all = append(all, d)
	}
	if h.Count() != int64(len(all)) {
		t.Fatalf("count %d, recorded %d", h.Count(), len(all))
	}
	for _, p := range []float64{1, 10, 50, 90, 99, 99.9, 100} {
		exact := percentile(all, p)
		got := h.Quantile(p / 100)
		if diff := math.Abs(float64(got-exact)) / float64(exact); diff > 1.0/64 {
			t.Errorf("p%v: histogram %s, exact %s (%.2f%% off)", p, got, exact, diff*100)
		}
	}
	if got, want := h.Max(), slices.Max(all).Truncate(time.Microsecond); got != want {
		t.Errorf("max %s, want %s", got, want)
	}
}

func TestHistogramEdges(t *testing.T) {
	h := newHistogram()
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Count() != 0 {
		t.Fatal("an empty histogram reports something")
	}
	h.Record(-time.Second) // a clock step: counted as 0
	h.Record(1234567 * time.Microsecond)
	if got := h.Quantile(0.5); got != 0 {
		t.Errorf("p50 of {0, 1.23s} = %s, want 0", got)
	}
	if got := h.Quantile(1); got != 1234567*time.Microsecond {
		t.Errorf("p100 = %s, want the largest sample exactly", got)
	}
	one := newHistogram()
	one.Record(777 * time.Millisecond)
	for _, q := range []float64{0.01, 0.5, 0.99, 1} {
		if got := one.Quantile(q); got != 777*time.Millisecond {
			t.Errorf("one sample: quantile %v = %s, want it", q, got)
		}
	}
}

func TestHistogramConcurrentRecords(t *testing.T) {
	h := newHistogram()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if h.Count() != 8000 || h.Max() != 7999*time.Microsecond {
		t.Fatalf("count %d max %s", h.Count(), h.Max())
	}
	if got := h.Quantile(0.5); got < 3900*time.Microsecond || got > 4100*time.Microsecond {
		t.Errorf("p50 of 0..7999 µs = %s", got)
	}
}

func TestPercentileNearestRank(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	cases := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(5), 1, 5 * time.Millisecond},
		{ms(5), 100, 5 * time.Millisecond},
		{ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{ms(4, 1, 3, 2), 51, 3 * time.Millisecond},
		{ms(4, 1, 3, 2), 100, 4 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 90, 9 * time.Millisecond},
	}
	for _, c := range cases {
		if got := percentile(slices.Clone(c.in), c.p); got != c.want {
			t.Errorf("percentile(%v, %v) = %s, want %s", c.in, c.p, got, c.want)
		}
	}
	if perSecond(100, 0) != 0 || perSecond(100, 2*time.Second) != 50 {
		t.Error("perSecond")
	}
}

func TestBitset(t *testing.T) {
	b := newBitset(130)
	for _, i := range []int{0, 63, 64, 129} {
		if b.set(i) {
			t.Errorf("%d already set", i)
		}
		if !b.set(i) {
			t.Errorf("%d not set", i)
		}
	}
	if b.set(1) {
		t.Error("1 set by its neighbours")
	}
}

// received is the receivers' bookkeeping: distinct deliveries counted
// once with their latency, duplicates apart, other runs' messages ignored.
func TestReceivedCountsEachMessageOnce(t *testing.T) {
	b := &bench{o: options{senders: 2, messages: 3}, runID: "r1", base: time.Now(), hist: newHistogram(), allDone: make(chan struct{})}
	b.want.Store(6)
	m := &member{b: b, account: "u0001", proto: "irc", seen: newBitset(6)}
	body := func(s, seq int) string { return b.bodyFor(s, seq) }
	now := time.Now()
	m.received(body(0, 0), now)
	m.received(body(0, 0), now) // duplicate
	m.received("cb other-run 0 1 5", now)
	m.received("hello", now)
	m.received("cb r1 7 0 5", now) // no such sender: malformed
	for s := range 2 {
		for seq := range 3 {
			m.received(body(s, seq), now.Add(time.Millisecond))
		}
	}
	if got := b.total.Load(); got != 0 {
		t.Fatalf("total %d before the reader's flush, want 0", got)
	}
	m.flush() // as the reader does before a read that may wait
	if got := b.total.Load(); got != 6 {
		t.Fatalf("total %d, want 6", got)
	}
	if b.dups.Load() != 2 { // (0,0) twice more
		t.Errorf("duplicates %d, want 2", b.dups.Load())
	}
	if b.errCount.Load() != 1 {
		t.Errorf("errors %d, want 1 (the malformed one)", b.errCount.Load())
	}
	select {
	case <-b.allDone:
	default:
		t.Error("allDone not closed at the last expected delivery")
	}
	if b.hist.Count() != 6 {
		t.Errorf("latencies %d, want 6", b.hist.Count())
	}
}

// TestParseBody reads bodies as bodyFor writes them, from strings and
// from the stream's bytes, without allocating.
func TestParseBody(t *testing.T) {
	for _, c := range []struct {
		body          string
		s, seq        int
		sent          int64
		ours, correct bool
	}{
		{"cb r1 3 17 123456789", 3, 17, 123456789, true, true},
		{"cb r1 0 0 0", 0, 0, 0, true, true},
		{"cb r2 3 17 1", 0, 0, 0, false, false},
		{"cb r1 3 17", 0, 0, 0, false, false},
		{"cb r1 3 17 1 extra", 0, 0, 0, false, false},
		{"cb r1 x 17 1", -1, -1, 0, true, false},
		{"cb r1 3 17 1234567890123456789", -1, -1, 0, true, false},
		{"hello", 0, 0, 0, false, false},
		{"", 0, 0, 0, false, false},
		{"cb  r1 3 17 1", 0, 0, 0, false, false},
	} {
		for _, fromBytes := range []bool{false, true} {
			var s, seq int
			var sent int64
			var ok bool
			if fromBytes {
				s, seq, sent, ok = parseBody([]byte(c.body), "r1")
			} else {
				s, seq, sent, ok = parseBody(c.body, "r1")
			}
			if ok != c.ours || (ok && (s != c.s || seq != c.seq || sent != c.sent)) {
				t.Errorf("parseBody(%q, bytes %v) = %d %d %d %v; want %d %d %d %v", c.body, fromBytes, s, seq, sent, ok, c.s, c.seq, c.sent, c.ours)
			}
		}
	}
	b := &bench{o: options{senders: 2, messages: 1000}, runID: "r1", base: time.Now(), hist: newHistogram(), allDone: make(chan struct{})}
	b.want.Store(1 << 40)
	m := &member{b: b, account: "u0001", proto: "xmpp", seen: newBitset(2000)}
	bodies := make([][]byte, 1000) // more than AllocsPerRun's calls: each is new
	for i := range bodies {
		bodies[i] = []byte(b.bodyFor(1, i))
	}
	now, i := time.Now(), 0
	if n := testing.AllocsPerRun(500, func() {
		m.receivedBytes(bodies[i%len(bodies)], now)
		i++
	}); n > 0 {
		t.Errorf("receivedBytes allocated %.1f times a delivery", n)
	}
	m.flush()
	if got := b.total.Load(); got != int64(i) {
		t.Errorf("total %d after %d distinct bodies, want them all", got, i)
	}
}
