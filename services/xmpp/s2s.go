package xmpp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// Federation (XMPP server-to-server, RFC 6120 over jabber:server): the
// policy, the listener and the routing entry points shared by the
// incoming streams (rfc6120_s2s.go), the outgoing pool (s2s_out.go),
// peer discovery (s2s_resolve.go) and authentication (SASL EXTERNAL in
// rfc6120_s2s.go, XEP-0220 dialback in xep0220_dialback.go). Routing of
// what remote servers send to the box's accounts is s2s_route.go.
//
// When federation is off the listeners are not opened and stanzas to
// other domains get remote-server-not-found, as before.

const (
	nsServer          = "jabber:server"
	nsDialback        = "jabber:server:dialback"
	nsDialbackFeature = "urn:xmpp:features:dialback"
)

// Federation sets server-to-server.
type Federation struct {
	Enabled   bool
	Listen    []string // s2s with STARTTLS (5269)
	TLSListen []string // s2s with direct TLS (XEP-0368)
	// Hosts maps a domain to "host:port" (STARTTLS), tried before DNS.
	Hosts map[string]string
	// Allow, when not empty, lists the only domains the box federates
	// with; Block lists domains it never federates with.
	Allow, Block []string
	// RemoteOccupants lets users of other servers join the box's rooms.
	RemoteOccupants bool
	// Pinned maps a domain to the SHA-256 fingerprint ("sha256:hex" or
	// hex) of its certificate or of a CA certificate in its chain: such a
	// peer is authenticated by its certificate (SASL EXTERNAL).
	Pinned map[string]string
	// RootCAs verifies peers' certificates; nil means the system's roots.
	RootCAs *x509.CertPool
	// Secret keys dialback (XEP-0185); it should last across restarts.
	Secret []byte
	// QueueLimit bounds the stanzas waiting for one peer; QueueTimeout is
	// how long one may wait before it is bounced (remote-server-timeout).
	QueueLimit   int
	QueueTimeout time.Duration
	// QueueBytes bounds the bytes waiting for one peer (s2s_limits.go).
	QueueBytes int
	// StanzasPerSecond and StanzaBurst limit what one remote domain may
	// send, over all its streams (s2s_limits.go).
	StanzasPerSecond float64
	StanzaBurst      int
	// IdleTimeout closes a stream that carried nothing for that long.
	IdleTimeout time.Duration
	// DialTimeout bounds connecting and negotiating one stream.
	DialTimeout time.Duration
	// Resolver finds peers in DNS; nil means net.DefaultResolver.
	Resolver *net.Resolver
	// LookupLocal finds the server of a .local domain on the LAN (mDNS
	// DNS-SD, _xmpp-server._tcp) and returns its addresses (host:port,
	// STARTTLS), best first; nil means .local domains are found by the
	// host map only.
	LookupLocal func(ctx context.Context, domain string) ([]string, error)
	// NoBidi turns XEP-0288 off (neither offered nor asked for): each
	// server then opens its own stream, as before.
	NoBidi bool
	// OnState is told whether any peer is connected (1), peers are being
	// retried (0) or nothing is going on (-1): the WAN LED.
	OnState func(state int)
}

func (f *Federation) defaults() {
	if f.QueueLimit <= 0 {
		f.QueueLimit = 1000
	}
	if f.QueueBytes <= 0 {
		f.QueueBytes = 4 << 20
	}
	if f.StanzasPerSecond <= 0 {
		f.StanzasPerSecond = 50
	}
	if f.StanzaBurst <= 0 {
		f.StanzaBurst = max(10, int(2*f.StanzasPerSecond))
	}
	if f.QueueTimeout <= 0 {
		f.QueueTimeout = 2 * time.Minute
	}
	if f.IdleTimeout <= 0 {
		f.IdleTimeout = 10 * time.Minute
	}
	if f.DialTimeout <= 0 {
		f.DialTimeout = 20 * time.Second
	}
	if f.Resolver == nil {
		f.Resolver = net.DefaultResolver
	}
	if len(f.Secret) == 0 {
		f.Secret = make([]byte, 32)
		randRead(f.Secret)
	}
}

// federation is the s2s service of one Server.
type federation struct {
	srv *Server
	cfg Federation
	ctx context.Context // the server's; set by listen

	mu     sync.Mutex
	out    map[string]*peerOut // remote domain -> outgoing stream and queue
	in     map[*s2sIn]struct{}
	bidi   map[string]*s2sIn // "local remote" -> incoming XEP-0288 stream (xep0288_bidi.go)
	lns    []net.Listener
	closed bool       // close ran: no new peers
	trust  *trust     // pins, blocks, peers awaiting approval (s2s_trust.go)
	rates  *peerRates // per remote domain (s2s_limits.go)
	// offlineMu orders the hand-out of kept remote messages
	// (s2s_route.go remoteOffline).
	offlineMu sync.Mutex
	addrs     []string
	// occupants are remote users' room sessions, by room and full JID
	// (xep0045_s2s_muc.go).
	occupants map[string]*session

	wg sync.WaitGroup
}

func newFederation(s *Server) *federation {
	if !s.cfg.Federation.Enabled {
		return nil
	}
	cfg := s.cfg.Federation
	cfg.defaults()
	return &federation{srv: s, cfg: cfg, trust: newTrust(cfg), rates: newPeerRates(cfg.StanzasPerSecond, cfg.StanzaBurst), out: map[string]*peerOut{}, in: map[*s2sIn]struct{}{}, bidi: map[string]*s2sIn{}, occupants: map[string]*session{}}
}

