package xmpp

import (
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
)

// End-to-end tests of XEP-0191 Blocking Command.

// blockPush matches a blocklist push of kind (block or unblock) with
// exactly the JIDs given.
func blockPush(kind string, jids ...string) func(*Element) bool {
	return func(e *Element) bool {
		if e.Local != "iq" || e.Get("type") != "set" || e.Get("id") == "" {
			return false
		}
		p := e.Child(nsBlocking, kind)
		if p == nil || len(p.Kids()) != len(jids) {
			return false
		}
		for i, it := range p.Kids() {
			if !it.Is(nsBlocking, "item") || it.Get("jid") != jids[i] {
				return false
			}
		}
		return true
	}
}

// errorWith matches a stanza of type error from from whose condition is
// cond (and, if app is set, that carries the application condition app
// of XEP-0191).
func errorWith(local, from, cond string, app bool) func(*Element) bool {
	return func(e *Element) bool {
		if e.Local != local || e.Get("type") != "error" || e.Get("from") != from {
			return false
		}
		er := e.Child(nsClient, "error")
		if er.Child(nsStanzaErr, cond) == nil {
			return false
		}
		return !app || er.Child(nsBlockingErrors, "blocked") != nil
	}
}

func blocklistOf(t *testing.T, c *client) []string {
	t.Helper()
	r := c.iq(`<iq type="get" id="{id}"><blocklist xmlns="urn:xmpp:blocking"/></iq>`)
	bl := r.Child(nsBlocking, "blocklist")
	if bl == nil {
		t.Fatalf("blocklist result without <blocklist/>: %s", r)
	}
	var out []string
	for _, it := range bl.Kids() {
		out = append(out, it.Get("jid"))
	}
	return out
}

