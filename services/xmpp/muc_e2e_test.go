package xmpp

import (
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
)

const roomsDomain = "rooms." + boxDomain

// join joins room as nick and waits for the self-presence (status 110)
// and the subject that ends the join (XEP-0045 §7.2.3).
func (c *client) join(room, nick string) *Element {
	c.t.Helper()
	c.send(`<presence to="%s@%s/%s"><x xmlns="http://jabber.org/protocol/muc"/></presence>`, room, roomsDomain, nick)
	self := c.expect("self-presence in "+room, func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == room+"@"+roomsDomain+"/"+nick && hasStatus(e, "110")
	})
	c.expect("subject of "+room, func(e *Element) bool {
		return e.Local == "message" && e.Child(nsClient, "subject") != nil && strings.HasPrefix(e.Get("from"), room+"@"+roomsDomain)
	})
	return self
}

func hasStatus(e *Element, code string) bool {
	for _, s := range e.Child(nsMUCUser, "x").Kids() {
		if s.Is(nsMUCUser, "status") && s.Get("code") == code {
			return true
		}
	}
	return false
}

func mucItem(e *Element) *Element { return e.Child(nsMUCUser, "x").Child(nsMUCUser, "item") }

func isGroupchat(body string) func(*Element) bool {
	return func(e *Element) bool {
		b, _ := bodyOf(e)
		return e.Local == "message" && e.Get("type") == "groupchat" && b == body
	}
}

// TestMUCSharedWithIRC: #general and general@rooms are one room:
// members of both doors see each other, messages cross both ways, and
// history on join includes lines written on IRC.
func TestMUCSharedWithIRC(t *testing.T) {
	b := startBox(t, []string{"alice", "bob", "carol"})
	bob := b.ircLogin(t, "bob")
	bob.raw("JOIN #general")
	bob.expect("join", func(m ircmsg.Message) bool { return m.Command == "366" })
	bob.raw("PRIVMSG #general :written on irc before")
	// The IRC door handles a connection's lines in order: once the PONG
	// is back, the line is in the history (else it could come to alice
	// live, after her join, rather than as history).
	bob.raw("PING :stored")
	bob.expect("PONG", func(m ircmsg.Message) bool { return m.Command == "PONG" })

	alice := b.login(t, "alice", "")
	alice.send(`<presence/>`)
	alice.send(`<presence to="general@%s/Ally"><x xmlns="http://jabber.org/protocol/muc"/></presence>`, roomsDomain)
	bp := alice.expect("bob's occupant presence", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == "general@"+roomsDomain+"/bob"
	})
	if it := mucItem(bp); it.Get("jid") != "bob@"+boxDomain || it.Get("role") == "" {
		t.Fatalf("bob's presence %s", bp)
	}
	self := alice.expect("self-presence", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == "general@"+roomsDomain+"/Ally"
	})
	for _, code := range []string{"110", "100"} {
		if !hasStatus(self, code) {
			t.Fatalf("self-presence without %s: %s", code, self)
		}
	}
	h := alice.expect("history", isGroupchat("written on irc before"))
	if h.Child("urn:xmpp:delay", "delay") == nil || h.Get("from") != "general@"+roomsDomain+"/bob" {
		t.Fatalf("history %s", h)
	}
	alice.expect("subject", func(e *Element) bool { return e.Child(nsClient, "subject") != nil })

	// bob sees alice join, under her account name.
	j := bob.expect("alice's JOIN", func(m ircmsg.Message) bool { return m.Command == "JOIN" && m.Nick() == "alice" })
	if !strings.Contains(j.Source, "xmpp.") {
		t.Fatalf("alice's JOIN source %q", j.Source)
	}
	alice.send(`<message to="general@%s" type="groupchat" id="g1"><body>hello from xmpp</body></message>`, roomsDomain)
	m := bob.expect("PRIVMSG from alice", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" && m.Nick() == "alice" })
	if m.Params[0] != "#general" || m.Params[1] != "hello from xmpp" {
		t.Fatalf("bob got %v", m.Params)
	}
	// MUC reflects a message to its sender, with the room's stanza-id.
	echo := alice.expect("reflection", isGroupchat("hello from xmpp"))
	if echo.Get("id") != "g1" || echo.Child("urn:xmpp:sid:0", "stanza-id").Get("by") != "general@"+roomsDomain {
		t.Fatalf("reflection %s", echo)
	}
	bob.raw("PRIVMSG #general :hello from irc")
	live := alice.expect("bob's line", isGroupchat("hello from irc"))
	if live.Get("from") != "general@"+roomsDomain+"/bob" || live.Child(nsOccupantID, "occupant-id") == nil {
		t.Fatalf("live %s", live)
	}

	// The room's archive (XEP-0313) holds both doors' lines.
	alice.send(`<iq type="set" id="rmam" to="general@%s"><query xmlns="urn:xmpp:mam:2" queryid="q1"/></iq>`, roomsDomain)
	var archived []string
	for {
		e := alice.expect("archive result or fin", func(e *Element) bool {
			return e.Child(mamNS, "result") != nil || e.Get("id") == "rmam"
		})
		if e.Get("id") == "rmam" {
			if e.Get("type") != "result" || e.Child(mamNS, "fin") == nil {
				t.Fatalf("room archive: %s", e)
			}
			break
		}
		if e.Get("from") != "general@"+roomsDomain {
			t.Fatalf("archive result from %q", e.Get("from"))
		}
		fwd := e.Child(mamNS, "result").Child(mamForward, "forwarded").Child(nsClient, "message")
		body, _ := bodyOf(fwd)
		archived = append(archived, fwd.Get("from")+": "+body)
	}
	want := []string{"general@" + roomsDomain + "/bob: written on irc before", "general@" + roomsDomain + "/Ally: hello from xmpp", "general@" + roomsDomain + "/bob: hello from irc"}
	if strings.Join(archived, "|") != strings.Join(want, "|") {
		t.Fatalf("room archive %q, want %q", archived, want)
	}

	// A second XMPP user sees alice under her room nick and bob.
	carol := b.login(t, "carol", "")
	carol.send(`<presence to="general@%s/carol"><x xmlns="http://jabber.org/protocol/muc"><history maxstanzas="2"/></x></presence>`, roomsDomain)
	carol.expect("alice in the room", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == "general@"+roomsDomain+"/Ally"
	})
	carol.expect("history line", isGroupchat("hello from xmpp"))
	carol.expect("history line", isGroupchat("hello from irc"))
	carol.expect("subject", func(e *Element) bool { return e.Child(nsClient, "subject") != nil })

	// Leaving: IRC sees a PART, the others an unavailable presence.
	// (The others' presence is rendered once for all of them: addressed
	// to each, without the leaver's 110.)
	alice.send(`<presence to="general@%s/Ally" type="unavailable"><status>bye all</status></presence>`, roomsDomain)
	alice.expect("own unavailable", func(e *Element) bool {
		return e.Local == "presence" && e.Get("type") == "unavailable" && hasStatus(e, "110")
	})
	bob.expect("alice's PART", func(m ircmsg.Message) bool { return m.Command == "PART" && m.Nick() == "alice" })
	left := carol.expect("alice left", func(e *Element) bool {
		return e.Local == "presence" && e.Get("type") == "unavailable" && e.Get("from") == "general@"+roomsDomain+"/Ally"
	})
	if left.Get("to") != carol.jid || left.ChildText(nsClient, "status") != "bye all" || hasStatus(left, "110") {
		t.Errorf("alice's leave as carol got it: %s", left)
	}
}

