package xmpp

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RFC 6120 server-to-server streams, the receiving side: a peer server
// connects to the federation listener (5269, or direct TLS per XEP-0368),
// must start TLS (STARTTLS is required: nothing else is accepted before
// it), and then authenticates the domains it sends from either with SASL
// EXTERNAL (§6.4, offered only when its certificate verifies for the
// domain in its stream header: public roots or a pinned certificate) or
// with XEP-0220 dialback (xep0220_dialback.go), several domains on one
// stream (dialback multiplexing). Every stanza must come from a domain the
// stream authenticated (else invalid-from) to a domain served here (else
// host-unknown); stanzas are read with the c2s reader's bounds on size
// and depth and the c2s rate limit. A stream idle for IdleTimeout is
// closed. XEP-0288 bidirectional streams: xep0288_bidi.go. Left out:
// XEP-0198 on s2s, compression.

// s2sIn is one incoming s2s connection.
type s2sIn struct {
	f  *federation
	nc net.Conn
	tc *tls.Conn
	ip string
	rd *streamReader

	wmu      sync.Mutex // serializes writes
	streamID string
	from     string // the stream header's from (the peer's claim)
	to       string // the stream header's to (which of our domains)
	version  bool   // the peer said version 1.0 (stream features)
	restart  bool
	sasl     bool        // authenticated by SASL EXTERNAL: no more SASL
	bidi     atomic.Bool // the peer asked for XEP-0288 (xep0288_bidi.go)

	amu     sync.Mutex
	domains map[string]string // remote domains this stream authenticated, and how
	nauth   atomic.Int32
	// dbPending counts dialback verifications under way (s2s_limits.go).
	dbPending atomic.Int32

	tokens float64
	tokAt  time.Time

	closeOnce sync.Once
}

func newS2SIn(f *federation, nc net.Conn, ip string) *s2sIn {
	c := &s2sIn{f: f, nc: nc, ip: ip, domains: map[string]string{}, tokens: float64(f.srv.cfg.StanzaBurst), tokAt: time.Now()}
	if tc, ok := nc.(*tls.Conn); ok {
		c.tc = tc
	}
	return c
}

func (c *s2sIn) authed() bool { return c.nauth.Load() > 0 }

func (c *s2sIn) isAuthed(domain string) bool {
	c.amu.Lock()
	defer c.amu.Unlock()
	return c.domains[strings.ToLower(domain)] != ""
}

func (c *s2sIn) authenticate(domain, how string) {
	c.amu.Lock()
	if c.domains[domain] == "" && len(c.domains) < maxStreamDomains {
		c.domains[domain] = how
		c.nauth.Add(1)
	}
	c.amu.Unlock()
	c.f.srv.log.Info("federation: incoming stream authenticated", "peer", domain, "addr", c.ip, "by", how)
	if c.bidi.Load() {
		c.bidiRegister(domain)
	}
	c.f.reportState()
}

// write sends raw XML; a peer that does not read within the deadline is
// cut off.
func (c *s2sIn) write(s string) { c.send(s) }

func (c *s2sIn) fail(e *streamError) {
	c.closeOnce.Do(func() {
		c.f.srv.log.Info("federation: incoming stream error", "addr", c.ip, "peer", c.from, "condition", e.Condition, "text", e.Text)
		c.write(streamErrorXML(e) + "</stream:stream>")
		c.wmu.Lock()
		nc := c.nc // STARTTLS replaces it
		c.wmu.Unlock()
		nc.Close()
	})
}

func (c *s2sIn) run() {
	defer c.nc.Close()
	deadline := time.Now().Add(c.f.cfg.DialTimeout)
	c.nc.SetDeadline(deadline)
	if c.tc != nil {
		if err := c.tc.Handshake(); err != nil {
			c.f.srv.log.Debug("federation: TLS handshake failed", "addr", c.ip, "err", err)
			return
		}
	}
	c.newReader(c.nc)
	for {
		if err := c.openStream(); err != nil {
			c.readFailed(err)
			return
		}
		for !c.restart {
			if c.authed() {
				c.nc.SetReadDeadline(time.Now().Add(c.f.cfg.IdleTimeout))
			}
			el, err := c.rd.Next()
			if err != nil {
				c.readFailed(err)
				return
			}
			c.rate()
			if err := c.handle(el); err != nil {
				c.fail(err)
				return
			}
		}
		c.restart = false
	}
}

