package xmpp

import "testing"

const nsAxolotl = "eu.siacs.conversations.axolotl"

// isPEPEvent matches a PEP notification of node from the bare JID from.
func isPEPEvent(from, node string) func(*Element) bool {
	return func(e *Element) bool {
		ev := e.Child(nsPubSubEvent, "event")
		return e.Local == "message" && e.Get("from") == from && ev != nil && ev.Child(nsPubSubEvent, "items").Get("node") == node
	}
}

// TestFederationPEP: OMEMO's device list crosses between alice@a.test and
// bob@b.test, subscribed to each other: a publication reaches the remote
// contact as a notification, and the remote contact can fetch the items;
// someone not subscribed cannot; disco#info shows the PEP service.
func TestFederationPEP(t *testing.T) {
	a, b := fedPair(t, []string{"alice"}, []string{"bob", "carl"})
	alice := a.login(t, "alice", "")
	bob := b.login(t, "bob", "")
	alice.send(`<presence/>`)
	bob.send(`<presence/>`)
	subscribeBoth(t, alice, bob)

	node := nsAxolotl + ".devicelist"
	alice.iq(`<iq type="set" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="` + node + `"><item id="current"><list xmlns="` + nsAxolotl + `"><device id="12345"/></list></item></publish></pubsub></iq>`)
	ev := bob.expect("alice's device list notification", isPEPEvent("alice@a.test", node))
	item := ev.Child(nsPubSubEvent, "event").Child(nsPubSubEvent, "items").Child(nsPubSubEvent, "item")
	if item.Get("id") != "current" || item.Child(nsAxolotl, "list").Child(nsAxolotl, "device").Get("id") != "12345" {
		t.Fatalf("bob got %s; want alice's device 12345 in item current", ev)
	}

	res := bob.iq(`<iq type="get" id="{id}" to="alice@a.test"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="` + node + `"/></pubsub></iq>`)
	got := res.Child(nsPubSub, "pubsub").Child(nsPubSub, "items").Child(nsPubSub, "item")
	if res.Get("from") != "alice@a.test" || got.Get("id") != "current" || got.Child(nsAxolotl, "list").Child(nsAxolotl, "device").Get("id") != "12345" {
		t.Fatalf("bob's items request answered %s; want alice's device list", res)
	}
	info := bob.iq(`<iq type="get" id="{id}" to="alice@a.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	pep := false
	for _, id := range info.Child(nsDiscoInfo, "query").Kids() {
		pep = pep || id.Local == "identity" && id.Get("category") == "pubsub" && id.Get("type") == "pep"
	}
	if !pep {
		t.Fatalf("disco#info of alice@a.test: %s; want the pubsub/pep identity", info)
	}

	// carl@b.test is not subscribed: the presence access model refuses.
	carl := b.login(t, "carl", "")
	carl.send(`<iq type="get" id="c1" to="alice@a.test"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="%s"/></pubsub></iq>`, node)
	e := carl.expectID("c1")
	if e.Get("type") != "error" || e.Child(nsClient, "error").Child(nsStanzaErr, "not-authorized") == nil ||
		e.Child(nsClient, "error").Child(nsPubSubErrors, "presence-subscription-required") == nil {
		t.Fatalf("carl got %s; want not-authorized, presence-subscription-required", e)
	}
	// Remote writes are refused.
	carl.send(`<iq type="set" id="c2" to="alice@a.test"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="x"><item/></publish></pubsub></iq>`)
	if e := carl.expectID("c2"); e.Get("type") != "error" || e.Child(nsClient, "error").Child(nsStanzaErr, "forbidden") == nil {
		t.Fatalf("carl's publish got %s; want forbidden", e)
	}
	carl.quiet("alice's notification", isPEPEvent("alice@a.test", node))

	// And the other way: bob's device list reaches alice.
	bob.iq(`<iq type="set" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="` + node + `"><item id="current"><list xmlns="` + nsAxolotl + `"><device id="777"/></list></item></publish></pubsub></iq>`)
	ev = alice.expect("bob's device list notification", isPEPEvent("bob@b.test", node))
	if ev.Child(nsPubSubEvent, "event").Child(nsPubSubEvent, "items").Child(nsPubSubEvent, "item").Child(nsAxolotl, "list").Child(nsAxolotl, "device").Get("id") != "777" {
		t.Fatalf("alice got %s; want bob's device 777", ev)
	}
}
