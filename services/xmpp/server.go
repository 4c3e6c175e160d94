package xmpp

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"chatbox/internal/netpoll"
	"chatbox/internal/rounds"
	"chatbox/services/chat"
)

// Config sets the XMPP door.
type Config struct {
	Domain    string      // the box's XMPP domain
	Listen    []string    // c2s with STARTTLS (5222)
	TLSListen []string    // c2s direct TLS, XEP-0368 (5223)
	TLS       *tls.Config // the box's certificate
	// AllowPlaintext lets clients authenticate on Listen without STARTTLS.
	AllowPlaintext bool
	// ComponentListen and Components attach XEP-0114 components: each
	// component's domain (a subdomain of Domain or any name) and its
	// shared secret.
	ComponentListen []string
	Components      map[string]string
	// MaxStanzaBytes bounds one stanza; MaxDepth its nesting.
	MaxStanzaBytes int
	MaxDepth       int
	// ConnectionsPerAddress bounds simultaneous connections from one IP.
	ConnectionsPerAddress int
	// StanzasPerSecond and StanzaBurst bound what one client sends.
	StanzasPerSecond float64
	StanzaBurst      int
	// SendQ bounds the bytes waiting to be written to one client; a
	// client that reads slower is disconnected.
	SendQ int
	// AuthTimeout is how long a connection may take to authenticate and
	// bind.
	AuthTimeout time.Duration
	// PingInterval is the read idleness after which the door pings a
	// client; PingTimeout how long it then waits for anything.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// ResumeTimeout is how long a stream-management session waits for
	// its client to resume after the connection dropped (XEP-0198).
	ResumeTimeout time.Duration
	// RegistrationOpen says whether in-band registration (XEP-0077) may
	// create accounts now.
	RegistrationOpen func() bool
	Version          string
	Now              func() time.Time
	// Calls is the box's STUN/TURN service, announced to apps with
	// XEP-0215 (xep0215_extdisco.go); nil when calls are off.
	Calls CallServices
	// Uploads hands out XEP-0363 upload slots (xep0363_upload.go); nil
	// when file sharing is off.
	Uploads Uploader

	// Federation is server-to-server (s2s.go); off unless Enabled.
	Federation Federation

	// InvitesOpen says whether every account may invite new accounts
	// (XEP-0401, xep0401_invites.go); box admins always may.
	InvitesOpen func() bool

	// Guests lets people without an account log in with SASL ANONYMOUS
	// on guest.<Domain>, confined to rooms (xep0175_anonymous.go).
	Guests bool
}

