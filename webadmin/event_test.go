package webadmin

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"chatbox/services/chat"
)

// openGuest opens a guest session whose disconnects are counted.
func openGuest(t *testing.T, core *chat.Core, nick string) (*chat.Session, *int) {
	t.Helper()
	n := new(int)
	s, err := core.OpenGuest(context.Background(), nick, chat.SessionInfo{Door: "irc"}, chat.SinkFunc(func(d chat.Delivery) {
		if d.Kind == chat.DelDisconnect {
			*n++ // delivered under the core's lock, read after CloseGuests returns
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	return s, n
}

func TestEventPage(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	wantRedirect(t, f.browser().get("/admin/event"), "/admin/login")
	r := b.get("/admin/event")
	want(t, r, http.StatusOK, "Event mode is <strong>off</strong>", `id="guest-access">open`, `value="general"`, "Hello guests")

	// Save: settings go through SaveSettings, then a restart is offered.
	refusals(t, f, b, "/admin/event", "enabled", "on", "welcome", "Hi", "rooms", "general")
	r = b.post("/admin/event", "enabled", "on", "welcome", "Welcome to the LAN party", "rooms", "#General, games")
	wantRedirect(t, r, "/admin/event?done=saved")
	_, saved := f.box.lockedSaved()
	if saved["event.enabled"] != "true" || saved["event.welcome"] != "Welcome to the LAN party" || saved["event.rooms"] != `["general", "games"]` {
		t.Fatalf("saved %q", saved)
	}
	want(t, b.get("/admin/event?done=saved"), http.StatusOK, "take effect at the next start", `action="/admin/restart"`, `value="general, games"`)
	saves, _ := f.box.lockedSaved()
	r = b.post("/admin/event", "enabled", "on", "welcome", "x", "rooms", "bad room!")
	want(t, r, http.StatusBadRequest, `id="rooms-err"`, "Nothing was saved")
	r = b.post("/admin/event", "enabled", "on", "welcome", "x", "rooms", "")
	want(t, r, http.StatusBadRequest, `id="rooms-err"`)
	if n, _ := f.box.lockedSaved(); n != saves {
		t.Fatal("a refused form was saved")
	}

	// Close guest access: guests are disconnected, new ones refused.
	core := f.box.core
	g, disc := openGuest(t, core, "visitor")
	refusals(t, f, b, "/admin/event/close")
	if core.GuestsClosed() || *disc != 0 {
		t.Fatal("a refused close closed guest access")
	}
	wantRedirect(t, b.post("/admin/event/close"), "/admin/event?done=closed")
	if !core.GuestsClosed() || *disc != 1 {
		t.Fatalf("closed %v, disconnects %d", core.GuestsClosed(), *disc)
	}
	g.Close("gone")
	if _, err := core.OpenGuest(context.Background(), "late", chat.SessionInfo{Door: "xmpp"}, chat.SinkFunc(func(chat.Delivery) {})); !errors.Is(err, chat.ErrGuestsClosed) {
		t.Fatalf("guest after closing: %v", err)
	}
	want(t, b.get("/admin/event?done=closed"), http.StatusOK, `id="guest-access">closed`, "Re-open guest access")
	refusals(t, f, b, "/admin/event/open")
	wantRedirect(t, b.post("/admin/event/open"), "/admin/event?done=opened")
	if core.GuestsClosed() {
		t.Fatal("guest access still closed after re-opening")
	}

	// End the event: asks for confirmation, then wipes guests' messages.
	ctx := context.Background()
	g2, _ := openGuest(t, core, "visitor2")
	if _, err := core.Join(ctx, g2, "general", "visitor2", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := core.SendRoom(ctx, g2, "general", chat.KindNormal, "guest words", ""); err != nil {
		t.Fatal(err)
	}
	refusals(t, f, b, "/admin/event/end", "confirm", "end")
	want(t, b.post("/admin/event/end", "confirm", "yes"), http.StatusBadRequest, `id="confirm-err"`, "was not ended")
	if n, _ := f.box.store.CountMessagesSince(ctx, f.clock.now().AddDate(-1, 0, 0)); n != 1 {
		t.Fatalf("%d messages before the end, want 1", n)
	}
	wantRedirect(t, b.post("/admin/event/end", "confirm", "end"), "/admin/event?done=ended&n=1+messages")
	if n, _ := f.box.store.CountMessagesSince(ctx, f.clock.now().AddDate(-1, 0, 0)); n != 0 {
		t.Fatalf("%d messages after the end, want 0", n)
	}
	if !core.GuestsClosed() {
		t.Fatal("guest access open after the event ended")
	}
}

func TestEventPoster(t *testing.T) {
	f := newFixture(t)
	f.srv.cfg.XMPPListen = []string{"127.0.0.1:5222"}
	b := f.setUp()
	wantRedirect(t, f.browser().get("/admin/event/poster"), "/admin/login")
	r := b.get("/admin/event/poster")
	host := strings.TrimPrefix(f.web.URL, "http://")
	want(t, r, http.StatusOK, `<svg class="qr"`, "http://"+host+"/", "Chat on Kitchen box", "guest.box.test",
		"rooms.box.test", "#general", "Port (TLS)</dt><dd>6697", "Port (plain)</dt><dd>6667", "port 5222", `class="noprint"`)
}

func TestEventAPI(t *testing.T) {
	f := newFixture(t)
	b := f.setUp()
	tok := newToken(t, b, "event")
	status, body, _ := f.call("GET", "/api/v1/event", "", "")
	wantErr(t, status, body, http.StatusUnauthorized, "")
	status, body, _ = f.call("GET", "/api/v1/event", tok, "")
	if status != 200 || body["running"] != false || body["enabled"] != false || body["guests_closed"] != false || body["welcome"] != "Hello guests" {
		t.Fatalf("GET event: %d %v", status, body)
	}
	status, body, _ = f.call("POST", "/api/v1/event", tok, `{"enabled": true, "rooms": ["general", "games"]}`)
	if status != 200 || body["saved"] != true || body["restarting"] != false {
		t.Fatalf("POST event: %d %v", status, body)
	}
	_, saved := f.box.lockedSaved()
	if saved["event.enabled"] != "true" || saved["event.rooms"] != `["general", "games"]` || saved["event.welcome"] != "Hello guests" {
		t.Fatalf("saved %q", saved)
	}
	status, body, _ = f.call("POST", "/api/v1/event", tok, `{"rooms": ["9lives"]}`)
	wantErr(t, status, body, http.StatusBadRequest, "rooms")
	status, body, _ = f.call("POST", "/api/v1/event", tok, `{"enabled": "yes"}`)
	wantErr(t, status, body, http.StatusBadRequest, "enabled")
	status, body, _ = f.call("DELETE", "/api/v1/event", tok, "")
	wantErr(t, status, body, http.StatusMethodNotAllowed, "")

	core := f.box.core
	_, disc := openGuest(t, core, "visitor")
	status, body, _ = f.call("POST", "/api/v1/event/close-guests", "", "")
	wantErr(t, status, body, http.StatusUnauthorized, "")
	status, body, _ = f.call("POST", "/api/v1/event/close-guests", tok, "")
	if status != 200 || body["guests_closed"] != true || body["disconnected"] != float64(1) || *disc != 1 || !core.GuestsClosed() {
		t.Fatalf("close guests: %d %v (disconnects %d)", status, body, *disc)
	}
	status, body, _ = f.call("POST", "/api/v1/event/open-guests", tok, "")
	if status != 200 || core.GuestsClosed() {
		t.Fatalf("open guests: %d %v", status, body)
	}
	status, body, _ = f.call("POST", "/api/v1/event/end", tok, "")
	if status != 200 || body["ended"] != true || body["messages_deleted"] != float64(0) {
		t.Fatalf("end: %d %v", status, body)
	}
	status, body, _ = f.call("POST", "/api/v1/event", tok, `{"enabled": false, "restart": true}`)
	if status != 200 || body["restarting"] != true {
		t.Fatalf("POST event with restart: %d %v", status, body)
	}
	f.box.mu.Lock()
	restarts := f.box.restarts
	f.box.mu.Unlock()
	if restarts != 1 {
		t.Fatalf("%d restarts, want 1", restarts)
	}
}
