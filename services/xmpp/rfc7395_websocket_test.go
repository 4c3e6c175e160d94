package xmpp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"mellium.im/sasl"

	"chatbox/services/chat"
	"chatbox/services/irc"
)

// wsClient is an RFC 7395 client driven by hand over coder/websocket.
type wsClient struct {
	t  testing.TB
	ws *websocket.Conn
}

// serveWS serves srv's WebSocket endpoint on a loopback HTTP server and
// returns its ws:// URL.
func serveWS(t testing.TB, srv *Server) string {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(srv.ServeWebSocket))
	t.Cleanup(hs.Close)
	return "ws" + strings.TrimPrefix(hs.URL, "http") + WebSocketPath
}

func dialWS(t testing.TB, url string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"xmpp"}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	if resp.Header.Get("Sec-WebSocket-Protocol") != "xmpp" {
		t.Fatalf("server chose subprotocol %q, want xmpp", resp.Header.Get("Sec-WebSocket-Protocol"))
	}
	ws.SetReadLimit(1 << 20)
	t.Cleanup(func() { ws.CloseNow() })
	return &wsClient{t: t, ws: ws}
}

func (c *wsClient) send(format string, args ...any) {
	c.t.Helper()
	c.sendRaw(websocket.MessageText, []byte(fmt.Sprintf(format, args...)))
}

func (c *wsClient) sendRaw(typ websocket.MessageType, b []byte) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, typ, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next message, parsed as a standalone document (so a
// missing namespace declaration fails here), or the read error.
func (c *wsClient) read() (*Element, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		return nil, nil, err
	}
	if typ != websocket.MessageText {
		return nil, b, fmt.Errorf("a binary message: %q", b)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, b, fmt.Errorf("message %q: %v", b, err)
		}
		if st, ok := tok.(xml.StartElement); ok {
			el, err := elementFromTokens(st, d)
			if err != nil {
				return nil, b, fmt.Errorf("message %q: %v", b, err)
			}
			if _, err := d.Token(); err == nil {
				return nil, b, fmt.Errorf("message %q holds more than one element", b)
			}
			return el, b, nil
		}
	}
}

func (c *wsClient) next() *Element {
	c.t.Helper()
	el, _, err := c.read()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return el
}

// expect reads until pred matches (at most 50 messages).
func (c *wsClient) expect(what string, pred func(*Element) bool) *Element {
	c.t.Helper()
	for range 50 {
		if el := c.next(); pred(el) {
			return el
		}
	}
	c.t.Fatalf("no %s in 50 messages", what)
	return nil
}

