package irc

import (
	"net"
	"testing"

	"chatbox/services/chat"
)

// TestPresenceQueuedOnlyIfShown: a presence delivery is queued only when
// the client can be shown something of it (presenceLines): the account
// is on its MONITOR list, or it has away-notify and shares a room with
// another account's session.
func TestPresenceQueuedOnlyIfShown(t *testing.T) {
	d := newFuzzDoor(t, fuzzDoorOptions{})
	nc, peer := net.Pipe()
	t.Cleanup(func() { nc.Close(); peer.Close() })
	c := newConn(d.srv, nc, "127.0.0.1")
	c.mu.Lock()
	c.nick = "bob"
	c.mu.Unlock()
	queued := func() int {
		c.qmu.Lock()
		defer c.qmu.Unlock()
		return c.queue.Len()
	}
	pres := func(from string, shares bool) chat.Delivery {
		return chat.Delivery{Kind: chat.DelPresence, From: chat.SessionRef{ID: 9, Account: from, Door: "xmpp"},
			Account: chat.Presence{Show: chat.ShowAway}, SharesRoom: shares}
	}
	c.Deliver(pres("alice", true))
	if n := queued(); n != 0 {
		t.Fatalf("no away-notify, no MONITOR: %d queued, want 0", n)
	}
	c.mu.Lock()
	c.monitor = map[string]bool{"carol": false}
	c.mu.Unlock()
	c.Deliver(pres("carol", false)) // monitored: shown (730)
	c.Deliver(pres("alice", true))  // still not
	if n := queued(); n != 1 {
		t.Fatalf("carol monitored: %d queued, want 1", n)
	}
	c.mu.Lock()
	c.caps = capSet{"away-notify": true}
	c.mu.Unlock()
	c.Deliver(pres("alice", true))  // away-notify, shared room: shown
	c.Deliver(pres("alice", false)) // no shared room
	c.Deliver(pres("bob", true))    // its own account
	if n := queued(); n != 2 {
		t.Fatalf("with away-notify: %d queued, want 2 (carol's and alice's in a shared room)", n)
	}
}
