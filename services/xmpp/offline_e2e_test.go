package xmpp

import (
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// TestOfflineMessages (XEP-0160): messages to bob while he has no
// session, from XMPP and from IRC, wait in the offline queue; his first
// session gets them when it sends presence, with a delay stamped by the
// server, in order; the next login does not get them again; a session
// with a negative priority gets none.
func TestOfflineMessages(t *testing.T) {
	b := startBox(t, []string{"alice", "bob", "carol"})
	alice := b.login(t, "alice", "")
	alice.send(`<message to="bob@box.test" type="chat" id="off1"><body>while you were out</body><thread>t1</thread></message>`)
	carol := b.ircLogin(t, "carol")
	carol.raw("PRIVMSG bob :from irc while out")
	// Both are stored once the senders' next stanzas are answered.
	alice.iq(`<iq type="get" id="{id}" to="` + boxDomain + `"><ping xmlns="urn:xmpp:ping"/></iq>`)
	carol.raw("PING :sync")
	carol.expect("PONG", func(m ircmsg.Message) bool { return m.Command == "PONG" })

	neg := b.login(t, "bob", "")
	neg.send(`<presence><priority>-1</priority></presence>`)
	neg.quiet("offline messages to a negative priority", func(e *Element) bool { return e.Local == "message" })
	neg.close()

	bob := b.login(t, "bob", "")
	bob.quiet("offline messages before presence", func(e *Element) bool { return e.Local == "message" })
	before := time.Now().Add(-time.Minute)
	bob.send(`<presence/>`)
	// The two senders raced: either may have been stored first, and the
	// queue comes in store order.
	var m1, m2 *Element
	for m1 == nil || m2 == nil {
		m := bob.expect("the offline messages", func(e *Element) bool {
			return isMsg("while you were out")(e) || isMsg("from irc while out")(e)
		})
		if isMsg("while you were out")(m) {
			m1 = m
		} else {
			m2 = m
		}
	}
	for _, m := range []*Element{m1, m2} {
		d := m.Child("urn:xmpp:delay", "delay")
		if d == nil || d.Get("from") != boxDomain {
			t.Fatalf("offline message without the server's delay: %s", m)
		}
		stamp, err := time.Parse(time.RFC3339Nano, d.Get("stamp"))
		if err != nil || stamp.Before(before) || stamp.After(time.Now().Add(time.Minute)) {
			t.Fatalf("delay stamp %q: %v", d.Get("stamp"), err)
		}
		if m.Get("to") != bob.jid || m.Get("type") != "chat" {
			t.Fatalf("offline message %s", m)
		}
	}
	if m1.Get("from") != alice.jid || m1.Get("id") != "off1" || m1.ChildText(nsClient, "thread") != "t1" {
		t.Fatalf("XMPP offline message rebuilt as %s", m1)
	}
	if m2.Get("from") != "carol@box.test" {
		t.Fatalf("IRC offline message from %q", m2.Get("from"))
	}
	// The delivery (and its acknowledgement) is done before the
	// session's next stanza is read.
	bob.iq(`<iq type="get" id="{id}" to="` + boxDomain + `"><ping xmlns="urn:xmpp:ping"/></iq>`)
	bob.close()

	again := b.login(t, "bob", "")
	again.send(`<presence/>`)
	again.quiet("offline messages delivered twice", func(e *Element) bool { return e.Local == "message" })
	r := again.iq(`<iq type="get" id="{id}" to="` + boxDomain + `"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	requireFeatures(t, discoFeatures(t, r), "msgoffline")
}