// open sends <open/> and returns the server's <open/> and features.
func (c *wsClient) open() (*Element, *Element) {
	c.t.Helper()
	c.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="%s" version="1.0"/>`, boxDomain)
	op := c.next()
	if !op.Is(nsFraming, "open") || op.Get("from") != boxDomain || op.Get("version") != "1.0" || op.Get("id") == "" {
		c.t.Fatalf("server's open = %s", op)
	}
	f := c.next()
	if !f.Is(nsStream, "features") {
		c.t.Fatalf("features = %s", f)
	}
	return op, f
}

// expectStreamError reads the stream error, the <close/> and the
// WebSocket's close status.
func (c *wsClient) expectStreamError(cond string, status websocket.StatusCode) {
	c.t.Helper()
	el := c.next()
	if !el.Is(nsStream, "error") || el.Child(nsStreamErr, cond) == nil {
		c.t.Fatalf("got %s, want a %s stream error", el, cond)
	}
	if cl := c.next(); !cl.Is(nsFraming, "close") {
		c.t.Fatalf("got %s after the stream error, want <close/>", cl)
	}
	_, _, err := c.read()
	if got := websocket.CloseStatus(err); got != status {
		c.t.Fatalf("closed with %v (%v), want %v", got, err, status)
	}
}

func mechanismsOf(f *Element) []string {
	var out []string
	if m := f.Child(nsSASL, "mechanisms"); m != nil {
		for _, k := range m.Kids() {
			out = append(out, k.Text())
		}
	}
	return out
}

// login authenticates with SCRAM-SHA-256 (or PLAIN), restarts and binds.
func (c *wsClient) login(user, resource, mech string) string {
	c.t.Helper()
	c.open()
	switch mech {
	case "PLAIN":
		c.send(`<auth xmlns="%s" mechanism="PLAIN">%s</auth>`, nsSASL,
			base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password(user))))
	default:
		sc := sasl.NewClient(sasl.ScramSha256, scramCreds(user, password(user), ""))
		_, first, err := sc.Step(nil)
		if err != nil {
			c.t.Fatal(err)
		}
		c.send(`<auth xmlns="%s" mechanism="SCRAM-SHA-256">%s</auth>`, nsSASL, base64.StdEncoding.EncodeToString(first))
		ch := c.next()
		if !ch.Is(nsSASL, "challenge") {
			c.t.Fatalf("got %s, want a challenge", ch)
		}
		in, _ := base64.StdEncoding.DecodeString(ch.Text())
		_, final, err := sc.Step(in)
		if err != nil {
			c.t.Fatal(err)
		}
		c.send(`<response xmlns="%s">%s</response>`, nsSASL, base64.StdEncoding.EncodeToString(final))
	}
	if ok := c.next(); !ok.Is(nsSASL, "success") {
		c.t.Fatalf("got %s, want success", ok)
	}
	_, f := c.open()
	if f.Child(nsBind, "bind") == nil {
		c.t.Fatalf("features after SASL = %s", f)
	}
	c.send(`<iq xmlns="jabber:client" type="set" id="b1"><bind xmlns="%s"><resource>%s</resource></bind></iq>`, nsBind, resource)
	res := c.next()
	jid := res.Child(nsBind, "bind").ChildText(nsBind, "jid")
	if res.Get("type") != "result" || jid != user+"@"+boxDomain+"/"+resource {
		c.t.Fatalf("bind answer %s", res)
	}
	return jid
}

func TestWebSocketLogin(t *testing.T) {
	srv, _ := startInproc(t, Config{}, "alice")
	url := serveWS(t, srv)

	c := dialWS(t, url)
	_, f := c.open()
	if f.Child(nsTLS, "starttls") != nil {
		t.Errorf("STARTTLS offered over WebSocket: %s", f)
	}
	mechs := strings.Join(mechanismsOf(f), " ")
	if mechs != "SCRAM-SHA-256 SCRAM-SHA-1 PLAIN" {
		t.Errorf("mechanisms on loopback = %q", mechs)
	}

	for _, mech := range []string{"SCRAM-SHA-256", "PLAIN"} {
		t.Run(mech, func(t *testing.T) {
			c := dialWS(t, url)
			c.login("alice", "web-"+mech, mech)
			c.send(`<iq xmlns="jabber:client" type="get" id="p1" to="%s"><ping xmlns="urn:xmpp:ping"/></iq>`, boxDomain)
			if r := c.next(); !r.Is(nsClient, "iq") || r.Get("id") != "p1" || r.Get("type") != "result" {
				t.Fatalf("ping answer %s", r)
			}
			c.send(`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`)
			if cl := c.next(); !cl.Is(nsFraming, "close") {
				t.Fatalf("got %s, want <close/>", cl)
			}
			_, _, err := c.read()
			if got := websocket.CloseStatus(err); got != websocket.StatusNormalClosure {
				t.Fatalf("closed with %v (%v), want normal closure", got, err)
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		c := dialWS(t, url)
		c.open()
		c.send(`<auth xmlns="%s" mechanism="PLAIN">%s</auth>`, nsSASL, base64.StdEncoding.EncodeToString([]byte("\x00alice\x00nope")))
		if f := c.next(); !f.Is(nsSASL, "failure") || f.Child(nsSASL, "not-authorized") == nil {
			t.Fatalf("got %s, want not-authorized", f)
		}
	})
	t.Run("no subprotocol", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws, _, err := websocket.Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.CloseNow()
		_, _, err = ws.Read(ctx)
		if got := websocket.CloseStatus(err); got != websocket.StatusPolicyViolation {
			t.Fatalf("closed with %v (%v), want policy violation", got, err)
		}
	})
}

// TestWebSocketPlainOnlyWhenSecure: PLAIN is offered over WebSocket when
// the web listener is HTTPS or the peer on loopback, and never because of
// xmpp.allow_plaintext (which is about the TCP listener).
func TestWebSocketPlainOnlyWhenSecure(t *testing.T) {
	srv := &Server{cfg: Config{AllowPlaintext: true}}
	for _, secure := range []bool{false, true} {
		c := &conn{srv: srv, kind: kindWebSocket, secure: secure}
		got := strings.Join(c.mechanisms(), " ")
		want := "SCRAM-SHA-256 SCRAM-SHA-1"
		if secure {
			want += " PLAIN"
		}
		if got != want {
			t.Errorf("secure=%v: mechanisms %q, want %q", secure, got, want)
		}
	}
}

// TestWebSocketToIRCAndBack: a WebSocket client messages an IRC user and
// gets the answer.
func TestWebSocketToIRCAndBack(t *testing.T) {
	srv, core := startInproc(t, Config{}, "alice", "bob")
	url := serveWS(t, srv)
	isrv := irc.New(irc.Config{PlainListen: []string{"127.0.0.1:0"}, ServerName: boxDomain}, core, nil)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- isrv.Serve(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-errc })

	nc, err := net.Dial("tcp", isrv.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	rd := bufio.NewReader(nc)
	fmt.Fprintf(nc, "PASS bob:%s\r\nNICK bob\r\nUSER bob 0 * :Bob\r\n", password("bob"))
	ircExpect := func(what string, pred func(string) bool) string {
		t.Helper()
		for range 200 {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("IRC: no %s: %v", what, err)
			}
			if strings.HasPrefix(line, "PING ") {
				fmt.Fprintf(nc, "PONG %s\r\n", line[5:])
			}
			if pred(line) {
				return line
			}
		}
		t.Fatalf("IRC: no %s in 200 lines", what)
		return ""
	}
	ircExpect("welcome", func(l string) bool { return strings.Contains(l, " 001 ") })

	alice := dialWS(t, url)
	alice.login("alice", "web", "SCRAM-SHA-256")
	alice.send(`<presence xmlns="jabber:client"/>`)
	alice.send(`<message xmlns="jabber:client" to="bob@%s" type="chat" id="m1"><body>hello IRC</body></message>`, boxDomain)
	line := ircExpect("alice's message", func(l string) bool { return strings.Contains(l, "PRIVMSG bob :") })
	if !strings.HasPrefix(line, ":alice!") || !strings.HasSuffix(line, ":hello IRC\r\n") {
		t.Fatalf("bob got %q", line)
	}
	fmt.Fprintf(nc, "PRIVMSG alice :hello WebSocket\r\n")
	m := alice.expect("bob's answer", func(e *Element) bool { return e.Is(nsClient, "message") && e.ChildText(nsClient, "body") != "" })
	if m.ChildText(nsClient, "body") != "hello WebSocket" || !strings.HasPrefix(m.Get("from"), "bob@"+boxDomain) {
		t.Fatalf("alice got %s", m)
	}
}

// TestWebSocketMalformed: frames the door cannot take end the stream with
// the matching stream error, then the matching WebSocket status.
func TestWebSocketMalformed(t *testing.T) {
	srv, _ := startInproc(t, Config{MaxStanzaBytes: 4096}, "alice")
	url := serveWS(t, srv)
	for _, tc := range []struct {
		name   string
		typ    websocket.MessageType
		msg    string
		cond   string
		status websocket.StatusCode
	}{
		{"binary", websocket.MessageBinary, `<presence xmlns="jabber:client"/>`, "bad-format", websocket.StatusUnsupportedData},
		{"not UTF-8", websocket.MessageText, "<message xmlns=\"jabber:client\"><body>\xff\xfe</body></message>", "unsupported-encoding", websocket.StatusInvalidFramePayloadData},
		{"invalid XML", websocket.MessageText, `<message xmlns="jabber:client"><body>x</message>`, "not-well-formed", websocket.StatusNormalClosure},
		{"half an element", websocket.MessageText, `<message xmlns="jabber:client">`, "not-well-formed", websocket.StatusNormalClosure},
		{"two elements", websocket.MessageText, `<presence xmlns="jabber:client"/><presence xmlns="jabber:client"/>`, "not-well-formed", websocket.StatusNormalClosure},
		{"text", websocket.MessageText, `hello`, "bad-format", websocket.StatusNormalClosure},
		{"comment", websocket.MessageText, `<!-- hi --><presence xmlns="jabber:client"/>`, "restricted-xml", websocket.StatusNormalClosure},
		{"entity", websocket.MessageText, `<message xmlns="jabber:client"><body>&boom;</body></message>`, "restricted-xml", websocket.StatusNormalClosure},
		{"TCP stream header", websocket.MessageText, `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="box.test" version="1.0">`, "not-well-formed", websocket.StatusNormalClosure},
		{"oversized", websocket.MessageText, `<message xmlns="jabber:client"><body>` + strings.Repeat("x", 5000) + `</body></message>`, "policy-violation", websocket.StatusMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialWS(t, url)
			c.open()
			c.sendRaw(tc.typ, []byte(tc.msg))
			c.expectStreamError(tc.cond, tc.status)
		})
	}
	t.Run("oversized before open", func(t *testing.T) {
		c := dialWS(t, url)
		c.send("%s", `<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="`+strings.Repeat("x", 5000)+`"/>`)
		if op := c.next(); !op.Is(nsFraming, "open") {
			t.Fatalf("got %s, want the server's <open/> before the error", op)
		}
		c.expectStreamError("policy-violation", websocket.StatusMessageTooBig)
	})
	t.Run("wrong host", func(t *testing.T) {
		c := dialWS(t, url)
		c.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="elsewhere.test" version="1.0"/>`)
		if op := c.next(); !op.Is(nsFraming, "open") {
			t.Fatalf("got %s, want the server's <open/>", op)
		}
		c.expectStreamError("host-unknown", websocket.StatusNormalClosure)
	})
}