func (c *Config) defaults() {
	if c.MaxStanzaBytes <= 0 {
		c.MaxStanzaBytes = 256 << 10
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = 48
	}
	if c.ConnectionsPerAddress <= 0 {
		c.ConnectionsPerAddress = 20
	}
	if c.StanzasPerSecond <= 0 {
		c.StanzasPerSecond = 10
	}
	if c.StanzaBurst <= 0 {
		c.StanzaBurst = 100
	}
	if c.SendQ <= 0 {
		c.SendQ = 4 << 20
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = 60 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 4 * time.Minute
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = time.Minute
	}
	if c.ResumeTimeout <= 0 {
		c.ResumeTimeout = 5 * time.Minute
	}
	if c.RegistrationOpen == nil {
		c.RegistrationOpen = func() bool { return false }
	}
	if c.InvitesOpen == nil {
		c.InvitesOpen = func() bool { return false }
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Server is the XMPP door. It is a service the appliance runs.
type Server struct {
	// poll wakes bound TCP clients' readers (poll.go); nil where there
	// is no epoll, or outside Serve.
	poll *netpoll.Poller
	// rounds writes the TCP client connections' queues (outqueue.go);
	// lazyRounds lets other occupants' presence wait for a round of its
	// own (lazyCoalesce); drainRounds converts room messages for the
	// sessions' inboxes (delivery.go).
	rounds, lazyRounds, drainRounds *rounds.Rounds

	cfg      Config
	core     *chat.Core
	log      *slog.Logger
	secret   []byte // per-run secret (SCRAM fake salts, SM ids)
	started  time.Time
	features *features
	fed      *federation // nil when federation is off

	tlsOnce   sync.Once
	tlsShared *tls.Config // tlsConfig

	// MUC: fan-outs rendered once (rendered.go).
	interned deliveryIntern // the inboxes' fan-out deliveries (delivery.go)

	mu          sync.Mutex
	conns       map[*conn]struct{}
	perAddr     map[string]int
	bound       map[string][]*session // account -> its sessions by resource (a few: a slice, not a map)
	headers     headerCache           // canonical stream headers, shared (stream.go)
	detached    map[string]*session   // SM id -> session waiting to be resumed
	components  map[string]*conn      // component domain -> its connection
	listenAddrs []string
	serving     bool // between ready and shutdown: WebSockets are taken

	wg sync.WaitGroup
}

// New makes the XMPP door over the core.
func New(cfg Config, core *chat.Core, log *slog.Logger) *Server {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	s := &Server{cfg: cfg, core: core, log: log.With("door", "xmpp"), secret: secret, started: cfg.Now(),
		conns: map[*conn]struct{}{}, perAddr: map[string]int{},
		bound: map[string][]*session{}, detached: map[string]*session{},
		components:  map[string]*conn{},
		rounds:      rounds.New(runtime.GOMAXPROCS(0), writeCoalesce),
		lazyRounds:  rounds.New(1, lazyCoalesce),
		drainRounds: rounds.New(runtime.GOMAXPROCS(0), 0)}
	s.features = buildFeatures(s)
	s.fed = newFederation(s)
	if s.fed != nil {
		core.SetRemoteRouter(fedRouter{s}) // s2s_direct.go
	}
	return s
}

// Name names the service.
func (s *Server) Name() string { return "xmpp" }

// Serve listens on every configured address, calls ready, and serves
// until ctx is done; then it closes every stream with system-shutdown.
func (s *Server) Serve(ctx context.Context, ready func()) error {
	type lis struct {
		ln   net.Listener
		kind connKind
	}
	var lns []lis
	closeAll := func() {
		for _, l := range lns {
			l.ln.Close()
		}
	}
	listen := func(addr string, kind connKind) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("xmpp: listen on %s: %w (is another server using the port? change xmpp.listen / xmpp.tls_listen)", addr, err)
		}
		if kind == kindDirectTLS {
			if s.cfg.TLS == nil {
				ln.Close()
				return errors.New("xmpp: TLS listener without a certificate")
			}
		}
		lns = append(lns, lis{ln, kind})
		s.log.Info("listening", "addr", ln.Addr().String(), "kind", kind.String())
		return nil
	}
	for _, group := range []struct {
		addrs []string
		kind  connKind
	}{{s.cfg.Listen, kindStartTLS}, {s.cfg.TLSListen, kindDirectTLS}, {s.cfg.ComponentListen, kindComponent}} {
		for _, a := range group.addrs {
			if err := listen(a, group.kind); err != nil {
				closeAll()
				return err
			}
		}
	}
	s.mu.Lock()
	s.listenAddrs = nil
	for _, l := range lns {
		s.listenAddrs = append(s.listenAddrs, l.ln.Addr().String())
	}
	s.mu.Unlock()
	if s.fed != nil {
		if err := s.fed.listen(ctx); err != nil {
			closeAll()
			return err
		}
	}
	if p, err := netpoll.New(s.log); err == nil {
		s.poll = p
		defer func() { p.Close() }() // after the connections (wg)
	} else {
		s.log.Debug("idle clients keep a reading goroutine", "err", err)
	}
	errc := make(chan error, len(lns))
	for _, l := range lns {
		go func() { errc <- s.accept(ctx, l.ln, l.kind) }()
	}
	s.mu.Lock()
	s.serving = true
	s.mu.Unlock()
	ready()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.mu.Lock()
	s.serving = false
	s.mu.Unlock()
	closeAll()
	if s.fed != nil {
		s.fed.close()
	}
	s.shutdown()
	s.wg.Wait()
	return err
}

