package xmpp

import (
	"slices"
	"testing"

	"chatbox/internal/chunkq"
	"chatbox/services/chat"
)

// TestInboxLazyDeliveries follows the inbox through the cases that
// decide who converts what: lazy deliveries wait for one lazy round,
// anything else starts a drain goroutine that takes them along, in
// order, and the two never convert at once.
func TestInboxLazyDeliveries(t *testing.T) {
	join := func(n int) *chat.Delivery {
		return &chat.Delivery{Kind: chat.DelJoin, Room: "r", Occupant: chat.Occupant{Nick: string(rune('a' + n))}}
	}
	msg := &chat.Delivery{Kind: chat.DelMessage, Room: "r"}
	put := func(in *inbox, d *chat.Delivery) inboxStart {
		in.mu.Lock()
		defer in.mu.Unlock()
		return in.put(d, lazyDelivery(d))
	}
	list := func(q chunkq.Queue[*chat.Delivery]) []*chat.Delivery { return slices.Collect(q.All()) }
	same := func(t *testing.T, got []*chat.Delivery, want ...*chat.Delivery) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("got %d deliveries, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("delivery %d is %+v, want %+v", i, got[i], want[i])
			}
		}
	}

	t.Run("lazy ones wait for one round", func(t *testing.T) {
		var in inbox
		a, b, c := join(0), join(1), join(2)
		if s := put(&in, a); s != startLazy {
			t.Fatalf("first lazy delivery: start %d, want startLazy", s)
		}
		for _, d := range []*chat.Delivery{b, c} {
			if s := put(&in, d); s != startNothing {
				t.Fatalf("lazy delivery while one waits: start %d, want nothing", s)
			}
		}
		same(t, list(in.takeLazy()), a, b, c)
		if in.lazyDone() {
			t.Fatal("lazyDone: nothing came meanwhile, yet it asks for a drain goroutine")
		}
		if in.draining || in.lazyQueued {
			t.Fatalf("after the round: draining %v, lazyQueued %v", in.draining, in.lazyQueued)
		}
		if s := put(&in, join(3)); s != startLazy {
			t.Fatalf("lazy delivery after the round: start %d, want startLazy", s)
		}
	})

	t.Run("another delivery takes them along", func(t *testing.T) {
		var in inbox
		a := join(0)
		put(&in, a)
		if s := put(&in, msg); s != startDrain {
			t.Fatalf("a message behind a waiting presence: start %d, want startDrain", s)
		}
		if s := put(&in, join(1)); s != startNothing {
			t.Fatalf("lazy delivery while draining: start %d, want nothing", s)
		}
		if got := list(in.takeLazy()); got != nil {
			t.Fatalf("the lazy round took %d deliveries the drain goroutine has", len(got))
		}
		got := list(in.take())
		same(t, got[:2], a, msg)
		if len(got) != 3 {
			t.Fatalf("the drain goroutine took %d, want 3", len(got))
		}
		if got := list(in.take()); got != nil || in.draining {
			t.Fatalf("empty inbox: take gave %d, draining %v", len(got), in.draining)
		}
	})

	t.Run("what comes during the round goes to a drain goroutine", func(t *testing.T) {
		var in inbox
		a := join(0)
		put(&in, a)
		same(t, list(in.takeLazy()), a)
		b := join(1)
		if s := put(&in, b); s != startNothing {
			t.Fatalf("lazy delivery during the round's conversion: start %d, want nothing", s)
		}
		if s := put(&in, msg); s != startNothing {
			t.Fatalf("message during the round's conversion: start %d, want nothing", s)
		}
		if !in.lazyDone() {
			t.Fatal("lazyDone: deliveries came meanwhile, yet no drain goroutine is asked for")
		}
		same(t, list(in.take()), b, msg)
		if list(in.take()) != nil || in.draining {
			t.Fatal("the drain goroutine did not end on an empty inbox")
		}
	})

	t.Run("only other occupants' arrivals wait", func(t *testing.T) {
		for _, c := range []struct {
			d    chat.Delivery
			lazy bool
		}{
			{chat.Delivery{Kind: chat.DelJoin, Room: "r"}, true},
			{chat.Delivery{Kind: chat.DelJoin, Room: "r", Echo: true}, false},
			{chat.Delivery{Kind: chat.DelLeave, Room: "r"}, false},
			{chat.Delivery{Kind: chat.DelMessage, Room: "r"}, false},
			{chat.Delivery{Kind: chat.DelPresence}, false},
		} {
			if got := lazyDelivery(&c.d); got != c.lazy {
				t.Errorf("lazyDelivery(kind %v, echo %v) = %v, want %v", c.d.Kind, c.d.Echo, got, c.lazy)
			}
		}
	})
}
