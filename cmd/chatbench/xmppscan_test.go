package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testRoom   = "general@rooms.bench.local"
	testNick   = "u0002"
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
	return runOldOn(dec)
}

func runOldOn(dec *xml.Decoder) (events []string, err error) {
	for {
		el, err := readElem(dec)
		if err != nil {
			return events, err
		}
		events = append(events, project(el))
	}
}

// runNew is readLoop's path (receive) over data in reads of the sizes
// in cuts; see scanEvents.
func runNew(t testing.TB, data []byte, cuts ...int) (events []string, fast, pres int, err error) {
	in := newStanzaReader(&chunkReader{data: append([]byte(testHeader), data...), cuts: append([]int{len(testHeader)}, cuts...)})
	dec := xml.NewDecoder(in)
	_, ns, err := openStreamNS(dec)
	if err != nil {
		panic(err)
	}
	return scanEvents(t, in, dec, &fastReader{room: []byte(testRoom), nick: []byte(testNick), rootNS: ns})
}

// scanEvents is receive, to the stream's end; fast counts the bodies
// the fast path read, pres the presences it dropped. A dropped presence
// must be one readLoop and join ignore (ignorable); its event is what
// the decoder would have made of it, so that the events compare with
// runOld's.
func scanEvents(t testing.TB, in *stanzaReader, dec *xml.Decoder, f *fastReader) (events []string, fast, pres int, err error) {
	err = scanLoop(in, dec, func(el []byte, _ time.Time) bool {
		// receive's fast path, counted.
		if body, ok := f.groupchat(el); ok {
			events = append(events, "body "+strconv.Quote(string(body)))
			fast++
			return true
		}
		if f.roomPresence(el) {
			events = append(events, project(ignorable(t, el)))
			pres++
			return true
		}
		return false
	}, func(el *elem, _ time.Time) bool {
		events = append(events, project(el))
		return false
	})
	return events, fast, pres, err
}

// ignorable decodes el, one element roomPresence dropped, with
// encoding/xml, and checks that neither handle (project) nor join
// (joinElem) would have done anything with it but note it, and that it
// is not our own presence.
func ignorable(t testing.TB, el []byte) *elem {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(append([]byte(testHeader), el...)))
	if _, _, err := openStreamNS(dec); err != nil {
		t.Fatal(err)
	}
	e, err := readElem(dec)
	if err != nil {
		t.Fatalf("roomPresence dropped %q, encoding/xml: %v", el, err)
	}
	if _, err := dec.Token(); err != io.EOF && !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("roomPresence dropped %q, encoding/xml: more after it (%v)", el, err)
	}
	from := e.get("from")
	bare, res, _ := strings.Cut(from, "/")
	if !e.is("jabber:client", "presence") || !strings.EqualFold(bare, testRoom) || strings.EqualFold(res, testNick) ||
		(e.get("type") != "" && e.get("type") != "unavailable") || !strings.HasPrefix(project(e), "other ") {
		t.Fatalf("roomPresence dropped %q: <%s %s> from=%q type=%q", el, e.name.Space, e.name.Local, from, e.get("type"))
	}
	c := &xmppClient{m: &member{}, room: testRoom, nick: testNick}
	self := false
	if done, err := c.joinElem(e, &self); done || err != nil || self {
		t.Fatalf("roomPresence dropped %q: join would see it (done %v, %v, self %v)", el, done, err, self)
	}
	return e
}

func sameRun(t testing.TB, name string, data []byte, cuts ...int) (events []string, fast, pres int) {
	t.Helper()
	want, werr := runOld(data)
	got, fast, pres, gerr := runNew(t, data, cuts...)
	if strings.Join(got, "\n") != strings.Join(want, "\n") || errClass(gerr) != errClass(werr) {
		t.Fatalf("%s, reads %v:\nnew %q, %v\nold %q, %v", name, cuts, got, gerr, want, werr)
	}
	return got, fast, pres
}

