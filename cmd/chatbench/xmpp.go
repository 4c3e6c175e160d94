package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

const (
	nsStreams = "http://etherx.jabber.org/streams"
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsMUC     = "http://jabber.org/protocol/muc"
	nsMUCUser = nsMUC + "#user"
	nsPing    = "urn:xmpp:ping"
	nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
)

// xmppClient is a c2s stream after STARTTLS, SASL and bind, in one room.
type xmppClient struct {
	peer
	m    *member
	dec  *xml.Decoder
	in   *stanzaReader // what dec reads, after the last stream restart
	fast fastReader
	room string // room@muc-domain
	nick string
}

// elem is a parsed element: enough of a tree for the few stanzas a
// client has to understand.
type elem struct {
	name xml.Name
	attr []xml.Attr
	kids []*elem
	text string
}

func (e *elem) get(local string) string {
	for _, a := range e.attr {
		if a.Name.Local == local && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

func (e *elem) child(space, local string) *elem {
	for _, k := range e.kids {
		if k.name.Local == local && k.name.Space == space {
			return k
		}
	}
	return nil
}

func (e *elem) is(space, local string) bool { return e.name.Space == space && e.name.Local == local }

// Bounds on one element the server sends.
const (
	maxDepth = 32
	maxNodes = 4096
	maxText  = 1 << 20
)

var errStreamClosed = errors.New("the server closed the stream")

// readElem returns the next top-level element of the stream.
func readElem(dec *xml.Decoder) (*elem, error) {
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			e, err := readTree(dec, t)
			if err != nil {
				return nil, err
			}
			if e.is(nsStreams, "error") {
				return nil, fmt.Errorf("stream error: %s", describeError(e))
			}
			return e, nil
		case xml.EndElement:
			return nil, errStreamClosed
		}
	}
}

// readTree reads the element that start opened, bounded in depth, nodes
// and text.
func readTree(dec *xml.Decoder, start xml.StartElement) (*elem, error) {
	root := &elem{name: start.Name, attr: start.Attr}
	stack := []*elem{root}
	nodes, text := 1, 0
	for len(stack) > 0 {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		top := stack[len(stack)-1]
		switch t := tok.(type) {
		case xml.StartElement:
			nodes++
			if len(stack) >= maxDepth || nodes > maxNodes {
				return nil, fmt.Errorf("an element over %d deep or %d elements", maxDepth, maxNodes)
			}
			e := &elem{name: t.Name, attr: t.Attr}
			top.kids = append(top.kids, e)
			stack = append(stack, e)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if text += len(t); text > maxText {
				return nil, fmt.Errorf("an element with over %d bytes of text", maxText)
			}
			top.text += string(t)
		}
	}
	return root, nil
}

// describeError names a stream or stanza error's condition and text.
func describeError(e *elem) string {
	if er := e.child("jabber:client", "error"); er != nil {
		e = er
	}
	var parts []string
	for _, k := range e.kids {
		switch {
		case k.name.Local == "text":
			parts = append(parts, strconv.Quote(k.text))
		case k.name.Space == nsStanzas || k.name.Space == "urn:ietf:params:xml:ns:xmpp-streams" || k.name.Space == nsSASL:
			parts = append(parts, k.name.Local)
		}
	}
	if len(parts) == 0 {
		return "(no condition)"
	}
	return strings.Join(parts, " ")
}

func streamHeader(domain string) string {
	return `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='` + nsStreams +
		`' to='` + xmlEscape(domain) + `' version='1.0'>`
}

// openStream reads the server's stream header and its features.
func openStream(dec *xml.Decoder) (*elem, error) {
	f, _, err := openStreamNS(dec)
	return f, err
}

// openStreamNS is openStream that also returns the stream's default
// namespace (that of its unprefixed children).
func openStreamNS(dec *xml.Decoder) (*elem, string, error) {
	ns := ""
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, "", err
		}
		if t, ok := tok.(xml.StartElement); ok {
			if t.Name.Space != nsStreams || t.Name.Local != "stream" {
				return nil, "", fmt.Errorf("not an XMPP stream: <%s>", t.Name.Local)
			}
			for _, a := range t.Attr {
				if a.Name.Space == "" && a.Name.Local == "xmlns" {
					ns = a.Value
				}
			}
			break
		}
	}
	f, err := readElem(dec)
	if err != nil {
		return nil, "", err
	}
	if !f.is(nsStreams, "features") {
		return nil, "", fmt.Errorf("expected stream features, got <%s>", f.name.Local)
	}
	return f, ns, nil
}

