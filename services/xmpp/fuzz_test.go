package xmpp

// FuzzStanzaIntake feeds arbitrary bytes to the XML stream of an
// authenticated, bound session, in process: the door runs over a real
// core and store in a temporary directory, and each input gets its own
// connection (net.Pipe, plain-text PLAIN login, bound as alice/fuzz).
// After the input the harness sends a ping and checks that the server
// answers it or ends the stream with a stream error (or, when the input
// leaves an element open, that it waits), that the connection and the
// session are gone once the client hangs up, and that a neighbour
// session (bob, logged in the whole time) still gets answers.
// TestHostileXML runs the hostile seeds and checks the exact stream error
// each one gets.

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"encoding/xml"

	"chatbox/services/chat"
)

// fuzzMaxInput bounds what one input may be (the generated seeds are up
// to about a megabyte).
const fuzzMaxInput = 2 << 20

// fuzzDoor is an in-process XMPP door with a neighbour session.
type fuzzDoor struct {
	srv    *Server
	core   *chat.Core
	closed chan struct{} // one per alice session that ended
	peer   *bgClient
	conns  []net.Conn
	dones  []chan struct{}
}

func newFuzzDoor(tb testing.TB) *fuzzDoor {
	tb.Helper()
	srv, core := startInproc(tb, Config{
		AllowPlaintext:        true,
		StanzasPerSecond:      1e6,
		StanzaBurst:           1 << 20,
		ConnectionsPerAddress: 1000,
		PingInterval:          time.Hour,
		PingTimeout:           time.Hour,
		AuthTimeout:           time.Minute,
		ResumeTimeout:         10 * time.Millisecond,
	}, "alice", "bob")
	d := &fuzzDoor{srv: srv, core: core, closed: make(chan struct{}, 1<<16)}
	events, stop := core.Events().Subscribe(1 << 12)
	go func() {
		for ev := range events {
			if ev.Type == chat.EventSessionClosed && ev.Account == "alice" {
				d.closed <- struct{}{}
			}
		}
	}()
	tb.Cleanup(func() {
		for _, nc := range d.conns {
			nc.Close()
		}
		for _, done := range d.dones {
			<-done
		}
		stop()
	})
	nc, _ := d.pipe()
	peer, err := bgNegotiate(tb, nc, nil, "bob", password("bob"))
	if err != nil {
		tb.Fatalf("neighbour login: %v", err)
	}
	peer.jid = "bob@" + boxDomain
	peer.bind("peer")
	peer.send(`<presence/>`)
	d.peer = peer
	return d
}

// pipe connects a client end to a new server connection; done closes
// when the server is through with it.
func (d *fuzzDoor) pipe() (net.Conn, chan struct{}) {
	cli, srvEnd := net.Pipe()
	c := newConn(d.srv, srvEnd, "pipe", kindStartTLS)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.run()
	}()
	d.conns = append(d.conns, cli)
	d.dones = append(d.dones, done)
	return cli, done
}

// fuzzOutcome is what the server did after an input.
type fuzzOutcome struct {
	answered  bool       // it answered the ping sent after the input
	condition string     // the stream error it sent, if any
	closed    bool       // it ended the stream
	open      bool       // the input leaves XML open, so the ping may be swallowed
	peerSaw   []*Element // what the neighbour received before its ping's answer
}

func (o fuzzOutcome) String() string {
	switch {
	case o.condition != "":
		return o.condition
	case o.answered:
		return "answered"
	case o.closed:
		return "closed"
	}
	return "open"
}

