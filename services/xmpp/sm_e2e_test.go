package xmpp

// End-to-end tests of XEP-0198 stream management: enabling, the
// acknowledgement counts both ways, resumption after the TCP connection
// is cut (what was sent meanwhile arrives once, nothing is lost), and
// what happens to unacknowledged messages when a session is not resumed.
// mellium has no stream management, so the managed client is bgClient: a
// hand-written client (STARTTLS, SASL PLAIN) whose reader runs in the
// background and counts the stanzas it receives.

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// bgClient is a hand-written XMPP client whose reader runs in the
// background: every element it reads goes to in, stanzas are counted (h,
// from <enabled/> on, for XEP-0198), and the test may cut the
// connection at any moment.
type bgClient struct {
	t        testing.TB
	nc       net.Conn
	wmu      sync.Mutex
	in       chan *Element // closed when the reader stops
	err      error         // why the reader stopped, once in is closed
	jid      string
	features *Element      // the stream features after authentication
	h        atomic.Uint32 // stanzas received since <enabled/>
	autoAck  atomic.Bool   // answer the server's <r/> with <a h/>
	dropped  atomic.Int64  // elements not kept because in was full
}

const bgStreamHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='` +
	boxDomain + `' version='1.0'>`

// bgNegotiate opens a stream on nc, upgrades it with STARTTLS when tc is
// set, logs in with PLAIN and reads the features of the authenticated
// stream; the background reader then starts. The client is not bound.
func bgNegotiate(t testing.TB, nc net.Conn, tc *tls.Config, user, pass string) (*bgClient, error) {
	nc.SetDeadline(time.Now().Add(waitLimit))
	write := func(s string) error { _, err := io.WriteString(nc, s); return err }
	open := func() (*streamReader, *Element, error) {
		if err := write(bgStreamHeader); err != nil {
			return nil, nil, err
		}
		rd := newStreamReader(nc, 1<<24, 64, nil)
		if _, err := rd.Header(); err != nil {
			return nil, nil, fmt.Errorf("stream header: %w", err)
		}
		f, err := rd.Next()
		if err != nil {
			return nil, nil, fmt.Errorf("stream features: %w", err)
		}
		return rd, f, nil
	}
	rd, _, err := open()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		if err := write(`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`); err != nil {
			return nil, err
		}
		if el, err := rd.Next(); err != nil || !el.Is(nsTLS, "proceed") {
			return nil, fmt.Errorf("STARTTLS: %v %v", el, err)
		}
		tlsc := tls.Client(nc, tc)
		if err := tlsc.Handshake(); err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		nc = tlsc
		if rd, _, err = open(); err != nil {
			return nil, err
		}
	}
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	if err := write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>` + auth + `</auth>`); err != nil {
		return nil, err
	}
	if el, err := rd.Next(); err != nil || !el.Is(nsSASL, "success") {
		return nil, fmt.Errorf("PLAIN login of %s: %v %v", user, el, err)
	}
	rd, f, err := open()
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	c := &bgClient{t: t, nc: nc, in: make(chan *Element, 10000), features: f}
	go c.read(rd)
	return c, nil
}

func (c *bgClient) read(rd *streamReader) {
	defer close(c.in)
	for {
		el, err := rd.Next()
		if err != nil {
			c.err = err
			return
		}
		switch {
		case el.Is(nsSM, "enabled"):
			c.h.Store(0)
		case el.Space == nsClient && (el.Local == "message" || el.Local == "presence" || el.Local == "iq"):
			c.h.Add(1)
		case el.Is(nsSM, "r") && c.autoAck.Load():
			c.write(fmt.Sprintf(`<a xmlns='urn:xmpp:sm:3' h='%d'/>`, c.h.Load()))
		}
		select {
		case c.in <- el:
		default:
			c.dropped.Add(1)
		}
	}
}

// write sends XML text; the error says whether it went.
func (c *bgClient) write(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(waitLimit))
	_, err := io.WriteString(c.nc, s)
	return err
}

// send writes XML text (format with args), failing the test if it cannot.
func (c *bgClient) send(format string, args ...any) {
	c.t.Helper()
	if err := c.write(fmt.Sprintf(format, args...)); err != nil {
		c.t.Fatalf("%s: send: %v", c.jid, err)
	}
}

// bind binds resource and waits for the result.
func (c *bgClient) bind(resource string) {
	c.t.Helper()
	c.send(`<iq type='set' id='bind-1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>`, resource)
	r := c.expect("bind result", func(e *Element) bool { return e.Local == "iq" && e.Get("id") == "bind-1" })
	c.jid = r.Child(nsBind, "bind").ChildText(nsBind, "jid")
	if r.Get("type") != "result" || c.jid == "" {
		c.t.Fatalf("bind %s: %s", resource, r)
	}
}

