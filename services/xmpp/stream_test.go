package xmpp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestLoginTimeout: a connection that does not authenticate in time is
// closed with policy-violation (the bound on unauthenticated time).
func TestLoginTimeout(t *testing.T) {
	srv, _ := startInproc(t, Config{AuthTimeout: 300 * time.Millisecond, AllowPlaintext: true})
	nc, err := net.Dial("tcp", srv.Addrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(waitLimit))
	nc.Write([]byte(`<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="box.test" version="1.0">`))
	rd := newStreamReader(nc, 1<<20, 16, nil)
	if _, err := rd.Header(); err != nil {
		t.Fatal(err)
	}
	if f, err := rd.Next(); err != nil || !f.Is(nsStream, "features") {
		t.Fatalf("features: %v %v", f, err)
	}
	el, err := rd.Next()
	if err != nil || !el.Is(nsStream, "error") || el.Child(nsStreamErr, "policy-violation") == nil {
		t.Fatalf("after the login timeout: %v %v", el, err)
	}
}

// TestStreamReaderBounds: the reader's limits and XMPP's restricted XML
// (RFC 6120 §11.1), each with the stream error the door answers.
func TestStreamReaderBounds(t *testing.T) {
	head := `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams">`
	for _, tc := range []struct {
		name, in, cond string
	}{
		{"too big", head + `<message><body>` + strings.Repeat("a", 5000) + `</body></message>`, "policy-violation"},
		{"big attribute", head + `<message to="` + strings.Repeat("a", 5000) + `"/>`, "policy-violation"},
		{"too deep", head + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40), "policy-violation"},
		{"comment", head + `<!-- hi --><message/>`, "restricted-xml"},
		{"doctype", `<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaa">]>` + head, "restricted-xml"},
		{"entity", head + `<message><body>&lol;</body></message>`, "restricted-xml"},
		{"pi", head + `<?foo bar?><message/>`, "restricted-xml"},
		{"not well-formed", head + `<message><body></message>`, "not-well-formed"},
		{"local name starts with a digit", head + `<message><a:0x xmlns:a="urn:x"/></message>`, "not-well-formed"},
		{"local name starts with a hyphen", head + `<a:-x xmlns:a="urn:x"/>`, "not-well-formed"},
		{"attribute local name starts with a dot", head + `<message xmlns:a="urn:x" a:.x="1"/>`, "not-well-formed"},
		{"undeclared element prefix", head + `<message><a:b/></message>`, "not-well-formed"},
		{"undeclared attribute prefix", head + `<message a:x="1"/>`, "not-well-formed"},
		{"prefix declared on a sibling only", head + `<message><a:b xmlns:a="urn:x"/><a:c/></message>`, "not-well-formed"},
		{"prefix declared empty", head + `<message xmlns:a=""/>`, "not-well-formed"},
		{"xmlns prefix on an element", head + `<xmlns:b/>`, "not-well-formed"},
		{"local name starts with a combining mark", head + "<a:\u0301x xmlns:a=\"urn:x\"/>", "not-well-formed"},
		{"text between stanzas", head + `hello<message/>`, "bad-format"},
		{"wrong root", `<html>`, "invalid-namespace"},
		{"duplicate attribute", head + `<message to="a" to="b"/>`, "not-well-formed"},
		{"stream in stream", head + `<stream:stream xmlns:stream="http://etherx.jabber.org/streams">`, "invalid-xml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newStreamReader(strings.NewReader(tc.in), 4096, 32, nil)
			var err error
			if _, err = r.Header(); err == nil {
				for err == nil {
					_, err = r.Next()
				}
			}
			se, ok := err.(*streamError)
			if !ok || se.Condition != tc.cond {
				t.Fatalf("got %v, want %s", err, tc.cond)
			}
		})
	}
	// Whitespace keepalives between stanzas are fine, and the budget is
	// per stanza.
	in := head + strings.Repeat(" \n<message><body>"+strings.Repeat("a", 3000)+"</body></message>", 5) + "</stream:stream>"
	r := newStreamReader(strings.NewReader(in), 4096, 32, nil)
	if _, err := r.Header(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := r.Next(); err != nil {
			t.Fatalf("stanza %d: %v", i, err)
		}
	}
}