// TestMUCModerationBothWays: an IRC TOPIC, KICK and +b are the MUC
// subject, kick and ban; an XMPP kick and subject reach IRC.
func TestMUCModerationBothWays(t *testing.T) {
	b := startBox(t, []string{"alice", "bob", "carol", "dave"})
	b.cli(t, "", "user", "admin", "alice", "yes")
	alice := b.ircLogin(t, "alice") // box admin: moderator everywhere
	alice.raw("JOIN #general")
	alice.expect("join", func(m ircmsg.Message) bool { return m.Command == "366" })
	bob := b.login(t, "bob", "")
	bob.join("general", "bob")
	carol := b.login(t, "carol", "")
	carol.join("general", "carol")

	alice.raw("TOPIC #general :fresh topic")
	s := bob.expect("subject", func(e *Element) bool { return e.ChildText(nsClient, "subject") == "fresh topic" })
	if s.Get("from") != "general@"+roomsDomain+"/alice" {
		t.Fatalf("subject from %q", s.Get("from"))
	}

	alice.raw("KICK #general carol :behave")
	k := carol.expect("kicked", func(e *Element) bool {
		return e.Local == "presence" && e.Get("type") == "unavailable" && hasStatus(e, "307")
	})
	if !hasStatus(k, "110") || mucItem(k).ChildText(nsMUCUser, "reason") != "behave" {
		t.Fatalf("kick presence %s", k)
	}
	bob.expect("carol kicked", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == "general@"+roomsDomain+"/carol" && hasStatus(e, "307")
	})

	// An XMPP owner (alice made bob an owner over MUC admin? no: alice is
	// on IRC) -> make bob a room admin from IRC with +o and kick from XMPP.
	alice.raw("MODE #general +o bob")
	bob.expect("bob's new role", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == "general@"+roomsDomain+"/bob" && mucItem(e).Get("role") == "moderator"
	})
	carol.join("general", "carol")
	bob.iq(`<iq type="set" id="{id}" to="general@` + roomsDomain + `"><query xmlns="http://jabber.org/protocol/muc#admin"><item nick="carol" role="none"><reason>xmpp kick</reason></item></query></iq>`)
	kk := alice.expect("KICK from xmpp", func(m ircmsg.Message) bool { return m.Command == "KICK" && m.Nick() == "bob" })
	if kk.Params[1] != "carol" || kk.Params[2] != "xmpp kick" || kk.Nick() != "bob" {
		t.Fatalf("KICK %v by %s", kk.Params, kk.Source)
	}
	bob.send(`<message to="general@%s" type="groupchat"><subject>set from xmpp</subject></message>`, roomsDomain)
	tp := alice.expect("TOPIC from xmpp", func(m ircmsg.Message) bool { return m.Command == "TOPIC" })
	if tp.Params[1] != "set from xmpp" {
		t.Fatalf("TOPIC %v", tp.Params)
	}

	// Banning needs an admin (XEP-0045 §9.1): a mere moderator may not.
	ban := `<iq type="set" id="{id}" to="general@` + roomsDomain + `"><query xmlns="http://jabber.org/protocol/muc#admin"><item jid="carol@` + boxDomain + `" affiliation="outcast"/></query></iq>`
	bob.send("%s", strings.Replace(ban, "{id}", "ban1", 1))
	if e := bob.expectID("ban1"); e.Get("type") != "error" {
		t.Fatalf("a moderator banned: %s", e)
	}
	// alice, a box admin, makes carol an outcast from XMPP: carol cannot
	// join from XMPP nor from IRC.
	aliceX := b.login(t, "alice", "")
	aliceX.iq(ban)
	mb := alice.expect("MODE +b carol", func(m ircmsg.Message) bool {
		return m.Command == "MODE" && strings.Contains(strings.Join(m.Params, " "), "+b")
	})
	if mb.Params[len(mb.Params)-1] != "carol" {
		t.Fatalf("ban on IRC: %v", mb.Params)
	}
	carol.send(`<presence to="general@%s/carol"><x xmlns="http://jabber.org/protocol/muc"/></presence>`, roomsDomain)
	e := carol.expect("join refused", func(e *Element) bool { return e.Local == "presence" && e.Get("type") == "error" })
	if e.Child(nsClient, "error").Child(nsStanzaErr, "forbidden") == nil {
		t.Fatalf("banned join: %s", e)
	}
	carolIRC := b.ircLogin(t, "carol")
	carolIRC.raw("JOIN #general")
	carolIRC.expect("474 banned", func(m ircmsg.Message) bool { return m.Command == "474" })
	// An IRC +b on dave keeps dave's XMPP client out.
	alice.raw("MODE #general +b dave")
	alice.expect("MODE +b", func(m ircmsg.Message) bool {
		return m.Command == "MODE" && strings.Contains(strings.Join(m.Params, " "), "+b")
	})
	list := aliceX.iq(`<iq type="get" id="{id}" to="general@` + roomsDomain + `"><query xmlns="http://jabber.org/protocol/muc#admin"><item affiliation="outcast"/></query></iq>`)
	if !strings.Contains(list.String(), `jid="dave@`+boxDomain+`"`) || !strings.Contains(list.String(), `jid="carol@`+boxDomain+`"`) {
		t.Fatalf("outcast list %s", list)
	}
	// Lifting dave's ban from XMPP lifts IRC's +b.
	aliceX.iq(`<iq type="set" id="{id}" to="general@` + roomsDomain + `"><query xmlns="http://jabber.org/protocol/muc#admin"><item jid="dave@` + boxDomain + `" affiliation="none"/></query></iq>`)
	alice.expect("MODE -b dave", func(m ircmsg.Message) bool {
		return m.Command == "MODE" && strings.Contains(strings.Join(m.Params, " "), "-b") && m.Params[len(m.Params)-1] == "dave!*@*"
	})
	alice.raw("MODE #general +b dave")
	alice.expect("MODE +b dave again", func(m ircmsg.Message) bool {
		return m.Command == "MODE" && strings.Contains(strings.Join(m.Params, " "), "+b") && m.Params[len(m.Params)-1] == "dave!*@*"
	})
	dave := b.login(t, "dave", "")
	dave.send(`<presence to="general@%s/dave"><x xmlns="http://jabber.org/protocol/muc"/></presence>`, roomsDomain)
	e = dave.expect("join refused", func(e *Element) bool { return e.Local == "presence" && e.Get("type") == "error" })
	if e.Child(nsClient, "error").Child(nsStanzaErr, "forbidden") == nil {
		t.Fatalf("banned join: %s", e)
	}

	// +m from IRC: the room tells XMPP occupants its configuration
	// changed, and a visitor cannot speak.
	alice.raw("MODE #general +m")
	bob.expect("config change", func(e *Element) bool {
		return e.Local == "message" && e.Child(nsMUCUser, "x") != nil && hasStatus(e, "104")
	})
}

