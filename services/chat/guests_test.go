package chat_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"chatbox/services/chat"
)

// TestLockRoom: a locked room lets in only accounts already inside, its
// owners and box admins; guests inside may not speak; unlocking undoes
// both; the lock is a stored setting.
func TestLockRoom(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob", "carol")
	a, _ := f.open("alice", "irc")
	if _, err := f.core.Join(f.ctx, a, "general", "", ""); err != nil {
		t.Fatal(err)
	}
	b, rb := f.open("bob", "xmpp")
	if _, err := f.core.Join(f.ctx, b, "general", "", ""); err != nil {
		t.Fatal(err)
	}
	g, err := f.core.OpenGuest(f.ctx, "visitor", chat.SessionInfo{Door: "irc"}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.Join(f.ctx, g, "general", "visitor", ""); err != nil {
		t.Fatal(err)
	}
	rb.take()
	if err := f.core.LockRoom(f.ctx, "General", true); err != nil {
		t.Fatal(err)
	}
	if ds := rb.take(); len(ds) != 1 || ds[0].Kind != chat.DelSettings || !ds[0].Settings.Locked {
		t.Fatalf("bob got %+v, want one settings delivery with Locked", ds)
	}
	c, _ := f.open("carol", "irc")
	if _, err := f.core.Join(f.ctx, c, "general", "", ""); !errors.Is(err, chat.ErrRoomLocked) || !errors.Is(err, chat.ErrForbidden) {
		t.Fatalf("carol joined a locked room: %v", err)
	}
	b2, _ := f.open("bob", "irc") // bob is inside: his other session gets in
	if _, err := f.core.Join(f.ctx, b2, "general", "", ""); err != nil {
		t.Fatalf("bob's second session: %v", err)
	}
	a2, _ := f.open("alice", "xmpp") // alice owns the room (she created it)
	if _, err := f.core.Join(f.ctx, a2, "general", "", ""); err != nil {
		t.Fatalf("owner's second session: %v", err)
	}
	g2, err := f.core.OpenGuest(f.ctx, "other", chat.SessionInfo{Door: "xmpp"}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.Join(f.ctx, g2, "general", "other", ""); !errors.Is(err, chat.ErrRoomLocked) {
		t.Fatalf("new guest joined a locked room: %v", err)
	}
	if _, err := f.core.SendRoom(f.ctx, g, "general", chat.KindNormal, "hello", ""); !errors.Is(err, chat.ErrRoomLocked) {
		t.Fatalf("guest spoke in a locked room: %v", err)
	}
	if _, err := f.core.SendRoom(f.ctx, b, "general", chat.KindNormal, "still here", ""); err != nil {
		t.Fatalf("account in a locked room: %v", err)
	}
	room, err := f.st.Room(f.ctx, "general")
	if err != nil || !room.Settings.Locked {
		t.Fatalf("stored settings %+v, %v; want Locked", room.Settings, err)
	}
	if err := f.core.LockRoom(f.ctx, "general", false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.Join(f.ctx, c, "general", "", ""); err != nil {
		t.Fatalf("carol after unlock: %v", err)
	}
	if _, err := f.core.SendRoom(f.ctx, g, "general", chat.KindNormal, "hello", ""); err != nil {
		t.Fatalf("guest after unlock: %v", err)
	}
	if err := f.core.LockRoom(f.ctx, "nosuch", true); !errors.Is(err, chat.ErrNoSuchRoom) {
		t.Fatalf("locking a missing room: %v", err)
	}
}

// TestWipeAndKickGuest: the admin lists guests, wipes one guest's
// messages (history forgets them, occupants get one retraction each,
// other senders keep theirs) and kicks it from every room.
func TestWipeAndKickGuest(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice")
	a, ra := f.open("alice", "xmpp")
	for _, room := range []string{"general", "games"} {
		if _, err := f.core.Join(f.ctx, a, room, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	g, err := f.core.OpenGuest(f.ctx, "Spammer", chat.SessionInfo{Door: "irc", Addr: "10.0.0.9"}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	h, err := f.core.OpenGuest(f.ctx, "nice", chat.SessionInfo{Door: "xmpp"}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	for _, room := range []string{"general", "games"} {
		if _, err := f.core.Join(f.ctx, g, room, "Spam"+room, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.core.Join(f.ctx, h, "general", "nice", ""); err != nil {
		t.Fatal(err)
	}
	var spam []string
	for i, room := range []string{"general", "games", "general"} {
		m, err := f.core.SendRoom(f.ctx, g, room, chat.KindNormal, "buy now "+string(rune('a'+i)), "")
		if err != nil {
			t.Fatal(err)
		}
		spam = append(spam, m.ID)
	}
	if _, err := f.core.SendRoom(f.ctx, h, "general", chat.KindNormal, "hi all", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.SendRoom(f.ctx, a, "general", chat.KindNormal, "welcome", ""); err != nil {
		t.Fatal(err)
	}

	guests := f.core.Guests()
	if len(guests) != 2 || guests[0].Account != "~nice" || guests[1].Account != "~spammer" {
		t.Fatalf("guests %+v, want ~nice and ~spammer", guests)
	}
	sp := guests[1]
	if sp.Name != "spammer" || sp.Door != "irc" || sp.Addr != "10.0.0.9" ||
		!slices.Equal(sp.Rooms, []chat.GuestRoom{{Room: "games", Nick: "Spamgames"}, {Room: "general", Nick: "Spamgeneral"}}) {
		t.Fatalf("spammer listed as %+v", sp)
	}

	if _, err := f.core.WipeGuest(f.ctx, "alice", ""); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("wiping an account: %v", err)
	}
	ra.take()
	n, err := f.core.WipeGuest(f.ctx, "~spammer", "spam")
	if err != nil || n != 3 {
		t.Fatalf("wiped %d, %v; want 3", n, err)
	}
	var retracted []string
	for _, d := range ra.take() {
		if d.Kind != chat.DelRetract || d.Message == nil || d.Reason != "spam" {
			t.Fatalf("alice got %+v, want only retractions", d)
		}
		retracted = append(retracted, d.Message.ID)
	}
	if !slices.Equal(retracted, spam) {
		t.Fatalf("retractions %v, want %v", retracted, spam)
	}
	hist, err := f.core.History(f.ctx, a, chat.HistoryQuery{Room: "general"})
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	for _, m := range hist {
		froms = append(froms, m.From)
	}
	if !slices.Equal(froms, []string{"~nice", "alice"}) {
		t.Fatalf("general's history is from %v after the wipe", froms)
	}
	if _, err := f.core.MessageByID(f.ctx, a, spam[1]); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("wiped message still found: %v", err)
	}

	n, err = f.core.KickGuest(f.ctx, "~spammer", "bye")
	if err != nil || n != 2 {
		t.Fatalf("kicked from %d rooms, %v; want 2", n, err)
	}
	kicks := 0
	for _, d := range ra.take() {
		if d.Kind == chat.DelKick && d.Occupant.Account == "~spammer" && d.Reason == "bye" {
			kicks++
		}
	}
	if kicks != 2 {
		t.Fatalf("alice saw %d kicks of the spammer, want 2", kicks)
	}
	if g := f.core.Guests(); len(g) != 2 || len(g[1].Rooms) != 0 {
		t.Fatalf("after the kick: %+v", g)
	}
	if _, err := f.core.KickGuest(f.ctx, "~spammer", ""); !errors.Is(err, chat.ErrNoSuchOccupant) {
		t.Fatalf("kicking a guest in no room: %v", err)
	}
}

// TestGuestsClosedSurvivesRestart: a core on the same store starts with
// guest access as the last one left it; the event's end removes guests'
// bans.
func TestGuestsClosedSurvivesRestart(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice")
	if err := f.core.CreateRoom(f.ctx, "general", "alice", chat.DefaultRoomSettings()); err != nil {
		t.Fatal(err)
	}
	if err := f.st.SetAffiliation(f.ctx, "general", "~troll", chat.AffOutcast); err != nil { // as a migration from before guests were refused affiliations might leave
		t.Fatal(err)
	}
	if err := f.st.AddMask(f.ctx, "general", chat.MaskEntry{List: chat.ListBan, Mask: "~troll"}); err != nil {
		t.Fatal(err)
	}
	f.core.CloseGuests("")
	again, err := chat.New(chat.Options{Store: f.st, Iterations: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !again.GuestsClosed() {
		t.Fatal("guest access re-opened on restart")
	}
	if _, err := again.OpenGuest(f.ctx, "x", chat.SessionInfo{Door: "irc"}, &recorder{}); !errors.Is(err, chat.ErrGuestsClosed) {
		t.Fatalf("guest after restart: %v", err)
	}
	again.OpenGuests()
	if third, err := chat.New(chat.Options{Store: f.st, Iterations: 1}); err != nil || third.GuestsClosed() {
		t.Fatalf("re-opened access did not survive a restart: %v", err)
	}
	hooks := 0
	f.core.OnEventEnd(func(context.Context) error { hooks++; return nil })
	if _, err := f.core.EndEvent(f.ctx); err != nil {
		t.Fatal(err)
	}
	if hooks != 1 {
		t.Fatalf("the event-end hook ran %d times, want 1", hooks)
	}
	f.core.OnEventEnd(func(context.Context) error { return errors.New("disk on fire") })
	if _, err := f.core.EndEvent(f.ctx); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("a failing hook: %v", err)
	}
	room, err := f.st.Room(f.ctx, "general")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := room.Affiliations["~troll"]; ok || room.Affiliations["alice"] != chat.AffOwner {
		t.Fatalf("affiliations after the event: %v", room.Affiliations)
	}
	r, _, err := f.core.RoomInfo(f.ctx, "general")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Affiliations["~troll"]; ok || len(r.Masks) != 0 {
		t.Fatalf("the loaded room still bans the guest: %v %+v", r.Affiliations, r.Masks)
	}
}

// TestWipeNoticesBounded: a wipe deletes everything but tells occupants
// only about the most recent 500 messages.
func TestWipeNoticesBounded(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice")
	a, ra := f.open("alice", "xmpp")
	if _, err := f.core.Join(f.ctx, a, "general", "", ""); err != nil {
		t.Fatal(err)
	}
	g, err := f.core.OpenGuest(f.ctx, "chatty", chat.SessionInfo{Door: "irc"}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.Join(f.ctx, g, "general", "chatty", ""); err != nil {
		t.Fatal(err)
	}
	var last string
	for i := range 510 {
		m, err := f.core.SendRoom(f.ctx, g, "general", chat.KindNormal, fmt.Sprint("line ", i), "")
		if err != nil {
			t.Fatal(err)
		}
		last = m.ID
	}
	ra.take()
	if n, err := f.core.WipeGuest(f.ctx, "~chatty", ""); err != nil || n != 510 {
		t.Fatalf("wiped %d, %v; want 510", n, err)
	}
	ds := ra.take()
	if len(ds) != 500 || ds[499].Kind != chat.DelRetract || ds[499].Message.ID != last {
		t.Fatalf("%d notices, want 500 ending with the last message", len(ds))
	}
}
