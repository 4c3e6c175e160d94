package appliance

import (
	"log/slog"
	"net/http"

	"chatbox/webchat"
)

// webChatHandler is the web chat (Converse.js, package webchat)
// configured for this box: its domain, its default rooms, guests when
// registration.guests is on. It is mounted at webchat.Prefix on the web
// listener (webChatMounts); it is also meant as the listener's home page
// ("/": webadmin.Config.Home where the web admin has one).
func webChatHandler(cfg Config, log *slog.Logger) *webchat.Handler {
	return webchat.New(webchat.Config{
		Name:   cfg.Name,
		Domain: cfg.Domain,
		Rooms:  cfg.Rooms.Default,
		Guests: cfg.GuestsAllowed(), // event mode lets guests in too
		Log:    log.With("service", "webchat"),
	})
}

// webChatMounts adds the web chat's pages and files (everything under
// webchat.Prefix, a prefix mount) to mounts.
func webChatMounts(mounts map[string]http.Handler, h *webchat.Handler) map[string]http.Handler {
	mounts[webchat.Prefix] = h
	return mounts
}
