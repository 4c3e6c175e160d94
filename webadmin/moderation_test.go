package webadmin

import (
	"context"
	"net/http"
	"testing"

	"chatbox/services/chat"
)

// TestModerationPages: the rooms page locks and unlocks a room; the event
// page lists guests online and kicks or wipes one.
func TestModerationPages(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	core := f.box.core
	ctx := context.Background()
	want(t, b.get("/admin/rooms"), http.StatusOK, `action="/admin/rooms/lock"`, `name="locked" value="on"`)
	refusals(t, f, b, "/admin/rooms/lock", "name", "general", "locked", "on")
	wantRedirect(t, b.post("/admin/rooms/lock", "name", "general", "locked", "on"), "/admin/rooms?done=room-saved&name=general")
	r, _, err := core.RoomInfo(ctx, "general")
	if err != nil || !r.Settings.Locked {
		t.Fatalf("general after locking: %+v, %v", r.Settings, err)
	}
	want(t, b.get("/admin/rooms"), http.StatusOK, "<strong>Locked</strong>", "Unlock")
	g, _ := openGuest(t, core, "visitor")
	if _, err := core.Join(ctx, g, "general", "visitor", ""); err == nil {
		t.Fatal("a guest joined a locked room")
	}
	wantRedirect(t, b.post("/admin/rooms/lock", "name", "general"), "/admin/rooms?done=room-saved&name=general")
	if _, err := core.Join(ctx, g, "general", "visitor", ""); err != nil {
		t.Fatalf("guest after unlocking: %v", err)
	}
	if _, err := core.SendRoom(ctx, g, "general", chat.KindNormal, "spam", ""); err != nil {
		t.Fatal(err)
	}
	want(t, b.post("/admin/rooms/lock", "name", "nosuch", "locked", "on"), http.StatusNotFound, "No room nosuch")

	want(t, b.get("/admin/event"), http.StatusOK, "<strong>visitor</strong>", "#general (visitor)", `name="guest" value="~visitor"`)
	refusals(t, f, b, "/admin/event/guests/wipe", "guest", "~visitor")
	wantRedirect(t, b.post("/admin/event/guests/wipe", "guest", "~visitor"), "/admin/event?done=wiped&n=1")
	if h, err := f.box.store.History(ctx, chat.HistoryQuery{Room: "general"}); err != nil || len(h) != 0 {
		t.Fatalf("history after the wipe: %d, %v", len(h), err)
	}
	refusals(t, f, b, "/admin/event/guests/kick", "guest", "visitor")
	wantRedirect(t, b.post("/admin/event/guests/kick", "guest", "visitor"), "/admin/event?done=kicked&n=1")
	if _, occ, _ := core.RoomInfo(ctx, "general"); len(occ) != 0 {
		t.Fatalf("occupants after the kick: %+v", occ)
	}
	want(t, b.get("/admin/event?done=kicked&n=1"), http.StatusOK, "kicked from 1 room", "in no room")
}

// TestModerationAPI: lock, list guests, kick, wipe through the JSON API.
func TestModerationAPI(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	tok := newToken(t, b, "mod")
	core := f.box.core
	ctx := context.Background()
	status, body, _ := f.call("POST", "/api/v1/rooms/general/lock", "", `{"locked": true}`)
	wantErr(t, status, body, http.StatusUnauthorized, "")
	status, body, _ = f.call("POST", "/api/v1/rooms/general/lock", tok, `{}`)
	wantErr(t, status, body, http.StatusBadRequest, "locked")
	status, body, _ = f.call("POST", "/api/v1/rooms/nosuch/lock", tok, `{"locked": true}`)
	wantErr(t, status, body, http.StatusNotFound, "name")
	status, body, _ = f.call("POST", "/api/v1/rooms/General/lock", tok, `{"locked": true}`)
	if status != 200 || body["room"] != "general" || body["locked"] != true {
		t.Fatalf("lock: %d %v", status, body)
	}
	if r, _, _ := core.RoomInfo(ctx, "general"); !r.Settings.Locked {
		t.Fatal("not locked")
	}
	if status, body, _ = f.call("POST", "/api/v1/rooms/general/lock", tok, `{"locked": false}`); status != 200 || body["locked"] != false {
		t.Fatalf("unlock: %d %v", status, body)
	}

	g, _ := openGuest(t, core, "visitor")
	if _, err := core.Join(ctx, g, "general", "Vis", ""); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := core.SendRoom(ctx, g, "general", chat.KindNormal, "spam", ""); err != nil {
			t.Fatal(err)
		}
	}
	status, body, _ = f.call("GET", "/api/v1/event/guests", tok, "")
	gs, _ := body["guests"].([]any)
	if status != 200 || len(gs) != 1 {
		t.Fatalf("guests: %d %v", status, body)
	}
	g0 := gs[0].(map[string]any)
	rooms := g0["rooms"].([]any)
	if g0["account"] != "~visitor" || g0["name"] != "visitor" || g0["door"] != "irc" || len(rooms) != 1 ||
		rooms[0].(map[string]any)["room"] != "general" || rooms[0].(map[string]any)["nick"] != "Vis" {
		t.Fatalf("guest listed as %v", g0)
	}
	status, body, _ = f.call("POST", "/api/v1/event/guests/visitor/wipe", tok, "")
	if status != 200 || body["messages_deleted"] != float64(2) {
		t.Fatalf("wipe: %d %v", status, body)
	}
	status, body, _ = f.call("POST", "/api/v1/event/guests/visitor/kick", tok, "")
	if status != 200 || body["kicked_from_rooms"] != float64(1) {
		t.Fatalf("kick: %d %v", status, body)
	}
	status, body, _ = f.call("POST", "/api/v1/event/guests/visitor/kick", tok, "")
	wantErr(t, status, body, http.StatusNotFound, "name")
	status, body, _ = f.call("POST", "/api/v1/event/guests/nobody/wipe", tok, "")
	if status != 200 || body["messages_deleted"] != float64(0) {
		t.Fatalf("wipe of an unknown guest: %d %v", status, body)
	}
}
