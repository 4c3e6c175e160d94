package appliance

import (
	"log/slog"
	"net/http"
	"testing"
)

// TestWebChatMounts: the web chat's page and files join the doors' mounts
// on the web listener, which keep theirs.
func TestWebChatMounts(t *testing.T) {
	door := http.NotFoundHandler()
	cfg := Config{Domain: "box.test", Name: "Box"}
	cfg.Rooms.Default = []string{"general"}
	h := webChatHandler(cfg, slog.New(slog.DiscardHandler))
	m := webChatMounts(map[string]http.Handler{"/xmpp-websocket": door}, h)
	for _, p := range []string{"/chat/", "/chat/chatbox.js", "/chat/chatbox.css"} {
		if m[p] != h {
			t.Errorf("%s not mounted", p)
		}
	}
	if len(m) != len(h.Paths())+1 {
		t.Errorf("%d mounts for %d web chat paths and one door", len(m), len(h.Paths()))
	}
	if _, ok := m["/xmpp-websocket"]; !ok {
		t.Error("the door's mount is gone")
	}
}
