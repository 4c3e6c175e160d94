package xmpp

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"chatbox/internal/rounds"
)

// connKind says what a listener serves.
type connKind int

const (
	kindStartTLS  connKind = iota // c2s, STARTTLS (5222)
	kindDirectTLS                 // c2s, TLS from the first byte (5223)
	kindComponent                 // XEP-0114 components
	kindWebSocket                 // c2s over WebSocket, RFC 7395 (the web listener's TLS, if any)
)

func (k connKind) String() string {
	return [...]string{"c2s-starttls", "c2s-directtls", "component", "c2s-websocket"}[k]
}

// connState is how far a c2s stream has come (RFC 6120 §9).
type connState int

const (
	stateStart connState = iota // before STARTTLS (when it is required)
	stateAuth                   // TLS done (or not required): SASL
	stateBind                   // authenticated: bind or resume
	stateReady                  // bound: stanzas
)

// conn is one TCP connection of a client (or component) and its XML
// stream. It reads on its own goroutine (run) and writes through its
// outQueue; after resource binding it carries a session.
type conn struct {
	srv  *Server
	nc   net.Conn
	tc   *tls.Conn // nil until TLS
	ip   string
	kind connKind
	out  *outQueue
	rd   *streamReader
	br   *budgetReader

	// loginBy is when the connection must be logged in and bound
	// (AuthTimeout after it connected), however slowly it sends: the read
	// deadline until then; STARTTLS does not extend it.
	loginBy time.Time
	// readBy is the read deadline set last (setReadDeadline); raw, for
	// a TCP connection, waits for its socket to be readable (waitInput),
	// with readable as the check.
	readBy    time.Time
	raw       syscall.RawConn
	readable  func(fd uintptr) bool
	peek      byte
	pollState // poll.go

	state    connState
	restart  bool   // the stream restarts after this element (STARTTLS, SASL)
	account  string // after SASL
	sasl     *saslExchange
	streamID string
	lang     string
	pinged   bool // the door is waiting for an answer to its keepalive
	failures int  // failed SASL attempts (under srv.mu)
	regTries int  // XEP-0077 registrations tried before authentication

	invite string // XEP-0401 invitation token presented before authentication

	// secure marks a WebSocket whose HTTP listener is HTTPS or whose
	// peer is on loopback: PLAIN is offered there (rfc7395_websocket.go).
	secure bool
	// webOrigin is the scheme://host a WebSocket came through: its
	// upload slots are given on that origin (xep0363_upload.go).
	webOrigin string
	// guest marks a stream to the guest host (xep0175_anonymous.go).
	guest bool

	tokens float64 // stanza rate bucket
	tokAt  time.Time

	mu   sync.Mutex
	sess *session // after bind (or resume)
	comp string   // component domain, once the handshake is done

	closeOnce sync.Once
	// final marks a stream that ended for good (the client closed it, or
	// the server ended the session): it is not kept for resumption.
	final atomic.Bool
}

func newConn(s *Server, nc net.Conn, ip string, kind connKind) *conn {
	c := &conn{srv: s, nc: nc, ip: ip, kind: kind, tokens: float64(s.cfg.StanzaBurst), tokAt: s.cfg.Now()}
	if tc, ok := nc.(*tls.Conn); ok {
		c.tc = tc
	}
	if kind == kindStartTLS || kind == kindDirectTLS {
		under := nc
		if c.tc != nil {
			under = c.tc.NetConn()
		}
		if sc, ok := under.(syscall.Conn); ok && canWaitReadable {
			if rc, err := sc.SyscallConn(); err == nil {
				c.raw = rc
				c.readable = func(fd uintptr) bool { return socketReadable(fd, &c.peek) }
			}
		}
	}
	c.out = newOutQueue(nc, s.cfg.SendQ, func() { nc.Close() })
	c.out.onWriteErr = func(err error) {
		if errors.Is(err, rounds.ErrBacklog) { // rounds.Conn's own bound
			c.srv.log.Info("client too slow: it does not read what it is sent, disconnecting", "addr", c.ip, "account", c.account)
		}
	}
	return c
}

// send queues raw XML; an overflowing queue ends the connection.
func (c *conn) send(b []byte) {
	if !c.out.push(b) {
		c.tooSlow()
	}
}

// tooSlow ends a connection whose send queue overflowed.
func (c *conn) tooSlow() {
	c.srv.log.Info("client too slow: send queue full, disconnecting", "addr", c.ip, "account", c.account)
	c.out.close(nil)
	c.nc.Close()
}