// drive runs one input on a fresh connection and checks the properties
// every input must keep.
func (d *fuzzDoor) drive(t *testing.T, data []byte) fuzzOutcome {
	t.Helper()
	d.peer.t = t
	cli, done := d.pipe()
	c, err := bgNegotiate(t, cli, nil, "alice", password("alice"))
	if err != nil {
		t.Fatalf("harness: alice's login: %v", err)
	}
	c.jid = "alice@" + boxDomain
	c.bind("fuzz")

	id := "fuzz-" + randomID()
	ping := `<iq type='get' id='` + id + `' to='` + boxDomain + `'><ping xmlns='urn:xmpp:ping'/></iq>`
	in := append(append([]byte(nil), data...), ping...)
	open, closes := fuzzShape(in)
	wrote := make(chan error, 1)
	go func() {
		_, err := cli.Write(in)
		wrote <- err
	}()
	out := fuzzOutcome{open: open && !closes}
	wait := time.After(waitLimit)
	if out.open {
		wait = time.After(300 * time.Millisecond)
	}
read:
	for {
		select {
		case el, ok := <-c.in:
			switch {
			case !ok:
				out.closed = true
				break read
			case el.Is(nsStream, "error"):
				out.condition = streamErrorCondition(el)
				break read
			case el.Local == "iq" && el.Get("id") == id:
				out.answered = true
				break read
			}
		case <-wait:
			break read
		}
	}
	cli.Close()
	<-wrote
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatalf("the server did not end the connection within %s of the client hanging up\n%s", waitLimit, allGoroutines())
	}
	select {
	case <-d.closed:
	case <-time.After(waitLimit):
		t.Fatalf("alice's session did not end within %s of her connection\n%s", waitLimit, allGoroutines())
	}
	switch {
	case closes && !out.closed && out.condition == "":
		t.Fatalf("the input closes the stream, but the server neither closed it nor sent a stream error (%s)", out)
	case !open && !closes && !out.answered && out.condition == "":
		t.Fatalf("complete input, but neither an answer to the ping nor a stream error (%s; the client's reader stopped with %v)", out, c.err)
	}
	out.peerSaw = d.peer.ping()
	return out
}

// fuzzShape says whether an input leaves the stream's XML open at its end
// (inside an element or a construct the server waits to see the end
// of), or closes the stream itself, as far as an XML parser sees it.
func fuzzShape(in []byte) (open, closes bool) {
	hdr := `<stream:stream xmlns='jabber:client' xmlns:stream='` + nsStream + `'>`
	dec := xml.NewDecoder(io.MultiReader(strings.NewReader(hdr), bytes.NewReader(in)))
	dec.Strict = true
	total := int64(len(hdr) + len(in))
	depth := 0
	var end int64 // where the last complete token ended
	for {
		tok, err := dec.Token()
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) && strings.HasPrefix(se.Msg, "unexpected EOF") {
				return depth > 1 || end < total, false
			}
			return false, false
		}
		end = dec.InputOffset()
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
			if depth == 0 {
				return false, true
			}
		}
	}
}

func allGoroutines() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// hostileSeeds are the seeds of testdata/fuzz/FuzzStanzaIntake (or
// generated, too big to keep as files) and what the server must do with
// each: a stream error condition, "answered" (it carries on), "open" (it
// waits for the rest), or "closed".
var hostileSeeds = []struct {
	name, expect string
	peerGets     string // a message body the neighbour must receive
}{
	{name: "billion-laughs", expect: "restricted-xml"},
	{name: "external-entity", expect: "restricted-xml"},
	{name: "parameter-entity", expect: "restricted-xml"},
	{name: "undefined-entity", expect: "restricted-xml"},
	{name: "entity-invalid-utf8", expect: "restricted-xml"}, // the error's text quotes the bad byte
	{name: "deep-nesting", expect: "policy-violation"},
	{name: "attribute-1mb", expect: "policy-violation"},
	{name: "many-attributes", expect: "answered", peerGets: "many attributes"},
	{name: "many-attributes-over-budget", expect: "policy-violation"},
	{name: "unclosed-element", expect: "open"},
	{name: "invalid-utf8", expect: "not-well-formed"},
	{name: "nul-byte", expect: "not-well-formed"},
	{name: "char-ref-nul", expect: "not-well-formed"},
	{name: "stream-restart", expect: "restricted-xml"},
	{name: "xml-declaration-version", expect: "not-well-formed"}, // version 3.0
	{name: "xml-declaration-encoding", expect: "unsupported-encoding"},
	{name: "stream-restart-bare", expect: "invalid-xml"},
	{name: "unterminated-directive", expect: "open"},
	{name: "unterminated-cdata", expect: "open"},
	{name: "comment", expect: "restricted-xml"},
	{name: "processing-instruction", expect: "restricted-xml"},
	{name: "cdata", expect: "answered", peerGets: "<b>bold</b> & co"},
	{name: "namespaced-attributes", expect: "answered", peerGets: "ns"},
	{name: "huge-text", expect: "policy-violation"},
	{name: "large-body", expect: "answered"},
	{name: "undeclared-prefix", expect: "not-well-formed"}, // RFC 6120 §4.9.3.12: XML-NAMES too
	{name: "text-between-stanzas", expect: "bad-format"},
	{name: "close-stream", expect: "closed"},
	{name: "unknown-element", expect: "unsupported-stanza-type"},
	{name: "server-namespace", expect: "unsupported-stanza-type"},
	{name: "mismatched-tags", expect: "not-well-formed"},
	{name: "unquoted-attribute", expect: "not-well-formed"},
	{name: "sm-ack-too-high", expect: "undefined-condition"},
	{name: "sm-csi", expect: "answered"},
	{name: "sm-resume-bound", expect: "answered"},
	{name: "many-stanzas", expect: "answered"},
	{name: "empty", expect: "answered"},
	{name: "whitespace", expect: "answered"},
	{name: "iq-without-id", expect: "answered"},
	{name: "subscribe", expect: "answered"},
	{name: "jid-malformed", expect: "answered"},
}