// tlsConfig is the box's TLS configuration, asking for (not requiring) a
// client certificate for SASL EXTERNAL. It is made once and shared by
// every connection (a clone per connection cost each about 1 KB, its
// session ticket keys included): the certificate itself may change, as
// the box's configuration gives it by GetCertificate.
func (s *Server) tlsConfig() *tls.Config {
	s.tlsOnce.Do(func() {
		tc := s.cfg.TLS.Clone()
		tc.ClientAuth = tls.RequestClientCert
		tc.NextProtos = []string{"xmpp-client"} // XEP-0368
		s.tlsShared = tc
	})
	return s.tlsShared
}

// Addrs returns the addresses the server listens on (after Serve is ready),
// in the order of Listen, TLSListen, ComponentListen.
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.listenAddrs...)
}

func (s *Server) accept(ctx context.Context, ln net.Listener, kind connKind) error {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("xmpp: accept: %w", err)
		}
		ip := remoteIP(nc.RemoteAddr())
		s.mu.Lock()
		tooMany := s.perAddr[ip] >= s.cfg.ConnectionsPerAddress
		if !tooMany {
			s.perAddr[ip]++
		}
		s.mu.Unlock()
		if tooMany {
			nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
			// A stream header then the error: RFC 6120 §4.9.1.1.
			fmt.Fprint(nc, streamHeader(nsClient, s.cfg.Domain, "", "", "")+
				streamErrorXML(&streamError{Condition: "policy-violation", Text: "too many connections from your address"})+"</stream:stream>")
			nc.Close()
			continue
		}
		var rc *rounds.Conn
		if kind == kindStartTLS || kind == kindDirectTLS {
			// Written by the write rounds, TLS included (outqueue.go).
			if rc = rounds.NewConn(nc, s.cfg.SendQ); rc != nil {
				nc = rc
			}
		}
		if kind == kindDirectTLS {
			nc = tls.Server(nc, s.tlsConfig())
		}
		c := newConn(s, nc, ip, kind)
		if rc != nil {
			c.out.rounds, c.out.shard = s.rounds, s.rounds.Shard()
			c.out.lazy = s.lazyRounds
		}
		if rc != nil {
			c.registerPoll(rc) // poll.go
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		c.finish = func() {
			s.mu.Lock()
			delete(s.conns, c)
			if s.perAddr[ip]--; s.perAddr[ip] <= 0 {
				delete(s.perAddr, ip)
			}
			s.mu.Unlock()
			s.wg.Done()
		}
		go c.run() // the reader that ends the connection calls finish
	}
}

// shutdown closes every stream and ends every session.
func (s *Server) shutdown() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	var waiting []*session
	for id, ss := range s.detached {
		waiting = append(waiting, ss)
		delete(s.detached, id)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.final.Store(true) // not kept for XEP-0198 resumption
		c.fail(&streamError{Condition: "system-shutdown", Text: "the server is shutting down"})
	}
	for _, ss := range waiting {
		ss.end("server shutting down")
	}
}

// sessionsOf returns an account's bound sessions, sorted by resource.
func (s *Server) sessionsOf(account string) []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.bound[account])
}

// sessionAt returns the session bound to account/resource, or nil.
func (s *Server) sessionAt(account, resource string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.bound[account]
	if i, ok := slices.BinarySearchFunc(list, resource, byResource); ok {
		return list[i]
	}
	return nil
}

func byResource(ss *session, resource string) int { return strings.Compare(ss.resource, resource) }

// bindLocked puts ss in its account's sessions, in the place of any
// session bound to the same resource (s.mu held).
func (s *Server) bindLocked(ss *session) {
	list := s.bound[ss.account]
	if i, ok := slices.BinarySearchFunc(list, ss.resource, byResource); ok {
		list[i] = ss
	} else {
		s.bound[ss.account] = slices.Insert(list, i, ss)
	}
}

// unbindLocked takes ss out of its account's sessions, if it is still
// the one bound to its resource (s.mu held).
func (s *Server) unbindLocked(ss *session) {
	list := s.bound[ss.account]
	i, ok := slices.BinarySearchFunc(list, ss.resource, byResource)
	if !ok || list[i] != ss {
		return
	}
	if list = slices.Delete(list, i, i+1); len(list) == 0 {
		delete(s.bound, ss.account)
	} else {
		s.bound[ss.account] = list
	}
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
