package irc

import (
	"net"
	"testing"

	"chatbox/services/chat"
)

// TestDirectMessageShownOnce: while a session's waiting messages are
// handed over, a direct message that comes both live and from the
// offline queue (sent at the moment the session opened) is queued for
// the client once, whichever copy comes first; after the hand-over a
// late copy of a waiting message is still dropped, and new messages,
// room messages, echoes and carbons pass.
func TestDirectMessageShownOnce(t *testing.T) {
	d := newFuzzDoor(t, fuzzDoorOptions{})
	nc, peer := net.Pipe()
	t.Cleanup(func() { nc.Close(); peer.Close() })
	c := newConn(d.srv, nc, "127.0.0.1")
	queued := func() int {
		c.qmu.Lock()
		defer c.qmu.Unlock()
		return c.queue.Len()
	}
	direct := func(seq int64) chat.Delivery {
		return chat.Delivery{Kind: chat.DelMessage, Message: &chat.Message{Seq: seq, From: "alice", To: "bob", Body: "hi"}}
	}
	c.dmu.Lock()
	c.directSeen, c.directRecord = map[int64]struct{}{}, true
	c.dmu.Unlock()
	c.Deliver(direct(7)) // live first
	c.Deliver(direct(7)) // then from the queue
	c.Deliver(direct(8)) // from the queue first
	if n := queued(); n != 2 {
		t.Fatalf("%d items queued during the hand-over, want 2 (7 and 8 once each)", n)
	}
	c.dmu.Lock()
	c.directRecord = false
	c.dmu.Unlock()
	c.Deliver(direct(8)) // its live copy, late
	c.Deliver(direct(9))
	c.Deliver(direct(9)) // not recorded after the hand-over: a new message is never held back
	room := chat.Delivery{Kind: chat.DelMessage, Message: &chat.Message{Seq: 7, Room: "general", From: "alice", Body: "hi"}}
	c.Deliver(room)
	echo := direct(7)
	echo.Echo = true
	c.Deliver(echo)
	carbon := direct(8)
	carbon.Carbon = true
	c.Deliver(carbon)
	if n := queued(); n != 7 {
		t.Fatalf("%d items queued, want 7 (the late copy of 8 dropped; 9 twice, the room message, the echo and the carbon kept)", n)
	}
}
