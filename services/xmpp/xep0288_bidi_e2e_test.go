package xmpp

import (
	"strings"
	"testing"
)

// TestFederationProsodyBidi: XEP-0288 with an independent server,
// Prosody with mod_s2s_bidi, both roles. The box connects to prosody.test
// asking for bidi; Prosody connects to rooms.chatbox.test with bidi, and
// the room's traffic to dave goes back on that stream: the box never
// opens a stream from rooms.chatbox.test.
func TestFederationProsodyBidi(t *testing.T) {
	cb, dave := boxWithProsody(t, prosodyBidi(true))
	alice := cb.login(t, "alice", "")
	alice.send(`<presence/>`)

	alice.send(`<message to="dave@prosody.test" type="chat" id="b1"><body>one stream</body></message>`)
	dave.expect("alice's message", isMsg("one stream"))
	dave.send(`<message to="alice@chatbox.test" type="chat" id="b2"><body>both ways</body></message>`)
	alice.expect("dave's answer", isMsg("both ways"))
	// The box asked for bidi on its stream. (Prosody still opens its own
	// stream to the box: the dialback verification of the box's key
	// needs one, and Prosody keeps it as its route.)
	cb.waitLog(t, 0, "asking for a bidirectional stream (XEP-0288)", "peer=prosody.test", "local=chatbox.test")

	// Prosody as the initiating side: dave joins a room of the box.
	dave.send(`<presence to="general@rooms.chatbox.test/dave"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	dave.expect("self-presence in general", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == "general@rooms.chatbox.test/dave" && hasStatus(e, "110")
	})
	cb.waitLog(t, 0, "bidirectional stream (XEP-0288)", "peer=prosody.test", "local=rooms.chatbox.test")
	dave.send(`<message to="general@rooms.chatbox.test" type="groupchat" id="g1"><body>hi room</body></message>`)
	dave.expect("the room's echo", func(e *Element) bool {
		b, _ := bodyOf(e)
		return e.Local == "message" && e.Get("type") == "groupchat" && b == "hi room"
	})
	if n := strings.Count(cb.logText(), "federation: outgoing stream ready"); n != 1 {
		t.Fatalf("the box opened %d outgoing streams; want 1 (to prosody.test; the room answers on Prosody's stream)", n)
	}
}