// TestElementRoundTrip: what the reader parses, the writer writes back
// with the same meaning (namespaces, xml:lang, escaping, mixed content).
func TestElementRoundTrip(t *testing.T) {
	in := `<message xmlns="jabber:client" to="a@b" xml:lang="en"><body>1 &lt; 2 &amp; "q"</body><x xmlns="urn:x" xmlns:p="urn:p" p:attr="v">mixed <b>bold</b> text</x></message>`
	r := newStreamReader(strings.NewReader(`<s xmlns="jabber:client">`+in+`</s>`), 1<<16, 32, nil)
	r.header = true
	outer, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	msg := outer.First()
	again := newStreamReader(strings.NewReader(`<s xmlns="jabber:client">`+msg.String()+`</s>`), 1<<16, 32, nil)
	again.header = true
	outer2, err := again.Next()
	if err != nil {
		t.Fatalf("re-parse %s: %v", msg, err)
	}
	if msg.String() != outer2.First().String() {
		t.Fatalf("round trip changed:\n%s\n%s", msg, outer2.First())
	}
	if msg.Lang() != "en" || msg.ChildText(nsClient, "body") != `1 < 2 & "q"` {
		t.Fatalf("parsed %s", msg)
	}
	x := msg.Child("urn:x", "x")
	if x == nil || len(x.Nodes) != 3 || x.Attr[0].Name.Space != "urn:p" {
		t.Fatalf("mixed content or attribute namespace lost: %s", x)
	}
}

// scriptReader returns its chunks one Read each (a chunk may be an
// error), then blocks on more.
type scriptReader struct {
	chunks []any // string or error
	reads  int
	more   chan struct{}
}

