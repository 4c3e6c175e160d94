package chat_test

import (
	"testing"

	"chatbox/services/chat"
)

// TestRequeueOffline: messages delivered live to a session whose client
// never confirmed them go back in the offline queue, but only direct
// messages to that account, and only when it has no other session.
func TestRequeueOffline(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob")
	a, _ := f.open("alice", "irc")
	b, _ := f.open("bob", "xmpp")
	toBob, err := f.core.SendDirect(f.ctx, a, "bob", chat.KindNormal, "to bob", "")
	if err != nil {
		t.Fatal(err)
	}
	toAlice, err := f.core.SendDirect(f.ctx, b, "alice", chat.KindNormal, "to alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if q, _ := f.core.Offline(f.ctx, b, 10); len(q) != 0 {
		t.Fatalf("bob was online, yet queued: %v", q)
	}

	b2, _ := f.open("bob", "irc")
	if n, err := f.core.RequeueOffline(f.ctx, b, []string{toBob.ID}); err != nil || n != 0 {
		t.Fatalf("with another session of bob open: queued %d (%v), want 0", n, err)
	}
	b2.Close("bye")

	n, err := f.core.RequeueOffline(f.ctx, b, []string{toBob.ID, toAlice.ID, "no-such-message"})
	if err != nil || n != 1 {
		t.Fatalf("queued %d (%v), want 1 (only the message to bob)", n, err)
	}
	if n, err := f.core.RequeueOffline(f.ctx, b, []string{toBob.ID}); err != nil || n != 1 {
		t.Fatalf("queueing again: %d %v", n, err)
	}
	b.Close("connection lost")
	b3, _ := f.open("bob", "irc")
	q, err := f.core.Offline(f.ctx, b3, 10)
	if err != nil || len(q) != 1 || q[0].ID != toBob.ID {
		t.Fatalf("bob's next login finds %v (%v), want the message to him once", q, err)
	}
}