const chatboxStanza = `<message from="general@rooms.bench.local/u0001" to="u0002@bench.local/chatbox-abc" type="groupchat" id="2al57lqb2pipx3atsfdys7yxrc">` +
	`<body>cb t6dw1yq2ltk0 1 4711 123456789012</body>` +
	`<stanza-id xmlns="urn:xmpp:sid:0" id="tq6s2tckbhbj2xnvnw8ajdbfo4" by="general@rooms.bench.local"/>` +
	`<occupant-id xmlns="urn:xmpp:occupant-id:0" id="k5dQ3sJWgL8uX0wzR9PWq3QqOZ1jvT4Jt2gX0mvvH0s="/></message>`

const (
	chatboxPresence = `<presence from="general@rooms.bench.local/u0001" to="u0002@bench.local/chatbench"><x xmlns="http://jabber.org/protocol/muc#user">` +
		`<item affiliation="none" role="participant" jid="u0001@bench.local"/></x>` +
		`<occupant-id xmlns="urn:xmpp:occupant-id:0" id="k5dQ3sJWgL8uX0wzR9PWq3QqOZ1jvT4Jt2gX0mvvH0s="/></presence>`
	ownPresence = `<presence from="general@rooms.bench.local/u0002" to="u0002@bench.local/chatbench"><x xmlns="http://jabber.org/protocol/muc#user">` +
		`<item affiliation="none" role="participant" jid="u0002@bench.local"/><status code="100"/><status code="110"/></x>` +
		`<occupant-id xmlns="urn:xmpp:occupant-id:0" id="a5dQ3sJWgL8uX0wzR9PWq3QqOZ1jvT4Jt2gX0mvvH0s="/></presence>`
)