func (c *s2sIn) newReader(r io.Reader) {
	c.rd = newStreamReader(r, c.f.srv.cfg.MaxStanzaBytes, c.f.srv.cfg.MaxDepth, nil)
}

func (c *s2sIn) readFailed(err error) {
	var se *streamError
	var ne net.Error
	switch {
	case errors.As(err, &se):
		c.fail(se)
	case errors.Is(err, io.EOF):
		c.closeOnce.Do(func() { c.write("</stream:stream>") })
	case errors.As(err, &ne) && ne.Timeout():
		if c.authed() {
			c.closeOnce.Do(func() { c.write("</stream:stream>") }) // idle
		} else {
			c.fail(streamErr("connection-timeout", "authenticate within %s", c.f.cfg.DialTimeout))
		}
	default:
		c.f.srv.log.Debug("federation: read failed", "addr", c.ip, "err", err)
	}
}

// rate applies the c2s stanza rate limit to the stream.
func (c *s2sIn) rate() {
	cfg := c.f.srv.cfg
	now := time.Now()
	c.tokens += now.Sub(c.tokAt).Seconds() * cfg.StanzasPerSecond
	c.tokAt = now
	if max := float64(cfg.StanzaBurst); c.tokens > max {
		c.tokens = max
	}
	if c.tokens < 1 {
		time.Sleep(time.Duration((1 - c.tokens) / cfg.StanzasPerSecond * float64(time.Second)))
		c.tokens = 1
		c.tokAt = time.Now()
	}
	c.tokens--
}

// ourDomain says whether a stream or stanza may be addressed to domain.
func (f *federation) ourDomain(domain string) bool {
	return equalFoldDomain(domain, f.srv.cfg.Domain) || f.srv.features.domains[strings.ToLower(domain)] != nil
}

// openStream reads the peer's header and answers with ours and the
// features of this stage (RFC 6120 §4.3).
func (c *s2sIn) openStream() error {
	hdr, err := c.rd.Header()
	if err != nil {
		var se *streamError
		if errors.As(err, &se) {
			c.write(s2sHeader(c.f.srv.cfg.Domain, "", ""))
		}
		return err
	}
	var defNS string
	c.version = false
	for _, a := range hdr.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "to":
			c.to = strings.ToLower(a.Value)
		case a.Name.Space == "" && a.Name.Local == "from":
			c.from = strings.ToLower(a.Value)
		case a.Name.Space == "" && a.Name.Local == "version":
			c.version = versionOK(a.Value)
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			defNS = a.Value
		}
	}
	c.streamID = randomID() + randomID()
	me := c.to
	if me == "" {
		me = c.f.srv.cfg.Domain
	}
	c.write(s2sHeader(me, c.from, c.streamID))
	switch {
	case defNS != nsServer:
		return streamErr("invalid-namespace", "servers speak %s", nsServer)
	case !c.f.ourDomain(me):
		return streamErr("host-unknown", "this server serves %s, not %s", c.f.srv.cfg.Domain, me)
	case c.from != "" && !c.f.allowed(c.from):
		return streamErr("policy-violation", "this server does not federate with %s", c.from)
	}
	if !c.version {
		if c.tc == nil {
			return streamErr("policy-violation", "this server requires TLS: open an XMPP 1.0 stream and use STARTTLS")
		}
		return nil
	}
	f := El(nsStream, "features")
	switch {
	case c.tc == nil:
		f.Add(El(nsTLS, "starttls").Add(El(nsTLS, "required")))
	default:
		if !c.sasl && c.f.peerVerified(c.tc.ConnectionState(), c.from) {
			f.Add(El(nsSASL, "mechanisms").Add(El(nsSASL, "mechanism").Add("EXTERNAL")))
		}
		f.Add(El(nsDialbackFeature, "dialback").Add(El(nsDialbackFeature, "errors")))
		if !c.authed() && !c.f.cfg.NoBidi {
			f.Add(El(nsBidiFeature, "bidi")) // XEP-0288
		}
	}
	c.write(string(streamElement(f, nsServer)))
	return nil
}