// tlsConfig is the client's TLS settings from --ca or --insecure.
func tlsConfig(o *options) (*tls.Config, error) {
	if o.tlsShared != nil {
		return o.tlsShared, nil
	}
	cfg := &tls.Config{ServerName: o.domain, MinVersion: tls.VersionTLS12, CurvePreferences: o.curves}
	switch {
	case o.insecure:
		cfg.InsecureSkipVerify = true
	case o.ca != "":
		pem, err := os.ReadFile(o.ca)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca %s: no PEM certificate in it", o.ca)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// dialXMPP connects with STARTTLS, logs in and binds a resource.
func dialXMPP(ctx context.Context, o *options, account, password string, m *member) (*xmppClient, error) {
	tcfg, err := tlsConfig(o)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", o.xmppAddr)
	if err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline()
	c := &xmppClient{peer: peer{nc: nc, deadline: dl}, m: m, room: o.room + "@" + o.mucDomain, nick: account}
	stop := watchCtx(ctx, nc)
	defer stop()
	if err := c.login(ctx, tcfg, o, account, password); err != nil {
		c.nc.Close()
		return nil, err
	}
	return c, nil
}

// join joins the room; it returns once the room's subject (the end of
// the join) came.
func (c *xmppClient) join(ctx context.Context) error {
	stop := watchCtx(ctx, c.nc)
	defer stop()
	if err := c.enter(ctx); err != nil {
		return err
	}
	// Reads from now on are bounded by the run (closeAll).
	c.nc.SetReadDeadline(time.Time{})
	return nil
}

// maxRecordRead bounds one read under TLS. crypto/tls's buffer doubles
// while what it holds unread (a record, up to 16 KB, and what the read
// brought beyond it) passes half of it: 8 KB reads keep it at 64 KB.
const maxRecordRead = 8 << 10

// recordReads is a connection whose reads take at most maxRecordRead
// bytes. crypto/tls reads into a buffer it keeps (and grows, doubling,
// with fresh zeroed memory) as much as one read gives: a burst queued in
// the socket (a room's messages, hundreds of KB) made it grow to that
// size on every connection at once, most of the tool's CPU in a short
// send phase going to clearing new memory instead of reading.
type recordReads struct{ net.Conn }

func (r recordReads) Read(p []byte) (int, error) {
	if len(p) > maxRecordRead {
		p = p[:maxRecordRead]
	}
	return r.Conn.Read(p)
}

// startTLS opens the stream, upgrades it with STARTTLS and opens it
// again: it returns the features offered over TLS and the reader that
// later stream restarts read from.
func (c *xmppClient) startTLS(ctx context.Context, tcfg *tls.Config, o *options) (*elem, *bufio.Reader, error) {
	// Plain text: the features, then STARTTLS.
	c.m.setStage("waiting for the stream features")
	if err := c.write([]byte(streamHeader(o.domain))); err != nil {
		return nil, nil, ioErr(ctx, "stream", err)
	}
	// Buffered reading is safe: after <proceed/> the server waits for the
	// client's TLS hello.
	if o.xmppPlaintext {
		br := bufio.NewReaderSize(c.nc, 16<<10)
		c.dec = xml.NewDecoder(br)
		f, err := openStream(c.dec)
		if err != nil {
			return nil, nil, ioErr(ctx, "stream", err)
		}
		if ms := f.child(nsSASL, "mechanisms"); ms == nil || len(ms.kids) == 0 {
			return nil, nil, errors.New("--xmpp-plaintext: the server offers no SASL without TLS (chatbox: set xmpp.allow_plaintext)")
		}
		return f, br, nil
	}
	dec := xml.NewDecoder(bufio.NewReader(c.nc))
	f, err := openStream(dec)
	if err != nil {
		return nil, nil, ioErr(ctx, "stream", err)
	}
	if f.child(nsTLS, "starttls") == nil {
		return nil, nil, errors.New("the server offers no STARTTLS")
	}
	c.m.setStage("waiting for <proceed/>")
	if err := c.write([]byte(`<starttls xmlns='` + nsTLS + `'/>`)); err != nil {
		return nil, nil, ioErr(ctx, "starttls", err)
	}
	el, err := readElem(dec)
	if err != nil {
		return nil, nil, ioErr(ctx, "starttls", err)
	}
	if !el.is(nsTLS, "proceed") {
		return nil, nil, fmt.Errorf("starttls: the server answered <%s>", el.name.Local)
	}
	c.m.setStage("TLS handshake")
	tc := tls.Client(recordReads{c.nc}, tcfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, fmt.Errorf("TLS: %w", err)
	}
	c.nc = tc
	br := bufio.NewReaderSize(tc, 16<<10)

	c.m.setStage("waiting for the features after TLS")
	if err := c.write([]byte(streamHeader(o.domain))); err != nil {
		return nil, nil, ioErr(ctx, "stream", err)
	}
	c.dec = xml.NewDecoder(br)
	if f, err = openStream(c.dec); err != nil {
		return nil, nil, ioErr(ctx, "stream after TLS", err)
	}
	return f, br, nil
}

func (c *xmppClient) login(ctx context.Context, tcfg *tls.Config, o *options, account, password string) error {
	f, br, err := c.startTLS(ctx, tcfg, o)
	if err != nil {
		return err
	}
	// Over TLS: SASL.
	mechs := map[string]bool{}
	if ms := f.child(nsSASL, "mechanisms"); ms != nil {
		for _, k := range ms.kids {
			mechs[strings.TrimSpace(k.text)] = true
		}
	}
	c.m.setStage("SASL " + o.sasl)
	switch o.sasl {
	case "plain":
		if !mechs["PLAIN"] {
			return errors.New("the server does not offer SASL PLAIN (try --sasl scram-sha-256)")
		}
		err = c.saslPlain(ctx, account, password)
	case "scram-sha-256":
		if !mechs["SCRAM-SHA-256"] {
			return errors.New("the server does not offer SASL SCRAM-SHA-256 (try --sasl plain)")
		}
		err = c.saslSCRAM(ctx, account, password)
	}
	if err != nil {
		return err
	}

	// Restart the stream and bind, in one write.
	c.m.setStage("waiting for the bind result")
	if err := c.write([]byte(streamHeader(o.domain) +
		`<iq type='set' id='bind1'><bind xmlns='` + nsBind + `'><resource>chatbench</resource></bind></iq>`)); err != nil {
		return ioErr(ctx, "bind", err)
	}
	// From here on the decoder reads through c.in, whose buffer readLoop
	// scans itself.
	c.in = newStanzaReader(br)
	c.dec = xml.NewDecoder(c.in)
	var ns string
	if f, ns, err = openStreamNS(c.dec); err != nil {
		return ioErr(ctx, "stream after SASL", err)
	}
	c.fast = fastReader{room: []byte(c.room), nick: []byte(c.nick), rootNS: ns}
	if f.child(nsBind, "bind") == nil {
		return errors.New("the server offers no resource binding")
	}
	for {
		el, err := c.next(ctx, "bind")
		if err != nil {
			return err
		}
		if el.name.Local == "iq" && el.get("id") == "bind1" {
			if el.get("type") != "result" {
				return fmt.Errorf("%w: bind: %s", errServer, describeError(el))
			}
			return nil
		}
	}
}

// next reads one element during login or join, answering pings.
func (c *xmppClient) next(ctx context.Context, what string) (*elem, error) {
	el, err := readElem(c.dec)
	if err != nil {
		return nil, ioErr(ctx, what, err)
	}
	c.seen(el)
	return el, nil
}

// seen notes el, read during login or join, and answers it if a ping.
func (c *xmppClient) seen(el *elem) {
	c.m.note("<" + el.name.Local + " from='" + el.get("from") + "' type='" + el.get("type") + "'>")
	c.answerIQ(el)
}

func (c *xmppClient) saslPlain(ctx context.Context, account, password string) error {
	resp := base64.StdEncoding.EncodeToString([]byte("\x00" + account + "\x00" + password))
	if err := c.write([]byte(`<auth xmlns='` + nsSASL + `' mechanism='PLAIN'>` + resp + `</auth>`)); err != nil {
		return ioErr(ctx, "SASL", err)
	}
	el, err := readElem(c.dec)
	if err != nil {
		return ioErr(ctx, "SASL", err)
	}
	if !el.is(nsSASL, "success") {
		return fmt.Errorf("%w: SASL PLAIN: %s", errServer, describeError(el))
	}
	return nil
}

// saslSCRAM is SCRAM-SHA-256 without channel binding (RFC 5802, 7677).
func (c *xmppClient) saslSCRAM(ctx context.Context, account, password string) error {
	nonce := make([]byte, 18)
	rand.Read(nonce)
	cnonce := base64.RawStdEncoding.EncodeToString(nonce)
	user := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(account)
	first := "n=" + user + ",r=" + cnonce
	if err := c.write([]byte(`<auth xmlns='` + nsSASL + `' mechanism='SCRAM-SHA-256'>` +
		base64.StdEncoding.EncodeToString([]byte("n,,"+first)) + `</auth>`)); err != nil {
		return ioErr(ctx, "SASL", err)
	}
	el, err := readElem(c.dec)
	if err != nil {
		return ioErr(ctx, "SASL", err)
	}
	if !el.is(nsSASL, "challenge") {
		return fmt.Errorf("%w: SCRAM: %s", errServer, describeError(el))
	}
	sfirst, err := base64.StdEncoding.DecodeString(strings.TrimSpace(el.text))
	if err != nil {
		return fmt.Errorf("SCRAM: challenge: %w", err)
	}
	attrs := scramAttrs(string(sfirst))
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	iter, ierr := strconv.Atoi(attrs["i"])
	if err != nil || ierr != nil || iter < 1 || iter > 1_000_000 || !strings.HasPrefix(attrs["r"], cnonce) {
		return fmt.Errorf("SCRAM: bad challenge %q", sfirst)
	}
	final := "c=biws,r=" + attrs["r"]
	auth := first + "," + string(sfirst) + "," + final
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		return err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	stored := sha256.Sum256(clientKey)
	sig := hmacSHA256(stored[:], auth)
	proof := make([]byte, len(clientKey))
	for i := range proof {
		proof[i] = clientKey[i] ^ sig[i]
	}
	final += ",p=" + base64.StdEncoding.EncodeToString(proof)
	if err := c.write([]byte(`<response xmlns='` + nsSASL + `'>` + base64.StdEncoding.EncodeToString([]byte(final)) + `</response>`)); err != nil {
		return ioErr(ctx, "SASL", err)
	}
	if el, err = readElem(c.dec); err != nil {
		return ioErr(ctx, "SASL", err)
	}
	if !el.is(nsSASL, "success") {
		return fmt.Errorf("%w: SCRAM: %s", errServer, describeError(el))
	}
	sfinal, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(el.text))
	want := base64.StdEncoding.EncodeToString(hmacSHA256(hmacSHA256(salted, "Server Key"), auth))
	if scramAttrs(string(sfinal))["v"] != want {
		return errors.New("SCRAM: the server's signature does not match (not the server we think)")
	}
	return nil
}

func hmacSHA256(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	io.WriteString(h, msg)
	return h.Sum(nil)
}

// scramAttrs splits "a=1,b=2" (values may hold '=').
func scramAttrs(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}

// enter enters the room without history and waits for the self-presence
// (status 110) and then the subject, the end of the join (XEP-0045 §7.2).
// It reads as readLoop does (scanLoop), but only other occupants'
// presences take the fast path (fastReader.roomPresence; in a big room
// they are most of what comes): everything else is decoded and goes to
// joinElem, as before.
func (c *xmppClient) enter(ctx context.Context) error {
	if err := c.write([]byte(`<presence to='` + xmlEscape(c.room+"/"+c.nick) + `'><x xmlns='` + nsMUC +
		`'><history maxstanzas='0'/></x></presence>`)); err != nil {
		return ioErr(ctx, "join", err)
	}
	c.m.setStage("waiting for the self-presence (110) from " + c.room)
	var (
		self    bool
		joinErr error
	)
	err := scanLoop(c.in, c.dec, func(el []byte, _ time.Time) bool { return c.fast.roomPresence(el) },
		func(el *elem, _ time.Time) bool {
			c.seen(el)
			var done bool
			done, joinErr = c.joinElem(el, &self)
			return done || joinErr != nil
		})
	if err != nil {
		return ioErr(ctx, "joining "+c.room, err)
	}
	return joinErr
}

// joinElem is enter's for a decoded top-level element: it reports
// whether the join is over (the subject after the self-presence, which
// sets *self) or failed.
func (c *xmppClient) joinElem(el *elem, self *bool) (bool, error) {
	if !strings.EqualFold(bareJID(el.get("from")), c.room) {
		return false, nil
	}
	switch el.name.Local {
	case "presence":
		if el.get("type") == "error" {
			return false, fmt.Errorf("%w: join %s: %s", errServer, c.room, describeError(el))
		}
		if x := el.child(nsMUCUser, "x"); x != nil {
			for _, st := range x.kids {
				if st.name.Local == "status" && st.get("code") == "110" {
					*self = true
					c.m.setStage("waiting for the subject from " + c.room + " (self-presence came)")
				}
			}
		}
	case "message":
		if el.get("type") == "error" {
			return false, fmt.Errorf("%w: join %s: %s", errServer, c.room, describeError(el))
		}
		if *self && el.child("jabber:client", "subject") != nil {
			return true, nil
		}
	}
	return false, nil
}

func bareJID(j string) string {
	b, _, _ := strings.Cut(j, "/")
	return b
}

// answerIQ answers the server's pings (and refuses other requests, as
// RFC 6120 wants); it reports whether el was such a request.
func (c *xmppClient) answerIQ(el *elem) bool {
	if el.name.Local != "iq" || (el.get("type") != "get" && el.get("type") != "set") {
		return false
	}
	id, from := xmlEscape(el.get("id")), xmlEscape(el.get("from"))
	to := ""
	if from != "" {
		to = " to='" + from + "'"
	}
	reply := `<iq type='result' id='` + id + `'` + to + `/>`
	if el.child(nsPing, "ping") == nil {
		reply = `<iq type='error' id='` + id + `'` + to + `><error type='cancel'><service-unavailable xmlns='` + nsStanzas + `'/></error></iq>`
	}
	go c.write([]byte(reply))
	return true
}

func (c *xmppClient) echoes() bool { return true } // MUC reflects a message to its sender

func (c *xmppClient) send(seq int, body string) error {
	return c.write([]byte(`<message to='` + xmlEscape(c.room) + `' type='groupchat' id='cb` + strconv.Itoa(seq) +
		`'><body>` + xmlEscape(body) + `</body></message>`))
}

func (c *xmppClient) quit() { c.close(`</stream:stream>`) }

// readLoop counts the room's messages; error stanzas count as errors.
// Room messages are read straight from the stream's bytes (receive);
// everything else is decoded and goes to handle.
func (c *xmppClient) readLoop() {
	c.in.idle = c.m.flush
	c.m.connEnded(receive(c.in, c.dec, &c.fast, c.m.receivedBytes, c.handle))
}

// handle is readLoop's for a decoded top-level element read at now.
func (c *xmppClient) handle(el *elem, now time.Time) {
	if c.answerIQ(el) {
		return
	}
	typ := el.get("type")
	switch {
	case typ == "error":
		c.m.b.fail("%s (xmpp): error <%s> from %s: %s", c.m.account, el.name.Local, el.get("from"), describeError(el))
	case el.name.Local == "message" && typ == "groupchat":
		if b := el.child("jabber:client", "body"); b != nil && strings.EqualFold(bareJID(el.get("from")), c.room) {
			c.m.received(b.text, now)
		}
	}
}

func xmlEscape(s string) string {
	if !strings.ContainsAny(s, `<>&'"`) {
		return s
	}
	var b strings.Builder
	xml.EscapeText(&b, []byte(s)) // quotes too
	return b.String()
}