// expect waits for an element matching pred (bounded by waitLimit).
func (c *bgClient) expect(what string, pred func(*Element) bool) *Element {
	c.t.Helper()
	var skipped []string
	deadline := time.After(waitLimit)
	for {
		select {
		case el, ok := <-c.in:
			if !ok {
				c.t.Fatalf("%s: stream ended (%v) waiting for %s; got:\n%s", c.jid, c.err, what, strings.Join(skipped, "\n"))
			}
			if pred(el) {
				return el
			}
			if len(skipped) < 50 {
				skipped = append(skipped, el.String())
			}
		case <-deadline:
			c.t.Fatalf("%s: no %s within %s; got:\n%s", c.jid, what, waitLimit, strings.Join(skipped, "\n"))
			return nil
		}
	}
}

// ping pings the server and returns what arrived before the answer.
func (c *bgClient) ping() []*Element {
	c.t.Helper()
	id := "ping-" + randomID()
	c.send(`<iq type='get' id='%s' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>`, id, boxDomain)
	var before []*Element
	c.expect("answer to "+id, func(e *Element) bool {
		if e.Local == "iq" && e.Get("id") == id {
			if e.Get("type") != "result" {
				c.t.Fatalf("%s: ping: %s", c.jid, e)
			}
			return true
		}
		before = append(before, e)
		return false
	})
	return before
}

// ended waits for the server to end the stream and returns its stream
// error, if it sent one.
func (c *bgClient) ended() *Element {
	c.t.Helper()
	var streamError *Element
	deadline := time.After(waitLimit)
	for {
		select {
		case el, ok := <-c.in:
			if !ok {
				return streamError
			}
			if el.Is(nsStream, "error") {
				streamError = el
			}
		case <-deadline:
			c.t.Fatalf("%s: the server did not end the stream within %s", c.jid, waitLimit)
		}
	}
}

// streamErrorCondition is the condition of a <stream:error/>.
func streamErrorCondition(e *Element) string {
	if e == nil {
		return ""
	}
	for _, k := range e.Kids() {
		if k.Space == nsStreamErr && k.Local != "text" {
			return k.Local
		}
	}
	return ""
}

// bgAuth connects to the box with STARTTLS and logs user in, unbound.
func (b *box) bgAuth(t *testing.T, user string) *bgClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", b.xmppAddr, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bgNegotiate(t, nc, b.tlsConfig(), user, password(user))
	if err != nil {
		nc.Close()
		t.Fatalf("log %s in: %v", user, err)
	}
	c.jid = user + "@" + boxDomain
	t.Cleanup(func() { c.nc.Close() })
	return c
}

// bgLogin is bgAuth and a bound resource.
func (b *box) bgLogin(t *testing.T, user, resource string) *bgClient {
	t.Helper()
	c := b.bgAuth(t, user)
	c.bind(resource)
	return c
}

// enableSM enables stream management (with resumption if resume) and
// returns <enabled/>.
func (c *bgClient) enableSM(resume bool, extra string) *Element {
	c.t.Helper()
	if resume {
		c.send(`<enable xmlns='urn:xmpp:sm:3' resume='true' %s/>`, extra)
	} else {
		c.send(`<enable xmlns='urn:xmpp:sm:3' %s/>`, extra)
	}
	return c.expect("<enabled/>", func(e *Element) bool { return e.Space == nsSM })
}

func isSM(local string) func(*Element) bool {
	return func(e *Element) bool { return e.Is(nsSM, local) }
}

// failedCondition is the stanza error condition of an SM <failed/>.
func failedCondition(e *Element) string {
	for _, k := range e.Kids() {
		if k.Space == nsStanzaErr && k.Local != "text" {
			return k.Local
		}
	}
	return ""
}

