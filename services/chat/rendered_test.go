package chat

import (
	"sync"
	"testing"
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
