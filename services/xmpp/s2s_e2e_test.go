package xmpp

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"chatbox/internal/testbox"
)

// Federation end to end: two real chatbox processes, a.test and b.test,
// each listening for servers on its own loopback address and port
// (chosen at random so that parallel runs do not meet) and pointing at the
// other with the static host map. They authenticate each other with
// dialback (their certificates come from their own CAs, unknown to the
// other), as two boxes on a LAN do before anyone pins anything.

// fedNode is one federated box: its settings, so that it can restart.
type fedNode struct {
	*box
	domain, s2s string
	settings    []string
}

// randomLoopback is an address of 127/8 other than 127.0.0.1.
func randomLoopback() string {
	b := make([]byte, 3)
	rand.Read(b)
	return fmt.Sprintf("127.%d.%d.%d", 100+int(b[0])%100, b[1], 1+int(b[2])%250)
}

// randomListen is a random loopback address and port (a federated box
// restarts on the same address, so the port cannot be the kernel's
// choice; a server listening on every address of 5269 does not meet it).
func randomListen() string {
	b := make([]byte, 2)
	rand.Read(b)
	return fmt.Sprintf("%s:%d", randomLoopback(), 20000+int(b[0])<<8%40000+int(b[1]))
}

// fedPair starts a.test and b.test federated with each other.
func fedPair(t *testing.T, accountsA, accountsB []string, extra ...string) (*fedNode, *fedNode) {
	t.Helper()
	a := &fedNode{domain: "a.test", s2s: randomListen()}
	b := &fedNode{domain: "b.test", s2s: randomListen()}
	for _, n := range []struct{ me, other *fedNode }{{a, b}, {b, a}} {
		n.me.settings = append([]string{
			"domain=" + n.me.domain,
			"federation.enabled=true",
			"federation.listen=" + n.me.s2s,
			"federation.hosts=" + n.other.domain + "=" + n.other.s2s,
		}, extra...)
	}
	a.box = startFedBox(t, filepath.Join(t.TempDir(), "a"), accountsA, a.settings)
	b.box = startFedBox(t, filepath.Join(t.TempDir(), "b"), accountsB, b.settings)
	return a, b
}

// startFedBox is startBox for another domain on a given data directory;
// accounts are created first (none on a restart).
func startFedBox(t *testing.T, data string, accounts []string, settings []string) *box {
	t.Helper()
	b := &box{Proc: testbox.New(chatboxBin, data), data: data}
	for _, a := range accounts {
		b.cli(t, password(a)+"\n", "user", "add", a)
	}
	args := []string{
		"--set", "irc.plain_listen=127.0.0.1:0",
		"--set", "irc.tls_listen=[]",
		"--set", "xmpp.listen=127.0.0.1:0",
		"--set", "xmpp.tls_listen=127.0.0.1:0",
		"--set", "web.listen=",
		"--set", "upload.listen=[]",
		"--set", "calls.listen=[]",
		"--set", "log.level=debug",
	}
	for _, s := range settings {
		args = append(args, "--set", s)
		if d, ok := strings.CutPrefix(s, "domain="); ok {
			b.domain = d
		}
	}
	b.Start(t, args, func(line string) {
		if m := listenRe.FindStringSubmatch(line); m != nil {
			switch {
			case m[1] == "irc":
				b.ircAddr = m[2]
			case m[3] == "c2s-starttls":
				b.xmppAddr = m[2]
			case m[3] == "c2s-directtls":
				b.xmppTLS = m[2]
			case m[3] == "s2s-starttls":
				b.s2sAddr = m[2]
			}
		}
	})
	var ok bool
	b.Locked(func() { ok = b.xmppAddr != "" && b.s2sAddr != "" })
	if !ok {
		t.Fatalf("chatbox did not log its XMPP and federation listeners; log:\n%s", b.logText())
	}
	b.ca = b.CA(t)
	return b
}

// restart stops the node and starts it again on the same data.
func (n *fedNode) restart(t *testing.T) {
	t.Helper()
	n.Stop(t)
	n.box = startFedBox(t, n.data, nil, n.settings)
}

// waitLog waits (bounded) until the box logged, after the first from
// bytes of its log, a line containing all of parts.
func (b *box) waitLog(t *testing.T, from int, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(b.logText()[from:], "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no log line with %q within %s; log:\n%s", parts, waitLimit, b.logText())
}

