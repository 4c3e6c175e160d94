package xmpp

import (
	"slices"
	"testing"

	"chatbox/internal/chunkq"
	"chatbox/services/chat"
)

// TestInboxLazyDeliveries follows the inbox through the cases that
// decide who converts what: lazy deliveries wait for one lazy round,
// room messages go to a drain round, anything else starts a drain
// goroutine that takes what waited along, in order, and only one
// converts at a time.
func TestInboxLazyDeliveries(t *testing.T) {
	join := func(n int) *chat.Delivery {
		return &chat.Delivery{Kind: chat.DelJoin, Room: "r", Occupant: chat.Occupant{Nick: string(rune('a' + n))}}
	}
	msg := &chat.Delivery{Kind: chat.DelMessage, Room: "r"} // no message: for a drain goroutine
	put := func(in *inbox, d *chat.Delivery) inboxStart {
		in.mu.Lock()
		defer in.mu.Unlock()
		return in.put(d, classify(d, false))
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
		if s := in.done(); s != startNothing {
			t.Fatalf("done: nothing came meanwhile, yet it starts %d", s)
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
		if s := in.done(); s != startDrain {
			t.Fatalf("done: deliveries that need a drain goroutine came meanwhile, yet it starts %d", s)
		}
		same(t, list(in.take()), b, msg)
		if list(in.take()) != nil || in.draining {
			t.Fatal("the drain goroutine did not end on an empty inbox")
		}
	})

	roomMsg := func(n int) *chat.Delivery {
		return &chat.Delivery{Kind: chat.DelMessage, Room: "r", Message: &chat.Message{Room: "r", Seq: int64(n)}}
	}

	t.Run("room messages go to a drain round", func(t *testing.T) {
		var in inbox
		m1, j, m2 := roomMsg(1), join(0), roomMsg(2)
		if s := put(&in, m1); s != startRound {
			t.Fatalf("room message: start %d, want startRound", s)
		}
		for _, d := range []*chat.Delivery{j, m2} {
			if s := put(&in, d); s != startNothing {
				t.Fatalf("behind a queued round: start %d, want nothing", s)
			}
		}
		batch, handoff := in.takeRound()
		if handoff {
			t.Fatal("the round handed off deliveries it may convert")
		}
		same(t, list(batch), m1, j, m2)
		if s := in.done(); s != startNothing || in.draining {
			t.Fatalf("done on an empty inbox: start %d, draining %v", s, in.draining)
		}
	})

	t.Run("the round goes on while only room messages come", func(t *testing.T) {
		var in inbox
		m1, m2 := roomMsg(1), roomMsg(2)
		put(&in, m1)
		batch, _ := in.takeRound()
		same(t, list(batch), m1)
		if s := put(&in, m2); s != startNothing {
			t.Fatalf("room message during the round's conversion: start %d, want nothing", s)
		}
		if s := in.done(); s != startRound {
			t.Fatalf("done with a room message queued: start %d, want startRound", s)
		}
		batch, _ = in.takeRound()
		same(t, list(batch), m2)
		if s := in.done(); s != startNothing {
			t.Fatalf("done: start %d, want nothing", s)
		}
	})

	t.Run("a round hands the inbox to a drain goroutine", func(t *testing.T) {
		var in inbox
		m := roomMsg(1)
		put(&in, m)
		if s := put(&in, msg); s != startNothing {
			t.Fatalf("a delivery that needs a goroutine behind a queued round: start %d, want nothing", s)
		}
		if batch, handoff := in.takeRound(); !handoff || batch.Len() != 0 {
			t.Fatalf("takeRound with such a delivery queued: %d taken, handoff %v; want a handoff", batch.Len(), handoff)
		}
		same(t, list(in.take()), m, msg)
		if got := list(in.take()); got != nil || in.draining || in.unsafe != 0 {
			t.Fatalf("after the drain: %d left, draining %v, unsafe %d", len(got), in.draining, in.unsafe)
		}
		if s := put(&in, roomMsg(2)); s != startRound {
			t.Fatalf("room message once idle again: start %d, want startRound", s)
		}
	})

	t.Run("who converts what", func(t *testing.T) {
		for _, c := range []struct {
			d      chat.Delivery
			remote bool
			class  deliveryClass
		}{
			{chat.Delivery{Kind: chat.DelJoin, Room: "r"}, false, classLazy},
			{chat.Delivery{Kind: chat.DelJoin, Room: "r", Echo: true}, false, classDrain},
			{chat.Delivery{Kind: chat.DelLeave, Room: "r"}, false, classLazy},
			{chat.Delivery{Kind: chat.DelLeave, Room: "r", Echo: true}, false, classDrain},
			{chat.Delivery{Kind: chat.DelLeave, Room: "r"}, true, classDrain},
			{chat.Delivery{Kind: chat.DelQuit, Rooms: []string{"r"}}, false, classLazy},
			{chat.Delivery{Kind: chat.DelQuit, Rooms: []string{"r"}}, true, classDrain},
			{chat.Delivery{Kind: chat.DelQuit}, false, classDrain},
			{chat.Delivery{Kind: chat.DelMessage, Room: "r", Message: &chat.Message{Room: "r"}}, false, classRound},
			{chat.Delivery{Kind: chat.DelMessage, Room: "r", Message: &chat.Message{Room: "r"}, Echo: true}, false, classRound},
			{chat.Delivery{Kind: chat.DelMessage, Room: "r", Message: &chat.Message{Room: "r"}}, true, classDrain},
			{chat.Delivery{Kind: chat.DelJoin, Room: "r"}, true, classDrain},
			{chat.Delivery{Kind: chat.DelMessage, Message: &chat.Message{To: "bob"}}, false, classDrain},
			{chat.Delivery{Kind: chat.DelMessage, Room: "r"}, false, classDrain},
			{chat.Delivery{Kind: chat.DelPresence}, false, classDrain},
		} {
			if got := classify(&c.d, c.remote); got != c.class {
				t.Errorf("classify(kind %v, echo %v, message %v, remote %v) = %d, want %d", c.d.Kind, c.d.Echo, c.d.Message != nil, c.remote, got, c.class)
			}
		}
	})
}