// TestSMEnableAndAck enables stream management and checks the counts:
// <a h/> answers <r/> with the number of stanzas the client sent since
// <enable/>, the server asks for acknowledgements itself, and enabling
// twice or before binding fails.
func TestSMEnableAndAck(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})

	early := b.bgAuth(t, "bob")
	if early.features.Child(nsSM, "sm") == nil {
		t.Fatalf("no <sm xmlns='%s'/> in the features after authentication: %s", nsSM, early.features)
	}
	early.send(`<enable xmlns='urn:xmpp:sm:3'/>`)
	if f := early.expect("<failed/>", isSM("failed")); failedCondition(f) != "unexpected-request" {
		t.Fatalf("enable before bind: %s", f)
	}

	bob := b.bgLogin(t, "bob", "phone")
	bob.send(`<presence/>`) // before <enable/>: not counted
	en := bob.enableSM(false, "")
	if !en.Is(nsSM, "enabled") || en.Get("id") != "" || en.Get("resume") != "" {
		t.Fatalf("enable without resume: %s", en)
	}
	bob.send(`<enable xmlns='urn:xmpp:sm:3'/>`)
	if f := bob.expect("<failed/>", isSM("failed")); failedCondition(f) != "unexpected-request" {
		t.Fatalf("second enable: %s", f)
	}

	// The client's count: three stanzas, then <r/>.
	bob.send(`<iq type='get' id='p1' to='box.test'><ping xmlns='urn:xmpp:ping'/></iq>`)
	bob.send(`<message to='alice@box.test' type='chat'><body>one</body></message>`)
	bob.send(`<presence><show>away</show></presence>`)
	bob.send(`<r xmlns='urn:xmpp:sm:3'/>`)
	if a := bob.expect("<a/>", isSM("a")); a.Get("h") != "3" {
		t.Fatalf("after 3 stanzas: %s, want h='3'", a)
	}
	bob.send(`<r xmlns='urn:xmpp:sm:3'/>`)
	if a := bob.expect("<a/>", isSM("a")); a.Get("h") != "3" {
		t.Fatalf("<r/> is not a stanza: %s, want h='3'", a)
	}

	// The server's count: it asks after a few stanzas, and our answer
	// acknowledges them.
	alice := b.login(t, "alice", "")
	for i := 0; i < 6; i++ {
		alice.send(`<message to='bob@box.test/phone' type='chat'><body>m%d</body></message>`, i)
	}
	bob.expect("<r/> from the server", isSM("r"))
	bob.expect("m5", isMsg("m5"))
	bob.send(`<a xmlns='urn:xmpp:sm:3' h='%d'/>`, bob.h.Load())
	bob.ping()

	// A count ahead of what was sent ends the stream.
	bob.send(`<a xmlns='urn:xmpp:sm:3' h='%d'/>`, bob.h.Load()+10)
	if e := bob.ended(); streamErrorCondition(e) != "undefined-condition" || !strings.Contains(e.String(), "handled-count-too-high") {
		t.Fatalf("h too high: %v", e)
	}
}

// TestSMRequestBeforeEnable: <r/> without stream management is a stream
// error.
func TestSMRequestBeforeEnable(t *testing.T) {
	b := startBox(t, []string{"bob"})
	bob := b.bgLogin(t, "bob", "phone")
	bob.send(`<r xmlns='urn:xmpp:sm:3'/>`)
	if e := bob.ended(); streamErrorCondition(e) != "unsupported-stanza-type" {
		t.Fatalf("<r/> before <enable/>: %v", e)
	}
}

