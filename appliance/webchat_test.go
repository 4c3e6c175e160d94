package appliance

import (
	"log/slog"
	"net/http"
	"testing"
)

// TestWebChatMounts: the web chat's page and files (a prefix mount) join
// the doors' mounts on the web listener, which keep theirs.
func TestWebChatMounts(t *testing.T) {
	door := http.NotFoundHandler()
	cfg := Config{Domain: "box.test", Name: "Box"}
	cfg.Rooms.Default = []string{"general"}
	h := webChatHandler(cfg, slog.New(slog.DiscardHandler))
	m := webChatMounts(map[string]http.Handler{"/xmpp-websocket": door}, h)
	if m["/chat/"] != h || len(m) != 2 {
		t.Errorf("mounts %v: want the web chat under /chat/ and the door", m)
	}
	if _, ok := m["/xmpp-websocket"]; !ok {
		t.Error("the door's mount is gone")
	}
}