// TestMUCConfigAndCreate: a user creates a room by joining it (status
// 201), configures it with the muc#roomconfig form, and IRC sees the
// modes; disco lists public rooms.
func TestMUCConfigAndCreate(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	alice := b.login(t, "alice", "")
	self := alice.join("kitchen", "alice")
	if !hasStatus(self, "201") || mucItem(self).Get("affiliation") != "owner" {
		t.Fatalf("creator's presence %s", self)
	}
	form := alice.iq(`<iq type="get" id="{id}" to="kitchen@` + roomsDomain + `"><query xmlns="http://jabber.org/protocol/muc#owner"/></iq>`)
	if form.First().Child(nsXData, "x") == nil {
		t.Fatalf("no form: %s", form)
	}
	alice.iq(`<iq type="set" id="{id}" to="kitchen@` + roomsDomain + `"><query xmlns="http://jabber.org/protocol/muc#owner"><x xmlns="jabber:x:data" type="submit">` +
		`<field var="FORM_TYPE"><value>http://jabber.org/protocol/muc#roomconfig</value></field>` +
		`<field var="muc#roomconfig_moderatedroom"><value>1</value></field>` +
		`<field var="muc#roomconfig_roomdesc"><value>Food talk</value></field>` +
		`<field var="muc#roomconfig_roomsecret"><value>s3cret</value></field></x></query></iq>`)
	info := alice.iq(`<iq type="get" id="{id}" to="kitchen@` + roomsDomain + `"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	feats := map[string]bool{}
	for _, f := range info.First().Kids() {
		if f.Local == "feature" {
			feats[f.Get("var")] = true
		}
	}
	for _, want := range []string{nsMUC, "muc_moderated", "muc_passwordprotected", "muc_nonanonymous", "urn:xmpp:mam:2"} {
		if !feats[want] {
			t.Fatalf("room disco lacks %s: %s", want, info)
		}
	}
	items := alice.iq(`<iq type="get" id="{id}" to="` + roomsDomain + `"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	if !strings.Contains(items.String(), "kitchen@"+roomsDomain) || !strings.Contains(items.String(), "general@"+roomsDomain) {
		t.Fatalf("room list %s", items)
	}
	// Without the password bob is refused, with it he is in.
	bob := b.login(t, "bob", "")
	bob.send(`<presence to="kitchen@%s/bob"><x xmlns="http://jabber.org/protocol/muc"/></presence>`, roomsDomain)
	e := bob.expect("refusal", func(e *Element) bool { return e.Local == "presence" && e.Get("type") == "error" })
	if e.Child(nsClient, "error").Child(nsStanzaErr, "not-authorized") == nil {
		t.Fatalf("no password: %s", e)
	}
	bob.send(`<presence to="kitchen@%s/bob"><x xmlns="http://jabber.org/protocol/muc"><password>s3cret</password></x></presence>`, roomsDomain)
	bob.expect("self-presence", func(e *Element) bool { return e.Local == "presence" && hasStatus(e, "110") })
	// Moderated: bob (no voice) cannot speak.
	bob.send(`<message to="kitchen@%s" type="groupchat" id="mute"><body>can I?</body></message>`, roomsDomain)
	me := bob.expect("error", func(e *Element) bool { return e.Get("id") == "mute" && e.Get("type") == "error" })
	if me.Child(nsClient, "error").Child(nsStanzaErr, "forbidden") == nil {
		t.Fatalf("moderated: %s", me)
	}
	// Self-ping (XEP-0410).
	bob.iq(`<iq type="get" id="{id}" to="kitchen@` + roomsDomain + `/bob"><ping xmlns="urn:xmpp:ping"/></iq>`)
	// Nick change: 303 then the new nick.
	bob.send(`<presence to="kitchen@%s/robert"/>`, roomsDomain)
	bob.expect("nick change", func(e *Element) bool {
		return e.Get("type") == "unavailable" && hasStatus(e, "303") && mucItem(e).Get("nick") == "robert"
	})
	alice.expect("robert", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == "kitchen@"+roomsDomain+"/robert"
	})
	// Destroy.
	alice.iq(`<iq type="set" id="{id}" to="kitchen@` + roomsDomain + `"><query xmlns="http://jabber.org/protocol/muc#owner"><destroy><reason>closing</reason></destroy></query></iq>`)
	bob.expect("destroyed", func(e *Element) bool {
		return e.Local == "presence" && e.Child(nsMUCUser, "x") != nil && e.Child(nsMUCUser, "x").Child(nsMUCUser, "destroy") != nil
	})
}