// TestBlocking: alice blocks bob (subscribed both ways): both of alice's
// interested resources get the push, bob sees alice go unavailable, and
// nothing of bob's reaches alice (his messages get <service-unavailable/>,
// his IQs too, his presence and IRC messages are dropped) while alice's
// messages to him get <not-acceptable/><blocked/>. Unblocking restores
// presence both ways and delivery.
func TestBlocking(t *testing.T) {
	b := startBox(t, []string{"alice", "bob", "carol"})
	befriend(t, b, "alice", "bob")
	b1 := online(t, b, "bob", "")
	a1, a2 := online(t, b, "alice", ""), online(t, b, "alice", "")
	c1 := b.login(t, "carol", "")
	for _, c := range []*client{a1, a2} {
		c.expect("bob's presence", rosPres(b1.jid, ""))
		if l := blocklistOf(t, c); len(l) != 0 {
			t.Fatalf("empty blocklist: %v", l)
		}
	}
	r := a1.iq(`<iq type="get" id="{id}" to="box.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	found := false
	for _, f := range r.Child(nsDiscoInfo, "query").Kids() {
		found = found || f.Local == "feature" && f.Get("var") == nsBlocking
	}
	if !found {
		t.Fatalf("disco#info of the domain lacks %s: %s", nsBlocking, r)
	}

	a1.iq(`<iq type="set" id="{id}"><block xmlns="urn:xmpp:blocking"><item jid="bob@box.test"/></block></iq>`)
	for _, c := range []*client{a1, a2} {
		c.expect("block push", blockPush("block", "bob@box.test"))
	}
	expectAll(t, b1, map[string]func(*Element) bool{
		"a1 unavailable": rosPres(a1.jid, "unavailable"),
		"a2 unavailable": rosPres(a2.jid, "unavailable"),
	})
	if l := blocklistOf(t, a2); len(l) != 1 || l[0] != "bob@box.test" {
		t.Fatalf("blocklist %v", l)
	}

	// From bob: a message with a body, a chat state, an IQ, presence.
	b1.send(`<message to="alice@box.test" type="chat" id="m1"><body>let me in</body></message>`)
	b1.expect("service-unavailable for the message", errorWith("message", "alice@box.test", "service-unavailable", false))
	b1.send(`<message to="%s" type="chat" id="m2"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`, a1.jid)
	b1.expect("service-unavailable for the chat state", errorWith("message", a1.jid, "service-unavailable", false))
	b1.send(`<iq type="get" id="q1" to="%s"><ping xmlns="urn:xmpp:ping"/></iq>`, a1.jid)
	if e := b1.expectID("q1"); !errorWith("iq", a1.jid, "service-unavailable", false)(e) {
		t.Fatalf("IQ to a blocking user: %s", e)
	}
	b1.send(`<presence><show>chat</show></presence>`)
	b1.send(`<presence to="alice@box.test" type="subscribe"/>`)
	// From bob's IRC session: dropped at delivery. The PING makes sure
	// the IRC door handled the PRIVMSG before carol's marker is sent.
	irc := b.ircLogin(t, "bob")
	irc.raw("PRIVMSG alice :from irc")
	irc.raw("PING sync")
	irc.expect("PONG", func(m ircmsg.Message) bool { return m.Command == "PONG" })
	c1.send(`<message to="alice@box.test" type="chat"><body>marker</body></message>`)
	for _, c := range []*client{a1, a2} {
		c.expect("carol's marker", func(e *Element) bool {
			if (e.Local == "message" || e.Local == "presence") && strings.HasPrefix(e.Get("from"), "bob@box.test") {
				t.Fatalf("%s: a stanza from blocked bob: %s", c.jid, e)
			}
			return isMsg("marker")(e)
		})
	}

	// To bob: not routed, <not-acceptable/> with <blocked/>.
	a2.send(`<message to="bob@box.test" type="chat" id="m3"><body>hidden</body></message>`)
	a2.expect("not-acceptable", errorWith("message", "bob@box.test", "not-acceptable", true))
	a2.send(`<presence to="bob@box.test" type="subscribed"/>`)
	a2.expect("not-acceptable", errorWith("presence", "bob@box.test", "not-acceptable", true))
	b1.quiet("alice's message or presence", func(e *Element) bool {
		return isMsg("hidden")(e) || e.Local == "presence" && strings.HasPrefix(e.Get("from"), "alice@")
	})

	// Unblock: pushes, presence again both ways, messages flow.
	a2.iq(`<iq type="set" id="{id}"><unblock xmlns="urn:xmpp:blocking"><item jid="bob@box.test"/></unblock></iq>`)
	for _, c := range []*client{a1, a2} {
		expectAll(t, c, map[string]func(*Element) bool{
			"unblock push":   blockPush("unblock", "bob@box.test"),
			"bob's presence": rosPres(b1.jid, ""),
		})
	}
	expectAll(t, b1, map[string]func(*Element) bool{
		"a1 presence": rosPres(a1.jid, ""),
		"a2 presence": rosPres(a2.jid, ""),
	})
	b1.send(`<message to="alice@box.test" type="chat"><body>hello again</body></message>`)
	a1.expect("bob's message", isMsg("hello again"))
	a1.send(`<message to="bob@box.test" type="chat"><body>welcome back</body></message>`)
	b1.expect("alice's message", isMsg("welcome back"))

	// Several JIDs, then unblock all (an empty <unblock/> push, §3.5).
	a1.iq(`<iq type="set" id="{id}"><block xmlns="urn:xmpp:blocking"><item jid="carol@box.test"/><item jid="example.org"/></block></iq>`)
	a2.expect("block push", blockPush("block", "carol@box.test", "example.org"))
	c1.send(`<message to="alice@box.test" type="chat"><body>blocked too</body></message>`)
	c1.expect("service-unavailable", errorWith("message", "alice@box.test", "service-unavailable", false))
	a1.send(`<message to="someone@example.org" type="chat"><body>x</body></message>`)
	a1.expect("a blocked domain", errorWith("message", "someone@example.org", "not-acceptable", true))
	a1.iq(`<iq type="set" id="{id}"><unblock xmlns="urn:xmpp:blocking"/></iq>`)
	a2.expect("unblock-all push", blockPush("unblock"))
	if l := blocklistOf(t, a1); len(l) != 0 {
		t.Fatalf("blocklist after unblocking all: %v", l)
	}
	c1.send(`<message to="alice@box.test" type="chat"><body>unblocked</body></message>`)
	a1.expect("carol's message", isMsg("unblocked"))

	// Errors.
	for _, tc := range []struct{ x, cond string }{
		{`<iq type="set" id="{id}"><block xmlns="urn:xmpp:blocking"/></iq>`, "bad-request"},
		{`<iq type="set" id="{id}"><block xmlns="urn:xmpp:blocking"><item jid="a@b@c"/></block></iq>`, "jid-malformed"},
		{`<iq type="get" id="{id}"><block xmlns="urn:xmpp:blocking"><item jid="x@box.test"/></block></iq>`, "bad-request"},
		{`<iq type="get" id="{id}" to="bob@box.test"><blocklist xmlns="urn:xmpp:blocking"/></iq>`, "forbidden"},
	} {
		if got := iqErrCond(t, a1, tc.x); got != tc.cond {
			t.Errorf("%s: got <%s/>, want <%s/>", tc.x, got, tc.cond)
		}
	}
}

// TestBlockingPersists: the blocklist is the account's, kept in the
// store: a later session finds it and is protected by it.
func TestBlockingPersists(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	a1 := b.login(t, "alice", "")
	a1.iq(`<iq type="set" id="{id}"><block xmlns="urn:xmpp:blocking"><item jid="bob@box.test/phone"/></block></iq>`)
	a1.close()
	a2 := online(t, b, "alice", "")
	if l := blocklistOf(t, a2); len(l) != 1 || l[0] != "bob@box.test/phone" {
		t.Fatalf("blocklist of a new session: %v", l)
	}
	// A full JID blocks that resource only; the IRC session is another.
	irc := b.ircLogin(t, "bob")
	irc.raw("PRIVMSG alice :not the phone")
	a2.expect("bob's IRC message", isMsg("not the phone"))
}