// TestWebSocketSlowReader: a client that stops reading is cut once its
// queue overflows; its neighbours go on.
func TestWebSocketSlowReader(t *testing.T) {
	srv, _ := startInproc(t, Config{SendQ: 64 << 10, StanzasPerSecond: 1e6, StanzaBurst: 1e6}, "alice", "bob", "carol")
	url := serveWS(t, srv)
	alice := dialWS(t, url)
	alice.login("alice", "slow", "PLAIN")
	alice.send(`<presence xmlns="jabber:client"/>`)
	bob := dialWS(t, url)
	bob.login("bob", "web", "PLAIN")
	carol := dialWS(t, url)
	carol.login("carol", "web", "PLAIN")
	carol.send(`<presence xmlns="jabber:client"/>`)

	// alice reads nothing from now on. Bodyless messages are relayed,
	// not stored, so bob can send fast.
	payload := strings.Repeat("z", 16<<10)
	cut := false
	for i := 0; i < 4000 && !cut; i++ {
		bob.send(`<message xmlns="jabber:client" to="alice@%s/slow" type="chat"><x xmlns="urn:test:bulk">%s</x></message>`, boxDomain, payload)
		if i%20 == 19 {
			// A round trip makes sure the door handled what bob sent.
			bob.send(`<iq xmlns="jabber:client" type="get" id="r%d" to="%s"><ping xmlns="urn:xmpp:ping"/></iq>`, i, boxDomain)
			bob.expect("the ping answer", func(e *Element) bool { return e.Get("id") == fmt.Sprintf("r%d", i) })
			cut = srv.sessionAt("alice", "slow") == nil
		}
	}
	if !cut {
		t.Fatal("alice was never cut though she read nothing")
	}
	bob.send(`<message xmlns="jabber:client" to="carol@%s" type="chat"><body>still here</body></message>`, boxDomain)
	m := carol.expect("bob's message", func(e *Element) bool { return e.Is(nsClient, "message") })
	if m.ChildText(nsClient, "body") != "still here" {
		t.Fatalf("carol got %s", m)
	}
	// alice's socket ends after what was already in flight.
	for range 10000 {
		if _, _, err := alice.read(); err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) && !strings.Contains(err.Error(), "EOF") && !strings.Contains(err.Error(), "reset") {
				t.Logf("alice's read ended with %v", err)
			}
			return
		}
	}
	t.Fatal("alice's connection still open after 10000 messages")
}

