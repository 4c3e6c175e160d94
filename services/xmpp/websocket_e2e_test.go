package xmpp

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

var webListenRe = regexp.MustCompile(`msg=listening door=web addr=(\S+) url=(\S+)`)

// TestWebSocketE2E: the real binary serves XEP-0156 host-meta, XMPP over
// WebSocket and IRC over WebSocket on the web admin's HTTPS listener
// (before the web admin is set up); a guest logs in anonymously; a
// WebSocket XMPP client and a WebSocket IRC client talk to each other
// through it.
func TestWebSocketE2E(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"}, "web.listen=127.0.0.1:0", "web.https=true", "registration.guests=true")
	m := webListenRe.FindStringSubmatch(b.logText())
	if m == nil || !strings.HasPrefix(m[2], "https://") {
		t.Fatalf("no HTTPS web listener in the log:\n%s", b.logText())
	}
	addr := m[1]
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: b.tlsConfig()}}
	t.Cleanup(hc.CloseIdleConnections)

	get := func(path string) (string, http.Header) {
		t.Helper()
		resp, err := hc.Get("https://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s %s", path, resp.Status, body)
		}
		return string(body), resp.Header
	}
	wantURL := "wss://" + addr + "/xmpp-websocket"
	xrd, h := get("/.well-known/host-meta")
	if !strings.Contains(xrd, `<Link rel='urn:xmpp:alt-connections:websocket' href='`+wantURL+`'/>`) || h.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("host-meta = %s (headers %v)", xrd, h)
	}
	js, _ := get("/.well-known/host-meta.json")
	var doc struct{ Links []struct{ Rel, Href string } }
	if err := json.Unmarshal([]byte(js), &doc); err != nil || len(doc.Links) != 1 ||
		doc.Links[0].Rel != "urn:xmpp:alt-connections:websocket" || doc.Links[0].Href != wantURL {
		t.Fatalf("host-meta.json = %s (%v)", js, err)
	}

	dial := func(path, proto string) *websocket.Conn {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, "wss://"+addr+path, &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{proto}})
		if err != nil {
			t.Fatalf("dial %s: %v", path, err)
		}
		if ws.Subprotocol() != proto {
			t.Fatalf("%s: subprotocol %q", path, ws.Subprotocol())
		}
		t.Cleanup(func() { ws.CloseNow() })
		return ws
	}
	alice := &wsClient{t: t, ws: dial("/xmpp-websocket", "xmpp")}
	alice.ws.SetReadLimit(1 << 20)
	_, f := alice.open()
	if mechs := strings.Join(mechanismsOf(f), " "); mechs != "SCRAM-SHA-256 SCRAM-SHA-1 PLAIN" {
		t.Fatalf("mechanisms over wss = %q", mechs)
	}
	// registration.guests reaches the XMPP door: the guest host takes
	// anonymous logins.
	guest := &wsClient{t: t, ws: dial("/xmpp-websocket", "xmpp")}
	guest.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="guest.%s" version="1.0"/>`, boxDomain)
	if op := guest.next(); op.Get("from") != "guest."+boxDomain {
		t.Fatalf("guest host's open = %s", op)
	}
	if mechs := strings.Join(mechanismsOf(guest.next()), " "); mechs != "ANONYMOUS" {
		t.Fatalf("mechanisms on the guest host = %q", mechs)
	}
	guest.send(`<auth xmlns="%s" mechanism="ANONYMOUS"/>`, nsSASL)
	if ok := guest.next(); !ok.Is(nsSASL, "success") {
		t.Fatalf("anonymous login: %s", ok)
	}

	alice = &wsClient{t: t, ws: dial("/xmpp-websocket", "xmpp")}
	alice.ws.SetReadLimit(1 << 20)
	alice.login("alice", "browser", "SCRAM-SHA-256")
	alice.send(`<presence xmlns="jabber:client"/>`)

	bob := dial("/irc-websocket", "text.ircv3.net")
	ircSend := func(line string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := bob.Write(ctx, websocket.MessageText, []byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	ircExpect := func(what string, pred func(string) bool) string {
		t.Helper()
		for range 200 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			typ, msg, err := bob.Read(ctx)
			cancel()
			if err != nil {
				t.Fatalf("IRC: no %s: %v", what, err)
			}
			line := string(msg)
			if typ != websocket.MessageText || strings.ContainsAny(line, "\r\n") {
				t.Fatalf("IRC message %q (type %v)", line, typ)
			}
			if strings.HasPrefix(line, "PING ") {
				ircSend("PONG " + line[5:])
			}
			if pred(line) {
				return line
			}
		}
		t.Fatalf("IRC: no %s in 200 lines", what)
		return ""
	}
	ircSend("PASS bob:" + password("bob"))
	ircSend("NICK bob")
	ircSend("USER bob 0 * :Bob")
	ircExpect("the welcome", func(l string) bool { return strings.Contains(l, " 001 bob ") })

	alice.send(`<message xmlns="jabber:client" to="bob@%s" type="chat" id="e1"><body>from a browser</body></message>`, boxDomain)
	if l := ircExpect("alice's message", func(l string) bool { return strings.Contains(l, "PRIVMSG bob ") }); !strings.HasPrefix(l, ":alice!") || !strings.HasSuffix(l, " :from a browser") {
		t.Fatalf("bob got %q", l)
	}
	ircSend("PRIVMSG alice :from another browser")
	msg := alice.expect("bob's answer", func(e *Element) bool { return e.Is(nsClient, "message") && e.ChildText(nsClient, "body") != "" })
	if msg.ChildText(nsClient, "body") != "from another browser" {
		t.Fatalf("alice got %s", msg)
	}
}

// TestHostMeta: the scheme follows the request's TLS, the host its Host
// header; a Host that is no host name is refused.
func TestHostMeta(t *testing.T) {
	h := HostMeta()
	for _, tc := range []struct {
		path, host string
		tls        bool
		want       string
	}{
		{HostMetaPath, "chatbox.local", false, `href='ws://chatbox.local/xmpp-websocket'`},
		{HostMetaPath, "10.0.0.2:8080", true, `href='wss://10.0.0.2:8080/xmpp-websocket'`},
		{HostMetaJSONPath, "[fe80::1]:8443", true, `{"links":[{"href":"wss://[fe80::1]:8443/xmpp-websocket","rel":"urn:xmpp:alt-connections:websocket"}]}`},
	} {
		r := httptest.NewRequest("GET", "http://x"+tc.path, nil)
		r.Host = tc.host
		if !tc.tls {
			r.TLS = nil
		} else if r.TLS == nil {
			r = httptest.NewRequest("GET", "https://x"+tc.path, nil)
			r.Host = tc.host
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s for %s: %d %s, want %s", tc.path, tc.host, w.Code, w.Body, tc.want)
		}
	}
	r := httptest.NewRequest("GET", "http://x"+HostMetaPath, nil)
	r.Host = "evil'/><x"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Errorf("bad Host: %d %s", w.Code, w.Body)
	}
}