// TestSMResume cuts a managed client's TCP connection, sends it messages
// while it is away, and resumes: what it had not received arrives once,
// what it had acknowledged does not come again, and the session (its
// resource, its counts) carries on.
func TestSMResume(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	alice := b.login(t, "alice", "")

	bob := b.bgLogin(t, "bob", "phone")
	bob.send(`<presence/>`)
	en := bob.enableSM(true, "")
	id := en.Get("id")
	if !en.Is(nsSM, "enabled") || en.Get("resume") != "true" || len(id) < 16 || en.Get("max") != "300" {
		t.Fatalf("enable with resume: %s", en)
	}
	bob.send(`<iq type='get' id='p1' to='box.test'><ping xmlns='urn:xmpp:ping'/></iq>`) // bob's h: 1
	bob.expect("pong", func(e *Element) bool { return e.Get("id") == "p1" })

	alice.send(`<message to='bob@box.test' type='chat' id='m1'><body>before the cut</body></message>`)
	bob.expect("m1", isMsg("before the cut"))
	h := bob.h.Load()

	bob.nc.Close() // the network goes away; no </stream:stream>
	for i := 2; i <= 4; i++ {
		alice.send(`<message to='bob@box.test' type='chat' id='m%d'><body>while away %d</body></message>`, i, i)
	}
	alice.iq(`<iq type="get" id="{id}" to="box.test"><ping xmlns="urn:xmpp:ping"/></iq>`)

	bob2 := b.bgAuth(t, "bob")
	bob2.h.Store(h)
	bob2.send(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='%d'/>`, id, h)
	r := bob2.expect("<resumed/>", func(e *Element) bool { return e.Space == nsSM })
	if !r.Is(nsSM, "resumed") || r.Get("previd") != id || r.Get("h") != "1" {
		t.Fatalf("resume: %s, want <resumed previd='%s' h='1'/>", r, id)
	}
	bob2.jid = "bob@box.test/phone"
	got := map[string]int{}
	for _, e := range bob2.ping() {
		if body, ok := bodyOf(e); ok && e.Local == "message" {
			got[body]++
			if e.Get("to") != "bob@box.test/phone" {
				t.Errorf("resent message to %q, want the resumed resource", e.Get("to"))
			}
		}
	}
	want := map[string]int{"while away 2": 1, "while away 3": 1, "while away 4": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after resumption got %v, want each message sent while away exactly once (and not the acknowledged one)", got)
	}
	// Counts go on from where they were: bob has sent 2 stanzas (p1 and
	// the ping above).
	bob2.send(`<r xmlns='urn:xmpp:sm:3'/>`)
	if a := bob2.expect("<a/>", isSM("a")); a.Get("h") != "2" {
		t.Fatalf("after resumption: %s, want h='2'", a)
	}
	bob2.send(`<a xmlns='urn:xmpp:sm:3' h='%d'/>`, bob2.h.Load())
	alice.send(`<message to='bob@box.test' type='chat'><body>after</body></message>`)
	bob2.expect("a new message", isMsg("after"))
	bob2.ping()
	// A wrong id fails, without h.
	bob3 := b.bgAuth(t, "bob")
	bob3.send(`<resume xmlns='urn:xmpp:sm:3' previd='%s-x' h='0'/>`, id)
	if f := bob3.expect("<failed/>", isSM("failed")); failedCondition(f) != "item-not-found" || f.Get("h") != "" {
		t.Fatalf("resume with a wrong id: %s", f)
	}
}

// TestSMResumeTakesOver resumes while the server still holds the old
// connection (it has not noticed it died): the old stream ends with
// conflict and the new one carries the session.
func TestSMResumeTakesOver(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	alice := b.login(t, "alice", "")
	bob := b.bgLogin(t, "bob", "laptop")
	id := bob.enableSM(true, "").Get("id")
	alice.send(`<message to='bob@box.test' type='chat'><body>unacked</body></message>`)
	bob.expect("the message", isMsg("unacked"))

	bob2 := b.bgAuth(t, "bob")
	bob2.send(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>`, id)
	bob2.expect("<resumed/>", isSM("resumed"))
	bob2.jid = "bob@box.test/laptop"
	bob2.expect("the unacknowledged message again", isMsg("unacked"))
	if e := bob.ended(); streamErrorCondition(e) != "conflict" {
		t.Fatalf("old connection: %v, want conflict", e)
	}
	alice.send(`<message to='bob@box.test/laptop' type='chat'><body>to the new one</body></message>`)
	bob2.expect("the next message", isMsg("to the new one"))
}