// generatedSeeds are the seeds too big to keep in testdata.
var generatedSeeds = map[string]func() []byte{
	"attribute-1mb": func() []byte {
		return []byte(`<message to='bob@box.test' type='chat' a='` + strings.Repeat("A", 1<<20) + `'><body>x</body></message>`)
	},
	"many-attributes-over-budget": func() []byte {
		var b strings.Builder
		b.WriteString(`<message to='bob@box.test'`)
		for i := 0; i < 30000; i++ {
			b.WriteString(" a" + strconv.Itoa(i) + "='" + strconv.Itoa(i) + "'")
		}
		b.WriteString(`/>`)
		return []byte(b.String())
	},
	"huge-text": func() []byte {
		return []byte(`<message to='bob@box.test' type='chat'><body>` + strings.Repeat("huge text ", 30000) + `</body></message>`)
	},
	"large-body": func() []byte { // within the stanza bound, over the core's message bound
		return []byte(`<message to='bob@box.test' type='chat'><body>` + strings.Repeat("large body ", 9000) + `</body></message>`)
	},
}

// seedData returns a seed's bytes: generated, or read from the corpus.
func seedData(t testing.TB, name string) []byte {
	t.Helper()
	if gen := generatedSeeds[name]; gen != nil {
		return gen()
	}
	b, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzStanzaIntake", name))
	if err != nil {
		t.Fatalf("seed %s: %v", name, err)
	}
	rest, ok := strings.CutPrefix(string(b), "go test fuzz v1\n")
	lit, ok2 := strings.CutPrefix(strings.TrimSpace(rest), "[]byte(")
	if !ok || !ok2 || !strings.HasSuffix(lit, ")") {
		t.Fatalf("seed %s: want a go fuzz corpus file holding one []byte", name)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if err != nil {
		t.Fatalf("seed %s: %v", name, err)
	}
	return []byte(s)
}

// FuzzStanzaIntake: arbitrary bytes on an authenticated stream.
func FuzzStanzaIntake(f *testing.F) {
	for name := range generatedSeeds {
		f.Add(generatedSeeds[name]())
	}
	f.Add([]byte(`<message to='bob@box.test' type='chat' id='a1'><body>hello</body></message><presence/>`))
	d := newFuzzDoor(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			t.Skip("input longer than fuzzMaxInput")
		}
		d.drive(t, data)
	})
}

// TestHostileXML runs each hostile seed and checks what the server
// answers: the exact stream error (RFC 6120 §4.9.3: restricted-xml for
// DTDs, entities, comments and processing instructions; not-well-formed
// for broken XML; policy-violation past the size and depth bounds), or
// that it carries on.
func TestHostileXML(t *testing.T) {
	d := newFuzzDoor(t)
	for _, s := range hostileSeeds {
		t.Run(s.name, func(t *testing.T) {
			out := d.drive(t, seedData(t, s.name))
			if out.String() != s.expect {
				t.Fatalf("got %s, want %s", out, s.expect)
			}
			if s.peerGets != "" {
				seen := false
				for _, e := range out.peerSaw {
					seen = seen || isMsg(s.peerGets)(e)
				}
				if !seen {
					d.peer.expect("the message "+strconv.Quote(s.peerGets), isMsg(s.peerGets))
				}
			}
		})
	}
	// Every seed file has an expectation here or is plain fuzz input.
	entries, err := os.ReadDir(filepath.Join("testdata", "fuzz", "FuzzStanzaIntake"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 25 {
		t.Fatalf("only %d seeds in testdata/fuzz/FuzzStanzaIntake", len(entries))
	}
}
