package xmpp

import (
	"io"
	"strings"
	"time"
)

// XEP-0288 Bidirectional Server-to-Server Connections, both roles: one
// TCP connection carries stanzas both ways, instead of each server
// opening its own.
//
// Receiving: after TLS the stream features offer
// <bidi xmlns='urn:xmpp:features:bidi'/>; a peer that sends
// <bidi xmlns='urn:xmpp:bidi'/> before it authenticates has its stream
// registered, for each domain it then authenticates (SASL EXTERNAL or
// dialback), as the route from the domain it addressed (the stream
// header's to) to that domain: the outgoing queue for that pair writes
// there instead of dialing (bidiLink). When the stream ends, the queue
// falls back to dialing.
//
// Initiating: when the peer's features offer bidi, the box sends <bidi/>
// before authenticating, and then reads stanzas on its outgoing stream
// too: they must come from the domain the box connected to (the one its
// certificate or dialback vouched for; else invalid-from) to a domain
// served here, and pass the peer's rate limit (s2s_limits.go).
//
// Left out: stanzas on a bidirectional stream from or to other domains
// than the pair the stream was opened for (they use their own streams,
// as without XEP-0288); XEP-0288's dialback in the reverse direction.

const (
	nsBidi        = "urn:xmpp:bidi"
	nsBidiFeature = "urn:xmpp:features:bidi"
)

// bidiInLink is an incoming stream used as an outgoing route.
type bidiInLink struct{ c *s2sIn }

func (l bidiInLink) write(s string) error { return l.c.send(s) }

// close leaves the peer's stream to the peer (and to its idle timeout).
func (l bidiInLink) close() {}

// abort ends the stream (a write failed) and stops using it as a route.
func (l bidiInLink) abort() {
	l.c.nc.Close()
	f := l.c.f
	f.mu.Lock()
	for k, v := range f.bidi {
		if v == l.c {
			delete(f.bidi, k)
		}
	}
	f.mu.Unlock()
}

// send writes on the incoming stream and reports a failure (which also
// closes the connection).
func (c *s2sIn) send(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(c.f.cfg.DialTimeout))
	_, err := io.WriteString(c.nc, s)
	if err != nil {
		c.nc.Close()
	}
	return err
}

// bidiLink is an incoming bidirectional stream that authenticated remote
// and was addressed to local, or nil.
func (f *federation) bidiLink(local, remote string) s2sLink {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.bidi[strings.ToLower(local)+" "+strings.ToLower(remote)]; c != nil {
		return bidiInLink{c}
	}
	return nil
}

// bidiRegister makes an incoming bidi stream the route to domain, and
// lets what waits for domain go.
func (c *s2sIn) bidiRegister(domain string) {
	f := c.f
	local := c.to
	if local == "" {
		local = f.srv.cfg.Domain
	}
	key := strings.ToLower(local) + " " + strings.ToLower(domain)
	f.mu.Lock()
	// Dialback completes asynchronously: a stream that ended meanwhile
	// (no longer in f.in, and bidiForget has run or will not see it) is
	// not registered.
	if _, live := f.in[c]; !live || f.closed {
		f.mu.Unlock()
		return
	}
	f.bidi[key] = c
	p := f.out[key]
	f.mu.Unlock()
	f.srv.log.Info("federation: bidirectional stream (XEP-0288) carries our stanzas too", "peer", domain, "local", local)
	if p != nil {
		p.poke()
	}
}

// bidiForget removes an ended incoming stream from the routes and from
// the queues writing to it.
func (f *federation) bidiForget(c *s2sIn) {
	f.mu.Lock()
	for k, v := range f.bidi {
		if v == c {
			delete(f.bidi, k)
		}
	}
	var ps []*peerOut
	for _, p := range f.out {
		ps = append(ps, p)
	}
	f.mu.Unlock()
	for _, p := range ps {
		p.drop(bidiInLink{c})
	}
}

// bidiStanza takes what the peer sent on our outgoing stream: on a
// bidirectional one, its stanzas; anything else is ignored, as on any
// outgoing stream. A non-nil error ends the stream.
func (p *peerOut) bidiStanza(st *s2sStream, el *Element) *streamError {
	f := p.f
	if el.Space != nsServer || el.Local != "message" && el.Local != "presence" && el.Local != "iq" {
		return nil
	}
	if !st.bidi {
		f.srv.log.Debug("federation: stanza on an outgoing stream that is not bidirectional ignored", "peer", st.remote)
		return nil
	}
	from, err := parseJID(el.Get("from"))
	if err != nil || !strings.EqualFold(from.Domain, st.remote) {
		return streamErr("invalid-from", "on this stream only %s may send (XEP-0288)", st.remote)
	}
	to, err := parseJID(el.Get("to"))
	if err != nil {
		return streamErr("improper-addressing", "every stanza between servers needs a valid to address")
	}
	if !f.ourDomain(to.Domain) {
		return streamErr("host-unknown", "this server does not serve %s", to.Domain)
	}
	if !f.allowed(from.Domain) {
		return streamErr("policy-violation", "this server does not federate with %s", from.Domain)
	}
	if f.rateDrop(el, from.Domain) {
		return nil
	}
	f.srv.fromRemote(renamespace(el, nsServer, nsClient))
	return nil
}
