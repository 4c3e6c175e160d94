package chat_test

import (
	"errors"
	"testing"

	"chatbox/services/chat"
)

func TestEventMode(t *testing.T) {
	f := newFixture(t, func(o *chat.Options) {
		o.Event = chat.EventOptions{Enabled: true, Welcome: "Welcome to the party!", Rooms: []string{"#General"}, GuestMessagesPerMinute: 8}
	})
	f.account("alice")
	a, ra := f.open("alice", "irc")
	if _, err := f.core.Join(f.ctx, a, "general", "", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.Join(f.ctx, a, "other", "", ""); err != nil {
		t.Fatal(err)
	}
	for _, d := range ra.take() {
		if d.Welcome != "" {
			t.Fatalf("an account got the guests' welcome: %+v", d)
		}
	}
	if got := f.core.Event().Rooms; len(got) != 1 || got[0] != "general" {
		t.Fatalf("event rooms %q, want [general]", got)
	}

	rg := &recorder{}
	g, err := f.core.OpenGuest(f.ctx, "Visitor", chat.SessionInfo{Door: "irc"}, rg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.Join(f.ctx, g, "other", "Visitor", ""); !errors.Is(err, chat.ErrForbidden) {
		t.Fatalf("guest joined a room outside the event: %v", err)
	}
	if _, err := f.core.Join(f.ctx, g, "general", "Visitor", ""); err != nil {
		t.Fatal(err)
	}
	var welcome string
	for _, d := range rg.take() {
		if d.Kind == chat.DelJoin && d.Echo {
			welcome = d.Welcome
		}
	}
	if welcome != "Welcome to the party!" {
		t.Fatalf("guest's join welcome %q", welcome)
	}

	// Tighter rate limit: burst 8/4 = 2 messages, then refused.
	for i := range 2 {
		if _, err := f.core.SendRoom(f.ctx, g, "general", chat.KindNormal, "hi", ""); err != nil {
			t.Fatalf("guest message %d: %v", i, err)
		}
	}
	if _, err := f.core.SendRoom(f.ctx, g, "general", chat.KindNormal, "hi", ""); !errors.Is(err, chat.ErrRateLimited) {
		t.Fatalf("third guest message in a burst: %v", err)
	}
	if _, err := f.core.SendRoom(f.ctx, a, "general", chat.KindNormal, "from alice", ""); err != nil {
		t.Fatal(err)
	}

	// Close guest access: the guest is told to disconnect, new guests refused.
	if n := f.core.CloseGuests(""); n != 1 {
		t.Fatalf("CloseGuests ended %d sessions, want 1", n)
	}
	var disc bool
	for _, d := range rg.take() {
		disc = disc || d.Kind == chat.DelDisconnect
	}
	if !disc {
		t.Fatal("guest not told to disconnect")
	}
	for _, d := range ra.take() {
		if d.Kind == chat.DelDisconnect {
			t.Fatal("an account was disconnected by CloseGuests")
		}
	}
	g.Close("closed") // the door does this on DelDisconnect
	if _, err := f.core.OpenGuest(f.ctx, "Second", chat.SessionInfo{Door: "xmpp"}, &recorder{}); !errors.Is(err, chat.ErrGuestsClosed) {
		t.Fatalf("new guest while closed: %v", err)
	}
	if !f.core.GuestsClosed() {
		t.Fatal("GuestsClosed false after CloseGuests")
	}
	f.core.OpenGuests()
	g2, err := f.core.OpenGuest(f.ctx, "Second", chat.SessionInfo{Door: "xmpp"}, &recorder{})
	if err != nil {
		t.Fatalf("guest after re-opening: %v", err)
	}
	g2.Close("bye")

	// End the event: guests' messages wiped, accounts' kept.
	n, err := f.core.EndEvent(f.ctx)
	if err != nil || n != 2 {
		t.Fatalf("EndEvent deleted %d, %v; want 2", n, err)
	}
	h, err := f.core.History(f.ctx, a, chat.HistoryQuery{Room: "general", Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 1 || h[0].From != "alice" || h[0].Body != "from alice" {
		t.Fatalf("history after the event: %+v", h)
	}
	if !f.core.GuestsClosed() {
		t.Fatal("guest access open after the event ended")
	}
}

func TestEventOffNoLimits(t *testing.T) {
	f := newFixture(t, func(o *chat.Options) {
		o.Event = chat.EventOptions{Welcome: "unused", Rooms: []string{"general"}, GuestMessagesPerMinute: 4}
	})
	f.account("alice")
	a, _ := f.open("alice", "irc")
	f.core.Join(f.ctx, a, "other", "", "")
	rg := &recorder{}
	g, err := f.core.OpenGuest(f.ctx, "Visitor", chat.SessionInfo{Door: "irc"}, rg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.Join(f.ctx, g, "other", "Visitor", ""); err != nil {
		t.Fatalf("event off: guest refused a room: %v", err)
	}
	for _, d := range rg.take() {
		if d.Welcome != "" {
			t.Fatalf("event off: welcome %q", d.Welcome)
		}
	}
	for i := range 5 {
		if _, err := f.core.SendRoom(f.ctx, g, "other", chat.KindNormal, "hi", ""); err != nil {
			t.Fatalf("event off: guest message %d: %v", i, err)
		}
	}
}