// allowed says whether the box federates with domain: not blocked, and
// on the allowlist if there is one (a pinned domain counts as listed:
// the owner approved it).
func (f *federation) allowed(domain string) bool {
	domain = strings.ToLower(domain)
	if domain == "" || domain == f.srv.cfg.Domain || f.srv.hosted(domain) {
		return false
	}
	if f.trust.blocked(domain) {
		return false
	}
	named, any := f.trust.listed(domain)
	return named || !any || f.trust.pin(domain) != ""
}

// listen opens the s2s listeners; serving starts with serve.
func (f *federation) listen(ctx context.Context) error {
	f.ctx = ctx
	open := func(addr string, direct bool) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("xmpp: federation: listen on %s: %w (is another server using the port? change federation.listen)", addr, err)
		}
		if direct {
			if f.srv.cfg.TLS == nil {
				ln.Close()
				return errors.New("xmpp: federation: direct TLS listener without a certificate")
			}
			ln = tls.NewListener(ln, f.serverTLS())
		}
		f.lns = append(f.lns, ln)
		f.addrs = append(f.addrs, ln.Addr().String())
		kind := "s2s-starttls"
		if direct {
			kind = "s2s-directtls"
		}
		f.srv.log.Info("listening", "addr", ln.Addr().String(), "kind", kind)
		go f.accept(ctx, ln)
		return nil
	}
	for _, a := range f.cfg.Listen {
		if err := open(a, false); err != nil {
			f.close()
			return err
		}
	}
	for _, a := range f.cfg.TLSListen {
		if err := open(a, true); err != nil {
			f.close()
			return err
		}
	}
	return nil
}

// close stops listening, ends every stream and bounces what is queued.
func (f *federation) close() {
	f.mu.Lock()
	f.closed = true
	lns := f.lns
	f.lns = nil
	var ins []*s2sIn
	for c := range f.in {
		ins = append(ins, c)
	}
	var outs []*peerOut
	for _, p := range f.out {
		outs = append(outs, p)
	}
	f.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	f.closeOccupants()
	for _, c := range ins {
		c.fail(&streamError{Condition: "system-shutdown", Text: "the server is shutting down"})
	}
	for _, p := range outs {
		p.stop()
	}
	f.wg.Wait()
}

func (f *federation) accept(ctx context.Context, ln net.Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			f.srv.log.Error("federation: accept", "err", err)
			return
		}
		ip := remoteIP(nc.RemoteAddr())
		s := f.srv
		s.mu.Lock()
		tooMany := s.perAddr[ip] >= s.cfg.ConnectionsPerAddress
		if !tooMany {
			s.perAddr[ip]++
		}
		s.mu.Unlock()
		if tooMany {
			nc.Close()
			continue
		}
		c := newS2SIn(f, nc, ip)
		f.mu.Lock()
		f.in[c] = struct{}{}
		f.mu.Unlock()
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			c.run()
			f.mu.Lock()
			delete(f.in, c)
			f.mu.Unlock()
			f.bidiForget(c)
			s.mu.Lock()
			if s.perAddr[ip]--; s.perAddr[ip] <= 0 {
				delete(s.perAddr, ip)
			}
			s.mu.Unlock()
		}()
	}
}

// serverTLS is the box's TLS configuration for incoming s2s streams: it
// asks peers for their certificate (SASL EXTERNAL).
func (f *federation) serverTLS() *tls.Config {
	tc := f.srv.cfg.TLS.Clone()
	tc.ClientAuth = tls.RequestClientCert
	tc.NextProtos = []string{"xmpp-server"} // XEP-0368
	return tc
}

// clientTLS is the TLS configuration for a stream to domain: the box's
// certificate is offered, the peer's is checked by peerVerified after the
// handshake (a peer that fails it may still authenticate by dialback).
func (f *federation) clientTLS(domain string) *tls.Config {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, NextProtos: []string{"xmpp-server"}}
	if net.ParseIP(domain) == nil {
		tc.ServerName = domain
	}
	if srvTLS := f.srv.cfg.TLS; srvTLS != nil {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if srvTLS.GetCertificate != nil {
				return srvTLS.GetCertificate(&tls.ClientHelloInfo{ServerName: f.srv.cfg.Domain})
			}
			if len(srvTLS.Certificates) > 0 {
				return &srvTLS.Certificates[0], nil
			}
			return &tls.Certificate{}, nil
		}
	}
	return tc
}

// peerVerified says whether a TLS peer's certificate proves domain: it
// is pinned for domain, or chains to a trusted root and names domain
// (RFC 6125, as RFC 6120 §13.7.2 asks).
func (f *federation) peerVerified(cs tls.ConnectionState, domain string) bool {
	certs := cs.PeerCertificates
	if len(certs) == 0 || domain == "" {
		return false
	}
	if pin := f.trust.pin(domain); pin != "" {
		for _, c := range certs {
			if certFingerprint(c.Raw) == pin {
				return certs[0].VerifyHostname(domain) == nil
			}
		}
		return false
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{DNSName: domain, Roots: f.cfg.RootCAs, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// Addrs are the federation listeners' addresses.
func (f *federation) listenAddrs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.addrs...)
}

// state reports the WAN state to OnState.
func (f *federation) reportState() {
	if f.cfg.OnState == nil {
		return
	}
	f.mu.Lock()
	st := -1
	for _, p := range f.out {
		switch p.status() {
		case peerUp:
			st = 1
		case peerRetrying:
			if st < 0 {
				st = 0
			}
		}
	}
	if st < 1 {
		for c := range f.in {
			if c.authed() {
				st = 1
				break
			}
		}
	}
	f.mu.Unlock()
	f.cfg.OnState(st)
}