// TestSMResumeRefused: another account cannot take a session over with
// its id, and resume after binding is refused; the owner still can.
func TestSMResumeRefused(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	bob := b.bgLogin(t, "bob", "phone")
	id := bob.enableSM(true, "").Get("id")
	bob.nc.Close()

	mallory := b.bgAuth(t, "alice")
	mallory.send(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>`, id)
	if f := mallory.expect("<failed/>", isSM("failed")); failedCondition(f) != "item-not-found" || f.Get("h") != "" {
		t.Fatalf("resume of another account's session: %s", f)
	}
	bound := b.bgLogin(t, "bob", "tablet")
	bound.send(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>`, id)
	if f := bound.expect("<failed/>", isSM("failed")); failedCondition(f) != "unexpected-request" {
		t.Fatalf("resume after bind: %s", f)
	}
	bob2 := b.bgAuth(t, "bob")
	bob2.send(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>`, id)
	bob2.expect("<resumed/>", isSM("resumed"))
}

// TestSMUnresumedMessagesGoOffline: a managed session that is not resumed
// in time (the client asked for a short max), or whose client closes
// the stream, ends; the stored messages it had not acknowledged wait in
// the offline queue, and bob's next login (over IRC here) gets them.
func TestSMUnresumedMessagesGoOffline(t *testing.T) {
	b := startBox(t, []string{"alice", "bob", "carol"})
	alice := b.login(t, "alice", "")
	carol := b.ircLogin(t, "carol")
	carol.raw("MONITOR + bob")
	carol.expect("bob offline", func(m ircmsg.Message) bool { return m.Command == "731" })

	bob := b.bgLogin(t, "bob", "phone")
	bob.send(`<presence/>`)
	carol.expect("bob online", func(m ircmsg.Message) bool { return m.Command == "730" })
	en := bob.enableSM(true, "max='2'")
	if en.Get("max") != "2" {
		t.Fatalf("the client's shorter max: %s", en)
	}
	alice.send(`<message to='bob@box.test' type='chat'><body>acked</body></message>`)
	bob.expect("acked", isMsg("acked"))
	bob.send(`<a xmlns='urn:xmpp:sm:3' h='%d'/>`, bob.h.Load())
	bob.ping()
	alice.send(`<message to='bob@box.test' type='chat'><body>unacked 1</body></message>`)
	alice.send(`<message to='bob@box.test' type='chat'><body>unacked 2</body></message>`)
	bob.expect("unacked 2", isMsg("unacked 2"))
	bob.nc.Close()
	alice.send(`<message to='bob@box.test' type='chat'><body>sent while away</body></message>`)
	alice.iq(`<iq type="get" id="{id}" to="box.test"><ping xmlns="urn:xmpp:ping"/></iq>`)
	// bob's session ends when the resumption time is over.
	carol.expect("bob offline after the resumption timeout", func(m ircmsg.Message) bool { return m.Command == "731" })

	bob2 := b.bgAuth(t, "bob")
	bob2.send(`<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>`, en.Get("id"))
	if f := bob2.expect("<failed/>", isSM("failed")); failedCondition(f) != "item-not-found" {
		t.Fatalf("resume after the timeout: %s", f)
	}
	bob2.nc.Close()

	// bob's next login gets them from the offline queue (XEP-0160),
	// once each.
	bob3 := b.bgLogin(t, "bob", "desk")
	bob3.send(`<presence/>`)
	got := map[string]int{}
	for _, e := range bob3.ping() {
		if body, ok := bodyOf(e); ok && e.Local == "message" {
			got[body]++
		}
	}
	want := map[string]int{"unacked 1": 1, "unacked 2": 1, "sent while away": 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("offline messages at the next login %v, want %v", got, want)
	}

	// A clean close with a message unacknowledged: the next login (over
	// IRC) gets it.
	carol.expect("bob online", func(m ircmsg.Message) bool { return m.Command == "730" })
	bob3.enableSM(false, "")
	alice.send(`<message to='bob@box.test' type='chat'><body>before close</body></message>`)
	bob3.expect("before close", isMsg("before close"))
	bob3.send(`</stream:stream>`)
	if e := bob3.ended(); e != nil {
		t.Fatalf("clean close answered with %s", e)
	}
	carol.expect("bob offline after closing", func(m ircmsg.Message) bool { return m.Command == "731" })
	ircBob := b.ircLogin(t, "bob")
	m := ircBob.expect("the offline message", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" })
	if body := m.Params[len(m.Params)-1]; body != "before close" {
		t.Fatalf("offline message %q, want %q", body, "before close")
	}
	if strings.Contains(b.logText(), "could not be put back") {
		t.Fatal("the requeue failed; see the log")
	}
}

// TestSMQueueBound: a client that never acknowledges is disconnected
// once too many stanzas wait unacknowledged.
func TestSMQueueBound(t *testing.T) {
	if testing.Short() {
		t.Skip("sends over a thousand stanzas")
	}
	b := startBox(t, []string{"alice", "bob"}, "limits.messages_per_second=1000", "limits.message_burst=2000")
	bob := b.bgLogin(t, "bob", "phone")
	bob.enableSM(false, "")
	alice := b.bgLogin(t, "alice", "flood")
	var flood strings.Builder
	for i := 0; i <= smMaxUnacked; i++ {
		fmt.Fprintf(&flood, `<iq type='get' id='q%d' to='bob@box.test/phone'><query xmlns='urn:test:void'/></iq>`, i)
	}
	alice.send("%s", flood.String())
	if e := bob.ended(); streamErrorCondition(e) != "resource-constraint" {
		t.Fatalf("never acknowledging: %v, want resource-constraint", e)
	}
}
