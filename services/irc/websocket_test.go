package irc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatbox/services/chat"
	"chatbox/services/store"
)

// startWSDoor serves an IRC door (Serve on a loopback port, so it is
// running) over a real core and store, and its WebSocket endpoint on a
// loopback HTTP server; it returns the server and the ws:// URL.
func startWSDoor(t *testing.T, cfg Config, accounts ...string) (*Server, string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "chatbox.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	core, err := chat.New(chat.Options{Store: st, Iterations: 1, UsersMayCreateRooms: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		if err := core.CreateAccount(ctx, a, fuzzPassword(a), false); err != nil {
			t.Fatal(err)
		}
	}
	cfg.PlainListen = []string{"127.0.0.1:0"}
	if cfg.ServerName == "" {
		cfg.ServerName = "box.test"
	}
	srv := New(cfg, core, nil)
	sctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(sctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-errc:
		cancel()
		t.Fatal(err)
	}
	hs := httptest.NewServer(http.HandlerFunc(srv.ServeWebSocket))
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
		hs.Close()
		core.Shutdown("test over")
		st.Close()
	})
	return srv, "ws" + strings.TrimPrefix(hs.URL, "http") + WebSocketPath
}

type wsIRC struct {
	t   *testing.T
	ws  *websocket.Conn
	typ websocket.MessageType
}

// dialIRCWS connects with the subprotocol given ("" for none) and checks
// the server's choice and message type.
func dialIRCWS(t *testing.T, url, proto string) *wsIRC {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var opts websocket.DialOptions
	if proto != "" {
		opts.Subprotocols = []string{proto}
	}
	ws, _, err := websocket.Dial(ctx, url, &opts)
	if err != nil {
		t.Fatal(err)
	}
	if ws.Subprotocol() != proto {
		t.Fatalf("subprotocol %q, want %q", ws.Subprotocol(), proto)
	}
	t.Cleanup(func() { ws.CloseNow() })
	c := &wsIRC{t: t, ws: ws, typ: websocket.MessageText}
	if proto == "binary.ircv3.net" {
		c.typ = websocket.MessageBinary
	}
	return c
}

func (c *wsIRC) sendRaw(typ websocket.MessageType, b []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.ws.Write(ctx, typ, b)
}

func (c *wsIRC) send(line string) {
	c.t.Helper()
	if err := c.sendRaw(c.typ, []byte(line)); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
}

// read returns the next line; every message must be one line of the
// negotiated type, without CR or LF.
func (c *wsIRC) read() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := c.ws.Read(ctx)
	if err != nil {
		return "", err
	}
	if typ != c.typ {
		c.t.Fatalf("message %q of type %v, want %v", b, typ, c.typ)
	}
	if strings.ContainsAny(string(b), "\r\n") {
		c.t.Fatalf("message %q holds CR or LF", b)
	}
	return string(b), nil
}

func (c *wsIRC) expect(what string, pred func(string) bool) string {
	c.t.Helper()
	for range 200 {
		line, err := c.read()
		if err != nil {
			c.t.Fatalf("no %s: %v", what, err)
		}
		if strings.HasPrefix(line, "PING ") {
			c.send("PONG " + line[5:])
		}
		if pred(line) {
			return line
		}
	}
	c.t.Fatalf("no %s in 200 lines", what)
	return ""
}

func has(s string) func(string) bool { return func(l string) bool { return strings.Contains(l, s) } }

// expectClosed reads to the end and returns the ERROR line (if any) and
// the close status.
func (c *wsIRC) expectClosed() (string, websocket.StatusCode) {
	c.t.Helper()
	var errLine string
	for range 10000 {
		line, err := c.read()
		if err != nil {
			return errLine, websocket.CloseStatus(err)
		}
		if strings.HasPrefix(line, "ERROR ") {
			errLine = line
		}
	}
	c.t.Fatal("connection not closed after 10000 lines")
	return "", 0
}

func (c *wsIRC) login(account string) {
	c.t.Helper()
	c.send("PASS " + account + ":" + fuzzPassword(account))
	c.send("NICK " + account)
	c.send("USER " + account + " 0 * :" + account)
	c.expect("the welcome", has(" 001 "+account+" "))
}

// TestWebSocketIRC: clients on both subprotocols (and none, which is
// text) log in and talk to each other.
func TestWebSocketIRC(t *testing.T) {
	_, url := startWSDoor(t, Config{}, "alice", "bob", "carol")
	alice := dialIRCWS(t, url, "text.ircv3.net")
	alice.login("alice")
	bob := dialIRCWS(t, url, "binary.ircv3.net")
	bob.login("bob")
	carol := dialIRCWS(t, url, "")
	carol.login("carol")

	alice.send("PRIVMSG bob :héllo over text\r\n") // a trailing CRLF is tolerated
	if l := bob.expect("alice's message", has("PRIVMSG bob")); l != ":alice!alice@irc.box.test PRIVMSG bob :héllo over text" {
		t.Fatalf("bob got %q", l)
	}
	bob.send("PRIVMSG alice :and back over binary")
	if l := alice.expect("bob's answer", has("PRIVMSG alice")); l != ":bob!bob@irc.box.test PRIVMSG alice :and back over binary" {
		t.Fatalf("alice got %q", l)
	}
	bob.send("PRIVMSG carol :hi")
	if l := carol.expect("bob's message", has("PRIVMSG carol")); l != ":bob!bob@irc.box.test PRIVMSG carol hi" {
		t.Fatalf("carol got %q", l)
	}
	carol.send("QUIT :bye")
	if l, st := carol.expectClosed(); !strings.HasPrefix(l, "ERROR ") || st != websocket.StatusNormalClosure {
		t.Fatalf("after QUIT: %q, status %v", l, st)
	}
}

