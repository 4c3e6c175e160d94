package chat_test

import (
	"errors"
	"testing"

	"chatbox/services/chat"
)

// TestTemporaryRoomGoesWithLastOccupant: a room that is not persistent is
// deleted when its last occupant leaves, whichever way: part, closing the
// session (quit), or being kicked.
func TestTemporaryRoomGoesWithLastOccupant(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob")
	temp := chat.DefaultRoomSettings()
	temp.Persistent = false
	gone := func(room string) bool {
		t.Helper()
		_, _, err := f.core.RoomInfo(f.ctx, room)
		if err != nil && !errors.Is(err, chat.ErrNoSuchRoom) {
			t.Fatal(err)
		}
		return errors.Is(err, chat.ErrNoSuchRoom)
	}
	for _, how := range []string{"part", "quit", "kick"} {
		room := "temp" + how
		if err := f.core.CreateRoom(f.ctx, room, "", temp); err != nil {
			t.Fatal(err)
		}
		alice, _ := f.open("alice", "irc")
		if _, err := f.core.Join(f.ctx, alice, room, "alice", ""); err != nil {
			t.Fatal(err)
		}
		switch how {
		case "part":
			if err := f.core.Part(f.ctx, alice, room, ""); err != nil {
				t.Fatal(err)
			}
		case "quit":
			alice.Close("bye")
		case "kick":
			if err := f.core.Kick(f.ctx, nil, room, "alice", "out"); err != nil {
				t.Fatal(err)
			}
		}
		if !gone(room) {
			t.Errorf("%s: the temporary room %s outlived its last occupant", how, room)
		}
		alice.Close("")
	}
	// A persistent room stays.
	if err := f.core.CreateRoom(f.ctx, "kept", "", chat.DefaultRoomSettings()); err != nil {
		t.Fatal(err)
	}
	bob, _ := f.open("bob", "xmpp")
	if _, err := f.core.Join(f.ctx, bob, "kept", "bob", ""); err != nil {
		t.Fatal(err)
	}
	bob.Close("bye")
	if gone("kept") {
		t.Error("a persistent room was deleted when its last occupant left")
	}
}
