package xmpp

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// ircClient is a raw IRC connection to the box's plain listener, logged
// in to an account.
type ircClient struct {
	t     *testing.T
	nc    net.Conn
	lines chan ircmsg.Message
}

func (b *box) ircLogin(t *testing.T, account string) *ircClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", b.ircAddr, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	c := &ircClient{t: t, nc: nc, lines: make(chan ircmsg.Message, 1000)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(nc)
		for sc.Scan() {
			m, err := ircmsg.ParseLine(sc.Text())
			if err != nil {
				continue
			}
			if m.Command == "PING" {
				c.raw("PONG :" + strings.Join(m.Params, " "))
				continue
			}
			c.lines <- m
		}
	}()
	t.Cleanup(func() { nc.Close() })
	c.raw("PASS " + password(account))
	c.raw("NICK " + account)
	c.raw("USER u 0 * :r")
	c.expect("welcome", func(m ircmsg.Message) bool { return m.Command == "001" })
	return c
}

func (c *ircClient) raw(line string) {
	c.nc.SetWriteDeadline(time.Now().Add(waitLimit))
	if _, err := c.nc.Write([]byte(line + "\r\n")); err != nil {
		c.t.Fatalf("irc write %q: %v", line, err)
	}
}

func (c *ircClient) expect(what string, pred func(ircmsg.Message) bool) ircmsg.Message {
	c.t.Helper()
	var seen []string
	deadline := time.After(waitLimit)
	for {
		select {
		case m, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("irc: connection closed waiting for %s; got %s", what, strings.Join(seen, "\n"))
			}
			if pred(m) {
				return m
			}
			l, _ := m.Line()
			seen = append(seen, strings.TrimSpace(l))
		case <-deadline:
			c.t.Fatalf("irc: no %s within %s; got:\n%s", what, waitLimit, strings.Join(seen, "\n"))
		}
	}
}

