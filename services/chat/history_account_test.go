package chat_test

import (
	"errors"
	"testing"

	"chatbox/services/chat"
)

// TestHistoryOfAccount: a session reads all of its own account's direct
// conversations (Account without Peer, the XEP-0313 archive) and counts
// them, and nobody else's.
func TestHistoryOfAccount(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob", "carol")
	a, _ := f.open("alice", "irc")
	b, _ := f.open("bob", "xmpp")
	c, _ := f.open("carol", "xmpp")
	f.core.Join(f.ctx, a, "general", "", "")
	for _, s := range []struct {
		from *chat.Session
		to   string
	}{{a, "bob"}, {b, "alice"}, {c, "alice"}, {b, "carol"}, {a, "alice"}} {
		if _, err := f.core.SendDirect(f.ctx, s.from, s.to, chat.KindNormal, "x", ""); err != nil {
			t.Fatal(err)
		}
	}
	f.core.SendRoom(f.ctx, a, "general", chat.KindNormal, "room line", "")
	h, err := f.core.History(f.ctx, a, chat.HistoryQuery{Account: "Alice", Limit: 100})
	if err != nil || len(h) != 4 {
		t.Fatalf("alice's archive: %d messages, %v; want 4", len(h), err)
	}
	for _, m := range h {
		if m.Room != "" || (m.From != "alice" && m.To != "alice") {
			t.Fatalf("not alice's direct message: %+v", m)
		}
	}
	if n, err := f.core.CountHistory(f.ctx, a, chat.HistoryQuery{Account: "alice", Limit: 1}); err != nil || n != 4 {
		t.Fatalf("count %d, %v; want 4", n, err)
	}
	if n, err := f.core.CountHistory(f.ctx, b, chat.HistoryQuery{Peer: "alice"}); err != nil || n != 2 {
		t.Fatalf("bob's count with alice %d, %v; want 2", n, err)
	}
	if _, err := f.core.History(f.ctx, b, chat.HistoryQuery{Account: "alice"}); !errors.Is(err, chat.ErrForbidden) {
		t.Fatalf("bob read alice's archive: %v", err)
	}
	if _, err := f.core.CountHistory(f.ctx, b, chat.HistoryQuery{}); !errors.Is(err, chat.ErrForbidden) {
		t.Fatalf("an empty query: %v", err)
	}
}