// isPresence matches a presence of type typ ("" available) from a JID
// whose bare part is from.
func isPresence(from, typ string) func(*Element) bool {
	return func(e *Element) bool {
		f, err := parseJID(e.Get("from"))
		return err == nil && e.Local == "presence" && e.Get("type") == typ && f.Bare() == from
	}
}

// subscribeBoth makes alice@a.test and bob@b.test subscribed to each
// other, checking each RFC 6121 step across the servers.
func subscribeBoth(t *testing.T, alice, bob *client) {
	t.Helper()
	alice.send(`<presence to="bob@b.test" type="subscribe" id="s1"/>`)
	req := bob.expect("subscription request from alice@a.test", isPresence("alice@a.test", "subscribe"))
	if req.Get("from") != "alice@a.test" || req.Get("to") != "bob@b.test" {
		t.Fatalf("subscribe arrived as %s; want from the bare JID alice@a.test to bob@b.test", req)
	}
	bob.send(`<presence to="alice@a.test" type="subscribed"/>`)
	alice.expect("subscribed from bob@b.test", isPresence("bob@b.test", "subscribed"))
	// Bob's server then sends bob's presence (RFC 6121 §3.1.5).
	alice.expect("bob's presence", isPresence("bob@b.test", ""))
	// The remote contact is in alice's roster with a "to" subscription.
	roster := alice.iq(`<iq type="get" id="{id}"><query xmlns="jabber:iq:roster"/></iq>`)
	var items []string
	for _, it := range roster.Child(nsRoster, "query").Kids() {
		items = append(items, it.Get("jid")+":"+it.Get("subscription"))
	}
	if strings.Join(items, ",") != "bob@b.test:to" {
		t.Fatalf("alice's roster is %q; want bob@b.test:to", items)
	}
	// And the other way round.
	bob.send(`<presence to="alice@a.test" type="subscribe"/>`)
	alice.expect("subscription request from bob@b.test", isPresence("bob@b.test", "subscribe"))
	alice.send(`<presence to="bob@b.test" type="subscribed"/>`)
	bob.expect("subscribed from alice@a.test", isPresence("alice@a.test", "subscribed"))
	bob.expect("alice's presence", isPresence("alice@a.test", ""))
	roster = bob.iq(`<iq type="get" id="{id}"><query xmlns="jabber:iq:roster"/></iq>`)
	if it := roster.Child(nsRoster, "query").Child(nsRoster, "item"); it.Get("jid") != "alice@a.test" || it.Get("subscription") != "both" {
		t.Fatalf("bob's roster is %s; want alice@a.test with subscription both", roster)
	}
}

