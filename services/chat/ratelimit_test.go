package chat

import (
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time          { return f.t }
func (f *fakeClock) advance(d time.Duration) { f.t = f.t.Add(d) }

func TestLimiter(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := newLimiter(2, 5, clk.now) // 2 per second, burst 5
	for i := range 5 {
		if !l.Allow("a") {
			t.Fatalf("token %d refused within the burst", i)
		}
	}
	if l.Allow("a") {
		t.Fatal("sixth token allowed")
	}
	if !l.Allow("b") {
		t.Fatal("another key is affected")
	}
	clk.advance(500 * time.Millisecond)
	if !l.Allow("a") || l.Allow("a") {
		t.Fatal("refill after 0.5 s should give exactly one token")
	}
	clk.advance(time.Hour)
	for range 5 {
		l.Allow("a")
	}
	if l.Allow("a") {
		t.Fatal("refill must not exceed the burst")
	}
}

func TestLimiterPrunes(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	l := newLimiter(1, 1, clk.now)
	for i := range pruneAt + 10 {
		l.Take(string(rune('a'+i%26)) + time.Duration(i).String())
		clk.advance(2 * time.Second)
	}
	if n := len(l.buckets); n > pruneAt {
		t.Fatalf("%d buckets kept, want at most %d", n, pruneAt)
	}
}
