package main

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	testRoom   = "general@rooms.bench.local"
	testHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' ` +
		`from='bench.local' id='s1' version='1.0'><stream:features/>`
)

// project is what readLoop does with a decoded element, as text.
func project(el *elem) string {
	typ := el.get("type")
	switch {
	case el.name.Local == "iq" && (typ == "get" || typ == "set"):
		return "iq " + el.get("id") + " ping=" + strconv.FormatBool(el.child(nsPing, "ping") != nil)
	case typ == "error":
		return "error <" + el.name.Local + "> " + el.get("from") + ": " + describeError(el)
	case el.name.Local == "message" && typ == "groupchat":
		if b := el.child("jabber:client", "body"); b != nil && strings.EqualFold(bareJID(el.get("from")), testRoom) {
			return "body " + strconv.Quote(b.text)
		}
	}
	return "other <" + el.name.Space + " " + el.name.Local + "> " + typ
}

// errClass names how a stream ended, without the decoder's line numbers.
func errClass(err error) string {
	switch {
	case err == nil:
		return "nil"
	case errors.Is(err, errStreamClosed):
		return "closed"
	case strings.HasPrefix(err.Error(), "stream error:"):
		return err.Error()
	}
	return "error"
}

// chunkReader returns its data in reads of the sizes in cuts (then the
// rest, the last size repeated).
type chunkReader struct {
	data []byte
	cuts []int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := len(r.data)
	if len(r.cuts) > 0 {
		n = min(n, r.cuts[0])
		if len(r.cuts) > 1 {
			r.cuts = r.cuts[1:]
		}
	}
	n = copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// runOld is the receive path as it was: readElem for every element.
func runOld(data []byte) (events []string, err error) {
	dec := xml.NewDecoder(bufio.NewReader(bytes.NewReader(append([]byte(testHeader), data...))))
	if _, _, err := openStreamNS(dec); err != nil {
		panic(err)
	}
	for {
		el, err := readElem(dec)
		if err != nil {
			return events, err
		}
		events = append(events, project(el))
	}
}

// runNew is receive over data in reads of the sizes in cuts; fast
// counts the bodies the fast path read.
func runNew(data []byte, cuts ...int) (events []string, fast int, err error) {
	in := newStanzaReader(&chunkReader{data: append([]byte(testHeader), data...), cuts: append([]int{len(testHeader)}, cuts...)})
	dec := xml.NewDecoder(in)
	_, ns, err := openStreamNS(dec)
	if err != nil {
		panic(err)
	}
	f := &fastReader{room: []byte(testRoom), rootNS: ns}
	err = receive(in, dec, f, func(body string, _ time.Time) {
		events = append(events, "body "+strconv.Quote(body))
		fast++
	}, func(el *elem, _ time.Time) {
		events = append(events, project(el))
	})
	return events, fast, err
}

func sameRun(t *testing.T, name string, data []byte, cuts ...int) (events []string, fast int) {
	t.Helper()
	want, werr := runOld(data)
	got, fast, gerr := runNew(data, cuts...)
	if strings.Join(got, "\n") != strings.Join(want, "\n") || errClass(gerr) != errClass(werr) {
		t.Fatalf("%s, reads %v:\nnew %q, %v\nold %q, %v", name, cuts, got, gerr, want, werr)
	}
	return got, fast
}

const chatboxStanza = `<message from="general@rooms.bench.local/u0001" to="u0002@bench.local/chatbox-abc" type="groupchat" id="2al57lqb2pipx3atsfdys7yxrc">` +
	`<body>cb t6dw1yq2ltk0 1 4711 123456789012</body>` +
	`<stanza-id xmlns="urn:xmpp:sid:0" id="tq6s2tckbhbj2xnvnw8ajdbfo4" by="general@rooms.bench.local"/>` +
	`<occupant-id xmlns="urn:xmpp:occupant-id:0" id="k5dQ3sJWgL8uX0wzR9PWq3QqOZ1jvT4Jt2gX0mvvH0s="/></message>`

var scanCases = []struct {
	name   string
	data   string
	events []string // nil: whatever the old path says
	fast   int      // bodies the fast path must have read
}{
	{"chatbox", chatboxStanza, []string{`body "cb t6dw1yq2ltk0 1 4711 123456789012"`}, 1},
	{"single quotes, other order, xmlns on the stanza (ejabberd)",
		`<message xml:lang='en' xmlns='jabber:client' type='groupchat' id='x' from='general@rooms.bench.local/u1' to='u2@bench.local/r'><body>hi</body></message>`,
		[]string{`body "hi"`}, 1},
	{"> inside attribute values",
		`<message from='general@rooms.bench.local/a>b' id="1>2" type="groupchat"><body a='x>y' b="/>">hi</body><x by='a>/b'/></message>`,
		[]string{`body "hi"`}, 1},
	{"entities",
		`<message from='general@rooms.bench.local/n' type='groupchat'><body>a &amp; b &lt;c&gt; &#39;&apos;&quot; &#x263A;&#9731; ]]&gt;</body></message>`,
		[]string{`body "a & b <c> ''\" ☺☃ ]]>"`}, 1},
	{"entities in attributes",
		`<message from='general@rooms.bench.local/&lt;n&apos;' type='group&#99;hat'><body>x</body></message>`,
		[]string{`body "x"`}, 1},
	{"nested elements",
		`<message from='general@rooms.bench.local/n' type='groupchat'><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>no</p></body></html>` +
			`<body xmlns='urn:other'>no</body><body>a<b>no</b>c<i/>d</body><body>second</body><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none'><reason>r</reason></item></x></message>`,
		[]string{`body "acd"`}, 1},
	{"empty and self-closing bodies",
		`<message from='general@rooms.bench.local/n' type='groupchat'><body/></message><message from='general@rooms.bench.local/n' type='groupchat'><body></body></message>`,
		[]string{`body ""`, `body ""`}, 2},
	{"room in other case", `<message from='General@Rooms.Bench.Local/n' type='groupchat'><body>x</body></message>`, []string{`body "x"`}, 1},
	{"whitespace between stanzas", " \n\t" + chatboxStanza + "\r\n " + chatboxStanza + "\n", nil, 2},
	{"not groupchat", `<message from='general@rooms.bench.local/n' type='chat'><body>x</body></message>`, []string{"other <jabber:client message> chat"}, 0},
	{"no type", `<message from='general@rooms.bench.local/n'><body>x</body></message>`, nil, 0},
	{"another room", `<message from='other@rooms.bench.local/n' type='groupchat'><body>x</body></message>`, nil, 0},
	{"no body (subject)", `<message from='general@rooms.bench.local/n' type='groupchat'><subject>s</subject></message>`, nil, 0},
	{"self-closing message", `<message from='general@rooms.bench.local/n' type='groupchat'/>`, nil, 0},
	{"ping", `<iq type='get' id='p1' from='bench.local'><ping xmlns='urn:xmpp:ping'/></iq>`, []string{"iq p1 ping=true"}, 0},
	{"presence", `<presence from='general@rooms.bench.local/u3'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>`, nil, 0},
	{"error message",
		`<message from='general@rooms.bench.local' type='error'><error type='cancel'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`,
		[]string{"error <message> general@rooms.bench.local: forbidden"}, 0},
	{"type twice: the first counts", `<message from='general@rooms.bench.local/n' type='chat' type='groupchat'><body>x</body></message>`, nil, 0},
	{"prefixed body", `<message from='general@rooms.bench.local/n' type='groupchat'><c:body xmlns:c='jabber:client'>x</c:body></message>`, []string{`body "x"`}, 0},
	{"other default namespace", `<message xmlns='urn:x' from='general@rooms.bench.local/n' type='groupchat'><body>x</body></message>`, nil, 0},
	{"CDATA", `<message from='general@rooms.bench.local/n' type='groupchat'><body><![CDATA[a<b>&]]>c</body></message>`, []string{`body "a<b>&c"`}, 0},
	{"comment and PI between stanzas", `<!-- c --><?pi x?>` + chatboxStanza + chatboxStanza, nil, 1},
	{"CR in the body", "<message from='general@rooms.bench.local/n' type='groupchat'><body>a\r\nb\rc</body></message>", []string{`body "a\nb\nc"`}, 0},
	{"non-ASCII", `<message from='general@rooms.bench.local/ñ' type='groupchat'><body>grüße 😀</body></message>`, []string{`body "grüße 😀"`}, 1},
	{"stream end", chatboxStanza + `</stream:stream>`, nil, 1},
	{"stream error", `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`, nil, 0},
	{"bad entity", `<message from='general@rooms.bench.local/n' type='groupchat'><body>a &nbsp; b</body></message>`, nil, 0},
	{"bad char ref", `<message from='general@rooms.bench.local/n' type='groupchat'><body>&#1;</body></message>`, nil, 0},
	{"mismatched end tag", `<message from='general@rooms.bench.local/n' type='groupchat'><body>x</bod></message>`, nil, 0},
	{"< in an attribute", `<message from='general@rooms.bench.local/<n' type='groupchat'><body>x</body></message>`, nil, 0},
	{"unquoted attribute", `<message from=general type='groupchat'><body>x</body></message>`, nil, 0},
	{"cut short", chatboxStanza + chatboxStanza[:100], nil, 1},
}

func TestXMPPScan(t *testing.T) {
	for _, tc := range scanCases {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.data)
			got, fast := sameRun(t, "whole", data)
			if tc.events != nil && strings.Join(got, "\n") != strings.Join(tc.events, "\n") {
				t.Fatalf("events %q, want %q", got, tc.events)
			}
			if fast != tc.fast {
				t.Errorf("the fast path read %d bodies, want %d", fast, tc.fast)
			}
			// Split in two reads at every byte, and a byte at a time.
			for k := 1; k < len(data); k++ {
				if _, f := sameRun(t, "split", data, k, len(data)); f != tc.fast {
					t.Fatalf("split at %d: the fast path read %d bodies, want %d", k, f, tc.fast)
				}
			}
			sameRun(t, "bytes", data, 1)
		})
	}
}

