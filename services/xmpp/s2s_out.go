package xmpp

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// The outgoing side of federation (RFC 6120 §4, §5, §6 as the initiating
// entity): one stream and one bounded queue per pair of local and remote
// domain. A stanza for a remote domain waits in the queue while the
// stream is connected and authenticated (STARTTLS required, then SASL
// EXTERNAL when offered, else XEP-0220 dialback); a failed attempt is
// retried with exponential back-off (1 s doubling to 1 min), and a stanza
// that waited longer than QueueTimeout is bounced to its sender with
// remote-server-timeout. A full queue (QueueLimit stanzas or QueueBytes
// bytes) refuses new stanzas (resource-constraint). A stream that carried nothing for IdleTimeout is
// closed; the next stanza opens a new one.

// Outgoing peer states (WAN LED).
const (
	peerIdle = iota
	peerConnecting
	peerUp
	peerRetrying
)

// s2sStream is one outgoing stream (also used for dialback verification).
type s2sStream struct {
	f             *federation
	local, remote string
	nc            net.Conn
	tc            *tls.Conn
	rd            *streamReader
	id            string   // the receiving server's stream id
	features      *Element // after the last (re)start; nil without version
	version       bool
	bidi          bool // XEP-0288: the peer may send on it too (xep0288_bidi.go)

	wmu sync.Mutex
}

func (st *s2sStream) write(s string) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	st.nc.SetWriteDeadline(time.Now().Add(st.f.cfg.DialTimeout))
	_, err := io.WriteString(st.nc, s)
	return err
}

// next reads the next element within timeout.
func (st *s2sStream) next(timeout time.Duration) (*Element, error) {
	if timeout > 0 {
		st.nc.SetReadDeadline(time.Now().Add(timeout))
	} else {
		st.nc.SetReadDeadline(time.Time{})
	}
	return st.rd.Next()
}

func (st *s2sStream) close() {
	st.write("</stream:stream>")
	st.nc.Close()
}

// abort drops the connection (a write failed).
func (st *s2sStream) abort() { st.nc.Close() }

// s2sLink is what a peer's queue is written to: an outgoing stream, or
// an incoming one the peer opened bidirectional (XEP-0288).
type s2sLink interface {
	write(s string) error
	close() // done with it (idle, shutting down)
	abort() // a write failed
}

// open sends our header and reads the peer's header and features.
func (st *s2sStream) open(timeout time.Duration) error {
	if err := st.write(s2sHeader(st.local, st.remote, "")); err != nil {
		return err
	}
	st.nc.SetReadDeadline(time.Now().Add(timeout))
	hdr, err := st.rd.Header()
	if err != nil {
		return fmt.Errorf("reading the stream header of %s: %w", st.remote, err)
	}
	st.version, st.id, st.features = false, "", nil
	var defNS string
	for _, a := range hdr.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "id":
			st.id = a.Value
		case a.Name.Space == "" && a.Name.Local == "version":
			st.version = versionOK(a.Value)
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			defNS = a.Value
		}
	}
	if defNS != nsServer {
		return fmt.Errorf("%s answered in namespace %q, not %s", st.remote, defNS, nsServer)
	}
	if !st.version {
		return nil
	}
	el, err := st.next(timeout)
	if err != nil {
		return fmt.Errorf("reading the stream features of %s: %w", st.remote, err)
	}
	if el.Is(nsStream, "error") {
		return fmt.Errorf("%s refused the stream: %s", st.remote, describeStreamError(el))
	}
	if !el.Is(nsStream, "features") {
		return fmt.Errorf("%s sent <%s/> instead of stream features", st.remote, el.Local)
	}
	st.features = el
	return nil
}

func describeStreamError(el *Element) string {
	var parts []string
	for _, k := range el.Kids() {
		if k.Local == "text" {
			parts = append(parts, k.Text())
		} else {
			parts = append(parts, k.Local)
		}
	}
	return strings.Join(parts, ": ")
}