// TestCrossDoorDirectMessages: a message from an XMPP user to bob reaches
// bob's IRC session, his reply comes back to XMPP, /me maps to ACTION
// both ways, and an IRC AWAY shows as away presence.
func TestCrossDoorDirectMessages(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	alice := b.login(t, "alice", "")
	alice.send(`<presence/>`)
	bob := b.ircLogin(t, "bob")

	alice.send(`<message to="bob@box.test" type="chat" id="x1"><body>hi bob on irc</body></message>`)
	m := bob.expect("PRIVMSG from alice", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" })
	if m.Params[0] != "bob" || m.Params[1] != "hi bob on irc" || m.Nick() != "alice" {
		t.Fatalf("bob got %v from %s", m.Params, m.Source)
	}
	alice.send(`<message to="bob@box.test" type="chat"><body>/me waves</body></message>`)
	m = bob.expect("ACTION", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" })
	if m.Params[1] != "\x01ACTION waves\x01" {
		t.Fatalf("action arrived as %q", m.Params[1])
	}

	bob.raw("PRIVMSG alice :hello from irc")
	x := alice.expect("bob's reply", isMsg("hello from irc"))
	if !strings.HasPrefix(x.Get("from"), "bob@box.test") || x.Get("to") != alice.jid || x.Get("type") != "chat" {
		t.Fatalf("reply %s", x)
	}
	bob.raw("PRIVMSG alice :\x01ACTION nods\x01")
	alice.expect("bob's action", isMsg("/me nods"))
}

// TestMessageToUnknownAccount gets service-unavailable (RFC 6121 §8.5.1).
func TestMessageToUnknownAccount(t *testing.T) {
	b := startBox(t, []string{"alice"})
	alice := b.login(t, "alice", "")
	alice.send(`<message to="nobody@box.test" type="chat" id="u1"><body>hello?</body></message>`)
	e := alice.expect("error", func(e *Element) bool { return e.Local == "message" && e.Get("id") == "u1" })
	if e.Get("type") != "error" || e.Child(nsClient, "error").Child(nsStanzaErr, "service-unavailable") == nil {
		t.Fatalf("got %s", e)
	}
	alice.send(`<message to="someone@elsewhere.example" type="chat" id="u2"><body>hello?</body></message>`)
	e = alice.expect("error", func(e *Element) bool { return e.Local == "message" && e.Get("id") == "u2" })
	if e.Child(nsClient, "error").Child(nsStanzaErr, "remote-server-not-found") == nil {
		t.Fatalf("got %s", e)
	}
}

// TestPriorityRouting: a message to the bare JID goes to the resource
// with the highest priority; the other gets it only as a carbon, and
// only once it enabled carbons; a message to a full JID goes there.
func TestPriorityRouting(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	alice := b.login(t, "alice", "")
	high := b.login(t, "bob", "")
	low := b.login(t, "bob", "")
	high.send(`<presence><priority>10</priority></presence>`)
	low.send(`<presence><priority>1</priority></presence>`)
	// Each sees the other's presence (own resources, RFC 6121 §4.2.2).
	low.expect("high's presence", func(e *Element) bool { return e.Local == "presence" && e.Get("from") == high.jid })
	high.expect("low's presence", func(e *Element) bool { return e.Local == "presence" && e.Get("from") == low.jid })

	alice.send(`<message to="bob@box.test" type="chat"><body>one</body></message>`)
	high.expect("message one", isMsg("one"))
	low.quiet("message one", func(e *Element) bool { return e.Local == "message" })

	low.iq(`<iq type="set" id="{id}"><enable xmlns="urn:xmpp:carbons:2"/></iq>`)
	alice.send(`<message to="bob@box.test" type="chat"><body>two</body></message>`)
	high.expect("message two", isMsg("two"))
	c := low.expect("received carbon", func(e *Element) bool { return e.Child(nsCarbons, "received") != nil })
	// mellium's Serve blanks a from equal to the client's own bare JID.
	if f := c.Get("from"); f != "bob@box.test" && f != "" {
		t.Fatalf("carbon from %q: %s", c.Get("from"), c)
	}
	fwd := c.Child(nsCarbons, "received").Child("urn:xmpp:forward:0", "forwarded").Child(nsClient, "message")
	if b, _ := bodyOf(fwd); b != "two" {
		t.Fatalf("carbon %s", c)
	}

	alice.send(`<message to="%s" type="chat"><body>three</body></message>`, low.jid)
	low.expect("message three", isMsg("three"))

	// A message low sends reaches high as a sent carbon? high did not
	// enable carbons: nothing. Priority change: low becomes the best.
	low.send(`<presence><priority>20</priority></presence>`)
	high.expect("low's new presence", func(e *Element) bool { return e.Local == "presence" && e.Get("from") == low.jid })
	alice.send(`<message to="bob@box.test" type="chat"><body>four</body></message>`)
	low.expect("message four", isMsg("four"))
	high.quiet("message four", isMsg("four"))
}

// TestSentCarbons: what one resource sends (or the account writes on
// IRC) reaches the account's other resources that enabled carbons.
func TestSentCarbons(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	a1 := b.login(t, "alice", "")
	a2 := b.login(t, "alice", "")
	b.login(t, "bob", "")
	a2.iq(`<iq type="set" id="{id}"><enable xmlns="urn:xmpp:carbons:2"/></iq>`)
	a1.send(`<message to="bob@box.test" type="chat" id="s1"><body>from a1</body></message>`)
	c := a2.expect("sent carbon", func(e *Element) bool { return e.Child(nsCarbons, "sent") != nil })
	fwd := c.Child(nsCarbons, "sent").Child("urn:xmpp:forward:0", "forwarded").Child(nsClient, "message")
	if body, _ := bodyOf(fwd); body != "from a1" || fwd.Get("to") != "bob@box.test" || fwd.Get("from") != a1.jid {
		t.Fatalf("carbon %s", c)
	}
	a1.send(`<message to="bob@box.test" type="chat" id="s2"><body>secret</body><private xmlns="urn:xmpp:carbons:2"/></message>`)
	a2.quiet("private carbon", func(e *Element) bool { return e.Child(nsCarbons, "sent") != nil })

	irc := b.ircLogin(t, "alice")
	irc.raw("PRIVMSG bob :written on irc")
	c = a2.expect("sent carbon from irc", func(e *Element) bool { return e.Child(nsCarbons, "sent") != nil })
	fwd = c.Child(nsCarbons, "sent").Child("urn:xmpp:forward:0", "forwarded").Child(nsClient, "message")
	if body, _ := bodyOf(fwd); body != "written on irc" {
		t.Fatalf("carbon %s", c)
	}
}

// TestCrossDoorAway: an XMPP user's away status is IRC's AWAY (WHOIS
// shows it), and back.
func TestCrossDoorAway(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	alice := b.login(t, "alice", "")
	alice.send(`<presence><show>away</show><status>at lunch</status></presence>`)
	alice.expect("own presence", func(e *Element) bool { return e.Local == "presence" && e.Get("from") == alice.jid })
	bob := b.ircLogin(t, "bob")
	bob.raw("WHOIS alice")
	away := bob.expect("RPL_AWAY", func(m ircmsg.Message) bool { return m.Command == "301" || m.Command == "318" })
	if away.Command != "301" || away.Params[len(away.Params)-1] != "at lunch" {
		t.Fatalf("WHOIS alice: %v", away)
	}
	alice.send(`<presence/>`)
	alice.expect("own presence", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == alice.jid && e.Child(nsClient, "show") == nil
	})
	bob.raw("WHOIS alice")
	end := bob.expect("end of WHOIS", func(m ircmsg.Message) bool { return m.Command == "301" || m.Command == "318" })
	if end.Command == "301" {
		t.Fatalf("alice still away on IRC: %v", end)
	}
}
