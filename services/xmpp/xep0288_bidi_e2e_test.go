package xmpp

import (
	"crypto/tls"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
)

// TestFederationProsodyBidi: XEP-0288 with an independent server,
// Prosody with mod_s2s_bidi, both roles. The box connects to prosody.test
// asking for bidi; Prosody connects to rooms.chatbox.test with bidi, and
// the room's traffic to dave goes back on that stream: the box never
// opens a stream from rooms.chatbox.test.
func TestFederationProsodyBidi(t *testing.T) {
	if _, err := exec.LookPath("prosody"); err != nil {
		t.Skip("prosody is not installed (apt-get install prosody; .ci/run installs it): the interoperability test needs it")
	}
	boxS2S, prosodyS2S := randomListen(), randomListen()
	prosodyHost, _, _ := net.SplitHostPort(prosodyS2S)
	prosodyC2S := net.JoinHostPort(prosodyHost, strconv.Itoa(20000+int(time.Now().UnixNano()%40000)))
	cb := startFedBox(t, filepath.Join(t.TempDir(), "box"), []string{"alice"}, []string{
		"domain=chatbox.test",
		"federation.enabled=true",
		"federation.listen=" + boxS2S,
		"federation.hosts=prosody.test=" + prosodyS2S,
	})
	startProsody(t, "prosody.test", prosodyC2S, prosodyS2S, map[string]string{"dave": "password-dave"},
		map[string]string{"chatbox.test": boxS2S}, prosodyBidi(true))
	prosodyBox := &box{xmppAddr: prosodyC2S, domain: "prosody.test"}
	dave := prosodyBox.login(t, "dave", "", loginOpts{mechs: []sasl.Mechanism{sasl.Plain},
		tls: &tls.Config{ServerName: "prosody.test", InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}})
	dave.send(`<presence/>`)
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
