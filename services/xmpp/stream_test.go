package xmpp

import (
	"net"
	"strings"
	"testing"
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
