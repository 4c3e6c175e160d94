package webadmin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/ergochat/irc-go/ircmsg"
)

// TestEventModeE2E runs event mode through the real binary: the admin
// turns it on (Event page, restart), an IRC guest and an XMPP guest (over
// the web listener's WebSocket, as the web chat does) join #general and
// get the welcome; the admin closes guest access through the API: both
// are disconnected and new guests are refused on both doors; ending the
// event removes the guests' messages from history and keeps alice's.
func TestEventModeE2E(t *testing.T) {
	b := startE2EBox(t)
	const pw = "event admin password"
	const welcome = "Welcome to the LAN party"
	a := newAdmin(t, b.web())
	a.setUp(b.setupCode(), pw)
	a.get("/admin/event")
	a.wantRedirect(a.post("/admin/event", "enabled", "on", "welcome", welcome, "rooms", "general"), "/admin/event?done=saved")
	a.want(a.get("/admin/event?done=saved"), http.StatusOK, "Restart now")
	a.want(a.post("/admin/restart"), http.StatusOK)
	b.waitRestarted(t)
	a = newAdmin(t, b.web())
	a.login(pw)
	a.want(a.get("/admin/event"), http.StatusOK, "Event mode is <strong>on</strong>", `id="guest-access">open`)
	a.get("/admin/tokens")
	m := regexp.MustCompile(`<code id="new-token">([^<]+)</code>`).FindStringSubmatch(a.post("/admin/tokens/create", "name", "event").body)
	if m == nil {
		t.Fatal("no API token shown")
	}
	api := func(method, path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, b.web()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+m[1])
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := (&http.Client{Timeout: e2eWait}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %v %v", method, path, resp.StatusCode, out, err)
		}
		return out
	}
	api("POST", "/api/v1/accounts", `{"name": "alice", "password": "password-alice"}`)
	if ev := api("GET", "/api/v1/event", ""); ev["running"] != true || ev["guests_closed"] != false {
		t.Fatalf("GET /api/v1/event: %v", ev)
	}

	alice := ircLogin(t, b, "alice", "password-alice")
	alice.send("JOIN #general")
	alice.expect("alice's JOIN", func(m ircmsg.Message) bool { return m.Command == "366" })

	// The IRC guest: no login; the welcome is a NOTICE to the channel.
	ig := ircGuest(t, b, "visitor")
	ig.send("JOIN #general")
	ig.expect("the welcome NOTICE", func(m ircmsg.Message) bool {
		return m.Command == "NOTICE" && len(m.Params) == 2 && m.Params[0] == "#general" && m.Params[1] == welcome
	})
	ig.send("JOIN #other")
	ig.expect("a refusal outside the event's rooms", func(m ircmsg.Message) bool {
		return m.Command == "FAIL" && len(m.Params) == 4 && m.Params[2] == "#other" && strings.Contains(m.Params[3], "only the event's rooms (#general)")
	})

	// The XMPP guest over the WebSocket: anonymous on guest.<domain>.
	xg := dialXMPPWS(t, b)
	if !xg.anonymous() {
		t.Fatalf("anonymous login refused")
	}
	xg.send(`<iq xmlns="jabber:client" type="set" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>`)
	xg.until("bind result", func(s string) bool { return strings.Contains(s, `id="b1"`) && strings.Contains(s, `type="result"`) })
	xg.send(`<presence xmlns="jabber:client" to="general@rooms.` + e2eDomain + `/Guesty"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	xg.until("the welcome from the room", func(s string) bool {
		return strings.Contains(s, `from="general@rooms.`+e2eDomain+`"`) && strings.Contains(s, "<body>"+welcome+"</body>")
	})

	// Everyone speaks; alice sees both guests.
	ig.send("PRIVMSG #general :irc guest words")
	xg.send(`<message xmlns="jabber:client" type="groupchat" to="general@rooms.` + e2eDomain + `"><body>xmpp guest words</body></message>`)
	xg.until("the reflection of the XMPP guest's message", func(s string) bool { return strings.Contains(s, "xmpp guest words") })
	got := map[string]bool{}
	alice.expect("both guests' lines", func(m ircmsg.Message) bool {
		if m.Command == "PRIVMSG" && len(m.Params) == 2 {
			got[m.Params[1]] = true
		}
		return got["irc guest words"] && got["xmpp guest words"]
	})
	alice.send("PRIVMSG #general :alice words")
	ig.expect("alice's line", func(m ircmsg.Message) bool {
		return m.Command == "PRIVMSG" && len(m.Params) == 2 && m.Params[1] == "alice words"
	})

	// Close guest access: both guests go, new ones are refused.
	if r := api("POST", "/api/v1/event/close-guests", ""); r["disconnected"] != float64(2) {
		t.Fatalf("close-guests: %v", r)
	}
	ig.waitGone()
	xg.waitGone()
	late := ircGuest(t, b, "late")
	late.expect("the refusal", func(m ircmsg.Message) bool {
		return m.Command == "NOTICE" && len(m.Params) == 2 && strings.Contains(m.Params[1], "guest access is closed")
	})
	if xl := dialXMPPWS(t, b); xl.anonymous() {
		t.Fatal("an XMPP guest logged in while guest access is closed")
	}

	// End the event: the guests' two lines are gone, alice's stays.
	if r := api("POST", "/api/v1/event/end", ""); r["messages_deleted"] != float64(2) {
		t.Fatalf("end: %v", r)
	}
	alice2 := ircLogin(t, b, "alice", "password-alice")
	alice2.send("JOIN #general")
	alice2.send("PING :replayed")
	var lines []string
	alice2.expect("the replay", func(m ircmsg.Message) bool {
		if m.Command == "PRIVMSG" {
			lines = append(lines, m.Params[len(m.Params)-1])
		}
		return m.Command == "PONG"
	})
	if strings.Join(lines, "|") != "alice words" {
		t.Fatalf("history after the event: %q, want only alice's line", lines)
	}
}

// ircGuest connects without logging in; it returns after 001.
func ircGuest(t *testing.T, b *e2eBox, nick string) *ircClient {
	t.Helper()
	b.mu.Lock()
	addr := b.irc
	b.mu.Unlock()
	nc, err := net.DialTimeout("tcp", addr, e2eWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &ircClient{t: t, nc: nc, r: bufio.NewReader(nc)}
	c.send("NICK " + nick)
	c.send("USER " + nick + " 0 * :" + nick)
	c.expect("001", func(m ircmsg.Message) bool { return m.Command == "001" })
	return c
}

// waitGone reads until the server ends the connection (ERROR, then EOF).
func (c *ircClient) waitGone() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(e2eWait))
	for range 1000 {
		if _, err := c.r.ReadString('\n'); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				return
			}
			c.t.Fatalf("IRC guest not disconnected: %v", err)
		}
	}
	c.t.Fatal("IRC guest not disconnected after 1000 lines")
}

// wsXMPP is a raw XMPP client over RFC 7395 WebSocket: one stanza a
// message.
type wsXMPP struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialXMPPWS(t *testing.T, b *e2eBox) *wsXMPP {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	url := "ws" + strings.TrimPrefix(b.web(), "http") + "/xmpp-websocket"
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"xmpp"}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	return &wsXMPP{t: t, ws: ws}
}

func (c *wsXMPP) send(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next message, or err when the stream ended.
func (c *wsXMPP) read() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e2eWait)
	defer cancel()
	_, msg, err := c.ws.Read(ctx)
	return string(msg), err
}

func (c *wsXMPP) until(what string, match func(string) bool) string {
	c.t.Helper()
	var seen []string
	for range 500 {
		s, err := c.read()
		if err != nil {
			c.t.Fatalf("XMPP: waiting for %s: %v; got:\n%s", what, err, strings.Join(seen, "\n"))
		}
		seen = append(seen, s)
		if match(s) {
			return s
		}
	}
	c.t.Fatalf("XMPP: no %s in 500 stanzas", what)
	return ""
}

// anonymous opens a stream to the guest host and tries SASL ANONYMOUS;
// on success it restarts the stream and reports true.
func (c *wsXMPP) anonymous() bool {
	c.t.Helper()
	open := `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="guest.` + e2eDomain + `" version="1.0"/>`
	c.send(open)
	c.until("SASL features", func(s string) bool { return strings.Contains(s, "<mechanism>ANONYMOUS</mechanism>") })
	c.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="ANONYMOUS"/>`)
	r := c.until("SASL outcome", func(s string) bool { return strings.Contains(s, "<success") || strings.Contains(s, "<failure") })
	if !strings.Contains(r, "<success") {
		return false
	}
	c.send(open)
	c.until("bind feature", func(s string) bool { return strings.Contains(s, "urn:ietf:params:xml:ns:xmpp-bind") })
	return true
}

// waitGone reads until the server closes the stream.
func (c *wsXMPP) waitGone() {
	c.t.Helper()
	for range 500 {
		s, err := c.read()
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) || errors.Is(err, io.EOF) {
				return
			}
			c.t.Fatalf("XMPP guest not disconnected: %v", err)
		}
		if strings.Contains(s, "<close") {
			return
		}
	}
	c.t.Fatal("XMPP guest not disconnected after 500 stanzas")
}
