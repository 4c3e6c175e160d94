package webadmin_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
)

// eventBox starts the real binary with event mode on (rooms: general)
// and returns it with an API caller holding a token. It creates alice
// (IRC) and bob (XMPP), both box admins: room moderators everywhere.
func eventBox(t *testing.T) (*e2eBox, func(method, path, body string) (int, map[string]any)) {
	t.Helper()
	b := startE2EBox(t)
	const pw = "moderation admin password"
	a := newAdmin(t, b.web())
	a.setUp(b.setupCode(), pw)
	a.get("/admin/tokens")
	m := regexp.MustCompile(`<code id="new-token">([^<]+)</code>`).FindStringSubmatch(a.post("/admin/tokens/create", "name", "mod").body)
	if m == nil {
		t.Fatal("no API token shown")
	}
	api := func(method, path, body string) (int, map[string]any) {
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
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if st, r := api("POST", "/api/v1/event", `{"enabled": true, "rooms": ["general"], "welcome": "hi", "restart": true}`); st != 200 {
		t.Fatalf("event on: %d %v", st, r)
	}
	b.waitRestarted(t)
	for _, acct := range []string{"alice", "bob"} {
		if st, r := api("POST", "/api/v1/accounts", `{"name": "`+acct+`", "password": "password-`+acct+`", "admin": true}`); st/100 != 2 {
			t.Fatalf("create %s: %d %v", acct, st, r)
		}
	}
	return b, api
}

// xmppAccountWS logs an account in over the WebSocket (PLAIN: loopback)
// and binds resource.
func xmppAccountWS(t *testing.T, b *e2eBox, account, password, resource string) *wsXMPP {
	t.Helper()
	c := dialXMPPWS(t, b)
	open := `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="` + e2eDomain + `" version="1.0"/>`
	c.send(open)
	c.until("SASL features", func(s string) bool { return strings.Contains(s, "<mechanism>PLAIN</mechanism>") })
	c.send(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">` +
		base64.StdEncoding.EncodeToString([]byte("\x00"+account+"\x00"+password)) + `</auth>`)
	if r := c.until("SASL outcome", func(s string) bool { return strings.Contains(s, "<success") || strings.Contains(s, "<failure") }); !strings.Contains(r, "<success") {
		t.Fatalf("%s: %s", account, r)
	}
	c.send(open)
	c.until("bind feature", func(s string) bool { return strings.Contains(s, "urn:ietf:params:xml:ns:xmpp-bind") })
	c.bind(resource)
	return c
}

// bind binds resource and returns the bound JID.
func (c *wsXMPP) bind(resource string) string {
	c.t.Helper()
	res := ""
	if resource != "" {
		res = "<resource>" + resource + "</resource>"
	}
	c.send(`<iq xmlns="jabber:client" type="set" id="bind1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind">` + res + `</bind></iq>`)
	r := c.until("bind result", func(s string) bool { return strings.Contains(s, `id="bind1"`) })
	m := regexp.MustCompile(`<jid>([^<]+)</jid>`).FindStringSubmatch(r)
	if m == nil {
		c.t.Fatalf("bind: %s", r)
	}
	return m[1]
}

// joinRoom joins general under nick and waits for the self-presence.
func (c *wsXMPP) joinRoom(nick string) {
	c.t.Helper()
	c.send(`<presence xmlns="jabber:client" to="general@rooms.` + e2eDomain + `/` + nick + `"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="0"/></x></presence>`)
	c.until(nick+"'s self-presence", func(s string) bool {
		return strings.Contains(s, `from="general@rooms.`+e2eDomain+`/`+nick+`"`) && strings.Contains(s, `code="110"`)
	})
}

func (c *wsXMPP) say(body string) {
	c.send(`<message xmlns="jabber:client" type="groupchat" to="general@rooms.` + e2eDomain + `"><body>` + body + `</body></message>`)
}

// admin sends one muc#admin item and returns the IQ's answer.
func (c *wsXMPP) admin(id, item string) string {
	c.t.Helper()
	c.send(`<iq xmlns="jabber:client" type="set" id="` + id + `" to="general@rooms.` + e2eDomain + `"><query xmlns="http://jabber.org/protocol/muc#admin">` + item + `</query></iq>`)
	return c.until("the answer to "+id, func(s string) bool { return strings.Contains(s, `id="`+id+`"`) && strings.HasPrefix(s, "<iq") })
}

func isNumeric(code string) func(ircmsg.Message) bool {
	return func(m ircmsg.Message) bool { return m.Command == code }
}

// TestGuestModerationE2E: room moderators on both doors mute, kick and
// ban guests of both doors, through the real binary; IRC shows the XMPP
// guest by the nickname it chose; the admin locks a room and wipes a
// guest (XEP-0425 notice to XMPP occupants, gone from IRC history), and
// closed guest access survives a restart.
func TestGuestModerationE2E(t *testing.T) {
	b, api := eventBox(t)
	alice := ircLogin(t, b, "alice", "password-alice")
	alice.send("JOIN #general")
	alice.expect("alice's JOIN", isNumeric("366"))
	bob := xmppAccountWS(t, b, "bob", "password-bob", "web")
	bob.joinRoom("bob")

	// The XMPP guest binds its nickname as resource: that names it.
	xg := dialXMPPWS(t, b)
	if !xg.anonymous() {
		t.Fatal("anonymous login refused")
	}
	if j := xg.bind("Guesty"); j != "guesty@guest."+e2eDomain+"/Guesty" {
		t.Fatalf("guest bound %q", j)
	}
	xg.joinRoom("Guesty")
	alice.expect("the XMPP guest's JOIN under its nick", func(m ircmsg.Message) bool {
		return m.Command == "JOIN" && m.Source == "guesty!guest@xmpp."+e2eDomain
	})
	// A guest asking for an account's name or a taken one gets a random name.
	other := dialXMPPWS(t, b)
	if !other.anonymous() {
		t.Fatal("anonymous login refused")
	}
	if j := other.bind("alice"); !strings.HasPrefix(j, "guest-") {
		t.Fatalf("a guest asking for an account's name bound %q", j)
	}
	ig := ircGuest(t, b, "visitor")
	ig.send("JOIN #general")
	ig.expect("the IRC guest's JOIN", isNumeric("366"))
	bob.until("the IRC guest's arrival", func(s string) bool { return strings.Contains(s, `from="general@rooms.`+e2eDomain+`/visitor"`) })

	// IRC operator mutes (+m): guests of both doors become visitors.
	alice.send("MODE #general +m")
	alice.expect("+m", func(m ircmsg.Message) bool { return m.Command == "MODE" && len(m.Params) >= 2 && m.Params[1] == "+m" })
	xg.until("its loss of voice", func(s string) bool { return strings.Contains(s, `role="visitor"`) })
	ig.send("PRIVMSG #general :muted?")
	ig.expect("ERR_CANNOTSENDTOCHAN", isNumeric("404"))
	xg.say("muted too?")
	if r := xg.until("the refusal", func(s string) bool { return strings.HasPrefix(s, "<message") && strings.Contains(s, `type="error"`) }); !strings.Contains(r, "forbidden") {
		t.Fatalf("muted XMPP guest got %s", r)
	}
	// XMPP moderator gives the IRC guest voice, then takes it back.
	if r := bob.admin("voice", `<item nick="visitor" role="participant"/>`); !strings.Contains(r, `type="result"`) {
		t.Fatalf("voice: %s", r)
	}
	ig.expect("+v", func(m ircmsg.Message) bool { return m.Command == "MODE" && len(m.Params) >= 3 && m.Params[1] == "+v" })
	ig.send("PRIVMSG #general :voiced line")
	alice.expect("the voiced line", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" && m.Params[1] == "voiced line" })
	if r := bob.admin("mute", `<item nick="visitor" role="visitor"/>`); !strings.Contains(r, `type="result"`) {
		t.Fatalf("mute: %s", r)
	}
	ig.expect("-v", func(m ircmsg.Message) bool { return m.Command == "MODE" && len(m.Params) >= 3 && m.Params[1] == "-v" })
	ig.send("PRIVMSG #general :still muted?")
	ig.expect("ERR_CANNOTSENDTOCHAN", isNumeric("404"))
	alice.send("MODE #general -m")
	alice.expect("-m", func(m ircmsg.Message) bool { return m.Command == "MODE" && len(m.Params) >= 2 && m.Params[1] == "-m" })
	xg.until("its voice back", func(s string) bool { return strings.Contains(s, `role="participant"`) })

	ig.send("PRIVMSG #general :spam one")
	xg.say("spam two")
	alice.expect("the XMPP guest's line under its nick", func(m ircmsg.Message) bool {
		return m.Command == "PRIVMSG" && m.Source == "guesty!guest@xmpp."+e2eDomain && m.Params[1] == "spam two"
	})

	// The admin wipes the XMPP guest: bob gets a XEP-0425 notice, IRC
	// history no longer has the line.
	bob.until("the guest's line", func(s string) bool { return strings.Contains(s, "spam two") })
	st, r := api("POST", "/api/v1/event/guests/guesty/wipe", "")
	if st != 200 || r["messages_deleted"] != float64(1) {
		t.Fatalf("wipe: %d %v", st, r)
	}
	n := bob.until("the moderation notice", func(s string) bool { return strings.Contains(s, "urn:xmpp:message-moderate:1") })
	if !strings.Contains(n, `<retract xmlns="urn:xmpp:message-retract:1"`) || !strings.Contains(n, `urn:xmpp:fasten:0`) {
		t.Fatalf("notice %s", n)
	}
	alice2 := ircLogin(t, b, "alice", "password-alice")
	alice2.send("CAP REQ :draft/chathistory batch server-time message-tags")
	alice2.send("CHATHISTORY LATEST #general * 50")
	var lines []string
	alice2.expect("the history batch's end", func(m ircmsg.Message) bool {
		if m.Command == "PRIVMSG" {
			lines = append(lines, m.Params[1])
		}
		return m.Command == "BATCH" && strings.HasPrefix(m.Params[0], "-")
	})
	if strings.Join(lines, "|") != "voiced line|spam one" {
		t.Fatalf("history after the wipe: %q, want only the IRC guest's line", lines)
	}
	st, r = api("GET", "/api/v1/event/guests", "")
	if gs, _ := r["guests"].([]any); st != 200 || len(gs) != 3 {
		t.Fatalf("guests: %d %v", st, r)
	}

	// Kicks: the IRC operator kicks the XMPP guest by the nick IRC shows,
	// the XMPP moderator kicks the IRC guest.
	alice.send("KICK #general guesty :behave")
	if p := xg.until("its kick", func(s string) bool {
		return strings.Contains(s, `type="unavailable"`) && strings.Contains(s, `code="110"`)
	}); !strings.Contains(p, `code="307"`) {
		t.Fatalf("kick presence %s", p)
	}
	if r := bob.admin("kick", `<item nick="visitor" role="none"><reason>behave</reason></item>`); !strings.Contains(r, `type="result"`) {
		t.Fatalf("kick: %s", r)
	}
	ig.expect("its KICK", func(m ircmsg.Message) bool { return m.Command == "KICK" && m.Params[1] == "visitor" })

	// Bans: the IRC operator bans the IRC guest by mask, the XMPP
	// moderator bans the XMPP guest by its guest JID; neither gets back in.
	alice.send("MODE #general +b visitor!*@*")
	alice.expect("+b", func(m ircmsg.Message) bool { return m.Command == "MODE" && len(m.Params) >= 3 && m.Params[1] == "+b" })
	ig.send("JOIN #general")
	ig.expect("ERR_BANNEDFROMCHAN", isNumeric("474"))
	xg.joinRoom("Guesty")
	if r := bob.admin("ban", `<item jid="guesty@guest.`+e2eDomain+`" affiliation="outcast"><reason>spam</reason></item>`); !strings.Contains(r, `type="result"`) {
		t.Fatalf("ban: %s", r)
	}
	if p := xg.until("its ban", func(s string) bool {
		return strings.Contains(s, `type="unavailable"`) && strings.Contains(s, `code="110"`)
	}); !strings.Contains(p, `code="301"`) {
		t.Fatalf("ban presence %s", p)
	}
	alice.expect("the ban on IRC", func(m ircmsg.Message) bool {
		return m.Command == "MODE" && len(m.Params) >= 3 && m.Params[2] == "~guesty"
	})
	xg.send(`<presence xmlns="jabber:client" to="general@rooms.` + e2eDomain + `/Guesty"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	if p := xg.until("the refusal", func(s string) bool { return strings.HasPrefix(s, "<presence") && strings.Contains(s, `type="error"`) }); !strings.Contains(p, "forbidden") {
		t.Fatalf("banned guest rejoining: %s", p)
	}
	// An IRC mask ban by the nick IRC shows reaches an XMPP guest too.
	alice.send("MODE #general +b guest-*!*@*")
	alice.expect("+b", func(m ircmsg.Message) bool {
		return m.Command == "MODE" && len(m.Params) >= 3 && m.Params[2] == "guest-*!*@*"
	})
	other.send(`<presence xmlns="jabber:client" to="general@rooms.` + e2eDomain + `/Other"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	if p := other.until("the refusal", func(s string) bool { return strings.HasPrefix(s, "<presence") }); !strings.Contains(p, `type="error"`) || !strings.Contains(p, "forbidden") {
		t.Fatalf("XMPP guest banned by an IRC mask joined: %s", p)
	}

	// Lock: a new guest cannot join; unlock lets it.
	if st, r := api("POST", "/api/v1/rooms/general/lock", `{"locked": true}`); st != 200 || r["locked"] != true {
		t.Fatalf("lock: %d %v", st, r)
	}
	late := ircGuest(t, b, "late")
	late.send("JOIN #general")
	late.expect("the refusal", func(m ircmsg.Message) bool {
		return m.Command == "FAIL" && len(m.Params) == 4 && m.Params[2] == "#general" && strings.Contains(m.Params[3], "locked")
	})
	if st, _ := api("POST", "/api/v1/rooms/general/lock", `{"locked": false}`); st != 200 {
		t.Fatalf("unlock: %d", st)
	}
	late.send("JOIN #general")
	late.expect("its JOIN", isNumeric("366"))

	// Closed guest access survives a restart.
	if st, r := api("POST", "/api/v1/event/close-guests", ""); st != 200 || r["guests_closed"] != true {
		t.Fatalf("close: %d %v", st, r)
	}
	if st, r := api("POST", "/api/v1/event", `{"restart": true}`); st != 200 {
		t.Fatalf("restart: %d %v", st, r)
	}
	b.waitRestarted(t)
	if st, r := api("GET", "/api/v1/event", ""); st != 200 || r["guests_closed"] != true || r["running"] != true {
		t.Fatalf("after the restart: %d %v", st, r)
	}
	if g := dialXMPPWS(t, b); g.anonymous() {
		t.Fatal("an XMPP guest logged in after a restart with guest access closed")
	}
}
