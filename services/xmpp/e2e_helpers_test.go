// The harness of the XMPP door's end-to-end tests: it builds the real
// chatbox binary once, runs one server per test on loopback (XMPP with
// STARTTLS and direct TLS, plain IRC for cross-door tests) with its own
// data directory, and connects clients with mellium.im/xmpp, which
// negotiates TLS, SASL and resource binding as a real client does.
// Stanzas are then sent as XML text through the mellium session and every
// stanza received is parsed into an *Element, so that tests assert on the
// exact XML (RFC 6120/6121 and the XEPs are what they check against).
//
// Nothing sleeps to let the server catch up: every wait is for a stanza
// or a process and is bounded (waitLimit), so a missing reply fails the
// test with what did arrive.
package xmpp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	mxmpp "mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"chatbox/internal/testbox"
)

const (
	waitLimit = 15 * time.Second
	boxDomain = "box.test"
)

var chatboxBin string

func TestMain(m *testing.M) {
	bin, cleanup, err := testbox.Build("../../cmd/chatbox")
	if err != nil {
		fmt.Fprintln(os.Stderr, "xmpp e2e:", err)
		os.Exit(2)
	}
	chatboxBin = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// password is the password the harness gives each account.
func password(account string) string { return "password-" + account }

// box is one running chatbox (testbox.Proc) and the addresses it logged.
type box struct {
	*testbox.Proc
	data       string
	xmppAddr   string // STARTTLS
	xmppTLS    string // direct TLS
	ircAddr    string // plain IRC
	compAddr   string // components, if configured
	uploadAddr string // file sharing (HTTPS, XEP-0363)
	ca         *x509.CertPool
	domain     string // "" means boxDomain (federation tests run others)
	s2sAddr    string // federation (STARTTLS), if enabled
	// dial connects clients; nil is net.DialTimeout (a box in a network
	// namespace is reached from inside it, s2s_mdns_e2e_test.go).
	dial func(network, addr string, timeout time.Duration) (net.Conn, error)
}

// dom is the box's XMPP domain.
func (b *box) dom() string {
	if b.domain != "" {
		return b.domain
	}
	return boxDomain
}

var listenRe = regexp.MustCompile(`msg=listening door=(xmpp|irc) addr=(\S+) (?:kind=(\S+)|tls=(\S+))`)
var uploadListenRe = regexp.MustCompile(`msg=listening door=upload addr=(\S+)`)

// startBox creates the accounts with the CLI and starts a server with the
// settings given as key=value on top of loopback listeners on free ports.
func startBox(t *testing.T, accounts []string, settings ...string) *box {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	b := &box{Proc: testbox.New(chatboxBin, data), data: data}
	for _, a := range accounts {
		b.cli(t, password(a)+"\n", "user", "add", a)
	}
	args := []string{
		"--set", "domain=" + boxDomain,
		"--set", "irc.plain_listen=127.0.0.1:0",
		"--set", "irc.tls_listen=[]",
		"--set", "xmpp.listen=127.0.0.1:0",
		"--set", "xmpp.tls_listen=127.0.0.1:0",
		"--set", "web.listen=",
		"--set", "upload.listen=127.0.0.1:0",
		"--set", "calls.listen=127.0.0.1:0",
		"--set", "log.level=debug",
	}
	for _, s := range settings {
		args = append(args, "--set", s)
	}
	b.Start(t, args, func(line string) {
		if m := listenRe.FindStringSubmatch(line); m != nil {
			switch {
			case m[1] == "irc":
				b.ircAddr = m[2]
			case m[3] == "c2s-starttls":
				b.xmppAddr = m[2]
			case m[3] == "c2s-directtls":
				b.xmppTLS = m[2]
			case m[3] == "component":
				b.compAddr = m[2]
			case m[3] == "s2s-starttls":
				b.s2sAddr = m[2]
			}
		}
		if m := uploadListenRe.FindStringSubmatch(line); m != nil {
			b.uploadAddr = m[1]
		}
	})
	var ok bool
	b.Locked(func() { ok = b.xmppAddr != "" && b.xmppTLS != "" })
	if !ok {
		t.Fatalf("chatbox did not log its XMPP listeners; log:\n%s", b.logText())
	}
	b.ca = b.CA(t)
	return b
}

func (b *box) cli(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	return b.CLI(t, stdin, args...)
}

func (b *box) logText() string { return b.LogText() }

// tlsConfig trusts the box's CA.
func (b *box) tlsConfig() *tls.Config {
	return &tls.Config{ServerName: b.dom(), RootCAs: b.ca, MinVersion: tls.VersionTLS12}
}

// client is one logged-in XMPP client.
type client struct {
	t    *testing.T
	s    *mxmpp.Session
	jid  string // full JID the server bound
	in   chan *Element
	done chan struct{}
}

// loginOpts choose how a client logs in.
type loginOpts struct {
	mechs    []sasl.Mechanism // default SCRAM-SHA-256-PLUS, SCRAM-SHA-256
	direct   bool             // direct TLS instead of STARTTLS
	password string           // default password(user)
	tls      *tls.Config      // default b.tlsConfig()
}

// login connects user and fails the test if it cannot. mellium v0.22.0's
// client sends an empty <resource/> whatever the resource asked (its
// bindPayload writes the JID instead of the resource), so the server
// always generates one: tests address clients by c.jid.
func (b *box) login(t *testing.T, user, resource string, o ...loginOpts) *client {
	t.Helper()
	c, err := b.tryLogin(t, user, resource, o...)
	if err != nil {
		t.Fatalf("login %s/%s: %v", user, resource, err)
	}
	return c
}

// tryLogin is login returning the error.
func (b *box) tryLogin(t *testing.T, user, resource string, o ...loginOpts) (*client, error) {
	t.Helper()
	var opt loginOpts
	if len(o) > 0 {
		opt = o[0]
	}
	if opt.mechs == nil {
		opt.mechs = []sasl.Mechanism{sasl.ScramSha256Plus, sasl.ScramSha256}
	}
	if opt.password == "" {
		opt.password = password(user)
	}
	if opt.tls == nil {
		opt.tls = b.tlsConfig()
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	addr := b.xmppAddr
	if opt.direct {
		addr = b.xmppTLS
	}
	dial := net.DialTimeout
	if b.dial != nil {
		dial = b.dial
	}
	raw, err := dial("tcp", addr, waitLimit)
	if err != nil {
		return nil, err
	}
	var nc net.Conn = writeBound{raw}
	// The login is bounded by closing the connection, not by mellium's
	// context deadline (see writeBound).
	stop := time.AfterFunc(waitLimit, func() { raw.Close() })
	defer stop.Stop()
	var features []mxmpp.StreamFeature
	if opt.direct {
		nc = tls.Client(nc, opt.tls)
	} else {
		features = append(features, mxmpp.StartTLS(opt.tls))
	}
	origin := user + "@" + b.dom()
	if resource != "" {
		origin += "/" + resource
	}
	features = append(features, mxmpp.SASL("", opt.password, opt.mechs...), mxmpp.BindResource())
	s, err := mxmpp.NewClientSession(ctx, jid.MustParse(origin), nc, features...)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c := &client{t: t, s: s, jid: s.LocalAddr().String(), in: make(chan *Element, 1000), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		s.Serve(mxmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			el, err := elementFromTokens(*start, r)
			if err != nil {
				return err
			}
			select {
			case c.in <- el:
			default:
				t.Errorf("%s: more than %d stanzas not read by the test", c.jid, cap(c.in))
			}
			return nil
		}))
	}()
	t.Cleanup(func() { c.close() })
	return c, nil
}

