package xmpp

import (
	"slices"
	"testing"
)

// TestFederationProsodyArchiveAndPEP runs the remote-user paths of the
// core against Prosody (startProsody, s2s_prosody_e2e_test.go): a Prosody
// user's message to an offline account waits for it and is in its
// archive with the answer; once subscribed to each other, the account's
// OMEMO device list reaches the Prosody user as a notification and by an
// items request.
func TestFederationProsodyArchiveAndPEP(t *testing.T) {
	cb, dave := boxWithProsody(t)

	// alice has no session: the message waits for her.
	dave.send(`<message to="alice@chatbox.test" type="chat" id="o1"><body>while you were out</body></message>`)
	cb.waitLog(t, 0, "federation: message stored", "account=alice", "id=o1")
	alice := cb.login(t, "alice", "")
	alice.send(`<presence/>`)
	if m := alice.expect("the kept message", isMsg("while you were out")); m.Get("from") != dave.jid || m.Child("urn:xmpp:delay", "delay") == nil {
		t.Fatalf("alice got %s; want it from %s with a delay", m, dave.jid)
	}
	alice.send(`<message to="dave@prosody.test" type="chat" id="o2"><body>back now</body></message>`)
	dave.expect("alice's answer", isMsg("back now"))
	p := alice.mamQuery(`<field var="with"><value>dave@prosody.test</value></field>`, "")
	if want := []string{"while you were out", "back now"}; !slices.Equal(p.bodies, want) {
		t.Fatalf("alice's archive with dave@prosody.test: %q; want %q", p.bodies, want)
	}

	// Subscriptions both ways (RFC 6121 §3), Prosody's roster on one side.
	// (Prosody sends subscription stanzas to interested resources: those
	// that asked for the roster, RFC 6121 §2.1.6.)
	dave.iq(`<iq type="get" id="{id}"><query xmlns="jabber:iq:roster"/></iq>`)
	dave.send(`<presence to="alice@chatbox.test" type="subscribe"/>`)
	alice.expect("dave's request", isPresence("dave@prosody.test", "subscribe"))
	alice.send(`<presence to="dave@prosody.test" type="subscribed"/>`)
	dave.expect("subscribed", isPresence("alice@chatbox.test", "subscribed"))
	alice.send(`<presence to="dave@prosody.test" type="subscribe"/>`)
	dave.expect("alice's request", isPresence("alice@chatbox.test", "subscribe"))
	dave.send(`<presence to="alice@chatbox.test" type="subscribed"/>`)
	alice.expect("subscribed", isPresence("dave@prosody.test", "subscribed"))

	node := nsAxolotl + ".devicelist"
	alice.iq(`<iq type="set" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="` + node + `"><item id="current"><list xmlns="` + nsAxolotl + `"><device id="4242"/></list></item></publish></pubsub></iq>`)
	ev := dave.expect("alice's device list through Prosody", isPEPEvent("alice@chatbox.test", node))
	if ev.Child(nsPubSubEvent, "event").Child(nsPubSubEvent, "items").Child(nsPubSubEvent, "item").Child(nsAxolotl, "list").Child(nsAxolotl, "device").Get("id") != "4242" {
		t.Fatalf("dave got %s; want device 4242", ev)
	}
	res := dave.iq(`<iq type="get" id="{id}" to="alice@chatbox.test"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="` + node + `"/></pubsub></iq>`)
	if res.Child(nsPubSub, "pubsub").Child(nsPubSub, "items").Child(nsPubSub, "item").Child(nsAxolotl, "list").Child(nsAxolotl, "device").Get("id") != "4242" {
		t.Fatalf("dave's items request answered %s; want device 4242", res)
	}
}