// dial connects to remote's server, starts TLS and returns the stream
// ready to authenticate.
func (f *federation) dial(ctx context.Context, local, remote string) (*s2sStream, error) {
	var errs []error
	for _, a := range f.resolve(ctx, remote) {
		st, err := f.dialAddr(ctx, local, remote, a)
		if err == nil {
			return st, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", a.addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("no address found for %s", remote)
	}
	return nil, errors.Join(errs...)
}

func (f *federation) dialAddr(ctx context.Context, local, remote string, a peerAddr) (*s2sStream, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", a.addr)
	if err != nil {
		return nil, err
	}
	timeout := time.Until(deadlineOf(ctx))
	st := &s2sStream{f: f, local: local, remote: remote, nc: nc}
	fail := func(err error) (*s2sStream, error) {
		nc.Close()
		return nil, err
	}
	if a.direct {
		tc := tls.Client(nc, f.clientTLS(remote))
		tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("TLS: %w", err))
		}
		st.tc, st.nc = tc, tc
	}
	st.rd = newStreamReader(st.nc, f.srv.cfg.MaxStanzaBytes, f.srv.cfg.MaxDepth, nil)
	if err := st.open(timeout); err != nil {
		return fail(err)
	}
	if st.tc == nil {
		if st.features.Child(nsTLS, "starttls") == nil {
			return fail(fmt.Errorf("%s does not offer STARTTLS, and this server federates only over TLS", remote))
		}
		if err := st.write(El(nsTLS, "starttls").String()); err != nil {
			return fail(err)
		}
		el, err := st.next(timeout)
		if err != nil {
			return fail(err)
		}
		if !el.Is(nsTLS, "proceed") {
			return fail(fmt.Errorf("%s refused STARTTLS", remote))
		}
		tc := tls.Client(nc, f.clientTLS(remote))
		tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(fmt.Errorf("TLS: %w", err))
		}
		st.tc, st.nc = tc, tc
		st.rd = newStreamReader(tc, f.srv.cfg.MaxStanzaBytes, f.srv.cfg.MaxDepth, nil)
		if err := st.open(timeout); err != nil {
			return fail(err)
		}
	}
	if !f.trusted(st.tc.ConnectionState(), remote, a.addr) {
		return fail(errAwaitingApproval)
	}
	st.nc.SetDeadline(time.Time{})
	return st, nil
}

// authenticate proves our domain to the peer: SASL EXTERNAL when offered
// (our certificate), else dialback.
func (st *s2sStream) authenticate(ctx context.Context) error {
	timeout := time.Until(deadlineOf(ctx))
	f := st.f
	if st.features.Child(nsBidiFeature, "bidi") != nil && !f.cfg.NoBidi { // XEP-0288
		if err := st.write(El(nsBidi, "bidi").String()); err != nil {
			return err
		}
		st.bidi = true
		f.srv.log.Debug("federation: asking for a bidirectional stream (XEP-0288)", "peer", st.remote, "local", st.local)
	}
	if mechs := st.features.Child(nsSASL, "mechanisms"); mechs != nil {
		for _, m := range mechs.Kids() {
			if m.Local != "mechanism" || strings.TrimSpace(m.Text()) != "EXTERNAL" {
				continue
			}
			if err := st.write(El(nsSASL, "auth", "mechanism", "EXTERNAL").Add(base64.StdEncoding.EncodeToString([]byte(st.local))).String()); err != nil {
				return err
			}
			el, err := st.next(timeout)
			if err != nil {
				return err
			}
			if el.Is(nsSASL, "success") {
				st.rd = newStreamReader(st.nc, f.srv.cfg.MaxStanzaBytes, f.srv.cfg.MaxDepth, nil)
				if err := st.open(timeout); err != nil {
					return err
				}
				st.nc.SetDeadline(time.Time{})
				return nil
			}
			f.srv.log.Info("federation: SASL EXTERNAL refused, trying dialback", "peer", st.remote)
		}
	}
	if st.version && st.features.Child(nsDialbackFeature, "dialback") == nil {
		return fmt.Errorf("%s offers neither SASL EXTERNAL for this box's certificate nor dialback", st.remote)
	}
	key := f.dialbackKey(st.remote, st.local, st.id)
	if err := st.write(string(El(nsDialback, "result", "from", st.local, "to", st.remote).Add(key).Bytes(nsServer))); err != nil {
		return err
	}
	for {
		el, err := st.next(timeout)
		if err != nil {
			return err
		}
		if !el.Is(nsDialback, "result") {
			continue
		}
		switch el.Get("type") {
		case "valid":
			st.nc.SetDeadline(time.Time{})
			return nil
		case "invalid":
			return fmt.Errorf("%s refused our dialback key", st.remote)
		default:
			e := el.Child(nsServer, "error")
			if isLocalDomain(st.remote) && e.Child(nsStanzaErr, "forbidden") != nil {
				// A LAN box holding us until its owner approves us.
				return fmt.Errorf("%s: %w", st.remote, errPeerAwaitsApproval)
			}
			return fmt.Errorf("%s: dialback error %s", st.remote, describeStreamError(e))
		}
	}
}

// queued is a stanza waiting for its peer.
type queued struct {
	el   *Element // in jabber:client, from and to set
	at   time.Time
	size int // bytes as written (QueueBytes)
}

