package chat_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"chatbox/services/chat"
)

// fakeRouter records what the core hands to federation.
type fakeRouter struct {
	mu      sync.Mutex
	allowed string
	sent    []chat.Message
}

func (r *fakeRouter) RemoteAllowed(domain string) bool { return domain == r.allowed }

func (r *fakeRouter) RouteRemote(m *chat.Message, _ chat.SessionRef) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, *m)
	return nil
}

// TestRemoteDirectMessages: a remote user's message to an offline account
// waits in its queue and is in its history; the answer goes to the router,
// is in history too, with a carbon to the sender's other session.
func TestRemoteDirectMessages(t *testing.T) {
	f := newFixture(t, nil)
	f.account("bob")
	m, err := f.core.DeliverRemote(f.ctx, "Alice@Other.Example", "phone", "bob", chat.KindNormal, "hello bob", `{"id":"x1"}`)
	if err != nil {
		t.Fatal(err)
	}
	if m.From != "alice@other.example" || m.To != "bob" || m.Seq == 0 {
		t.Fatalf("stored %+v; want from alice@other.example to bob, with a seq", m)
	}
	bob, rec := f.open("bob", "irc")
	q, err := f.core.Offline(f.ctx, bob, 10)
	if err != nil || len(q) != 1 || q[0].ID != m.ID || q[0].Extra != `{"id":"x1"}` {
		t.Fatalf("offline queue %+v, %v; want the remote message with its extra", q, err)
	}
	bob2, rec2 := f.open("bob", "xmpp")

	// Live now: both sessions get it, from the remote JID by the s2s door.
	if _, err := f.core.DeliverRemote(f.ctx, "alice@other.example", "phone", "bob", chat.KindNormal, "again", ""); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*recorder{rec, rec2} {
		d := r.take()
		if len(d) != 1 || d[0].Message.Body != "again" || d[0].From.Account != "alice@other.example" || d[0].From.Door != "s2s" || d[0].From.Resource != "phone" {
			t.Fatalf("deliveries %+v; want the message from alice@other.example/phone", d)
		}
	}

	// Without a router, or to a domain it does not serve: ErrNotFound.
	if _, err := f.core.SendRemote(f.ctx, bob, "alice@other.example", chat.KindNormal, "hi", ""); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("SendRemote without a router: %v; want ErrNotFound", err)
	}
	r := &fakeRouter{allowed: "other.example"}
	f.core.SetRemoteRouter(r)
	if _, err := f.core.SendRemote(f.ctx, bob, "carol@elsewhere.example", chat.KindNormal, "hi", ""); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("SendRemote to a domain not served: %v; want ErrNotFound", err)
	}
	if _, err := f.core.SendRemote(f.ctx, bob, "alice/other.example", chat.KindNormal, "hi", ""); !errors.Is(err, chat.ErrBadName) {
		t.Fatalf("SendRemote to a non-JID: %v; want ErrBadName", err)
	}
	sent, err := f.core.SendRemote(f.ctx, bob, "alice@other.example", chat.KindNormal, "hi alice", "")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.sent) != 1 || r.sent[0].ID != sent.ID || r.sent[0].From != "bob" || r.sent[0].To != "alice@other.example" {
		t.Fatalf("router got %+v; want bob's message to alice@other.example", r.sent)
	}
	if d := rec.take(); len(d) != 1 || !d[0].Echo {
		t.Fatalf("sender got %+v; want an echo", d)
	}
	if d := rec2.take(); len(d) != 1 || !d[0].Carbon || d[0].Message.ID != sent.ID {
		t.Fatalf("other session got %+v; want a carbon", d)
	}

	// History: the conversation with the remote user, both sides, and
	// the account's archive.
	h, err := f.core.History(f.ctx, bob, chat.HistoryQuery{Peer: "alice@other.example"})
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range h {
		bodies = append(bodies, m.From+":"+m.Body)
	}
	if want := "alice@other.example:hello bob alice@other.example:again bob:hi alice"; join(bodies) != want {
		t.Fatalf("history %q; want %q", join(bodies), want)
	}
	if _, err := f.core.DeliverRemote(f.ctx, "alice@other.example", "", "nobody", chat.KindNormal, "x", ""); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("to a missing account: %v; want ErrNotFound", err)
	}
	if _, err := f.core.DeliverRemote(f.ctx, "alice@other.example", "", "bob", chat.KindNormal, " ", ""); !errors.Is(err, chat.ErrEmptyMessage) {
		t.Fatalf("empty body: %v; want ErrEmptyMessage", err)
	}
	_ = bob2
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

// BenchmarkDeliverRemote: one message from a remote user to an account
// with two sessions (stored, one fsync, then fanned out), compared with
// the same through SendDirect from a local account.
func BenchmarkDeliverRemote(b *testing.B) {
	core := benchCore(b)
	ctx := context.Background()
	for _, a := range []string{"alice", "bob"} {
		if err := core.CreateAccount(ctx, a, "password-"+a, false); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	for range 2 {
		if _, err := core.Open(ctx, chat.SessionInfo{Account: "bob", Door: "xmpp"}, countSink{&n}); err != nil {
			b.Fatal(err)
		}
	}
	alice, err := core.Open(ctx, chat.SessionInfo{Account: "alice", Door: "xmpp"}, countSink{&atomic.Int64{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("remote", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := core.DeliverRemote(ctx, "carol@other.example", "phone", "bob", chat.KindNormal, "hello bob", `{"id":"x"}`); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("local", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := core.SendDirect(ctx, alice, "bob", chat.KindNormal, "hello bob", `{"id":"x"}`); err != nil {
				b.Fatal(err)
			}
		}
	})
}