// sendPrepared sends the stanzas ps addressed to to (escaped), their
// shared bytes kept by reference until written; lazy: stanzas nobody
// waits for (outqueue.go).
func (c *conn) sendPrepared(lazy bool, to []byte, ps ...*prepared) {
	if !c.out.pushPrepared(lazy, to, ps...) {
		c.tooSlow()
	}
}

func (c *conn) sendEl(e *Element) {
	ns := nsClient
	if c.kind == kindComponent {
		ns = nsComponent
	}
	c.send(e.Bytes(ns))
}

// fail sends a stream error, closes the stream and the connection.
func (c *conn) fail(e *streamError) {
	c.closeOnce.Do(func() {
		c.srv.log.Debug("stream error", "addr", c.ip, "account", c.account, "condition", e.Condition, "text", e.Text)
		c.out.close([]byte(streamErrorXML(e) + "</stream:stream>"))
		go func() {
			// Give the writer a moment to say why, then cut.
			time.Sleep(2 * time.Second)
			c.nc.Close()
		}()
	})
}

// closeStream ends the stream normally (the client closed its side).
func (c *conn) closeStream() {
	c.closeOnce.Do(func() {
		c.out.close([]byte("</stream:stream>"))
	})
}

// run serves the connection until it ends, or until its client goes
// silent in poll mode (poll.go): then the reader that next resumes it
// ends it.
func (c *conn) run() {
	c.out.start(c.nc.SetWriteDeadline)
	if !c.serve() {
		c.end()
	}
}

// end closes the connection once its reader is done.
func (c *conn) end() {
	c.mu.Lock()
	ss := c.sess
	c.mu.Unlock()
	if ss != nil {
		ss.sends.Wait() // its last room messages are stored and sent first
	}
	c.closeOnce.Do(func() { c.out.close(nil) })
	c.out.flush()
	c.endPoll() // poll.go
	c.nc.Close()
	c.detach()
	if c.finish != nil {
		c.finish()
	}
}

// serve logs the client in and reads its streams; it reports whether
// the reader parked (poll.go) rather than ended.
func (c *conn) serve() (parked bool) {
	c.loginBy = time.Now().Add(c.srv.cfg.AuthTimeout)
	if c.tc != nil {
		c.nc.SetDeadline(c.loginBy)
		c.readBy = c.loginBy
		if err := c.tc.Handshake(); err != nil {
			c.srv.log.Debug("TLS handshake failed", "addr", c.ip, "err", err)
			return false
		}
	}
	c.setReadDeadline(c.loginBy)
	if c.kind == kindComponent {
		c.runComponent()
		return false
	}
	c.state = stateStart
	if c.tc != nil || c.srv.cfg.AllowPlaintext || c.kind == kindWebSocket {
		c.state = stateAuth
	}
	c.newReader(c.nc)
	return c.streams(true)
}

// streams reads the stream, and the next after each restart (open: the
// current one must be opened first); it reports whether the reader
// parked.
func (c *conn) streams(open bool) (parked bool) {
	for {
		if open {
			if err := c.openStream(); err != nil {
				c.readFailed(err)
				return false
			}
		}
		open = true
		for !c.restart {
			if c.waitInput() {
				return true
			}
			el, err := c.rd.Next()
			if err != nil {
				c.readFailed(err)
				return false
			}
			if !c.rateOK() {
				return false
			}
			c.handle(el)
			if c.isClosed() {
				return false
			}
		}
		c.restart = false
	}
}

// setReadDeadline sets the connection's read deadline (and remembers it
// for waitInput).
func (c *conn) setReadDeadline(t time.Time) {
	c.readBy = t
	c.nc.SetReadDeadline(t)
}

// expired is a read deadline long passed: a read with it takes only what
// is buffered.
var expired = time.Unix(1, 0)

// waitInput waits, between stanzas, for the client's next bytes with
// little on the goroutine's stack: at the socket, not inside the TLS
// record layer and the XML decoder. An idle connection's reader is
// parked here, and the runtime shrinks a goroutine's stack at a
// collection while less than a quarter of it is in use: this way the
// stack of an idle member's reader is 4 KiB, where a wait in the decoder
// keeps 8 KiB or 16 KiB. In poll mode (poll.go) a bound client's reader
// does not wait at all: it parks, and waitInput reports true (the
// goroutine ends). It waits only when nothing is buffered, the stream
// reader's nor TLS's (a record read with an earlier one): a read of TLS
// with an expired deadline takes that without touching the socket. A
// failed wait (the deadline, a closed connection) returns: the read that
// follows meets the same and deals with it as ever.
func (c *conn) waitInput() (parked bool) {
	if c.raw == nil || !c.rd.drained() {
		return false
	}
	if c.tc != nil {
		c.tc.SetReadDeadline(expired)
		got := c.rd.br.r.readSome(c.tc)
		c.tc.SetReadDeadline(c.readBy)
		if got {
			return false
		}
	}
	c.rd.rest()   // the decoder goes while the client is idle (stream.go)
	if c.park() { // poll.go
		return true
	}
	c.raw.Read(c.readable)
	return false
}

