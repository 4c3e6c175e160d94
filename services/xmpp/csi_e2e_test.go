package xmpp

// End-to-end tests of XEP-0352 client state indication.

import (
	"fmt"
	"testing"
)

// csiFlood has bob's other resource change its presence n times, each
// with status "s<i>", and sends bob/phone a chat state.
func csiFlood(t *testing.T, other, alice *client, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		other.send(`<presence><status>s%d</status></presence>`, i)
	}
	alice.send(`<message to="bob@box.test/phone" type="chat"><composing xmlns="http://jabber.org/protocol/chatstates"/></message>`)
	alice.send(`<message to="bob@box.test/phone" type="chat"><paused xmlns="http://jabber.org/protocol/chatstates"/><no-store xmlns="urn:xmpp:hints"/></message>`)
	// Each client's stanzas are handled in order: after these answers
	// the flood has reached bob's session.
	other.iq(`<iq type="get" id="{id}" to="box.test"><ping xmlns="urn:xmpp:ping"/></iq>`)
	alice.iq(`<iq type="get" id="{id}" to="box.test"><ping xmlns="urn:xmpp:ping"/></iq>`)
}

func isChatState(e *Element) bool {
	_, hasBody := bodyOf(e)
	return e.Local == "message" && !hasBody && len(e.ChildrenNS(nsChatStates)) > 0
}

func presenceFrom(jid string) func(*Element) bool {
	return func(e *Element) bool { return e.Local == "presence" && e.Get("from") == jid }
}

// TestCSI: an inactive client gets no presence flood and no chat states,
// but messages and IQ answers at once; when it is active again the
// latest presence of each sender arrives, once.
func TestCSI(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	bob := b.bgLogin(t, "bob", "phone")
	if bob.features.Child(nsCSI, "csi") == nil {
		t.Fatalf("no <csi xmlns='%s'/> in the features after authentication: %s", nsCSI, bob.features)
	}
	bob.send(`<presence/>`)
	other := b.login(t, "bob", "")
	other.send(`<presence/>`)
	bob.expect("the other resource's presence", presenceFrom(other.jid))
	alice := b.login(t, "alice", "")

	bob.send(`<inactive xmlns='urn:xmpp:csi:0'/>`)
	bob.ping() // the server has taken it
	csiFlood(t, other, alice, 20)
	alice.send(`<message to="bob@box.test/phone" type="chat"><body>urgent</body><active xmlns="http://jabber.org/protocol/chatstates"/></message>`)
	bob.expect("a message with a body at once", isMsg("urgent"))
	for _, e := range bob.ping() {
		if presenceFrom(other.jid)(e) || isChatState(e) {
			t.Fatalf("inactive client got %s", e)
		}
	}

	bob.send(`<active xmlns='urn:xmpp:csi:0'/>`)
	p := bob.expect("the held presence", presenceFrom(other.jid))
	if got := p.ChildText(nsClient, "status"); got != "s20" {
		t.Fatalf("held presence %s, want only the latest (s20)", p)
	}
	for _, e := range bob.ping() {
		if presenceFrom(other.jid)(e) || isChatState(e) {
			t.Fatalf("after <active/>: %s (the held presences collapse to the latest; chat states were dropped)", e)
		}
	}
	// Active again: everything goes at once.
	other.send(`<presence><show>away</show></presence>`)
	bob.expect("a presence at once", func(e *Element) bool {
		return presenceFrom(other.jid)(e) && e.ChildText(nsClient, "show") == "away"
	})
	alice.send(`<message to="bob@box.test/phone" type="chat"><gone xmlns="http://jabber.org/protocol/chatstates"/></message>`)
	bob.expect("a chat state at once", isChatState)
}

// TestCSIResume: what an inactive session held is not in the stream
// management queue; after resumption (which makes the stream active
// again) it arrives once.
func TestCSIResume(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	bob := b.bgLogin(t, "bob", "phone")
	bob.send(`<presence/>`)
	other := b.login(t, "bob", "")
	other.send(`<presence/>`)
	bob.expect("the other resource's presence", presenceFrom(other.jid))
	alice := b.login(t, "alice", "")
	id := bob.enableSM(true, "").Get("id")
	bob.send(`<inactive xmlns='urn:xmpp:csi:0'/>`)
	bob.ping() // the server has taken it
	csiFlood(t, other, alice, 5)
	alice.send(`<message to="bob@box.test/phone" type="chat"><body>kept</body></message>`)
	bob.expect("the message", isMsg("kept"))
	h := bob.h.Load()
	bob.nc.Close()

	bob2 := b.bgAuth(t, "bob")
	bob2.h.Store(h)
	bob2.send(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='%d'/>`, id, h)
	bob2.expect("<resumed/>", isSM("resumed"))
	bob2.jid = "bob@box.test/phone"
	var presences []string
	for _, e := range bob2.ping() {
		switch {
		case presenceFrom(other.jid)(e):
			presences = append(presences, e.ChildText(nsClient, "status"))
		case isChatState(e):
			t.Fatalf("chat state after resumption: %s", e)
		case e.Local == "message":
			t.Fatalf("acknowledged message sent again: %s", e)
		}
	}
	if fmt.Sprint(presences) != "[s5]" {
		t.Fatalf("presences after resumption %v, want the latest held one once: [s5]", presences)
	}
}