// The time of a body is that of the read that completed its stanza.
func TestXMPPScanTime(t *testing.T) {
	pr, pw := io.Pipe()
	in := newStanzaReader(pr)
	dec := xml.NewDecoder(in)
	go func() {
		pw.Write([]byte(testHeader))
		pw.Write([]byte(chatboxStanza[:50]))
		time.Sleep(50 * time.Millisecond)
		pw.Write([]byte(chatboxStanza[50:] + chatboxStanza))
		pw.Close()
	}()
	if _, _, err := openStreamNS(dec); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var at []time.Duration
	err := receive(in, dec, &fastReader{room: []byte(testRoom), rootNS: "jabber:client"},
		func(_ string, now time.Time) { at = append(at, now.Sub(start)) },
		func(el *elem, _ time.Time) { t.Errorf("slow path: %s", project(el)) })
	if errClass(err) != "error" {
		t.Fatalf("end %v", err)
	}
	if len(at) != 2 || at[0] < 40*time.Millisecond || at[1] != at[0] {
		t.Fatalf("times %v: want two, both after the pause, equal", at)
	}
}

// An element longer than the scanner buffers goes to the decoder,
// whose limits apply as before.
func TestXMPPScanLarge(t *testing.T) {
	big := strings.Repeat("x", maxScan+20000)
	data := `<message from='general@rooms.bench.local/n' type='groupchat'><body>` + big + `</body></message>` + chatboxStanza
	got, fast := sameRun(t, "big", []byte(data), 4096)
	if len(got) != 2 || fast != 1 {
		t.Fatalf("%d events, %d fast", len(got), fast)
	}
	tooMuch := `<message from='general@rooms.bench.local/n' type='groupchat'><body>` + strings.Repeat("y", maxText+1) + `</body></message>`
	if _, _, err := runNew([]byte(tooMuch), 16<<10); err == nil || !strings.Contains(err.Error(), "bytes of text") {
		t.Fatalf("over maxText: %v", err)
	}
	deep := strings.Repeat("<a>", maxDepth+2) + strings.Repeat("</a>", maxDepth+2)
	if _, _, err := runNew([]byte(deep)); err == nil || !strings.Contains(err.Error(), "deep") {
		t.Fatalf("too deep: %v", err)
	}
}

