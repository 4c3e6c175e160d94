package appliance

import (
	"net/http"

	"chatbox/services/irc"
	"chatbox/services/upload"
	"chatbox/services/xmpp"
)

// doorMounts are the doors' endpoints on the web listener: XMPP over
// WebSocket (RFC 7395) with its XEP-0156 discovery documents, and IRC
// over WebSocket, for the doors the settings switch on; and the upload
// service's paths, where WebSocket clients (the web chat) get their
// XEP-0363 slots: on the origin their page came from.
func doorMounts(svcs []Service) map[string]http.Handler {
	m := map[string]http.Handler{}
	for _, s := range svcs {
		switch d := s.(type) {
		case *xmpp.Server:
			m[xmpp.WebSocketPath] = http.HandlerFunc(d.ServeWebSocket)
			m[xmpp.HostMetaPath] = xmpp.HostMeta()
			m[xmpp.HostMetaJSONPath] = xmpp.HostMeta()
		case *irc.Server:
			m[irc.WebSocketPath] = http.HandlerFunc(d.ServeWebSocket)
		case *upload.Service:
			m["/upload/"] = d.Handler()
		}
	}
	return m
}