// s2sHeader is the opening tag of an s2s stream; it declares the db
// prefix that dialback elements use (XEP-0220 §2.1).
func s2sHeader(from, to, id string) string {
	h := streamHeader(nsServer, from, to, id, "")
	return strings.Replace(h, `xmlns:stream=`, `xmlns:db="`+nsDialback+`" xmlns:stream=`, 1)
}

// handle takes one top-level element of an incoming stream.
func (c *s2sIn) handle(el *Element) *streamError {
	if c.tc == nil {
		if el.Is(nsTLS, "starttls") {
			return c.startTLS()
		}
		return streamErr("policy-violation", "use STARTTLS first: this server federates only over TLS")
	}
	switch {
	case el.Space == nsSASL:
		return c.handleSASL(el)
	case el.Is(nsBidi, "bidi"): // XEP-0288, before authenticating
		if !c.authed() && !c.f.cfg.NoBidi {
			c.bidi.Store(true)
		}
		return nil
	case el.Is(nsDialback, "result"):
		return c.dialbackResult(el)
	case el.Is(nsDialback, "verify"):
		return c.dialbackVerify(el)
	case el.Space == nsServer && (el.Local == "message" || el.Local == "presence" || el.Local == "iq"):
		return c.stanza(el)
	}
	return streamErr("unsupported-stanza-type", "<%s xmlns='%s'> is not understood here", el.Local, el.Space)
}

func (c *s2sIn) startTLS() *streamError {
	if c.f.srv.cfg.TLS == nil {
		c.write(El(nsTLS, "failure").String() + "</stream:stream>")
		return nil
	}
	c.write(El(nsTLS, "proceed").String())
	tc := tls.Server(c.nc, c.f.serverTLS())
	c.nc.SetDeadline(time.Now().Add(c.f.cfg.DialTimeout))
	if err := tc.Handshake(); err != nil {
		c.f.srv.log.Debug("federation: STARTTLS handshake failed", "addr", c.ip, "err", err)
		c.nc.Close()
		return nil
	}
	c.wmu.Lock()
	c.tc, c.nc = tc, tc
	c.wmu.Unlock()
	c.newReader(tc)
	c.restart = true
	return nil
}

// handleSASL authenticates the peer's domain by its certificate (SASL
// EXTERNAL, RFC 6120 §6.4 and §13.7.2).
func (c *s2sIn) handleSASL(el *Element) *streamError {
	failure := func(cond string) *streamError {
		c.write(El(nsSASL, "failure").Add(El(nsSASL, cond)).String())
		return nil
	}
	if c.sasl || !el.Is(nsSASL, "auth") {
		return failure("aborted")
	}
	if el.Get("mechanism") != "EXTERNAL" {
		return failure("invalid-mechanism")
	}
	domain := c.from
	if t := strings.TrimSpace(el.Text()); t != "" && t != "=" {
		b, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			return failure("incorrect-encoding")
		}
		domain = strings.ToLower(string(b))
	}
	if domain == "" || !c.f.allowed(domain) || !c.f.peerVerified(c.tc.ConnectionState(), domain) {
		return failure("not-authorized")
	}
	c.sasl = true
	c.write(El(nsSASL, "success").String())
	c.authenticate(domain, "sasl-external")
	c.newReader(c.tc)
	c.restart = true
	return nil
}

// stanza routes a stanza from an authenticated peer domain.
func (c *s2sIn) stanza(el *Element) *streamError {
	from, err := parseJID(el.Get("from"))
	if err != nil || !c.isAuthed(from.Domain) {
		if !c.authed() {
			return streamErr("not-authorized", "authenticate (SASL EXTERNAL or dialback) before sending stanzas")
		}
		return streamErr("invalid-from", "%q is not a domain this stream authenticated", el.Get("from"))
	}
	to, err := parseJID(el.Get("to"))
	if err != nil {
		return streamErr("improper-addressing", "every stanza between servers needs a valid to address")
	}
	if !c.f.ourDomain(to.Domain) {
		return streamErr("host-unknown", "this server does not serve %s", to.Domain)
	}
	if c.overRate(el, from.Domain) { // s2s_limits.go
		return nil
	}
	c.f.srv.fromRemote(renamespace(el, nsServer, nsClient))
	return nil
}

// describe names a peer in logs.
func (c *s2sIn) String() string { return fmt.Sprintf("s2s-in %s (%s)", c.from, c.ip) }
