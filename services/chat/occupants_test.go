package chat_test

import (
	"slices"
	"testing"

	"chatbox/services/chat"
)

// only returns the deliveries of kind k among ds.
func only(ds []chat.Delivery, k chat.DeliveryKind) []chat.Delivery {
	var out []chat.Delivery
	for _, d := range ds {
		if d.Kind == k {
			out = append(out, d)
		}
	}
	return out
}

// TestAccountLevelOccupancy checks the account-level facts the core puts
// in room deliveries (occupants.go): an account in a room under two nicks
// (XMPP) comes with its first occupant and goes with its last.
func TestAccountLevelOccupancy(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob")
	watcher, wrec := f.open("bob", "irc")
	if _, err := f.core.Join(f.ctx, watcher, "lobby", "bob", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.Join(f.ctx, watcher, "other", "bob", ""); err != nil {
		t.Fatal(err)
	}
	a1, _ := f.open("alice", "xmpp")
	a2, _ := f.open("alice", "xmpp")
	wrec.take()

	// Two nicks of one account: only the first is new at account level.
	if _, err := f.core.Join(f.ctx, a1, "lobby", "alice", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.Join(f.ctx, a2, "lobby", "alice2", ""); err != nil {
		t.Fatal(err)
	}
	joins := only(wrec.take(), chat.DelJoin)
	if len(joins) != 2 || !joins[0].AccountFirst || joins[1].AccountFirst {
		t.Fatalf("joins of alice, alice2: %+v, want AccountFirst true then false", joins)
	}
	if joins[0].Shared == nil || joins[0].Shared == joins[1].Shared {
		t.Fatalf("a join fan-out needs its own Rendered: %p %p", joins[0].Shared, joins[1].Shared)
	}

	// The first nick leaves: the account is still there.
	if err := f.core.Part(f.ctx, a1, "lobby", "bye"); err != nil {
		t.Fatal(err)
	}
	parts := only(wrec.take(), chat.DelLeave)
	if len(parts) != 1 || parts[0].AccountGone {
		t.Fatalf("part of alice with alice2 left: %+v, want one with AccountGone false", parts)
	}

	// Presence: bob shares a room with alice (through alice2).
	if err := a2.SetPresence(chat.Presence{Show: chat.ShowAway}); err != nil {
		t.Fatal(err)
	}
	pres := only(wrec.take(), chat.DelPresence)
	if len(pres) != 1 || !pres[0].SharesRoom {
		t.Fatalf("presence of alice2: %+v, want one with SharesRoom", pres)
	}

	// The last nick's session closes: alice is gone from lobby and bob
	// shares no room with her any more.
	a2.Close("gone")
	quits := only(wrec.take(), chat.DelQuit)
	if len(quits) != 1 || !slices.Equal(quits[0].GoneRooms, []string{"lobby"}) || quits[0].SharesRoom {
		t.Fatalf("quit of alice2: %+v, want GoneRooms [lobby] and no SharesRoom", quits)
	}

	// A quit of one session while another session of the account stays in
	// another room shared with the watcher: PART rather than QUIT.
	a3, _ := f.open("alice", "irc")
	a4, _ := f.open("alice", "irc")
	if _, err := f.core.Join(f.ctx, a3, "lobby", "alice", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.core.Join(f.ctx, a4, "other", "alice", ""); err != nil {
		t.Fatal(err)
	}
	wrec.take()
	a3.Close("one of two")
	quits = only(wrec.take(), chat.DelQuit)
	if len(quits) != 1 || !slices.Equal(quits[0].GoneRooms, []string{"lobby"}) || !quits[0].SharesRoom {
		t.Fatalf("quit of one of alice's sessions: %+v, want GoneRooms [lobby] and SharesRoom", quits)
	}

	// Kick: the account's only occupant goes.
	if err := f.core.Kick(f.ctx, watcher, "other", "alice", "out"); err != nil {
		t.Fatal(err)
	}
	kicks := only(wrec.take(), chat.DelKick)
	if len(kicks) != 1 || !kicks[0].AccountGone {
		t.Fatalf("kick of alice: %+v, want AccountGone", kicks)
	}

	// Role change: the occupant as it was comes with it.
	a5, _ := f.open("alice", "irc")
	if _, err := f.core.Join(f.ctx, a5, "lobby", "alice", ""); err != nil {
		t.Fatal(err)
	}
	wrec.take()
	if err := f.core.SetRole(f.ctx, watcher, "lobby", "alice", chat.RoleModerator, ""); err != nil {
		t.Fatal(err)
	}
	roles := only(wrec.take(), chat.DelRole)
	if len(roles) != 1 || roles[0].Before == nil || roles[0].Before.Role != chat.RoleParticipant || roles[0].Occupant.Role != chat.RoleModerator {
		t.Fatalf("role of alice: %+v, want Before participant, now moderator", roles)
	}
}

// TestQuitNamesSharedRooms: a session that closes in several rooms sends
// each member one quit naming the rooms it shares with the quitter, in
// the quitter's order, and those the quitter's account is gone from; in
// one room, every member gets the same rooms.
func TestQuitNamesSharedRooms(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob", "carol", "dave")
	alice, _ := f.open("alice", "irc")
	alice2, _ := f.open("alice", "xmpp")
	bob, brec := f.open("bob", "irc")     // in a and b
	carol, crec := f.open("carol", "irc") // in c
	dave, drec := f.open("dave", "xmpp")  // in a, b and c
	join := func(s *chat.Session, room, nick string) {
		t.Helper()
		if _, err := f.core.Join(f.ctx, s, room, nick, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, room := range []string{"a", "b", "c"} {
		join(alice, room, "alice")
		join(dave, room, "dave")
	}
	join(alice2, "b", "alice2") // alice's account stays in b
	join(bob, "a", "bob")
	join(bob, "b", "bob")
	join(carol, "c", "carol")
	brec.take()
	crec.take()
	drec.take()

	alice.Close("bye")
	for _, c := range []struct {
		who       string
		got       []chat.Delivery
		rooms     []string
		goneRooms []string
		shares    bool // a room with alice's account (alice2's b)
	}{
		{"bob", brec.take(), []string{"a", "b"}, []string{"a"}, true},
		{"carol", crec.take(), []string{"c"}, []string{"c"}, false},
		{"dave", drec.take(), []string{"a", "b", "c"}, []string{"a", "c"}, true},
	} {
		q := only(c.got, chat.DelQuit)
		if len(q) != 1 || !slices.Equal(q[0].Rooms, c.rooms) || !slices.Equal(q[0].GoneRooms, c.goneRooms) ||
			q[0].Occupant.Nick != "alice" || q[0].Reason != "bye" || q[0].SharesRoom != c.shares {
			t.Fatalf("%s: quits %+v, want one for rooms %v, gone from %v", c.who, q, c.rooms, c.goneRooms)
		}
	}

	// One room: every member gets the same.
	join(bob, "c", "bob")
	brec.take()
	crec.take()
	drec.take()
	alice2.Close("later")
	if q := only(crec.take(), chat.DelQuit); len(q) != 0 {
		t.Fatalf("carol shares no room with alice2: %+v", q)
	}
	qb, qd := only(brec.take(), chat.DelQuit), only(drec.take(), chat.DelQuit)
	if len(qb) != 1 || len(qd) != 1 || !slices.Equal(qb[0].Rooms, []string{"b"}) || !slices.Equal(qd[0].Rooms, []string{"b"}) ||
		!slices.Equal(qb[0].GoneRooms, []string{"b"}) || qb[0].Occupant.Nick != "alice2" || qb[0].Shared != qd[0].Shared || qb[0].SharesRoom {
		t.Fatalf("alice2's quit: bob %+v, dave %+v", qb, qd)
	}
}

// TestQuitSendsNoPresenceToRoomMates: a closing session's room mates
// learn it from the quit; its presence going offline reaches those who
// watch the account and the rooms the account stays in through another
// session, not again every member of the rooms it left.
func TestQuitSendsNoPresenceToRoomMates(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob", "carol")
	alice, _ := f.open("alice", "irc")
	alice.SetPresence(chat.Presence{Show: chat.ShowAvailable})
	bob, brec := f.open("bob", "irc")
	carol, crec := f.open("carol", "xmpp")
	carol.Watch("alice")
	for _, s := range []*chat.Session{alice, bob} {
		if _, err := f.core.Join(f.ctx, s, "lobby", s.Info().Account, ""); err != nil {
			t.Fatal(err)
		}
	}
	brec.take()
	crec.take()
	alice.Close("bye")
	got := brec.take()
	if q, p := only(got, chat.DelQuit), only(got, chat.DelPresence); len(q) != 1 || len(p) != 0 {
		t.Fatalf("bob, in the room alice left: %d quits, %d presences, want 1 and 0", len(q), len(p))
	}
	if p := only(crec.take(), chat.DelPresence); len(p) != 1 || p[0].Account.Show != chat.ShowOffline {
		t.Fatalf("carol, watching alice: %+v, want alice offline", p)
	}

	// alice2 stays in the room: its members see the account's presence
	// (they got no quit: the account is still there).
	alice1, _ := f.open("alice", "irc")
	alice1.SetPresence(chat.Presence{Show: chat.ShowAway})
	alice2, _ := f.open("alice", "xmpp")
	alice2.SetPresence(chat.Presence{Show: chat.ShowAvailable})
	if _, err := f.core.Join(f.ctx, alice2, "lobby", "alice", ""); err != nil {
		t.Fatal(err)
	}
	brec.take()
	alice1.Close("one of two")
	if p := only(brec.take(), chat.DelPresence); len(p) != 1 || !p[0].SharesRoom || p[0].Account.Show != chat.ShowAvailable {
		t.Fatalf("bob, with alice2 in the room: %+v, want alice's presence (available)", p)
	}
}