func (r *scriptReader) Read(p []byte) (int, error) {
	r.reads++
	for len(r.chunks) == 0 {
		<-r.more
	}
	c := r.chunks[0]
	switch c := c.(type) {
	case error:
		r.chunks = r.chunks[1:]
		return 0, c
	case string:
		n := copy(p, c)
		if n < len(c) {
			r.chunks[0] = c[n:]
		} else {
			r.chunks = r.chunks[1:]
		}
		return n, nil
	}
	panic("chunk")
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

// TestStreamReaderIdle: between stanzas the reader holds no buffer of
// the pool's (it waits with a one-byte read), stanzas that came in one
// read are all read without waiting for more, a read timeout while
// waiting is the idle callback's to pass, and a read error after some
// stanzas comes after them, unchanged.
func TestStreamReaderIdle(t *testing.T) {
	head := `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams">`
	idles := 0
	r := &scriptReader{chunks: []any{
		head + `<iq id="1"/>`,
		`<message id="2"><body>` + strings.Repeat("x", 3*readBuffer) + `</body></message> <iq id="3"/><iq id="4"/>`,
		timeoutErr{},
		`<iq id="5"/>`,
		net.ErrClosed,
	}}
	rd := newStreamReader(r, 1<<20, 16, func() bool { idles++; return idles == 1 })
	if _, err := rd.Header(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"1", "2", "3", "4", "5"} {
		el, err := rd.Next()
		if err != nil || el.Get("id") != id {
			t.Fatalf("stanza %s: %v %v", id, el, err)
		}
		if b := rd.br.r; (b.buf != nil) != (b.pos < b.end) {
			t.Errorf("after stanza %s the reader holds a buffer: %v, with %d bytes unread", id, b.buf != nil, b.end-b.pos)
		}
		if b := rd.br.r; id == "4" && b.buf != nil {
			t.Errorf("after stanza 4, with all read, the reader holds a buffer")
		}
	}
	if idles != 1 {
		t.Errorf("idle called %d times, want 1", idles)
	}
	if _, err := rd.Next(); err != net.ErrClosed {
		t.Errorf("after the stanzas: %v, want %v", err, net.ErrClosed)
	}

	// A restarted stream reads on the bytes already buffered.
	r = &scriptReader{chunks: []any{head + `<auth/>` + head + `<iq id="b"/>`}}
	rd = newStreamReader(r, 1<<20, 16, nil)
	rd.Header()
	if el, err := rd.Next(); err != nil || el.Local != "auth" {
		t.Fatalf("auth: %v %v", el, err)
	}
	rd = rd.br.streamReader(16)
	if _, err := rd.Header(); err != nil {
		t.Fatal(err)
	}
	if el, err := rd.Next(); err != nil || el.Get("id") != "b" {
		t.Fatalf("after the restart: %v %v", el, err)
	}
}

// TestStreamReaderRest lets the decoder go between stanzas and reads on:
// the revived decoder knows the header's own prefixes and namespaces,
// closes the stream on its end tag, refuses a wrong one, and is kept
// when the header was too long to keep or input is buffered.
func TestStreamReaderRest(t *testing.T) {
	header := "<?xml version='1.0'?>\n<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' xmlns:x='urn:x' to='a' version='1.0'>"
	// feed writes each piece in its own write, once the reader asks.
	feed := func(pieces ...string) *streamReader {
		pr, pw := io.Pipe()
		go func() {
			for _, p := range pieces {
				if _, err := pw.Write([]byte(p)); err != nil {
					return
				}
			}
			pw.Close()
		}()
		return newStreamReader(pr, 1<<16, 16, nil)
	}
	t.Run("revived", func(t *testing.T) {
		rd := feed(header, "<message to='b'><body>1</body></message>", "<message><x:foo/></message>", "  ", "</s:stream>")
		if _, err := rd.Header(); err != nil {
			t.Fatal(err)
		}
		rd.rest()
		if rd.dec != nil {
			t.Fatal("rest kept the decoder after the header")
		}
		el, err := rd.Next()
		if err != nil || el.Space != nsClient || el.Local != "message" || el.Get("to") != "b" || el.ChildText(nsClient, "body") != "1" {
			t.Fatalf("first stanza after rest: %v, %v", el, err)
		}
		rd.rest()
		if rd.dec != nil {
			t.Fatal("rest kept the decoder between stanzas")
		}
		el, err = rd.Next()
		if err != nil || el.Child("urn:x", "foo") == nil {
			t.Fatalf("a stanza with the header's prefix x: %v, %v", el, err)
		}
		rd.rest()
		if _, err := rd.Next(); err != io.EOF {
			t.Fatalf("</s:stream> after rest: %v, want io.EOF", err)
		}
	})
	t.Run("wrong end tag", func(t *testing.T) {
		rd := feed(header, "</stream:stream>")
		if _, err := rd.Header(); err != nil {
			t.Fatal(err)
		}
		rd.rest()
		var se *streamError
		if _, err := rd.Next(); !errors.As(err, &se) || se.Condition != "not-well-formed" {
			t.Fatalf("</stream:stream> closing <s:stream>: %v, want not-well-formed", err)
		}
	})
	t.Run("long header kept", func(t *testing.T) {
		long := "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + strings.Repeat("a", maxHeaderCopy) + "'>"
		rd := feed(long, "<presence/>")
		if _, err := rd.Header(); err != nil {
			t.Fatal(err)
		}
		rd.rest()
		if rd.dec == nil || rd.head != nil {
			t.Fatal("rest let the decoder go without a copy of the header")
		}
		if el, err := rd.Next(); err != nil || el.Local != "presence" {
			t.Fatalf("after a long header: %v, %v", el, err)
		}
	})
	t.Run("buffered input kept", func(t *testing.T) {
		rd := feed(header + "<presence/><presence type='unavailable'/>")
		if _, err := rd.Header(); err != nil {
			t.Fatal(err)
		}
		if el, err := rd.Next(); err != nil || el.Local != "presence" {
			t.Fatalf("first: %v, %v", el, err)
		}
		rd.rest()
		if rd.dec == nil {
			t.Fatal("rest let the decoder go with a stanza buffered")
		}
		if el, err := rd.Next(); err != nil || el.Get("type") != "unavailable" {
			t.Fatalf("second: %v, %v", el, err)
		}
	})
}

// FuzzStreamRest reads a stream twice, byte by byte: once as ever, once
// letting the decoder go (rest) after every stanza. Both must give the
// same elements and the same error, whatever the header declared.
func FuzzStreamRest(f *testing.F) {
	f.Add([]byte("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'><message><body>hi</body></message> <presence/></stream:stream>"))
	f.Add([]byte("<s:stream xmlns='jabber:client' xmlns:s='http://etherx.jabber.org/streams' xmlns:x='urn:x'><x:a/><message xmlns:y='urn:y'><y:b/></message></stream:stream>"))
	f.Add([]byte("<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><iq/></s:stream>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 8<<10 {
			t.Skip("longer than 8 KiB")
		}
		var headers headerCache
		read := func(rest bool) []string {
			rd := newStreamReader(iotest.OneByteReader(bytes.NewReader(data)), 4096, 16, nil)
			var got []string
			hdr, err := rd.Header()
			if err != nil {
				return append(got, "header error: "+err.Error())
			}
			// As the door does: the revived decoder reads the canonical
			// header, not the client's bytes.
			rd.canonicalHead(hdr, &headers)
			for range 200 {
				if rest {
					rd.rest()
				}
				el, err := rd.Next()
				if err != nil {
					return append(got, "error: "+err.Error())
				}
				got = append(got, el.Space+" "+el.String())
			}
			return got
		}
		plain, rested := read(false), read(true)
		if !slices.Equal(plain, rested) {
			t.Fatalf("with rest:\n%q\nwithout:\n%q", rested, plain)
		}
	})
}