func (c *conn) isClosed() bool {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	return c.out.closing || c.out.dead
}

// newReader starts reading a (new) stream from r.
func (c *conn) newReader(r io.Reader) {
	c.rd = newStreamReader(r, c.srv.cfg.MaxStanzaBytes, c.srv.cfg.MaxDepth, c.idle)
	c.br = c.rd.br
}

// restartReader reads a restarted stream on the same bytes (after SASL):
// anything the client pipelined stays buffered.
func (c *conn) restartReader() {
	c.rd = c.br.streamReader(c.srv.cfg.MaxDepth)
}

// idle is called when a read times out: before binding that is the end;
// afterwards the door pings once (XEP-0199) and waits PingTimeout.
func (c *conn) idle() bool {
	if c.state != stateReady || c.pinged {
		return false
	}
	c.pinged = true
	ping := El(nsClient, "iq", "type", "get", "id", "keepalive", "from", c.srv.cfg.Domain).Add(El("urn:xmpp:ping", "ping"))
	c.mu.Lock()
	ss := c.sess
	c.mu.Unlock()
	if ss != nil {
		ss.write(ping) // counted by stream management
	} else {
		c.sendEl(ping)
	}
	c.setReadDeadline(time.Now().Add(c.srv.cfg.PingTimeout))
	return true
}

// readFailed ends the stream after a read error.
func (c *conn) readFailed(err error) {
	var se *streamError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		c.fail(se)
	case errors.Is(err, io.EOF):
		c.final.Store(true)
		c.closeStream()
	case errors.As(err, &ne) && ne.Timeout():
		if c.state == stateReady {
			c.fail(&streamError{Condition: "connection-timeout", Text: "no answer to keepalive"})
		} else {
			c.fail(&streamError{Condition: "policy-violation", Text: "took too long to log in"})
		}
	default:
		c.srv.log.Debug("read failed", "addr", c.ip, "err", err)
	}
}

// rateOK waits for the stanza rate limit; it lets a burst through and then
// slows the reader (TCP pushes back on the client).
func (c *conn) rateOK() bool {
	now := c.srv.cfg.Now()
	c.tokens += now.Sub(c.tokAt).Seconds() * c.srv.cfg.StanzasPerSecond
	c.tokAt = now
	if max := float64(c.srv.cfg.StanzaBurst); c.tokens > max {
		c.tokens = max
	}
	if c.tokens < 1 {
		wait := time.Duration((1 - c.tokens) / c.srv.cfg.StanzasPerSecond * float64(time.Second))
		time.Sleep(wait)
		c.tokens = 1
		c.tokAt = c.srv.cfg.Now()
	}
	c.tokens--
	// Any stanza shows the client alive: reset the keepalive.
	c.pinged = false
	if c.state == stateReady {
		c.setReadDeadline(time.Now().Add(c.srv.cfg.PingInterval))
	}
	return true
}

// openStream reads the client's stream header and answers with ours and
// the features for this stage.
func (c *conn) openStream() error {
	hdr, err := c.rd.Header()
	if err != nil {
		var se *streamError
		if errors.As(err, &se) {
			// RFC 6120 §4.9.1.1: an error before our header goes after one.
			c.send([]byte(streamHeader(nsClient, c.srv.cfg.Domain, "", "", "")))
		}
		return err
	}
	c.rd.canonicalHead(hdr, &c.srv.headers)
	var to, version string
	for _, a := range hdr.Attr {
		switch {
		case a.Name.Local == "to" && a.Name.Space == "":
			to = a.Value
		case a.Name.Local == "version":
			version = a.Value
		case a.Name.Local == "lang" && a.Name.Space == nsXML:
			c.lang = a.Value
		}
	}
	id := make([]byte, 12)
	randRead(id)
	c.streamID = base64.RawURLEncoding.EncodeToString(id)
	host := c.srv.cfg.Domain
	if c.srv.cfg.Guests && to != "" && equalFoldDomain(to, c.srv.guestDomain()) && c.state <= stateAuth {
		c.guest, host = true, c.srv.guestDomain()
	} else if c.guest {
		host = c.srv.guestDomain()
	}
	c.send([]byte(streamHeader(nsClient, host, "", c.streamID, "en")))
	var defNS string
	for _, a := range hdr.Attr {
		if a.Name.Space == "" && a.Name.Local == "xmlns" {
			defNS = a.Value
		}
	}
	switch {
	case defNS != nsClient:
		return streamErr("invalid-namespace", "the stream's default namespace must be %s", nsClient)
	case to != "" && !equalFoldDomain(to, host):
		return streamErr("host-unknown", "this server serves %s, not %s", c.srv.cfg.Domain, to)
	case version != "" && !versionOK(version):
		return streamErr("unsupported-version", "XMPP 1.0 is required")
	}
	c.send(streamElement(c.streamFeatures(), nsClient))
	return nil
}

