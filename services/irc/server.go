package irc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"chatbox/internal/netpoll"
	"chatbox/internal/rounds"
	"chatbox/services/chat"
)

// Config sets the IRC door.
type Config struct {
	TLSListen   []string    // addresses for IRC over TLS (6697)
	PlainListen []string    // addresses for plain-text IRC (6667)
	TLS         *tls.Config // the box's certificate
	ServerName  string      // the box's domain
	Network     string      // the box's name
	Version     string
	MOTD        string
	// ConnectionsPerAddress bounds simultaneous connections from one IP.
	ConnectionsPerAddress int
	// LinesPerSecond and LineBurst bound what one client sends (flood).
	LinesPerSecond float64
	LineBurst      int
	// SendQ bounds what may wait to be written to one client, in bytes;
	// a client that reads slower than that is disconnected.
	SendQ int
	// PingInterval is the idle time before the server PINGs; a client
	// silent for PingTimeout after that is disconnected.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// RegistrationTimeout is how long a connection has to finish
	// registering (NICK, USER, CAP END, SASL) after it connected, however
	// slowly it sends: past it, it is closed.
	RegistrationTimeout time.Duration
	// AuthTimeout is how long a client using an account's nick has to
	// prove it before it is renamed to a guest nick.
	AuthTimeout time.Duration
	// HistoryOnJoin is how many lines a client without chathistory gets
	// when it joins; 0 turns replay off.
	HistoryOnJoin int
	// Guests lets clients that do not log in join rooms and speak there
	// (with a nick that is no account's name).
	Guests bool
	// RegistrationOpen says whether NickServ REGISTER may create accounts
	// now (the box's registration policy or pairing window).
	RegistrationOpen func() bool
	Now              func() time.Time
	// WriteCoalesce is the least time between two writes to one client
	// while lines keep coming: what comes in between goes out in one
	// write (one system call for many lines when a busy room fans out).
	// A client idle that long gets its next line at once. 0 means 2 ms,
	// negative none.
	WriteCoalesce time.Duration
	// LazyCoalesce is the same for others' JOIN, PART and QUIT lines,
	// which nobody waits for: under a storm of joins (each a line to
	// every member) a member gets them a few dozen to a write, unless
	// something else goes first and takes them along. 0 means 100 ms,
	// negative none.
	LazyCoalesce time.Duration
}

func (c *Config) defaults() {
	if c.ConnectionsPerAddress <= 0 {
		c.ConnectionsPerAddress = 20
	}
	if c.LinesPerSecond <= 0 {
		c.LinesPerSecond = 4
	}
	if c.LineBurst <= 0 {
		c.LineBurst = 20
	}
	if c.SendQ <= 0 {
		c.SendQ = 1 << 20
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 90 * time.Second
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 60 * time.Second
	}
	if c.AuthTimeout <= 0 {
		c.AuthTimeout = 30 * time.Second
	}
	if c.RegistrationTimeout <= 0 {
		c.RegistrationTimeout = 60 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RegistrationOpen == nil {
		c.RegistrationOpen = func() bool { return false }
	}
	if c.Network == "" {
		c.Network = "chatbox"
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.WriteCoalesce == 0 {
		c.WriteCoalesce = 2 * time.Millisecond
	}
	if c.LazyCoalesce == 0 {
		c.LazyCoalesce = 100 * time.Millisecond
	}
}

// Server is the IRC door. It is a service the appliance runs.
type Server struct {
	cfg     Config
	core    *chat.Core
	log     *slog.Logger
	created time.Time
	guests  atomic.Uint64

	mu          sync.Mutex
	conns       map[*conn]struct{}
	nicks       map[string][]*conn // folded nick -> connections using it (one, but for an account's several)
	perAddr     map[string]int
	whowas      []whowasEntry
	klines      map[string]string // banned address -> reason
	maxSeen     int
	listenAddrs []string
	serving     bool // between ready and shutdown: connections are taken

	// rounds writes the plain TCP connections' queues (write.go);
	// lazyRounds starts the writing of queues that hold only lines
	// nobody waits for.
	rounds     *rounds.Rounds
	lazyRounds *rounds.Rounds
	// poll wakes the plain TCP connections' readers (poll.go); nil where
	// there is no epoll, or outside Serve.
	poll *netpoll.Poller

	wg sync.WaitGroup
}

type whowasEntry struct {
	nick, user, host, realname, account string
	when                                time.Time
}

// New makes the IRC door over the core.
func New(cfg Config, core *chat.Core, log *slog.Logger) *Server {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, core: core, log: log.With("door", "irc"), created: cfg.Now(),
		conns: map[*conn]struct{}{}, nicks: map[string][]*conn{},
		perAddr: map[string]int{}, klines: map[string]string{},
		rounds:     rounds.New(runtime.GOMAXPROCS(0), max(cfg.WriteCoalesce, 0)),
		lazyRounds: rounds.New(1, max(cfg.LazyCoalesce, 0))}
	return s
}

// Name names the service.
func (s *Server) Name() string { return "irc" }

// Serve listens on every configured address, calls ready, and serves
// until ctx is done; then it tells every client the server is going
// down and closes the connections.
func (s *Server) Serve(ctx context.Context, ready func()) error {
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			ln.Close()
		}
	}
	listen := func(addr string, useTLS bool) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("irc: listen on %s: %w (is another server using the port? change irc.tls_listen / irc.plain_listen)", addr, err)
		}
		if useTLS {
			if s.cfg.TLS == nil {
				ln.Close()
				return errors.New("irc: TLS listener without a certificate")
			}
			tc := s.cfg.TLS.Clone()
			tc.ClientAuth = tls.RequestClientCert // SASL EXTERNAL
			ln = tls.NewListener(ln, tc)
		}
		lns = append(lns, ln)
		s.log.Info("listening", "addr", ln.Addr().String(), "tls", useTLS)
		return nil
	}
	for _, a := range s.cfg.TLSListen {
		if err := listen(a, true); err != nil {
			closeAll()
			return err
		}
	}
	for _, a := range s.cfg.PlainListen {
		if err := listen(a, false); err != nil {
			closeAll()
			return err
		}
	}
	if p, err := netpoll.New(s.log); err == nil {
		s.poll = p
		defer func() { p.Close() }() // after the connections (wg)
	} else {
		s.log.Debug("idle connections keep a reading goroutine", "err", err)
	}
	s.mu.Lock()
	s.listenAddrs = nil
	for _, ln := range lns {
		s.listenAddrs = append(s.listenAddrs, ln.Addr().String())
	}
	s.mu.Unlock()
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { errc <- s.accept(ctx, ln) }()
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
	s.shutdown("Server shutting down")
	s.wg.Wait()
	return err
}