// writeBound is the test client's connection: each write is bounded by
// waitLimit, and the deadlines mellium sets are ignored. mellium v0.22.0
// arms a goroutine per Send that sets the write deadline to the distant
// past when the call's context is done; when the caller cancels the
// context right after a successful Send, that goroutine may still pick
// the context's branch and fail a later, unrelated write with "i/o
// timeout" (seen under load).
type writeBound struct{ net.Conn }

func (c writeBound) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(waitLimit))
	return c.Conn.Write(p)
}

func (writeBound) SetDeadline(time.Time) error      { return nil }
func (writeBound) SetReadDeadline(time.Time) error  { return nil }
func (writeBound) SetWriteDeadline(time.Time) error { return nil }

// elementFromTokens reads an element whose start was already read.
func elementFromTokens(start xml.StartElement, r xml.TokenReader) (*Element, error) {
	e := &Element{Space: start.Name.Space, Local: start.Name.Local}
	for _, a := range start.Attr {
		if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
			continue
		}
		e.Attr = append(e.Attr, a)
	}
	for {
		tok, err := r.Token()
		if err == io.EOF {
			return e, nil
		}
		if err != nil {
			return e, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			k, err := elementFromTokens(tok, r)
			if err != nil {
				return nil, err
			}
			e.Nodes = append(e.Nodes, k)
		case xml.CharData:
			e.Nodes = append(e.Nodes, string(tok))
		case xml.EndElement:
			return e, nil
		}
	}
}

