package xmpp

import (
	"slices"
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
)

// Remote users' messages in the core, end to end across two boxes
// (s2s_direct.go, services/chat remote.go, services/irc remote.go).

// TestFederationDirectStoredAcrossRestart: alice@a.test writes to
// bob@b.test, who has no session; b.test restarts; bob gets the message
// at his initial presence, and both archives hold both sides of the
// conversation. Alice's other resource gets a sent carbon.
func TestFederationDirectStoredAcrossRestart(t *testing.T) {
	a, b := fedPair(t, []string{"alice"}, []string{"bob"})
	alice := a.login(t, "alice", "")
	alice2 := a.login(t, "alice", "")
	alice2.iq(`<iq type="set" id="{id}"><enable xmlns="urn:xmpp:carbons:2"/></iq>`)
	alice.send(`<presence/>`)
	alice.send(`<message to="bob@b.test" type="chat" id="r1"><body>kept across a restart</body><x xmlns="urn:example:extra">payload</x></message>`)
	c := alice2.expect("sent carbon", func(e *Element) bool { return e.Child(nsCarbons, "sent") != nil })
	fwd := c.Child(nsCarbons, "sent").Child("urn:xmpp:forward:0", "forwarded").Child(nsClient, "message")
	if body, _ := bodyOf(fwd); body != "kept across a restart" || fwd.Get("to") != "bob@b.test" || fwd.Get("from") != alice.jid {
		t.Fatalf("carbon %s; want alice's message to bob@b.test from %s", c, alice.jid)
	}
	b.waitLog(t, 0, "federation: message stored", "account=bob", "id=r1")
	b.restart(t)

	bob := b.login(t, "bob", "")
	bob.send(`<presence/>`)
	m := bob.expect("the kept message", isMsg("kept across a restart"))
	if m.Get("from") != alice.jid || m.Get("id") != "r1" || m.Child("urn:xmpp:delay", "delay") == nil || m.Child("urn:example:extra", "x").Text() != "payload" {
		t.Fatalf("bob got %s; want it from %s, id r1, with a delay and the extension", m, alice.jid)
	}
	bob.send(`<message to="%s" type="chat" id="r2"><body>got it</body></message>`, alice.jid)
	if m := alice.expect("bob's answer", isMsg("got it")); m.Get("from") != bob.jid || m.Get("id") != "r2" {
		t.Fatalf("alice got %s; want it from %s, id r2", m, bob.jid)
	}
	want := []string{"kept across a restart", "got it"}
	withField := func(jid string) string {
		return `<field var="with"><value>` + jid + `</value></field>`
	}
	if p := bob.mamQuery(withField("alice@a.test"), ""); !slices.Equal(p.bodies, want) {
		t.Fatalf("bob's archive with alice@a.test: %q; want %q", p.bodies, want)
	}
	p := alice.mamQuery(withField("bob@b.test"), "")
	if !slices.Equal(p.bodies, want) {
		t.Fatalf("alice's archive with bob@b.test: %q; want %q", p.bodies, want)
	}
	got := p.results[1].Child(mamNS, "result").Child(mamForward, "forwarded").Child(nsClient, "message")
	if f, err := parseJID(got.Get("from")); err != nil || f.Bare() != "bob@b.test" || got.Get("to") != alice.jid {
		t.Fatalf("archived answer %s; want from bob@b.test to %s", got, alice.jid)
	}
	// The message is shown once: not again to a new session.
	bob2 := b.login(t, "bob", "")
	bob2.send(`<presence/>`)
	bob2.quiet("the kept message again", isMsg("kept across a restart"))
}