// Addrs returns the addresses the server listens on (after Serve is ready).
func (s *Server) Addrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.listenAddrs...)
}

func (s *Server) accept(ctx context.Context, ln net.Listener) error {
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
			return fmt.Errorf("irc: accept: %w", err)
		}
		ip := remoteIP(nc.RemoteAddr())
		s.mu.Lock()
		reason, banned := s.klinedLocked(ip)
		tooMany := s.perAddr[ip] >= s.cfg.ConnectionsPerAddress
		if !banned && !tooMany {
			s.perAddr[ip]++
		}
		s.mu.Unlock()
		if banned || tooMany {
			msg := "Too many connections from your address"
			if banned {
				msg = "You are banned from this server: " + reason
			}
			nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
			fmt.Fprintf(nc, "ERROR :Closing link: %s\r\n", msg)
			nc.Close()
			continue
		}
		s.serveConn(nc, ip, nil)
	}
}

// serveConn serves one accepted connection (already counted in perAddr)
// in its own goroutine; done, if not nil, is closed when it has ended.
func (s *Server) serveConn(nc net.Conn, ip string, done chan<- struct{}) {
	c := newConn(s, nc, ip)
	s.mu.Lock()
	s.conns[c] = struct{}{}
	if len(s.conns) > s.maxSeen {
		s.maxSeen = len(s.conns)
	}
	s.mu.Unlock()
	s.wg.Add(1)
	c.finish = func() {
		s.forget(c)
		if done != nil {
			close(done)
		}
		s.wg.Done()
	}
	go c.run() // it calls finish once the connection has ended
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

// forget drops a finished connection from the server's tables.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	if s.perAddr[c.ip]--; s.perAddr[c.ip] <= 0 {
		delete(s.perAddr, c.ip)
	}
	c.mu.Lock()
	nick, st := c.nick, c.state
	entry := whowasEntry{nick: nick, user: c.userLocked(), host: c.host(), realname: c.realname,
		account: c.account, when: s.cfg.Now()}
	c.mu.Unlock()
	if nick != "" {
		s.unclaimNickLocked(nick, c)
		if st >= stateRegistered {
			s.whowas = append(s.whowas, entry)
			if len(s.whowas) > 200 {
				s.whowas = s.whowas[len(s.whowas)-200:]
			}
		}
	}
}

// shutdown tells every connection the server is stopping and closes it.
func (s *Server) shutdown(reason string) {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.quit(reason)
	}
}

// claimNick gives nick to c unless another connection holds it; several
// connections of the same account share their account's nick.
func (s *Server) claimNick(nick string, c *conn) bool {
	key := fold(nick)
	s.mu.Lock()
	defer s.mu.Unlock()
	holders := s.nicks[key]
	for _, other := range holders {
		if other == c {
			return true
		}
		acct := c.accountName()
		if acct == "" || other.accountName() != acct {
			return false
		}
	}
	s.nicks[key] = append(holders, c)
	return true
}

func (s *Server) unclaimNick(nick string, c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unclaimNickLocked(nick, c)
}

func (s *Server) unclaimNickLocked(nick string, c *conn) {
	key := fold(nick)
	holders := slices.DeleteFunc(s.nicks[key], func(o *conn) bool { return o == c })
	if len(holders) == 0 {
		delete(s.nicks, key)
	} else {
		s.nicks[key] = holders
	}
}

// nickHolders returns the connections using nick.
func (s *Server) nickHolders(nick string) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.nicks[fold(nick)])
}

// connCount returns the number of connections and the most ever seen.
func (s *Server) connCount() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns), s.maxSeen
}

// nextGuestNick makes a nick for a client that could not prove its
// account's nick in time.
func (s *Server) nextGuestNick() string {
	return "Guest" + strconv.FormatUint(10000+s.guests.Add(1), 10)
}