// peerOut is the outgoing stream and queue for one (local, remote) pair.
type peerOut struct {
	f             *federation
	local, remote string

	mu     sync.Mutex
	queue  []queued
	bytes  int // sum of the queue's sizes
	st     int
	stream s2sLink
	dead   bool // retired: no longer in the pool

	wake     chan struct{}
	retry    chan struct{} // the owner approved the peer: try now
	quit     chan struct{}
	stopOnce sync.Once
}

func (p *peerOut) status() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

func (p *peerOut) setStatus(st int) {
	p.mu.Lock()
	p.st = st
	p.mu.Unlock()
	p.f.reportState()
}

func (p *peerOut) stop() { p.stopOnce.Do(func() { close(p.quit) }) }

// retryNow ends the back-off wait: the peer was just approved.
func (p *peerOut) retryNow() {
	select {
	case p.retry <- struct{}{}:
	default:
	}
}

func (p *peerOut) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// send queues a stanza for its remote domain. It returns the error
// condition to answer the sender with, or "".
func (f *federation) send(el *Element) string {
	from, err1 := parseJID(el.Get("from"))
	to, err2 := parseJID(el.Get("to"))
	if err1 != nil || err2 != nil || !f.allowed(to.Domain) {
		return "remote-server-not-found"
	}
	key := from.Domain + " " + to.Domain
	for range 3 { // a peer retiring meanwhile is made again
		f.mu.Lock()
		p := f.out[key]
		if p == nil {
			if f.ctx == nil || f.ctx.Err() != nil || f.closed {
				f.mu.Unlock()
				return "remote-server-not-found"
			}
			if len(f.out) >= maxPeers {
				f.mu.Unlock()
				return "resource-constraint"
			}
			p = &peerOut{f: f, local: from.Domain, remote: to.Domain, wake: make(chan struct{}, 1), retry: make(chan struct{}, 1), quit: make(chan struct{})}
			f.out[key] = p
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				p.run()
			}()
		}
		f.mu.Unlock()
		p.mu.Lock()
		if p.dead {
			p.mu.Unlock()
			continue
		}
		size := len(el.Bytes(nsClient))
		full := len(p.queue) >= f.cfg.QueueLimit || p.bytes+size > f.cfg.QueueBytes
		if !full {
			p.queue = append(p.queue, queued{el: el, at: time.Now(), size: size})
			p.bytes += size
		}
		p.mu.Unlock()
		if full {
			return "resource-constraint"
		}
		p.poke()
		return ""
	}
	return "resource-constraint"
}

// maxPeers bounds the servers the box holds streams and queues for at
// once (idle ones are retired).
const maxPeers = 1000

func (p *peerOut) run() {
	f := p.f
	backoff := time.Second
	idle := time.NewTimer(f.cfg.IdleTimeout)
	defer idle.Stop()
	defer func() {
		p.mu.Lock()
		st := p.stream
		p.stream = nil
		p.mu.Unlock()
		if st != nil {
			st.close()
		}
	}()
	for {
		p.mu.Lock()
		n, st := len(p.queue), p.stream
		p.mu.Unlock()
		if n == 0 {
			select {
			case <-p.wake:
			case <-p.quit:
				return
			case <-idle.C:
				if st != nil {
					f.srv.log.Info("federation: closing idle stream", "peer", p.remote)
					p.drop(st)
					st.close()
				}
				if p.retire() {
					return
				}
				idle.Reset(f.cfg.IdleTimeout)
			}
			continue
		}
		if st == nil {
			if l := f.bidiLink(p.local, p.remote); l != nil { // xep0288_bidi.go
				p.mu.Lock()
				p.stream = l
				p.mu.Unlock()
				p.setStatus(peerUp)
				st = l
			}
		}
		if st == nil {
			p.setStatus(peerConnecting)
			ctx, cancel := context.WithTimeout(f.ctx, f.cfg.DialTimeout)
			s, err := f.dial(ctx, p.local, p.remote)
			if err == nil {
				if err = s.authenticate(ctx); err != nil {
					s.close()
				}
			}
			cancel()
			if err != nil {
				f.srv.log.Info("federation: cannot reach peer, will retry", "peer", p.remote, "retry_in", backoff, "err", err)
				p.setStatus(peerRetrying)
				p.bounceExpired()
				limit := time.Minute
				if errors.Is(err, errAwaitingApproval) || errors.Is(err, errPeerAwaitsApproval) {
					// A person is approving: look again soon (a LAN peer).
					limit = approvalRetry
				}
				backoff = min(backoff, limit)
				wait := time.NewTimer(backoff)
				select {
				case <-wait.C:
					backoff = min(backoff*2, limit)
				case <-p.retry:
					wait.Stop()
					backoff = time.Second
				case <-p.quit:
					wait.Stop()
					return
				}
				continue
			}
			backoff = time.Second
			f.srv.log.Info("federation: outgoing stream ready", "peer", p.remote, "local", p.local)
			p.mu.Lock()
			p.stream = s
			p.mu.Unlock()
			p.setStatus(peerUp)
			st = s
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				p.readLoop(s)
			}()
		}
		p.mu.Lock()
		batch := p.queue
		p.queue, p.bytes = nil, 0
		p.mu.Unlock()
		for i, q := range batch {
			out := renamespace(q.el.Clone(), nsClient, nsServer)
			if err := st.write(string(out.Bytes(nsServer))); err != nil {
				p.mu.Lock()
				p.queue = append(append([]queued(nil), batch[i:]...), p.queue...)
				p.bytes = queueBytes(p.queue)
				p.mu.Unlock()
				p.drop(st)
				st.abort()
				break
			}
		}
		if !idle.Stop() {
			select {
			case <-idle.C:
			default:
			}
		}
		idle.Reset(f.cfg.IdleTimeout)
	}
}