func FuzzXMPPScan(f *testing.F) {
	for _, tc := range scanCases {
		f.Add([]byte(tc.data), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		// The fast path alone, on one element: if it reads a body,
		// encoding/xml reads the same (from, type, body).
		fr := &fastReader{room: []byte(testRoom), rootNS: "jabber:client"}
		if body, ok := fr.groupchat(data); ok {
			dec := xml.NewDecoder(bytes.NewReader(append([]byte(testHeader), data...)))
			if _, _, err := openStreamNS(dec); err != nil {
				t.Fatal(err)
			}
			el, err := readElem(dec)
			if err != nil {
				t.Fatalf("fast path read %q, encoding/xml: %v", body, err)
			}
			if _, err := dec.Token(); err != io.EOF && !strings.Contains(err.Error(), "unexpected EOF") {
				t.Fatalf("fast path read %q from one element, encoding/xml: more after it (%v)", body, err)
			}
			b := el.child("jabber:client", "body")
			if el.name.Local != "message" || el.get("type") != "groupchat" || !strings.EqualFold(bareJID(el.get("from")), testRoom) ||
				b == nil || b.text != string(body) {
				t.Fatalf("fast path read %q; encoding/xml: <%s type=%q from=%q> body %v", body, el.name.Local, el.get("type"), el.get("from"), b)
			}
		}
		// The whole loop, in reads of cut bytes.
		sameRun(t, "fuzz", data, int(cut)+1)
	})
}