var scanCases = []struct {
	name   string
	data   string
	events []string // nil: whatever the old path says
	fast   int      // bodies the fast path must have read
	pres   int      // presences it must have dropped
}{
	{"chatbox", chatboxStanza, []string{`body "cb t6dw1yq2ltk0 1 4711 123456789012"`}, 1, 0},
	{"single quotes, other order, xmlns on the stanza (ejabberd)",
		`<message xml:lang='en' xmlns='jabber:client' type='groupchat' id='x' from='general@rooms.bench.local/u1' to='u2@bench.local/r'><body>hi</body></message>`,
		[]string{`body "hi"`}, 1, 0},
	{"> inside attribute values",
		`<message from='general@rooms.bench.local/a>b' id="1>2" type="groupchat"><body a='x>y' b="/>">hi</body><x by='a>/b'/></message>`,
		[]string{`body "hi"`}, 1, 0},
	{"entities",
		`<message from='general@rooms.bench.local/n' type='groupchat'><body>a &amp; b &lt;c&gt; &#39;&apos;&quot; &#x263A;&#9731; ]]&gt;</body></message>`,
		[]string{`body "a & b <c> ''\" ☺☃ ]]>"`}, 1, 0},
	{"entities in attributes",
		`<message from='general@rooms.bench.local/&lt;n&apos;' type='group&#99;hat'><body>x</body></message>`,
		[]string{`body "x"`}, 1, 0},
	{"nested elements",
		`<message from='general@rooms.bench.local/n' type='groupchat'><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>no</p></body></html>` +
			`<body xmlns='urn:other'>no</body><body>a<b>no</b>c<i/>d</body><body>second</body><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none'><reason>r</reason></item></x></message>`,
		[]string{`body "acd"`}, 1, 0},
	{"empty and self-closing bodies",
		`<message from='general@rooms.bench.local/n' type='groupchat'><body/></message><message from='general@rooms.bench.local/n' type='groupchat'><body></body></message>`,
		[]string{`body ""`, `body ""`}, 2, 0},
	{"room in other case", `<message from='General@Rooms.Bench.Local/n' type='groupchat'><body>x</body></message>`, []string{`body "x"`}, 1, 0},
	{"whitespace between stanzas", " \n\t" + chatboxStanza + "\r\n " + chatboxStanza + "\n", nil, 2, 0},
	{"not groupchat", `<message from='general@rooms.bench.local/n' type='chat'><body>x</body></message>`, []string{"other <jabber:client message> chat"}, 0, 0},
	{"no type", `<message from='general@rooms.bench.local/n'><body>x</body></message>`, nil, 0, 0},
	{"another room", `<message from='other@rooms.bench.local/n' type='groupchat'><body>x</body></message>`, nil, 0, 0},
	{"no body (subject)", `<message from='general@rooms.bench.local/n' type='groupchat'><subject>s</subject></message>`, nil, 0, 0},
	{"self-closing message", `<message from='general@rooms.bench.local/n' type='groupchat'/>`, nil, 0, 0},
	{"ping", `<iq type='get' id='p1' from='bench.local'><ping xmlns='urn:xmpp:ping'/></iq>`, []string{"iq p1 ping=true"}, 0, 0},
	{"presence", `<presence from='general@rooms.bench.local/u3'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/></x></presence>`, nil, 0, 1},
	{"error message",
		`<message from='general@rooms.bench.local' type='error'><error type='cancel'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`,
		[]string{"error <message> general@rooms.bench.local: forbidden"}, 0, 0},
	{"type twice: the first counts", `<message from='general@rooms.bench.local/n' type='chat' type='groupchat'><body>x</body></message>`, nil, 0, 0},
	{"prefixed body", `<message from='general@rooms.bench.local/n' type='groupchat'><c:body xmlns:c='jabber:client'>x</c:body></message>`, []string{`body "x"`}, 0, 0},
	{"other default namespace", `<message xmlns='urn:x' from='general@rooms.bench.local/n' type='groupchat'><body>x</body></message>`, nil, 0, 0},
	{"CDATA", `<message from='general@rooms.bench.local/n' type='groupchat'><body><![CDATA[a<b>&]]>c</body></message>`, []string{`body "a<b>&c"`}, 0, 0},
	{"comment and PI between stanzas", `<!-- c --><?pi x?>` + chatboxStanza + chatboxStanza, nil, 1, 0},
	{"CR in the body", "<message from='general@rooms.bench.local/n' type='groupchat'><body>a\r\nb\rc</body></message>", []string{`body "a\nb\nc"`}, 0, 0},
	{"non-ASCII", `<message from='general@rooms.bench.local/ñ' type='groupchat'><body>grüße 😀</body></message>`, []string{`body "grüße 😀"`}, 1, 0},
	{"stream end", chatboxStanza + `</stream:stream>`, nil, 1, 0},
	{"stream error", `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`, nil, 0, 0},
	{"bad entity", `<message from='general@rooms.bench.local/n' type='groupchat'><body>a &nbsp; b</body></message>`, nil, 0, 0},
	{"bad char ref", `<message from='general@rooms.bench.local/n' type='groupchat'><body>&#1;</body></message>`, nil, 0, 0},
	{"mismatched end tag", `<message from='general@rooms.bench.local/n' type='groupchat'><body>x</bod></message>`, nil, 0, 0},
	{"< in an attribute", `<message from='general@rooms.bench.local/<n' type='groupchat'><body>x</body></message>`, nil, 0, 0},
	{"unquoted attribute", `<message from=general type='groupchat'><body>x</body></message>`, nil, 0, 0},
	{"cut short", chatboxStanza + chatboxStanza[:100], nil, 1, 0},
	// Room presences: another occupant's is dropped unread (pres), all
	// else is the decoder's.
	{"chatbox presences", chatboxPresence + "\n" + chatboxPresence, []string{"other <jabber:client presence> ", "other <jabber:client presence> "}, 0, 2},
	{"presences and bodies", chatboxPresence + chatboxStanza + chatboxPresence + chatboxStanza, nil, 2, 2},
	{"own presence (110)", ownPresence, []string{"other <jabber:client presence> "}, 0, 0},
	{"own presence without 110", `<presence from='general@rooms.bench.local/u0002'/>`, nil, 0, 0},
	{"own nick in other case", `<presence from='general@rooms.bench.local/U0002'/>`, nil, 0, 0},
	{"own nick by entity", `<presence from='general@rooms.bench.local/u000&#50;'/>`, nil, 0, 0},
	{"nick with a slash", `<presence from='general@rooms.bench.local/u0002/x'/>`, nil, 0, 1},
	{"from by entity", `<presence from='general&#64;rooms.bench.local/u&#51;'/>`, nil, 0, 1},
	{"another's presence with 110 (nick changed)",
		`<presence from='general@rooms.bench.local/u0002_'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/><status code='210'/><status code='110'/></x></presence>`,
		nil, 0, 0},
	{"status 110 by entity", `<presence from='general@rooms.bench.local/x'><x xmlns='http://jabber.org/protocol/muc#user'><status code='&#49;10'/></x></presence>`, nil, 0, 0},
	{"prefixed status 110",
		`<presence from='general@rooms.bench.local/x'><x xmlns='http://jabber.org/protocol/muc#user'><m:status xmlns:m='http://jabber.org/protocol/muc#user' code='110'/></x></presence>`, nil, 0, 0},
	{"status 110, prefixed code", `<presence from='general@rooms.bench.local/x'><x xmlns='http://jabber.org/protocol/muc#user' xmlns:u=''><status u:code="110"/></x></presence>`, nil, 0, 0},
	{"status 100 and text status", `<presence from='general@rooms.bench.local/x'><show>away</show><status>110</status><x xmlns='http://jabber.org/protocol/muc#user'><status code='100'/></x></presence>`, nil, 0, 1},
	{"unavailable", `<presence from='general@rooms.bench.local/u7' type="unavailable"><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='none'/></x></presence>`,
		[]string{"other <jabber:client presence> unavailable"}, 0, 1},
	{"presence error", `<presence from='general@rooms.bench.local/u0002' type='error'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`,
		[]string{"error <presence> general@rooms.bench.local/u0002: conflict"}, 0, 0},
	{"presence error from another", `<presence from='general@rooms.bench.local/x' type='error'/>`, nil, 0, 0},
	{"type subscribe", `<presence from='general@rooms.bench.local/x' type='subscribe'/>`, nil, 0, 0},
	{"empty type", `<presence from='general@rooms.bench.local/x' type=''/>`, nil, 0, 0},
	{"type twice", `<presence from='general@rooms.bench.local/x' type='unavailable' type='error'/>`, nil, 0, 1},
	{"type twice, error first", `<presence from='general@rooms.bench.local/x' type='error' type='unavailable'/>`, nil, 0, 0},
	{"prefixed type", `<presence xmlns:p='' from='general@rooms.bench.local/x' p:type='error'/>`, nil, 0, 0},
	{"prefixed from", `<presence p:from='general@rooms.bench.local/u0002' xmlns:p='' from='general@rooms.bench.local/x'/>`, nil, 0, 0},
	{"self-closing", `<presence from='general@rooms.bench.local/u3'/>`, nil, 0, 1},
	{"self-closing with space", "<presence\n from = \"general@rooms.bench.local/u3\"\t/>", nil, 0, 1},
	{"the room itself", `<presence from='general@rooms.bench.local'/>`, nil, 0, 1},
	{"room in other case (presence)", `<presence from='GENERAL@rooms.bench.local/u3'/>`, nil, 0, 1},
	{"another room's presence", `<presence from='other@rooms.bench.local/u3'/>`, nil, 0, 0},
	{"no from", `<presence/>`, nil, 0, 0},
	{"other namespace", `<presence xmlns='urn:x' from='general@rooms.bench.local/u3'/>`, nil, 0, 0},
	{"jabber:client declared", `<presence xmlns='jabber:client' from='general@rooms.bench.local/u3'/>`, nil, 0, 1},
	{"prefixed presence", `<c:presence xmlns:c='jabber:client' from='general@rooms.bench.local/u3'/>`, nil, 0, 0},
	{"presencex", `<presencex from='general@rooms.bench.local/u3'/>`, nil, 0, 0},
	{"comment in presence", `<presence from='general@rooms.bench.local/u3'><!-- c --></presence>`, nil, 0, 0},
	{"CDATA in presence", `<presence from='general@rooms.bench.local/u3'><status><![CDATA[x]]></status></presence>`, nil, 0, 0},
	{"CR in presence", "<presence from='general@rooms.bench.local/u3'><status>a\r\nb</status></presence>", nil, 0, 0},
	{"bad entity in presence", `<presence from='general@rooms.bench.local/u3'><status>&nbsp;</status></presence>`, nil, 0, 0},
	{"mismatched end in presence", `<presence from='general@rooms.bench.local/u3'><x></y></presence>` + chatboxPresence, nil, 0, 0},
	{"prefixed end in presence", `<presence from='general@rooms.bench.local/u3'><a:x xmlns:a='urn:a'></x></presence>`, nil, 0, 0},
	{"namespaced children", `<presence from='general@rooms.bench.local/u3'><a:x xmlns:a='urn:a'><a:item a:role='x'/></a:x><c xmlns='urn:c'><d/></c></presence>`, nil, 0, 1},
	{"too deep presence", `<presence from='general@rooms.bench.local/u3'>` + strings.Repeat("<a>", maxDepth) + strings.Repeat("</a>", maxDepth) + `</presence>`, nil, 0, 0},
	{"presence cut short", chatboxPresence + chatboxPresence[:120], nil, 0, 1},
}

