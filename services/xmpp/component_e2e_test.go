package xmpp

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net"
	"testing"
	"time"
)

const compSecret = "a-long-component-secret"

// componentConn connects a XEP-0114 component and completes the
// handshake (or returns the stream error).
func (b *box) component(t *testing.T, domain, secret string) (net.Conn, *streamReader, error) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", b.compAddr, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(waitLimit))
	fmt.Fprintf(nc, `<stream:stream xmlns="jabber:component:accept" xmlns:stream="http://etherx.jabber.org/streams" to="%s">`, domain)
	rd := newStreamReader(nc, 1<<20, 32, nil)
	hdr, err := rd.Header()
	if err != nil {
		t.Fatalf("component stream header: %v", err)
	}
	var id string
	for _, a := range hdr.Attr {
		if a.Name.Local == "id" {
			id = a.Value
		}
	}
	sum := sha1.Sum([]byte(id + secret))
	fmt.Fprintf(nc, "<handshake>%s</handshake>", hex.EncodeToString(sum[:]))
	el, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !el.Is(nsComponent, "handshake") {
		return nc, rd, fmt.Errorf("handshake refused: %s", el)
	}
	return nc, rd, nil
}

// TestComponent: a component logs in with its secret, receives what users
// send to its domain and can message them.
func TestComponent(t *testing.T) {
	b := startBox(t, []string{"alice"}, "xmpp.component_listen=127.0.0.1:0",
		"xmpp.components=bot.box.test="+compSecret)
	if _, _, err := b.component(t, "bot.box.test", "wrong-secret-wrong-secret"); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
	nc, rd, err := b.component(t, "bot.box.test", compSecret)
	if err != nil {
		t.Fatal(err)
	}
	alice := b.login(t, "alice", "")
	alice.send(`<presence/>`)
	alice.send(`<message to="echo@bot.box.test" type="chat" id="c1"><body>ping bot</body></message>`)
	el, err := rd.Next()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := bodyOf(renamespace(el, nsComponent, nsClient)); b != "ping bot" || el.Get("from") != alice.jid {
		t.Fatalf("component got %s", el)
	}
	fmt.Fprintf(nc, `<message from="echo@bot.box.test" to="%s" type="chat"><body>pong</body></message>`, alice.jid)
	m := alice.expect("the bot's reply", isMsg("pong"))
	if m.Get("from") != "echo@bot.box.test" {
		t.Fatalf("reply %s", m)
	}
	// A component may not speak for another domain.
	fmt.Fprintf(nc, `<message from="mallory@box.test" to="%s"><body>spoof</body></message>`, alice.jid)
	el, err = rd.Next()
	if err != nil || !el.Is(nsStream, "error") || el.Child(nsStreamErr, "invalid-from") == nil {
		t.Fatalf("spoofing component: %v %v", el, err)
	}
	alice.quiet("spoofed message", isMsg("spoof"))
}
