package xmpp

import (
	"encoding/json"
	"net/http"
	"strings"
)

// This file is XEP-0156 (Discovering Alternative XMPP Connection
// Methods), its HTTP lookup only: /.well-known/host-meta (XRD, RFC 6415)
// and /.well-known/host-meta.json (JRD) list the RFC 7395 WebSocket
// endpoint as urn:xmpp:alt-connections:websocket, with the scheme (ws or
// wss) and host the request came with. BOSH is not served, so not listed;
// the DNS TXT lookup is left out (the box has no DNS zone of its own).

const (
	// HostMetaPath and HostMetaJSONPath are where the web listener mounts
	// HostMeta.
	HostMetaPath     = "/.well-known/host-meta"
	HostMetaJSONPath = "/.well-known/host-meta.json"
	relWebSocket     = "urn:xmpp:alt-connections:websocket"
)

// HostMeta answers both host-meta documents (XRD at HostMetaPath, JSON
// at HostMetaJSONPath) for the WebSocket served at WebSocketPath on the
// same listener.
func HostMeta() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "host-meta is read with GET", http.StatusMethodNotAllowed)
			return
		}
		host := r.Host
		if !validHost(host) {
			http.Error(w, "the request's Host header is not a host name: ask for this page by the box's address", http.StatusBadRequest)
			return
		}
		scheme := "ws"
		if r.TLS != nil {
			scheme = "wss"
		}
		url := scheme + "://" + host + WebSocketPath
		// Web clients on other origins read it too (XEP-0156 §3).
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if strings.HasSuffix(r.URL.Path, ".json") {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"links": []map[string]string{{"rel": relWebSocket, "href": url}}})
			return
		}
		w.Header().Set("Content-Type", "application/xrd+xml; charset=utf-8")
		var b strings.Builder
		b.WriteString(`<?xml version='1.0' encoding='utf-8'?>` + "\n" +
			`<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>` + "\n" +
			`  <Link rel='` + relWebSocket + `' href='`)
		escape(&b, url)
		b.WriteString("'/>\n</XRD>\n")
		w.Write([]byte(b.String()))
	})
}

// validHost accepts a host name or IP literal with an optional port,
// nothing a document could be tricked with.
func validHost(h string) bool {
	if h == "" || len(h) > 255 {
		return false
	}
	for _, c := range h {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_':
		default:
			return false
		}
	}
	return true
}