func BenchmarkXMPPReceive(b *testing.B) {
	stanza := []byte(chatboxStanza + "\n")
	// stanzas is a TLS stream's plain text: n stanzas, in 16 KiB reads.
	stanzas := func(n int) io.Reader {
		return &repeatReader{unit: stanza, left: n * len(stanza)}
	}
	want := "cb t6dw1yq2ltk0 1 4711 123456789012"
	b.Run("old", func(b *testing.B) {
		b.ReportAllocs()
		dec := xml.NewDecoder(bufio.NewReaderSize(io.MultiReader(strings.NewReader(testHeader), stanzas(b.N)), 16<<10))
		if _, _, err := openStreamNS(dec); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		n := 0
		for {
			el, err := readElem(dec)
			_ = time.Now()
			if err != nil {
				break
			}
			if el.get("type") == "groupchat" && el.name.Local == "message" {
				if bd := el.child("jabber:client", "body"); bd != nil && strings.EqualFold(bareJID(el.get("from")), testRoom) && bd.text == want {
					n++
				}
			}
		}
		if n != b.N {
			b.Fatalf("%d bodies, want %d", n, b.N)
		}
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		in := newStanzaReader(bufio.NewReaderSize(io.MultiReader(strings.NewReader(testHeader), stanzas(b.N)), 16<<10))
		dec := xml.NewDecoder(in)
		_, ns, err := openStreamNS(dec)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		n := 0
		receive(in, dec, &fastReader{room: []byte(testRoom), rootNS: ns}, func(body string, _ time.Time) {
			if body == want {
				n++
			}
		}, func(el *elem, _ time.Time) { b.Fatalf("slow path: %s", project(el)) })
		if n != b.N {
			b.Fatalf("%d bodies, want %d", n, b.N)
		}
	})
}

// repeatReader reads left bytes of unit, repeated.
type repeatReader struct {
	unit []byte
	off  int
	left int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && r.left > 0 {
		k := copy(p[n:min(len(p), n+r.left)], r.unit[r.off:])
		n += k
		r.left -= k
		r.off = (r.off + k) % len(r.unit)
	}
	return n, nil
}