// TestFederationIRCDirect: bob@b.test writes to carol, who is on IRC at
// a.test: she sees him as bob/b.test, answers that nick, and finds the
// conversation with CHATHISTORY.
func TestFederationIRCDirect(t *testing.T) {
	a, b := fedPair(t, []string{"carol"}, []string{"bob"})
	carol := a.ircLogin(t, "carol")
	bob := b.login(t, "bob", "")
	bob.send(`<presence/>`)
	bob.send(`<message to="carol@a.test" type="chat" id="i1"><body>hi carol</body></message>`)
	pm := carol.expect("bob's PRIVMSG", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" })
	if pm.Source != "bob/b.test!bob@b.test" || pm.Params[0] != "carol" || pm.Params[1] != "hi carol" {
		t.Fatalf("IRC got %s %v; want bob/b.test!bob@b.test to carol: hi carol", pm.Source, pm.Params)
	}
	carol.raw("PRIVMSG bob/b.test :hi bob")
	if m := bob.expect("carol's answer", isMsg("hi bob")); m.Get("from") != "carol@a.test" || m.Get("to") != bob.jid || m.Get("type") != "chat" {
		t.Fatalf("bob got %s; want a chat from carol@a.test to %s", m, bob.jid)
	}
	carol.raw("PRIVMSG nobody/b.test :anyone?")
	bob.quiet("a message for nobody", isMsg("anyone?"))
	carol.raw("CAP REQ :draft/chathistory")
	carol.expect("CAP ACK", func(m ircmsg.Message) bool { return m.Command == "CAP" && len(m.Params) > 1 && m.Params[1] == "ACK" })
	carol.raw("CHATHISTORY LATEST bob/b.test * 10")
	var lines []string
	for len(lines) < 2 {
		m := carol.expect("history lines", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" })
		lines = append(lines, m.Source+" "+strings.Join(m.Params, " "))
	}
	want := []string{"bob/b.test!bob@b.test carol hi carol", "carol!carol@chat.a.test bob/b.test hi bob"}
	if !slices.Equal(lines, want) {
		t.Fatalf("CHATHISTORY gave %q; want %q", lines, want)
	}
}

// TestFederationRemoteOccupantHistory: what a remote occupant says in a
// room is in the room's history: its archive (MAM on the room), IRC
// CHATHISTORY and the history a later joiner gets.
func TestFederationRemoteOccupantHistory(t *testing.T) {
	a, b := fedPair(t, []string{"carol", "dave"}, []string{"bob"})
	carol := a.ircLogin(t, "carol")
	carol.raw("JOIN #general")
	carol.expect("end of NAMES", func(m ircmsg.Message) bool { return m.Command == "366" })
	bob := b.login(t, "bob", "")
	bob.send(`<presence to="general@rooms.a.test/bobby"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	bob.expect("self-presence in the room", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == "general@rooms.a.test/bobby" && hasStatus(e, "110")
	})
	bob.send(`<message to="general@rooms.a.test" type="groupchat" id="g1"><body>kept in the room</body></message>`)
	carol.expect("bobby's PRIVMSG", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" && m.Params[1] == "kept in the room" })

	carol.raw("CAP REQ :draft/chathistory")
	carol.expect("CAP ACK", func(m ircmsg.Message) bool { return m.Command == "CAP" && len(m.Params) > 1 && m.Params[1] == "ACK" })
	carol.raw("CHATHISTORY LATEST #general * 10")
	h := carol.expect("the history line", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" })
	if h.Source != "bob/b.test!bob@b.test" || h.Params[0] != "#general" || h.Params[1] != "kept in the room" {
		t.Fatalf("CHATHISTORY gave %s %v; want bob/b.test's line in #general", h.Source, h.Params)
	}
	dave := a.login(t, "dave", "")
	id := randomID()
	dave.send(`<iq type="set" id="%s" to="general@rooms.a.test"><query xmlns="urn:xmpp:mam:2" queryid="q1"/></iq>`, id)
	r := dave.expect("the room archive's result", func(e *Element) bool { return e.Local == "message" && e.Child(mamNS, "result") != nil })
	m := r.Child(mamNS, "result").Child(mamForward, "forwarded").Child(nsClient, "message")
	if body, _ := bodyOf(m); body != "kept in the room" || m.Get("from") != "general@rooms.a.test/bobby" {
		t.Fatalf("room archive gave %s; want bobby's message", r)
	}
	dave.expectID(id)
	dave.send(`<presence to="general@rooms.a.test/dave"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	if m := dave.expect("history on join", isMsg("kept in the room")); m.Get("from") != "general@rooms.a.test/bobby" || m.Child("urn:xmpp:delay", "delay") == nil {
		t.Fatalf("history on join %s; want bobby's message with a delay", m)
	}
}

// TestFederationMembersOnlyAndPrivate: a members-only room refuses
// bob@b.test until its owner makes him a member by his JID; then private
// messages within the room go both ways (to and from real JIDs), and the
// IRC operator can kick him by his IRC nick.
func TestFederationMembersOnlyAndPrivate(t *testing.T) {
	a, b := fedPair(t, []string{"carol"}, []string{"bob"})
	carolIRC := a.ircLogin(t, "carol")
	carolIRC.raw("JOIN #club")
	carolIRC.expect("end of NAMES", func(m ircmsg.Message) bool { return m.Command == "366" })
	carolIRC.raw("MODE #club +i")
	carolIRC.expect("MODE +i", func(m ircmsg.Message) bool { return m.Command == "MODE" && len(m.Params) > 1 && m.Params[1] == "+i" })
	bob := b.login(t, "bob", "")
	bob.send(`<presence/>`)
	bob.send(`<presence to="club@rooms.a.test/bobby" id="j1"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	if e := bob.expect("refused join", func(e *Element) bool { return e.Local == "presence" && e.Get("id") == "j1" }); e.Get("type") != "error" {
		t.Fatalf("join of a members-only room: %s; want an error", e)
	}
	carol := a.login(t, "carol", "")
	carol.iq(`<iq type="set" id="{id}" to="club@rooms.a.test"><query xmlns="http://jabber.org/protocol/muc#admin"><item affiliation="member" jid="Bob@b.test"/></query></iq>`)
	list := carol.iq(`<iq type="get" id="{id}" to="club@rooms.a.test"><query xmlns="http://jabber.org/protocol/muc#admin"><item affiliation="member"/></query></iq>`)
	if it := list.Child(nsMUCAdmin, "query").Child(nsMUCAdmin, "item"); it.Get("jid") != "bob@b.test" {
		t.Fatalf("member list %s; want bob@b.test", list)
	}
	bob.send(`<presence to="club@rooms.a.test/bobby" id="j2"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	self := bob.expect("self-presence", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == "club@rooms.a.test/bobby" && hasStatus(e, "110")
	})
	if it := self.Child(nsMUCUser, "x").Child(nsMUCUser, "item"); self.Get("type") != "" || it.Get("affiliation") != "member" || it.Get("jid") != "bob@b.test" {
		t.Fatalf("self-presence %s; want bob joined as a member with his JID", self)
	}
	carolIRC.expect("bob's JOIN", func(m ircmsg.Message) bool { return m.Command == "JOIN" && m.Source == "bob/b.test!bob@b.test" })
	carolIRC.raw("NAMES #club")
	names := carolIRC.expect("NAMES", func(m ircmsg.Message) bool { return m.Command == "353" })
	if got := strings.Fields(names.Params[len(names.Params)-1]); !slices.Contains(got, "bob/b.test") {
		t.Fatalf("NAMES #club: %q; want bob/b.test among them", got)
	}

	// carol (XMPP, not in the room) cannot PM; IRC carol is in it: she
	// joins by XMPP too and writes privately to bobby.
	carol.send(`<presence to="club@rooms.a.test/carol"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	carol.expect("carol's self-presence", func(e *Element) bool { return e.Local == "presence" && hasStatus(e, "110") })
	carol.send(`<message to="club@rooms.a.test/bobby" type="chat" id="p1"><body>just between us</body></message>`)
	pm := bob.expect("carol's private message", isMsg("just between us"))
	if f, err := parseJID(pm.Get("from")); err != nil || f.Bare() != "carol@a.test" || pm.Get("type") != "chat" {
		t.Fatalf("bob got %s; want a chat from carol@a.test", pm)
	}
	bob.send(`<message to="club@rooms.a.test/carol" type="chat" id="p2"><body>agreed</body></message>`)
	line := carolIRC.expect("bob's private message on IRC", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" && m.Params[0] == "carol" })
	if line.Source != "bob/b.test!bob@b.test" || line.Params[1] != "agreed" {
		t.Fatalf("IRC got %s %v; want bob/b.test's private message", line.Source, line.Params)
	}
	// The IRC operator kicks him by the nick IRC shows.
	carolIRC.raw("KICK #club bob/b.test :enough")
	kick := bob.expect("the kick", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == "club@rooms.a.test/bobby" && e.Get("type") == "unavailable"
	})
	if !hasStatus(kick, "307") {
		t.Fatalf("bob got %s; want an unavailable presence with status 307 (kicked)", kick)
	}
}