// retire removes an idle peer with nothing queued from the pool (its
// goroutine then ends); a later stanza makes a new one.
func (p *peerOut) retire() bool {
	f := p.f
	f.mu.Lock()
	defer f.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) > 0 || p.stream != nil {
		return false
	}
	p.dead = true
	if f.out[p.local+" "+p.remote] == p {
		delete(f.out, p.local+" "+p.remote)
	}
	return true
}

// drop forgets a stream that ended.
func (p *peerOut) drop(st s2sLink) {
	p.mu.Lock()
	was := p.stream == st
	if was {
		p.stream = nil
		p.st = peerIdle
	}
	p.mu.Unlock()
	if was {
		p.f.reportState()
		p.poke()
	}
}

// readLoop reads what the peer sends on our stream (whitespace, the
// closing tag) until it ends.
func (p *peerOut) readLoop(st *s2sStream) {
	for {
		el, err := st.next(0)
		if err != nil {
			p.drop(st) // first: nothing more is written to it
			st.nc.Close()
			p.f.srv.log.Info("federation: outgoing stream closed", "peer", p.remote, "err", err)
			return
		}
		if el.Is(nsStream, "error") {
			p.f.srv.log.Info("federation: peer sent a stream error", "peer", p.remote, "error", describeStreamError(el))
			continue
		}
		if se := p.bidiStanza(st, el); se != nil { // XEP-0288
			p.f.srv.log.Info("federation: peer broke the rules on our stream", "peer", p.remote, "condition", se.Condition, "text", se.Text)
			p.drop(st)
			st.write(streamErrorXML(se) + "</stream:stream>")
			st.nc.Close()
			return
		}
	}
}

// bounceExpired answers the stanzas that waited too long with
// remote-server-timeout (RFC 6120 §8.3.3.16).
func (p *peerOut) bounceExpired() {
	p.bounce(time.Now().Add(-p.f.cfg.QueueTimeout), "wait", "remote-server-timeout",
		fmt.Sprintf("%s could not be reached for %s", p.remote, p.f.cfg.QueueTimeout))
}

// bounceAll answers every queued stanza with condition.
func (p *peerOut) bounceAll(condition, text string) {
	p.bounce(time.Now().Add(time.Hour), "cancel", condition, text)
}

// bounce answers the stanzas queued before limit with an error.
func (p *peerOut) bounce(limit time.Time, typ, condition, text string) {
	p.mu.Lock()
	var expired []queued
	keep := p.queue[:0]
	for _, q := range p.queue {
		if q.at.Before(limit) {
			expired = append(expired, q)
		} else {
			keep = append(keep, q)
		}
	}
	p.queue = keep
	p.bytes = queueBytes(keep)
	p.mu.Unlock()
	for _, q := range expired {
		if t := q.el.Get("type"); t == "error" || t == "result" {
			continue
		}
		p.f.srv.fromRemote(stanzaErrorReply(q.el, typ, condition, text))
	}
}

// retireNow takes the peer out of the pool whatever it holds and stops
// it (its domain was blocked).
func (p *peerOut) retireNow() {
	f := p.f
	f.mu.Lock()
	p.mu.Lock()
	p.dead = true
	if f.out[p.local+" "+p.remote] == p {
		delete(f.out, p.local+" "+p.remote)
	}
	p.mu.Unlock()
	f.mu.Unlock()
	p.stop()
}

func queueBytes(q []queued) int {
	n := 0
	for _, e := range q {
		n += e.size
	}
	return n
}