// TestCanonicalHead: headers that differ only in what a revived decoder
// does not need share one canonical copy; what it needs (prefix,
// declarations, a self-closed stream) is kept; an ambiguous prefix keeps
// the client's bytes.
func TestCanonicalHead(t *testing.T) {
	var headers headerCache
	head := func(raw string) []byte {
		t.Helper()
		rd := newStreamReader(strings.NewReader(raw), 4096, 16, nil)
		hdr, err := rd.Header()
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		rd.canonicalHead(hdr, &headers)
		return rd.head
	}
	const want = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`
	a := head(`<?xml version='1.0'?><stream:stream to='box.test' from='alice@box.test' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`)
	b := head(`<stream:stream xmlns="jabber:client" to="box.test" xmlns:stream="http://etherx.jabber.org/streams" from="bob@box.test">`)
	if string(a) != want || string(b) != want || &a[0] != &b[0] {
		t.Errorf("canonical headers %q and %q: want one shared %q", a, b, want)
	}
	if got := head(`<s:stream xmlns:s='http://etherx.jabber.org/streams' to='x&amp;y'/>`); string(got) != `<s:stream xmlns:s='http://etherx.jabber.org/streams'/>` {
		t.Errorf("self-closed header: %q", got)
	}
	raw := `<a:stream xmlns:a='http://etherx.jabber.org/streams' xmlns:b='http://etherx.jabber.org/streams'>`
	if got := head(raw); string(got) != raw {
		t.Errorf("two prefixes for the stream namespace: %q, want the client's bytes", got)
	}
}

func TestNCName(t *testing.T) {
	for name, want := range map[string]bool{
		"message": true, "_x": true, "x-1.y": true, "é": true, "名前": true,
		"": false, "0x": false, "-x": false, ".x": false, "a:b": false, ":x": false,
		"\u0301x": false, "\u00b7x": false,
	} {
		if got := ncName(name); got != want {
			t.Errorf("ncName(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestDeclaredPrefixes: a prefix is in scope where XML namespaces say it
// is: declared by the stream header (dialback's db: on a server stream),
// on an ancestor, or on the element itself; the element written back out
// declares what it uses.
func TestDeclaredPrefixes(t *testing.T) {
	head := `<stream:stream xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams" xmlns:db="jabber:server:dialback">`
	r := newStreamReader(strings.NewReader(head+
		`<db:result from="a.test" to="b.test">key</db:result>`+
		`<message><x xmlns:p="urn:p" p:a="1"><p:y><p:z p:b="2"/></p:y></x><q:w xmlns:q="urn:q"/></message>`), 1<<16, 32, nil)
	if _, err := r.Header(); err != nil {
		t.Fatal(err)
	}
	res, err := r.Next()
	if err != nil || res.Space != nsDialback || res.Local != "result" {
		t.Fatalf("db:result declared by the header: %v, %v", res, err)
	}
	msg, err := r.Next()
	if err != nil {
		t.Fatalf("prefixes declared on the element and its ancestor: %v", err)
	}
	want := `<message><x xmlns:a1="urn:p" a1:a="1"><y xmlns="urn:p"><z xmlns:a1="urn:p" a1:b="2"/></y></x><w xmlns="urn:q"/></message>`
	if got := string(msg.Bytes(nsServer)); got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
}
