package irc

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"chatbox/services/chat"
)

// A room message's fan-out is rendered once per variant, the variant read
// from each receiver's view (its capabilities and the round's clock): a
// client without server-time sees a message written out over a minute
// after it was sent dated in its text, one with server-time gets the time
// as a tag, and a fresh message is not dated.
func TestSharedFanoutDatesOldMessages(t *testing.T) {
	d := newFuzzDoor(t, fuzzDoorOptions{})
	newClient := func(caps capSet) *conn {
		nc, peer := net.Pipe() // never read or written
		t.Cleanup(func() { nc.Close(); peer.Close() })
		c := newConn(d.srv, nc, "127.0.0.1")
		c.caps = caps
		c.nick = "bob"
		return c
	}
	plain := newClient(capSet{})
	tagged := newClient(capSet{}.with("server-time"))
	render := func(c *conn, m *chat.Message, shared *chat.Rendered) string {
		del := &chat.Delivery{Kind: chat.DelMessage, Message: m, From: chat.SessionRef{Account: "alice", Door: "irc"}, Shared: shared}
		var out bytes.Buffer
		v := c.view()
		c.writeDelivery(&out, del, &v)
		return out.String()
	}
	sent := time.Now().Add(-2 * time.Minute)
	old := &chat.Message{ID: "m1", Seq: 1, Time: sent, From: "alice", FromNick: "alice", Room: "general", Body: "late"}
	shared := &chat.Rendered{}
	tag := render(tagged, old, shared) // the first variant made
	if strings.Contains(tag, "] late") || !strings.Contains(tag, "time=") {
		t.Errorf("server-time client got %q: want the time as a tag, the text as sent", tag)
	}
	got := render(plain, old, shared)
	if want := "[" + sent.Local().Format("2006-01-02 15:04") + "] late"; !strings.Contains(got, want) {
		t.Errorf("plain client got %q, want the text dated: %q", got, want)
	}
	fresh := &chat.Message{ID: "m2", Seq: 2, Time: time.Now(), From: "alice", FromNick: "alice", Room: "general", Body: "now"}
	if got := render(plain, fresh, &chat.Rendered{}); !strings.HasSuffix(got, "#general now\r\n") {
		t.Errorf("plain client got %q for a fresh message: want it undated", got)
	}
}