// TestWebSocketIRCMalformed: messages the door cannot take close the
// connection with an ERROR line and the matching status; invalid UTF-8
// on the binary subprotocol is refused line by line, as on TCP.
func TestWebSocketIRCMalformed(t *testing.T) {
	_, url := startWSDoor(t, Config{}, "alice")
	for _, tc := range []struct {
		name, proto string
		typ         websocket.MessageType
		msg         string
		errText     string
		status      websocket.StatusCode
	}{
		{"binary on text", "text.ircv3.net", websocket.MessageBinary, "PING x", "Binary message", websocket.StatusUnsupportedData},
		{"invalid UTF-8 on text", "text.ircv3.net", websocket.MessageText, "PRIVMSG bob :\xff\xfe", "Invalid UTF-8", websocket.StatusInvalidFramePayloadData},
		{"two lines", "text.ircv3.net", websocket.MessageText, "PING a\r\nPING b", "One IRC line", websocket.StatusPolicyViolation},
		{"oversized", "binary.ircv3.net", websocket.MessageBinary, "PRIVMSG bob :" + strings.Repeat("x", maxReadLine), "Input line too long", websocket.StatusMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialIRCWS(t, url, tc.proto)
			c.login("alice")
			if err := c.sendRaw(tc.typ, []byte(tc.msg)); err != nil {
				t.Fatal(err)
			}
			errLine, st := c.expectClosed()
			if !strings.Contains(errLine, tc.errText) || st != tc.status {
				t.Fatalf("closed with %q, status %v; want %q, %v", errLine, st, tc.errText, tc.status)
			}
		})
	}
	t.Run("invalid UTF-8 on binary", func(t *testing.T) {
		c := dialIRCWS(t, url, "binary.ircv3.net")
		c.login("alice")
		c.send("PRIVMSG alice :\xff\xfe")
		c.expect("a FAIL", has("FAIL * INVALID_UTF8"))
		c.send("PING still-here")
		c.expect("the PONG", has("PONG"))
	})
	t.Run("oversized is 417", func(t *testing.T) {
		c := dialIRCWS(t, url, "text.ircv3.net")
		c.login("alice")
		c.send("PRIVMSG bob :" + strings.Repeat("x", maxReadLine))
		c.expect("417", has(" 417 "))
	})
}

// TestWebSocketIRCSlowReader: a client that stops reading is cut when its
// sendq overflows; a neighbour is unharmed.
func TestWebSocketIRCSlowReader(t *testing.T) {
	srv, url := startWSDoor(t, Config{SendQ: 32 << 10, LinesPerSecond: 1e6, LineBurst: 1e6,
		MOTD: strings.Repeat("a line of the message of the day\n", 100)}, "alice", "bob")
	alice := dialIRCWS(t, url, "text.ircv3.net")
	alice.login("alice")
	bob := dialIRCWS(t, url, "text.ircv3.net")
	bob.login("bob")
	// alice asks for the MOTD (about 5 KB) again and again, and reads nothing.
	cut := false
	for i := 0; i < 5000 && !cut; i++ {
		if alice.sendRaw(websocket.MessageText, []byte("MOTD")) != nil {
			break // the server closed the connection
		}
		if i%50 == 49 {
			bob.send("PING r")
			bob.expect("the PONG", has("PONG"))
			cut = len(srv.nickHolders("alice")) == 0
		}
	}
	for range 1000 {
		if cut = len(srv.nickHolders("alice")) == 0; cut {
			break
		}
		bob.send("PING r")
		bob.expect("the PONG", has("PONG"))
	}
	if !cut {
		t.Fatal("alice was never cut though she read nothing")
	}
	bob.send("PRIVMSG bob :to myself")
	bob.send("PING done")
	bob.expect("the PONG", has("PONG"))
	for range 100000 {
		if _, err := alice.read(); err != nil {
			return
		}
	}
	t.Fatal("alice still connected")
}

// TestWebSocketIRCGuest: with guests allowed, a browser client that does
// not log in joins a room and speaks there under its own nick, which may
// not be an account's.
func TestWebSocketIRCGuest(t *testing.T) {
	_, url := startWSDoor(t, Config{Guests: true}, "alice")
	alice := dialIRCWS(t, url, "text.ircv3.net")
	alice.login("alice")
	alice.send("JOIN #general")
	alice.expect("the end of NAMES", has(" 366 "))

	g := dialIRCWS(t, url, "text.ircv3.net")
	g.send("NICK visitor")
	g.send("USER visitor 0 * :a guest")
	g.expect("the welcome", has(" 001 visitor "))
	g.send("JOIN #general")
	g.expect("the end of NAMES", has(" 366 "))
	alice.expect("the guest's join", has(":visitor!guest@irc.box.test JOIN"))
	g.send("PRIVMSG #general :hello from a browser")
	if l := alice.expect("the guest's message", has("PRIVMSG #general")); l != ":visitor!guest@irc.box.test PRIVMSG #general :hello from a browser" {
		t.Fatalf("alice got %q", l)
	}
	g.send("PRIVMSG alice :psst")
	g.expect("a refusal", has("FAIL"))
	g.send("NICK alice")
	g.expect("the account's nick refused", has(" 432 "))
}