// rawTokens reads XML text as tokens without resolving namespaces, so
// that mellium writes it out as written.
type rawTokens struct{ d *xml.Decoder }

func (r rawTokens) Token() (xml.Token, error) {
	t, err := r.d.RawToken()
	if err != nil {
		return nil, err
	}
	return xml.CopyToken(t), nil
}

// send writes a stanza given as XML text (format with args).
func (c *client) send(format string, args ...any) {
	c.t.Helper()
	x := fmt.Sprintf(format, args...)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := c.s.Send(ctx, rawTokens{xml.NewDecoder(strings.NewReader(x))}); err != nil {
		c.t.Fatalf("%s: send %s: %v", c.jid, x, err)
	}
}

// expect waits for a stanza matching pred, failing the test after
// waitLimit; stanzas that do not match are passed over and returned in
// the failure message.
func (c *client) expect(what string, pred func(*Element) bool) *Element {
	c.t.Helper()
	var skipped []string
	deadline := time.After(waitLimit)
	for {
		select {
		case el := <-c.in:
			if pred(el) {
				return el
			}
			skipped = append(skipped, el.String())
		case <-deadline:
			c.t.Fatalf("%s: no %s within %s; got:\n%s", c.jid, what, waitLimit, strings.Join(skipped, "\n"))
			return nil
		}
	}
}

// expectID waits for the response to the IQ with id.
func (c *client) expectID(id string) *Element {
	c.t.Helper()
	return c.expect("response to "+id, func(e *Element) bool { return e.Local == "iq" && e.Get("id") == id })
}

// iq sends an IQ (XML text with id="%s" filled in) and returns the result,
// failing the test on an error response.
func (c *client) iq(x string) *Element {
	c.t.Helper()
	id := randomID()
	c.send("%s", strings.Replace(x, "{id}", id, 1))
	r := c.expectID(id)
	if r.Get("type") != "result" {
		c.t.Fatalf("%s: %s: got %s", c.jid, x, r)
	}
	return r
}

// quiet checks that nothing matching pred arrives until a ping to the
// server comes back (everything the server sent before it has arrived).
func (c *client) quiet(what string, pred func(*Element) bool) {
	c.t.Helper()
	id := randomID()
	domain := boxDomain
	if a, err := parseJID(c.jid); err == nil {
		domain = a.Domain
	}
	c.send(`<iq type="get" id="%s" to="%s"><ping xmlns="urn:xmpp:ping"/></iq>`, id, domain)
	deadline := time.After(waitLimit)
	for {
		select {
		case el := <-c.in:
			if el.Local == "iq" && el.Get("id") == id {
				return
			}
			if pred(el) {
				c.t.Fatalf("%s: unexpected %s: %s", c.jid, what, el)
			}
		case <-deadline:
			c.t.Fatalf("%s: no answer to ping", c.jid)
		}
	}
}

func (c *client) close() {
	c.s.Close()
	c.s.Conn().Close()
}

// isMsg matches a message whose body is body.
func isMsg(body string) func(*Element) bool {
	return func(e *Element) bool {
		b, _ := bodyOf(e)
		return e.Local == "message" && b == body
	}
}
