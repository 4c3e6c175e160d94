package webadmin

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"chatbox/services/chat"
)

// TestRoomEdit: the edit page shows the room's topic and settings; a
// save changes them through the core (occupants get the topic and the
// settings as they happen), with the refusals of every admin form.
func TestRoomEdit(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	ctx := context.Background()
	core := f.box.core
	core.CreateAccount(ctx, "alice", "password-alice", false)
	var mu sync.Mutex
	var got []chat.Delivery
	s, err := core.Open(ctx, chat.SessionInfo{Account: "alice", Door: "irc", Resource: "alice"}, chat.SinkFunc(func(d chat.Delivery) {
		mu.Lock()
		got = append(got, d)
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := core.Join(ctx, s, "general", "alice", ""); err != nil {
		t.Fatal(err)
	}

	wantRedirect(t, f.browser().get("/admin/rooms/edit?name=general"), "/admin/login")
	want(t, b.get("/admin/rooms"), http.StatusOK, `href="/admin/rooms/edit?name=general"`)
	want(t, b.get("/admin/rooms/edit?name=general"), http.StatusOK, "Room general", `name="topic"`, `name="members_only"`, `name="moderated"`, `name="history" value="0"`)
	want(t, b.get("/admin/rooms/edit?name=nowhere"), http.StatusNotFound, "name: no such room")
	want(t, b.get("/admin/rooms/edit?name=no%20such"), http.StatusNotFound, "name: no such room")

	form := []string{"name", "general", "topic", "Board games tonight", "members_only", "yes", "moderated", "yes", "history", "25"}
	refusals(t, f, b, "/admin/rooms/edit", form...)
	want(t, b.post("/admin/rooms/edit", "name", "general", "topic", "x", "history", "1001"), http.StatusBadRequest, "history: a number of messages from 0")
	want(t, b.post("/admin/rooms/edit", "name", "general", "topic", "x", "history", "many"), http.StatusBadRequest, "history: ")
	want(t, b.post("/admin/rooms/edit", "name", "general", "topic", strings.Repeat("x", chat.MaxTopicBytes+1), "history", "0"), http.StatusBadRequest, "topic: at most 1000 bytes")
	want(t, b.post("/admin/rooms/edit", "name", "general", "topic", "two\nlines", "history", "0"), http.StatusBadRequest, "topic: one line")
	want(t, b.post("/admin/rooms/edit", "name", "nowhere", "topic", "", "history", "0"), http.StatusNotFound, "name: no such room")
	if rm, _, _ := core.RoomInfo(ctx, "general"); rm.Topic != "" || rm.Settings.Moderated {
		t.Fatalf("refused edits changed the room: %+v", rm)
	}

	wantRedirect(t, b.post("/admin/rooms/edit", form...), "/admin/rooms?done=room-saved&name=general")
	want(t, b.get("/admin/rooms?done=room-saved&name=general"), http.StatusOK, "Room general saved.", "Board games tonight")
	rm, _, err := core.RoomInfo(ctx, "general")
	if err != nil {
		t.Fatal(err)
	}
	if rm.Topic != "Board games tonight" || !rm.Settings.MembersOnly || !rm.Settings.Moderated || rm.Settings.MaxHistory != 25 {
		t.Fatalf("room after the edit: topic %q, settings %+v", rm.Topic, rm.Settings)
	}
	mu.Lock()
	var topic, settings bool
	for _, d := range got {
		topic = topic || d.Kind == chat.DelTopic && d.Topic == "Board games tonight"
		settings = settings || d.Kind == chat.DelSettings && d.Settings.Moderated
	}
	mu.Unlock()
	if !topic || !settings {
		t.Errorf("the occupant got topic %v, settings %v; want both delivered", topic, settings)
	}
	// Unticked boxes turn the settings off again; the same topic is not
	// set twice.
	wantRedirect(t, b.post("/admin/rooms/edit", "name", "general", "topic", "Board games tonight", "history", "0"), "/admin/rooms?done=room-saved&name=general")
	if rm, _, _ := core.RoomInfo(ctx, "general"); rm.Settings.MembersOnly || rm.Settings.Moderated || rm.Settings.MaxHistory != 0 {
		t.Fatalf("settings after unticking: %+v", rm.Settings)
	}
}

func TestAPIRoomEdit(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	tok := newToken(t, b, "rooms")
	ctx := context.Background()
	core := f.box.core
	if err := core.CreateRoom(ctx, "kitchen", "", chat.DefaultRoomSettings()); err != nil {
		t.Fatal(err)
	}
	st, body, _ := f.call("PATCH", "/api/v1/rooms/kitchen", tok, `{"topic":"Dinner at 8","moderated":true}`)
	if st != http.StatusOK || body["topic"] != "Dinner at 8" || body["moderated"] != true || body["members_only"] != false {
		t.Fatal(st, body)
	}
	// Fields left out stay as they are.
	st, body, _ = f.call("PATCH", "/api/v1/rooms/kitchen", tok, `{"max_history":10}`)
	if st != http.StatusOK || body["topic"] != "Dinner at 8" || body["moderated"] != true || body["max_history"] != float64(10) {
		t.Fatal(st, body)
	}
	st, body, _ = f.call("PATCH", "/api/v1/rooms/kitchen", tok, `{"max_history":-1}`)
	wantErr(t, st, body, http.StatusBadRequest, "max_history")
	st, body, _ = f.call("PATCH", "/api/v1/rooms/kitchen", tok, `{"topic":"a\u0000b"}`)
	wantErr(t, st, body, http.StatusBadRequest, "topic")
	st, body, _ = f.call("PATCH", "/api/v1/rooms/nowhere", tok, `{"topic":"x"}`)
	wantErr(t, st, body, http.StatusNotFound, "name")
	st, body, _ = f.call("PATCH", "/api/v1/rooms/kitchen", "", `{"topic":"x"}`)
	if st != http.StatusUnauthorized {
		t.Fatal("without a token:", st, body)
	}
	if rm, _, _ := core.RoomInfo(ctx, "kitchen"); rm.Topic != "Dinner at 8" || rm.Settings.MaxHistory != 10 {
		t.Fatalf("room %+v", rm)
	}
}
