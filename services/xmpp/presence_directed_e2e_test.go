package xmpp

import (
	"testing"
)

// TestDirectedPresence: RFC 6121 §4.6. A user without a subscription
// gets another's directed presence, and the unavailable presence that
// ends the session (§4.6.3), unless a directed unavailable came first;
// the server remembers up to maxDirected JIDs, forgetting the oldest.
func TestDirectedPresence(t *testing.T) {
	// Room for the burst of directed presences past the bound.
	b := startBox(t, []string{"alice", "bob", "carol"}, "limits.message_burst=1000")
	alice := b.login(t, "alice", "")
	bob := b.login(t, "bob", "")
	carol := b.login(t, "carol", "")
	for _, c := range []*client{bob, carol} {
		c.send(`<presence/>`)
		c.expect("its own presence", func(e *Element) bool { return e.Local == "presence" && e.Get("from") == c.jid })
	}
	from := func(typ, status string) func(*Element) bool {
		return func(e *Element) bool {
			return e.Local == "presence" && e.Get("from") == alice.jid && e.Get("type") == typ &&
				(status == "" || e.ChildText(nsClient, "status") == status)
		}
	}
	alice.send(`<presence/>`)
	alice.send(`<presence to="bob@box.test"><status>hi bob</status></presence>`)
	bob.expect("alice's directed presence", from("", "hi bob"))
	alice.send(`<presence to="carol@box.test"><status>hi carol</status></presence>`)
	carol.expect("alice's directed presence", from("", "hi carol"))
	// Directed unavailable: carol is told now, and not again at the end.
	alice.send(`<presence to="carol@box.test" type="unavailable"><status>bye carol</status></presence>`)
	carol.expect("alice's directed unavailable", from("unavailable", "bye carol"))
	// Many more directed presences (to accounts that do not exist): bob,
	// the oldest, is forgotten past the bound.
	alice.send(`<presence to="bob@box.test"><status>again</status></presence>`) // once only, however often sent
	bob.expect("alice's second directed presence", from("", "again"))
	alice.send(`<presence type="unavailable"><status>leaving</status></presence>`)
	bob.expect("alice's unavailable at the end (§4.6.3)", from("unavailable", "leaving"))
	// Whatever alice's unavailable sent carol came before the answer to a
	// ping carol sends now (bob has had his).
	noneFromAlice(t, carol, alice.jid)

	alice.send(`<presence/>`)
	alice.send(`<presence to="bob@box.test"><status>third</status></presence>`)
	bob.expect("alice's third directed presence", from("", "third"))
	for i := range maxDirected {
		alice.send(`<presence to="nobody%d@box.test"/>`, i)
	}
	alice.send(`<presence to="carol@box.test"><status>last</status></presence>`)
	carol.expect("alice's last directed presence", from("", "last"))
	alice.send(`<presence type="unavailable"><status>gone</status></presence>`)
	carol.expect("alice's unavailable at the end", from("unavailable", "gone"))
	noneFromAlice(t, bob, alice.jid) // the oldest, forgotten past the bound
}

// noneFromAlice fails if c gets a presence from jid before the answer to
// a ping it sends now.
func noneFromAlice(t *testing.T, c *client, jid string) {
	t.Helper()
	c.send(`<iq type="get" id="mark" to="box.test"><ping xmlns="urn:xmpp:ping"/></iq>`)
	c.expect("the ping's answer, and no presence from "+jid+" before it", func(e *Element) bool {
		if e.Local == "presence" && e.Get("from") == jid {
			t.Fatalf("%s got %s", c.jid, e)
		}
		return e.Local == "iq" && e.Get("id") == "mark"
	})
}
