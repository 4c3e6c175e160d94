package chat

import (
	"sync"
	"testing"
	"time"
)

func TestRenderedOncePerKey(t *testing.T) {
	r := &Rendered{}
	calls := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			key := []string{"a", "b"}[i%2]
			b := r.Bytes(key, func() []byte {
				mu.Lock()
				calls[key]++
				mu.Unlock()
				return []byte(key + "!")
			})
			if string(b) != key+"!" {
				t.Errorf("Bytes(%q) = %q", key, b)
			}
		}(i)
	}
	wg.Wait()
	if calls["a"] != 1 || calls["b"] != 1 {
		t.Fatalf("render calls = %v, want one per key", calls)
	}
	var nilR *Rendered
	n := 0
	for i := 0; i < 2; i++ {
		nilR.Bytes("a", func() []byte { n++; return nil })
	}
	if n != 2 {
		t.Fatalf("nil Rendered rendered %d times, want 2", n)
	}
}

func TestMessageIDsSortByTime(t *testing.T) {
	base := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	prev := ""
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		id := newMessageID(base.Add(time.Duration(i) * time.Millisecond))
		if len(id) != 26 {
			t.Fatalf("id %q has %d characters, want 26", id, len(id))
		}
		if id <= prev {
			t.Fatalf("id %q made 1 ms after %q sorts before it", id, prev)
		}
		if seen[id] {
			t.Fatalf("id %q made twice", id)
		}
		seen[id] = true
		prev = id
	}
	a, b := newMessageID(base), newMessageID(base)
	if a == b || a[:9] != b[:9] {
		t.Fatalf("ids of one millisecond %q, %q: want the same time prefix and different random parts", a, b)
	}
}

// TestRenderedMakeUnlocked: make runs without the Rendered's lock, so it
// may ask the same fan-out for another value (a door's rendering that
// takes the core's lock, which a fan-out holds while it asks, deadlocked
// the mixed room's joins before); the first value kept is everyone's.
func TestRenderedMakeUnlocked(t *testing.T) {
	r := &Rendered{}
	done := make(chan any, 1)
	go func() {
		done <- r.Value("outer", func() any {
			return r.Value("inner", func() any { return "i" }).(string) + "o"
		})
	}()
	select {
	case v := <-done:
		if v != "io" {
			t.Fatalf("outer = %v, want io", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Value called from make never returned: make runs under the lock")
	}
	if v := r.Value("outer", func() any { return "again" }); v != "io" {
		t.Fatalf("second outer = %v, want the kept io", v)
	}
}