func versionOK(v string) bool {
	major, _, _ := cutDot(v)
	n, err := strconv.Atoi(major)
	return err == nil && n >= 1
}

func cutDot(v string) (string, string, bool) {
	for i := 0; i < len(v); i++ {
		if v[i] == '.' {
			return v[:i], v[i+1:], true
		}
	}
	return v, "", false
}

// streamFeatures lists what the client may do next (RFC 6120 §4.3.2).
func (c *conn) streamFeatures() *Element {
	f := El(nsStream, "features")
	switch c.state {
	case stateStart:
		f.Add(El(nsTLS, "starttls").Add(El(nsTLS, "required")))
	case stateAuth:
		if c.tc == nil && c.kind != kindWebSocket {
			f.Add(El(nsTLS, "starttls"))
		}
		for _, e := range c.saslFeatures() {
			f.Add(e)
		}
		for _, fn := range c.srv.features.preAuthFeatures {
			if !c.guest { // no registration or invitations on the guest host
				f.Add(fn(c))
			}
		}
	case stateBind:
		f.Add(El(nsBind, "bind"))
		f.Add(El(nsSession, "session").Add(El(nsSession, "optional")))
		for _, fn := range c.srv.features.boundFeatures {
			f.Add(fn(c))
		}
	}
	return f
}

// handle dispatches one top-level element by the stream's stage.
func (c *conn) handle(el *Element) {
	switch c.state {
	case stateStart:
		if el.Is(nsTLS, "starttls") {
			c.startTLS()
			return
		}
		c.fail(streamErr("policy-violation", "use STARTTLS first: this server does not accept unencrypted logins"))
	case stateAuth:
		switch {
		case el.Is(nsTLS, "starttls") && c.tc == nil && c.kind != kindWebSocket:
			c.startTLS()
		case el.Space == nsSASL:
			c.handleSASL(el)
		case el.Is(nsClient, "iq") && !c.guest && c.srv.features.preAuthIQ(c, el):
		default:
			c.fail(streamErr("not-authorized", "log in first"))
		}
	case stateBind:
		switch {
		case el.Is(nsClient, "iq") && el.Child(nsBind, "bind") != nil:
			c.bind(el)
		case el.Is(nsClient, "iq") && el.Child(nsSession, "session") != nil:
			c.sendEl(El(nsClient, "iq", "type", "result", "id", el.Get("id")))
		case c.srv.features.handleUnbound(c, el):
		case el.Is(nsClient, "iq"):
			c.sendEl(stanzaErrorReply(el, "cancel", "not-allowed", "bind a resource first"))
		default:
			c.fail(streamErr("not-authorized", "bind a resource first"))
		}
	case stateReady:
		c.mu.Lock()
		ss := c.sess
		c.mu.Unlock()
		if ss == nil {
			c.fail(streamErr("internal-server-error", "session lost"))
			return
		}
		ss.handle(el)
	}
}

// startTLS upgrades the connection (RFC 6120 §5).
func (c *conn) startTLS() {
	if c.srv.cfg.TLS == nil {
		c.send([]byte(El(nsTLS, "failure").String()))
		c.closeStream()
		return
	}
	c.send([]byte(El(nsTLS, "proceed").String()))
	if !c.out.flush() {
		return
	}
	tc := tls.Server(c.nc, c.srv.tlsConfig())
	c.nc.SetDeadline(c.loginBy)
	c.readBy = c.loginBy
	if err := tc.Handshake(); err != nil {
		c.srv.log.Debug("STARTTLS handshake failed", "addr", c.ip, "err", err)
		c.out.close(nil)
		return
	}
	c.tc = tc
	c.out.setWriter(tc)
	c.newReader(tc)
	c.state = stateAuth
	c.restart = true
}

// detach is called when the connection ends: the session either waits
// for resumption (XEP-0198) or ends.
func (c *conn) detach() {
	c.mu.Lock()
	ss := c.sess
	c.sess = nil
	comp := c.comp
	c.mu.Unlock()
	if comp != "" {
		c.srv.mu.Lock()
		if c.srv.components[comp] == c {
			delete(c.srv.components, comp)
		}
		c.srv.mu.Unlock()
	}
	if ss != nil {
		ss.connLost(c)
	}
}

func equalFoldDomain(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