// TestWebSocketFramerOut: the door's output is cut into standalone
// messages whatever the write boundaries.
func TestWebSocketFramerOut(t *testing.T) {
	out := streamHeader(nsClient, boxDomain, "", "abc", "en") +
		string(streamElement(El(nsStream, "features").Add(El(nsBind, "bind")), nsClient)) +
		" \n" + El(nsClient, "message", "to", "a@b", "id", "x>y").Add(El(nsClient, "body").Add("1 < 2 & <b>")).String() +
		El(nsClient, "presence").String() +
		streamErrorXML(&streamError{Condition: "conflict", Text: "replaced"}) + "</stream:stream>"
	want := []string{
		`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" version="1.0" from="box.test" id="abc" xml:lang="en"/>`,
		`<stream:features xmlns:stream="http://etherx.jabber.org/streams"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:features>`,
		`<message xmlns="jabber:client" to="a@b" id="x&gt;y"><body>1 &lt; 2 &amp; &lt;b&gt;</body></message>`,
		`<presence xmlns="jabber:client"/>`,
		`<stream:error xmlns:stream="http://etherx.jabber.org/streams"><conflict xmlns="urn:ietf:params:xml:ns:xmpp-streams"/><text xmlns="urn:ietf:params:xml:ns:xmpp-streams">replaced</text></stream:error>`,
		`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`,
	}
	for _, step := range []int{len(out), 1, 3, 7, 64} {
		f := &wsFramer{}
		var got []string
		for i := 0; i < len(out); i += step {
			for _, m := range f.Out([]byte(out[i:min(i+step, len(out))])) {
				got = append(got, string(m))
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("writes of %d bytes:\n got %q\nwant %q", step, got, want)
		}
	}
}

// BenchmarkWebSocketFraming is the framing's own cost per stanza: a
// client message checked and let through (In), and a door stanza cut
// into a message (Out).
func BenchmarkWebSocketFraming(b *testing.B) {
	msg := []byte(`<message xmlns="jabber:client" to="bob@box.test" type="chat" id="abc123"><body>` +
		strings.Repeat("hello ", 20) + `</body><active xmlns="http://jabber.org/protocol/chatstates"/></message>`)
	out := El(nsClient, "message", "from", "bob@box.test/web", "to", "alice@box.test/web", "type", "chat", "id", "abc123").
		Add(El(nsClient, "body").Add(strings.Repeat("hello ", 20))).Bytes(nsClient)
	b.Run("In", func(b *testing.B) {
		f := &wsFramer{max: 256 << 10}
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			if _, err := f.In(websocket.MessageText, msg, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Out", func(b *testing.B) {
		f := &wsFramer{}
		b.SetBytes(int64(len(out)))
		for b.Loop() {
			if len(f.Out(out)) != 1 {
				b.Fatal("not one message")
			}
		}
	})
}

// TestWebSocketGuest: with guests allowed, a browser logs in with SASL
// ANONYMOUS on guest.<domain>, gets a random JID, joins a room under a
// nickname that is no account's, speaks there, and can do nothing else;
// without guests, the guest host is unknown.
func TestWebSocketGuest(t *testing.T) {
	srv, core := startInproc(t, Config{Guests: true}, "alice")
	if err := core.CreateRoom(context.Background(), "general", "", chat.DefaultRoomSettings()); err != nil {
		t.Fatal(err)
	}
	url := serveWS(t, srv)
	guestHost := "guest." + boxDomain

	if _, f := dialWS(t, url).open(); strings.Contains(strings.Join(mechanismsOf(f), " "), "ANONYMOUS") {
		t.Fatalf("ANONYMOUS offered on the box's domain: %s", f)
	}
	alice := dialWS(t, url)
	alice.login("alice", "web", "SCRAM-SHA-256")
	alice.send(`<presence xmlns="jabber:client" to="general@rooms.%s/alice"><x xmlns="%s"/></presence>`, boxDomain, nsMUC)
	alice.expect("her own room presence", func(e *Element) bool {
		return e.Is(nsClient, "presence") && e.Get("from") == "general@rooms."+boxDomain+"/alice"
	})

	g := dialWS(t, url)
	open := func() *Element {
		g.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="%s" version="1.0"/>`, guestHost)
		if op := g.next(); !op.Is(nsFraming, "open") || op.Get("from") != guestHost {
			t.Fatalf("guest host's open = %s", op)
		}
		return g.next()
	}
	if f := open(); strings.Join(mechanismsOf(f), " ") != "ANONYMOUS" || len(f.Kids()) != 1 {
		t.Fatalf("guest host features = %s", f)
	}
	g.send(`<auth xmlns="%s" mechanism="ANONYMOUS"/>`, nsSASL)
	if ok := g.next(); !ok.Is(nsSASL, "success") {
		t.Fatalf("got %s, want success", ok)
	}
	open()
	g.send(`<iq xmlns="jabber:client" type="set" id="b"><bind xmlns="%s"><resource>phone</resource></bind></iq>`, nsBind)
	jid := g.next().Child(nsBind, "bind").ChildText(nsBind, "jid")
	if jid != "phone@"+guestHost+"/phone" { // the resource, a free valid name, names the guest (xep0175_anonymous.go)
		t.Fatalf("guest JID %q", jid)
	}
	g.send(`<iq xmlns="jabber:client" type="set" id="s1"><session xmlns="%s"/></iq>`, nsSession)
	if r := g.expect("the session answer", func(e *Element) bool { return e.Get("id") == "s1" }); r.Get("type") != "result" {
		t.Fatalf("a guest's session request answered %s", r)
	}

	// A nickname that is an account's is refused.
	g.send(`<presence xmlns="jabber:client" to="general@rooms.%s/Alice"><x xmlns="%s"/></presence>`, boxDomain, nsMUC)
	if e := g.expect("a refusal", func(e *Element) bool { return e.Is(nsClient, "presence") }); e.Get("type") != "error" {
		t.Fatalf("joined under an account's name: %s", e)
	}
	g.send(`<presence xmlns="jabber:client" to="general@rooms.%s/Visitor"><x xmlns="%s"/></presence>`, boxDomain, nsMUC)
	g.expect("its own room presence", func(e *Element) bool {
		return e.Is(nsClient, "presence") && e.Get("from") == "general@rooms."+boxDomain+"/Visitor" && e.Get("type") == ""
	})
	p := alice.expect("the guest's arrival", func(e *Element) bool { return e.Get("from") == "general@rooms."+boxDomain+"/Visitor" })
	if item := p.Child(nsMUCUser, "x").Child(nsMUCUser, "item"); item == nil || item.Get("jid") != "" {
		t.Fatalf("the guest's presence shows %s", p)
	}
	g.send(`<message xmlns="jabber:client" to="general@rooms.%s" type="groupchat" id="g1"><body>hello from a guest</body></message>`, boxDomain)
	m := alice.expect("the guest's message", func(e *Element) bool { return e.Is(nsClient, "message") && e.ChildText(nsClient, "body") != "" })
	if m.Get("from") != "general@rooms."+boxDomain+"/Visitor" || m.ChildText(nsClient, "body") != "hello from a guest" {
		t.Fatalf("alice got %s", m)
	}

	// Stream management, without resumption.
	g.send(`<enable xmlns="%s" resume="true"/>`, nsSM)
	if e := g.expect("enabled", func(e *Element) bool { return e.Space == nsSM }); !e.Is(nsSM, "enabled") || e.Get("resume") != "" {
		t.Fatalf("SM for a guest: %s", e)
	}

	// Nothing but rooms.
	g.send(`<message xmlns="jabber:client" to="alice@%s" type="chat" id="d1"><body>psst</body></message>`, boxDomain)
	if e := g.expect("the refusal", func(e *Element) bool { return e.Get("id") == "d1" }); e.Get("type") != "error" || e.Child(nsClient, "error").Child(nsStanzaErr, "forbidden") == nil {
		t.Fatalf("direct message answer %s", e)
	}
	g.send(`<iq xmlns="jabber:client" type="get" id="r1"><query xmlns="jabber:iq:roster"/></iq>`)
	if e := g.expect("the refusal", func(e *Element) bool { return e.Get("id") == "r1" }); e.Get("type") != "error" {
		t.Fatalf("roster answer %s", e)
	}
	g.send(`<iq xmlns="jabber:client" type="get" id="p1" to="%s"><ping xmlns="urn:xmpp:ping"/></iq>`, boxDomain)
	if e := g.expect("the ping answer", func(e *Element) bool { return e.Get("id") == "p1" }); e.Get("type") != "result" {
		t.Fatalf("ping answer %s", e)
	}

	// Gone when it leaves: its pseudo-account has no session left.
	g.send(`<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"/>`)
	alice.expect("the guest leaving", func(e *Element) bool {
		return e.Get("from") == "general@rooms."+boxDomain+"/Visitor" && e.Get("type") == "unavailable"
	})
	// The room hears the guest leave before the door has dropped the
	// session from its table: wait (bounded) for that.
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(5 * time.Millisecond) {
		n := len(srv.sessionsOf(chat.GuestPrefix + "phone"))
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions left for the guest %s after it left", n, waitLimit)
		}
	}

	t.Run("guests off", func(t *testing.T) {
		srv, _ := startInproc(t, Config{})
		c := dialWS(t, serveWS(t, srv))
		c.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="%s" version="1.0"/>`, guestHost)
		c.next()
		c.expectStreamError("host-unknown", websocket.StatusNormalClosure)
	})
}

// TestWebSocketLoginTimeout: a WebSocket client that does not log in in
// time is cut as a TCP one is; an idle bound one is pinged, and cut when
// it does not answer.
func TestWebSocketLoginTimeout(t *testing.T) {
	srv, _ := startInproc(t, Config{AuthTimeout: 300 * time.Millisecond})
	c := dialWS(t, serveWS(t, srv))
	c.open()
	c.expectStreamError("policy-violation", websocket.StatusNormalClosure)

	// The login itself has the default minute.
	srv, _ = startInproc(t, Config{PingInterval: 300 * time.Millisecond, PingTimeout: 300 * time.Millisecond}, "alice")
	a := dialWS(t, serveWS(t, srv))
	a.login("alice", "idle", "PLAIN")
	ping := a.expect("the keepalive", func(e *Element) bool { return e.Is(nsClient, "iq") && e.Child("urn:xmpp:ping", "ping") != nil })
	if ping.Get("type") != "get" {
		t.Fatalf("keepalive %s", ping)
	}
	a.expectStreamError("connection-timeout", websocket.StatusNormalClosure)
}