func TestFederationSubscriptionPresenceMessages(t *testing.T) {
	a, b := fedPair(t, []string{"alice"}, []string{"bob"})
	alice := a.login(t, "alice", "")
	bob := b.login(t, "bob", "")
	alice.send(`<presence/>`)
	bob.send(`<presence/>`)
	alice.expect("own presence", isPresence("alice@a.test", ""))
	bob.expect("own presence", isPresence("bob@b.test", ""))

	subscribeBoth(t, alice, bob)

	// Messages both ways, to the bare JID and to the full JID.
	alice.send(`<message to="bob@b.test" type="chat" id="m1"><body>hello bob</body><active xmlns="http://jabber.org/protocol/chatstates"/></message>`)
	m := bob.expect("alice's message", isMsg("hello bob"))
	if m.Get("from") != alice.jid || m.Get("id") != "m1" || m.Get("type") != "chat" || m.Child(nsChatStates, "active") == nil {
		t.Fatalf("bob got %s; want from %s, id m1, type chat and the chat state", m, alice.jid)
	}
	bob.send(`<message to="%s" type="chat" id="m2"><body>hello alice</body></message>`, alice.jid)
	m = alice.expect("bob's message", isMsg("hello alice"))
	if m.Get("from") != bob.jid || m.Get("to") != alice.jid || m.Get("id") != "m2" {
		t.Fatalf("alice got %s; want from %s to %s, id m2", m, bob.jid, alice.jid)
	}

	// An IQ to a remote full JID is relayed and its answer comes back.
	alice.send(`<iq type="get" id="v1" to="%s"><query xmlns="jabber:iq:version"/></iq>`, bob.jid)
	q := bob.expect("alice's version query", func(e *Element) bool { return e.Local == "iq" && e.Get("id") == "v1" })
	if q.Get("from") != alice.jid {
		t.Fatalf("bob got %s; want it from %s", q, alice.jid)
	}
	// (bob's client answers it itself: service-unavailable)
	if r := alice.expectID("v1"); r.Get("from") != bob.jid || r.Get("to") != alice.jid {
		t.Fatalf("alice got %s; want bob's client's answer from %s", r, bob.jid)
	}
	// A ping to the remote domain is answered by that server.
	alice.send(`<iq type="get" id="p1" to="b.test"><ping xmlns="urn:xmpp:ping"/></iq>`)
	if r := alice.expectID("p1"); r.Get("type") != "result" || r.Get("from") != "b.test" {
		t.Fatalf("ping to b.test: %s; want a result from b.test", r)
	}
	info := alice.iq(`<iq type="get" id="{id}" to="b.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if id := info.Child(nsDiscoInfo, "query").Child(nsDiscoInfo, "identity"); info.Get("from") != "b.test" || id.Get("category") != "server" {
		t.Fatalf("disco#info of b.test: %s; want b.test's server identity", info)
	}
	// A remote account that does not exist: service-unavailable (RFC
	// 6121 §8.5.1).
	alice.send(`<message to="nobody@b.test" type="chat" id="m3"><body>anyone?</body></message>`)
	e := alice.expect("error for nobody@b.test", func(e *Element) bool { return e.Local == "message" && e.Get("id") == "m3" })
	if e.Get("type") != "error" || e.Child(nsClient, "error").Child(nsStanzaErr, "service-unavailable") == nil {
		t.Fatalf("got %s; want a service-unavailable error", e)
	}

	// Bob goes offline: alice sees it.
	bob.send(`<presence type="unavailable"/>`)
	alice.expect("bob unavailable", isPresence("bob@b.test", "unavailable"))
}

// TestFederationPeerRestart stops b.test, sends to it while it is down
// and checks the message arrives once it is back: queued at a.test,
// delivered after the restart, kept for bob until he logs in.
func TestFederationPeerRestart(t *testing.T) {
	a, b := fedPair(t, []string{"alice"}, []string{"bob"})
	alice := a.login(t, "alice", "")
	bob := b.login(t, "bob", "")
	alice.send(`<presence/>`)
	bob.send(`<presence/>`)
	alice.send(`<message to="bob@b.test" type="chat" id="before"><body>before the restart</body></message>`)
	bob.expect("the first message", isMsg("before the restart"))

	mark := len(a.logText())
	b.restart(t)
	a.waitLog(t, mark, "outgoing stream closed", "peer=b.test")
	alice.send(`<message to="bob@b.test" type="chat" id="during"><body>while you were away</body></message>`)
	alice.send(`<message to="bob@b.test" type="chat" id="during2"><body>and another</body></message>`)
	// b.test kept them for bob, who is offline; he gets them at his
	// initial presence, in order, with a delay stamp.
	b.waitLog(t, 0, "federation: message stored", "account=bob", "id=during2")
	bob = b.login(t, "bob", "")
	bob.send(`<presence/>`)
	first := bob.expect("queued message", isMsg("while you were away"))
	if first.Get("from") != alice.jid || first.Child("urn:xmpp:delay", "delay") == nil {
		t.Fatalf("bob got %s; want it from %s with a delay", first, alice.jid)
	}
	bob.expect("second queued message", isMsg("and another"))
	// Kept messages are shown once. (The ping of quiet comes back after
	// the initial presence's offline delivery acknowledged them.)
	bob.quiet("a third kept message", func(e *Element) bool { return e.Local == "message" })
	bob2 := b.login(t, "bob", "")
	bob2.send(`<presence/>`)
	bob2.quiet("a kept message again", func(e *Element) bool { return e.Local == "message" })
}

// TestFederationOffAndPolicy: without federation other domains get
// remote-server-not-found; with a block list, the blocked domain too;
// rooms closed to remote users refuse them.
func TestFederationOffAndPolicy(t *testing.T) {
	off := startBox(t, []string{"carol"})
	carol := off.login(t, "carol", "")
	carol.send(`<message to="x@elsewhere.test" type="chat" id="o1"><body>hi</body></message>`)
	e := carol.expect("error", func(e *Element) bool { return e.Local == "message" && e.Get("id") == "o1" })
	if e.Child(nsClient, "error").Child(nsStanzaErr, "remote-server-not-found") == nil {
		t.Fatalf("got %s; want remote-server-not-found", e)
	}

	a, b := fedPair(t, []string{"alice"}, []string{"bob"}, "federation.block=evil.test", "federation.remote_occupants=false")
	alice := a.login(t, "alice", "")
	alice.send(`<message to="x@evil.test" type="chat" id="b1"><body>hi</body></message>`)
	e = alice.expect("error", func(e *Element) bool { return e.Local == "message" && e.Get("id") == "b1" })
	if e.Child(nsClient, "error").Child(nsStanzaErr, "remote-server-not-found") == nil {
		t.Fatalf("got %s; want remote-server-not-found for a blocked domain", e)
	}
	// Rooms closed to remote users: the join is refused.
	bob := b.login(t, "bob", "")
	bob.send(`<presence to="general@rooms.a.test/bobby" id="j1"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	e = bob.expect("join refused", func(e *Element) bool { return e.Local == "presence" && e.Get("id") == "j1" })
	if e.Get("type") != "error" || e.Get("from") != "general@rooms.a.test/bobby" || e.Child(nsClient, "error").Child(nsStanzaErr, "not-allowed") == nil {
		t.Fatalf("got %s; want a not-allowed error from the room", e)
	}
}

// TestFederationRemoteOccupant: bob@b.test joins #general of a.test,
// where carol is on IRC: each sees the other and their messages; IRC
// shows bob by the remote nick rule (bob/b.test).
func TestFederationRemoteOccupant(t *testing.T) {
	a, b := fedPair(t, []string{"carol"}, []string{"bob"})
	carol := a.ircLogin(t, "carol")
	carol.raw("JOIN #general")
	carol.expect("end of NAMES", func(m ircmsg.Message) bool { return m.Command == "366" })
	bob := b.login(t, "bob", "")
	bob.send(`<presence to="general@rooms.a.test/bobby"><x xmlns="http://jabber.org/protocol/muc"/></presence>`)
	self := bob.expect("self-presence in the room", func(e *Element) bool {
		x := e.Child(nsMUCUser, "x")
		return e.Local == "presence" && e.Get("from") == "general@rooms.a.test/bobby" && x != nil && hasStatus(e, "110")
	})
	if self.Get("to") != bob.jid || self.Get("type") != "" {
		t.Fatalf("self-presence %s; want an available presence to %s", self, bob.jid)
	}
	join := carol.expect("bob's JOIN", func(m ircmsg.Message) bool { return m.Command == "JOIN" && m.Source == "bob/b.test!bob@b.test" })
	if join.Params[0] != "#general" {
		t.Fatalf("JOIN %v; want #general", join.Params)
	}
	bob.send(`<message to="general@rooms.a.test" type="groupchat" id="g1"><body>hi from b.test</body></message>`)
	echo := bob.expect("the room's echo", isMsg("hi from b.test"))
	if echo.Get("from") != "general@rooms.a.test/bobby" || echo.Get("type") != "groupchat" {
		t.Fatalf("echo %s; want a groupchat from general@rooms.a.test/bobby", echo)
	}
	pm := carol.expect("bobby's PRIVMSG", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" })
	if pm.Source != "bob/b.test!bob@b.test" || pm.Params[0] != "#general" || pm.Params[1] != "hi from b.test" {
		t.Fatalf("IRC got %s %v; want bob/b.test's message to #general", pm.Source, pm.Params)
	}
	carol.raw("PRIVMSG #general :hello bobby")
	m := bob.expect("carol's message", isMsg("hello bobby"))
	if m.Get("from") != "general@rooms.a.test/carol" || m.Get("type") != "groupchat" || m.Get("to") != bob.jid {
		t.Fatalf("bob got %s; want a groupchat from general@rooms.a.test/carol to %s", m, bob.jid)
	}
	bob.send(`<presence to="general@rooms.a.test/bobby" type="unavailable"/>`)
	carol.expect("bob's PART", func(m ircmsg.Message) bool {
		return (m.Command == "PART" || m.Command == "QUIT") && m.Source == "bob/b.test!bob@b.test"
	})
}
