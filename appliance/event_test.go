package appliance

import (
	"context"
	"strings"
	"testing"

	"chatbox/services/chat"
)

// Event mode reaches the core: the event's rooms exist, guests are
// allowed on the doors, and Box.CloseGuests (button A held 2 s) closes
// guest access.
func TestBoxEventMode(t *testing.T) {
	cfg := Defaults("testhost")
	cfg.DataDir = t.TempDir()
	cfg.Event.Enabled = true
	cfg.Event.Rooms = []string{"lan"}
	cfg.Event.Welcome = "hi"
	if !cfg.GuestsAllowed() || cfg.Registration.Guests {
		t.Fatal("event mode must allow guests without registration.guests")
	}
	ctx := context.Background()
	box, err := Open(ctx, Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer box.Close()
	core := box.Core()
	if _, _, err := core.RoomInfo(ctx, "lan"); err != nil {
		t.Fatalf("event room not created: %v", err)
	}
	if e := core.Event(); !e.Enabled || e.Welcome != "hi" || len(e.Rooms) != 1 || e.Rooms[0] != "lan" {
		t.Fatalf("core event options %+v", e)
	}
	g, err := core.OpenGuest(ctx, "visitor", chat.SessionInfo{Door: "irc"}, chat.SinkFunc(func(chat.Delivery) {}))
	if err != nil {
		t.Fatal(err)
	}
	if n := box.CloseGuests(); n != 1 || !core.GuestsClosed() {
		t.Fatalf("CloseGuests ended %d, closed %v", n, core.GuestsClosed())
	}
	g.Close("gone")
}

func TestEventConfigChecks(t *testing.T) {
	cfg := Defaults("testhost")
	cfg.Event.Enabled = true
	cfg.Event.Rooms = nil
	cfg.Event.History = 1
	cfg.Event.GuestMessagesPerMinute = 0
	err := cfg.Validate()
	for _, key := range []string{"event.rooms", "event.history", "event.guest_messages_per_minute"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Fatalf("%s not refused: %v", key, err)
		}
	}
}