func TestXMPPScan(t *testing.T) {
	for _, tc := range scanCases {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.data)
			got, fast, pres := sameRun(t, "whole", data)
			if tc.events != nil && strings.Join(got, "\n") != strings.Join(tc.events, "\n") {
				t.Fatalf("events %q, want %q", got, tc.events)
			}
			if fast != tc.fast || pres != tc.pres {
				t.Errorf("the fast path read %d bodies and dropped %d presences, want %d and %d", fast, pres, tc.fast, tc.pres)
			}
			// Split in two reads at every byte, and a byte at a time.
			for k := 1; k < len(data); k++ {
				if _, f, p := sameRun(t, "split", data, k, len(data)); f != tc.fast || p != tc.pres {
					t.Fatalf("split at %d: the fast path read %d bodies and dropped %d presences, want %d and %d", k, f, p, tc.fast, tc.pres)
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
		func(_ []byte, now time.Time) { at = append(at, now.Sub(start)) },
		func(el *elem, _ time.Time) { t.Errorf("slow path: %s", project(el)) })
	if errClass(err) != "error" {
		t.Fatalf("end %v", err)
	}
	if len(at) != 2 || at[0] < 40*time.Millisecond || at[1] != at[0] {
		t.Fatalf("times %v: want two, both after the pause, equal", at)
	}
}

// receive (readLoop's) drops other occupants' presences and decodes our own.
func TestXMPPReceivePresence(t *testing.T) {
	data := chatboxPresence + chatboxStanza + ownPresence + chatboxPresence + chatboxStanza
	in := newStanzaReader(strings.NewReader(testHeader + data))
	dec := xml.NewDecoder(in)
	_, ns, err := openStreamNS(dec)
	if err != nil {
		t.Fatal(err)
	}
	f := &fastReader{room: []byte(testRoom), nick: []byte(testNick), rootNS: ns}
	var got []string
	err = receive(in, dec, f, func(body []byte, _ time.Time) { got = append(got, "body") },
		func(el *elem, _ time.Time) { got = append(got, el.name.Local+" "+el.get("from")) })
	if want := "body,presence general@rooms.bench.local/u0002,body"; strings.Join(got, ",") != want || f.dropped != 2 || errClass(err) != "error" {
		t.Fatalf("got %q, %d dropped, end %v; want %q, 2", got, f.dropped, err, want)
	}
}

// An element longer than the scanner buffers goes to the decoder,
// whose limits apply as before.
func TestXMPPScanLarge(t *testing.T) {
	big := strings.Repeat("x", maxScan+20000)
	data := `<message from='general@rooms.bench.local/n' type='groupchat'><body>` + big + `</body></message>` + chatboxStanza
	got, fast, _ := sameRun(t, "big", []byte(data), 4096)
	if len(got) != 2 || fast != 1 {
		t.Fatalf("%d events, %d fast", len(got), fast)
	}
	tooMuch := `<message from='general@rooms.bench.local/n' type='groupchat'><body>` + strings.Repeat("y", maxText+1) + `</body></message>`
	if _, _, _, err := runNew(t, []byte(tooMuch), 16<<10); err == nil || !strings.Contains(err.Error(), "bytes of text") {
		t.Fatalf("over maxText: %v", err)
	}
	deep := strings.Repeat("<a>", maxDepth+2) + strings.Repeat("</a>", maxDepth+2)
	if _, _, _, err := runNew(t, []byte(deep)); err == nil || !strings.Contains(err.Error(), "deep") {
		t.Fatalf("too deep: %v", err)
	}
}

func FuzzXMPPScan(f *testing.F) {
	for _, tc := range scanCases {
		f.Add([]byte(tc.data), uint8(7))
	}
	for _, tc := range joinCases() {
		f.Add([]byte(tc.data), uint8(7))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		// The fast path alone, on one element: if it reads a body,
		// encoding/xml reads the same (from, type, body); if it drops
		// a presence, neither readLoop nor join would do anything with
		// it (ignorable).
		fr := &fastReader{room: []byte(testRoom), nick: []byte(testNick), rootNS: "jabber:client"}
		if fr.roomPresence(data) {
			ignorable(t, data)
		}
		// The whole loop, in reads of cut bytes; the join too.
		sameRun(t, "fuzz", data, int(cut)+1)
		sameJoin(t, "fuzz", data, false, int(cut)+1)
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
		receive(in, dec, &fastReader{room: []byte(testRoom), rootNS: ns}, func(body []byte, _ time.Time) {
			if string(body) == want {
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

// recConn is a connection whose writes are kept, for join's tests.
type recConn struct {
	net.Conn
	mu     sync.Mutex
	writes []string
}

func (r *recConn) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.writes = append(r.writes, string(b))
	r.mu.Unlock()
	return len(b), nil
}

func (r *recConn) SetWriteDeadline(time.Time) error { return nil }

func (r *recConn) written() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := slices.Clone(r.writes)
	slices.Sort(w)
	return w
}

// joinOld is join as it was: every element decoded (c.next), noted,
// pings answered, then joinElem.
func joinOld(c *xmppClient) error {
	ctx := context.Background()
	self := false
	for {
		el, err := c.next(ctx, "joining "+c.room)
		if err != nil {
			return err
		}
		if done, err := c.joinElem(el, &self); err != nil || done {
			return err
		}
	}
}

// joinResult is what a join over data shows: how it ended, the events
// of the rest of the stream (as readLoop would see them), what the
// client wrote.
type joinResult struct {
	err    string
	events []string
	writes []string
	pres   int // presences the fast path dropped, in the join and after it
}

var lineNo = regexp.MustCompile(`line [0-9]+`)

func joinRun(t testing.TB, old bool, data []byte, cuts ...int) joinResult {
	conn := &recConn{}
	c := &xmppClient{peer: peer{nc: conn}, m: &member{}, room: testRoom, nick: testNick}
	var (
		r            joinResult
		err, restErr error
	)
	if old {
		c.dec = xml.NewDecoder(bufio.NewReader(bytes.NewReader(append([]byte(testHeader), data...))))
		if _, _, err := openStreamNS(c.dec); err != nil {
			panic(err)
		}
		c.write([]byte(`<presence to='` + xmlEscape(c.room+"/"+c.nick) + `'><x xmlns='` + nsMUC +
			`'><history maxstanzas='0'/></x></presence>`))
		err = joinOld(c)
		if err == nil {
			r.events, restErr = runOldOn(c.dec)
		}
	} else {
		c.in = newStanzaReader(&chunkReader{data: append([]byte(testHeader), data...), cuts: append([]int{len(testHeader)}, cuts...)})
		c.dec = xml.NewDecoder(c.in)
		_, ns, herr := openStreamNS(c.dec)
		if herr != nil {
			panic(herr)
		}
		c.fast = fastReader{room: []byte(c.room), nick: []byte(c.nick), rootNS: ns}
		err = c.enter(context.Background())
		r.pres = c.fast.dropped
		if err == nil {
			var pres int
			r.events, _, pres, restErr = scanEvents(t, c.in, c.dec, &c.fast)
			r.pres += pres
		}
	}
	if err != nil {
		r.err = lineNo.ReplaceAllString(err.Error(), "line N")
	}
	if err == nil {
		r.events = append(r.events, "end: "+errClass(restErr))
	}
	r.writes = conn.written()
	return r
}

// sameJoin compares join over data, in reads of the sizes in cuts, with
// join as it was (what the client wrote too, if writes).
func sameJoin(t testing.TB, name string, data []byte, writes bool, cuts ...int) joinResult {
	t.Helper()
	want := joinRun(t, true, data)
	got := joinRun(t, false, data, cuts...)
	// answerIQ writes from a goroutine: wait for the replies.
	for i := 0; writes && i < 200 && len(got.writes) != len(want.writes); i++ {
		time.Sleep(5 * time.Millisecond)
		want.writes = joinRun(t, true, data).writes
		got.writes = joinRun(t, false, data, cuts...).writes
	}
	if !writes {
		got.writes, want.writes = nil, nil
	}
	if got.err != want.err || strings.Join(got.events, "\n") != strings.Join(want.events, "\n") ||
		strings.Join(got.writes, "\n") != strings.Join(want.writes, "\n") {
		t.Fatalf("%s, reads %v:\nnew %q, %q, wrote %q\nold %q, %q, wrote %q", name, cuts,
			got.err, got.events, got.writes, want.err, want.events, want.writes)
	}
	return got
}

type joinCase struct {
	name string
	data string
	err  string // "": the join ends well
	pres int    // presences the fast path dropped, in the join and after it
}

func joinCases() []joinCase {
	var others strings.Builder
	for i := range 40 {
		others.WriteString(strings.Replace(chatboxPresence, "u0001", "u1"+strconv.Itoa(i), 2))
		if i%3 == 0 {
			others.WriteString("\n")
		}
	}
	const (
		ping    = `<iq type='get' id='p1' from='bench.local'><ping xmlns='urn:xmpp:ping'/></iq>`
		subject = `<message from='general@rooms.bench.local' type='groupchat' id='s'><subject>topic</subject></message>`
	)
	return []joinCase{
		{"a big room", others.String() + ping + ownPresence + subject + others.String() + chatboxStanza, "", 80},
		{"subject before the self-presence", subject + chatboxPresence + ownPresence + chatboxPresence + subject + chatboxStanza, "", 2},
		{"a body during the join (the decoder's)", chatboxPresence + chatboxStanza + ownPresence + subject, "", 1},
		{"subject with a body", ownPresence + `<message from='general@rooms.bench.local' type='groupchat'><body>b</body><subject>s</subject></message>` + chatboxStanza, "", 0},
		{"nick changed by the server",
			chatboxPresence + `<presence from='general@rooms.bench.local/u0002_'><x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='participant'/><status code='210'/><status code='110'/></x></presence>` + subject,
			"", 1},
		{"other rooms and their subjects", `<presence from='other@rooms.bench.local/u0002'><x xmlns='http://jabber.org/protocol/muc#user'><status code='110'/></x></presence>` +
			`<message from='other@rooms.bench.local' type='groupchat'><subject>s</subject></message>` + ownPresence + subject, "", 0},
		{"join refused", chatboxPresence + `<presence from='general@rooms.bench.local/u0002' type='error'><error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`,
			"server refused: join general@rooms.bench.local: conflict", 1},
		{"error message", ownPresence + `<message from='general@rooms.bench.local' type='error'><error type='cancel'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`,
			"server refused: join general@rooms.bench.local: forbidden", 0},
		{"the stream ends", chatboxPresence + ownPresence, "joining general@rooms.bench.local: XML syntax error on line N: unexpected EOF", 1},
		{"cut short", chatboxPresence + ownPresence[:50], "joining general@rooms.bench.local: XML syntax error on line N: unexpected EOF", 1},
		{"stream error", chatboxPresence + `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
			"joining general@rooms.bench.local: stream error: conflict", 1},
		{"closed", chatboxPresence + `</stream:stream>`, "joining general@rooms.bench.local: the server closed the stream", 1},
		{"bad XML after presences", chatboxPresence + `<presence from='general@rooms.bench.local/x'><a></b></presence>`, "joining general@rooms.bench.local: XML syntax error on line N: element <a> closed by </b>", 1},
	}
}

func TestXMPPJoin(t *testing.T) {
	for _, tc := range joinCases() {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.data)
			r := sameJoin(t, "whole", data, true)
			if r.err != tc.err || r.pres != tc.pres {
				t.Fatalf("ended %q, %d presences dropped; want %q, %d", r.err, r.pres, tc.err, tc.pres)
			}
			for _, cut := range []int{1, 2, 7, 100, 333, 4096} {
				if r := sameJoin(t, "reads", data, true, cut); r.pres != tc.pres {
					t.Fatalf("reads of %d: %d presences dropped, want %d", cut, r.pres, tc.pres)
				}
			}
			if len(data) < 2000 {
				for k := 1; k < len(data); k++ {
					sameJoin(t, "split", data, true, k, len(data))
				}
			}
		})
	}
}

// Other occupants' presences, as a big room's joins send them.
func BenchmarkXMPPPresence(b *testing.B) {
	unit := []byte(chatboxPresence + "\n")
	b.Run("old", func(b *testing.B) {
		b.ReportAllocs()
		dec := xml.NewDecoder(bufio.NewReaderSize(io.MultiReader(strings.NewReader(testHeader), &repeatReader{unit: unit, left: b.N * len(unit)}), 16<<10))
		if _, _, err := openStreamNS(dec); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		n := 0
		for {
			el, err := readElem(dec)
			if err != nil {
				break
			}
			if el.name.Local == "presence" {
				n++
			}
		}
		if n != b.N {
			b.Fatalf("%d presences, want %d", n, b.N)
		}
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		in := newStanzaReader(bufio.NewReaderSize(io.MultiReader(strings.NewReader(testHeader), &repeatReader{unit: unit, left: b.N * len(unit)}), 16<<10))
		dec := xml.NewDecoder(in)
		_, ns, err := openStreamNS(dec)
		if err != nil {
			b.Fatal(err)
		}
		f := &fastReader{room: []byte(testRoom), nick: []byte(testNick), rootNS: ns}
		b.ResetTimer()
		receive(in, dec, f, func([]byte, time.Time) { b.Fatal("a body") }, func(el *elem, _ time.Time) { b.Fatalf("slow path: %s", project(el)) })
		if f.dropped != b.N {
			b.Fatalf("%d presences, want %d", f.dropped, b.N)
		}
	})
}
