// Package turn is the box's STUN/TURN service (RFC 8489 STUN, RFC 8656
// TURN, built on github.com/pion/turn): it lets XMPP apps on the LAN make
// audio and video calls without the Internet. Apps learn where it is and
// get credentials through XEP-0215 External Service Discovery (the XMPP
// door asks Services and Credentials).
//
// What it does:
//   - listens on UDP and TCP on each configured address (one port serves
//     both);
//   - answers STUN Binding requests for anyone;
//   - grants TURN allocations (UDP relays, IPv4) only with time-limited
//     credentials following the TURN REST API convention
//     (draft-uberti-behave-turn-rest-00): username "<expiry unix
//     time>:<account>", password base64(HMAC-SHA1(secret, username)),
//     realm the box's domain;
//   - relays on RelayIP, on a port of [RelayMinPort, RelayMaxPort].
//
// The HMAC secret is random per process and never written down: a
// restart invalidates the credentials handed out before it. Apps ask for
// fresh credentials (XEP-0215) when a call starts, so the worst case is a
// call set up in the seconds around a restart failing over to the direct
// or STUN-found path.
//
// Bounds: MaxAllocationsPerAccount relays per account at once (the quota
// is counted from pion's allocation events, so simultaneous requests of
// one account may overshoot it by the requests in flight), every relay
// needs a port of the range (so the range bounds them all), TCP
// connections are bounded per address and in total and closed after
// IdleTimeout without anything received. Relays never reach the
// unspecified address, multicast or broadcast, nor loopback unless the
// relay itself is on loopback.
//
// Left out: TURN over TLS/DTLS (apps on a LAN use UDP or TCP), TCP
// relays (RFC 6062), IPv6 relays (pion relays IPv4 only) and a
// persistent secret.
package turn

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
	pturn "github.com/pion/turn/v4"
)

// Config sets the STUN/TURN service.
type Config struct {
	// Listen are host:port addresses, each served over UDP and TCP.
	Listen []string
	// RelayIP is the IPv4 address relayed media flows through and the
	// host announced to apps. "" picks one: the first listener's own
	// non-loopback IP, else 127.0.0.1 when every listener is on loopback,
	// else the first non-loopback IPv4 address of the box, else
	// 127.0.0.1.
	RelayIP string
	// RelayMinPort and RelayMaxPort bound the relays' UDP ports.
	RelayMinPort, RelayMaxPort int
	// CredentialLifetime is how long credentials stay valid.
	CredentialLifetime time.Duration
	// Realm is the TURN realm: the box's domain.
	Realm string
	// MaxAllocationsPerAccount bounds one account's relays at once.
	MaxAllocationsPerAccount int
	// ConnectionsPerAddress and MaxConnections bound TCP connections
	// from one IP and in total; IdleTimeout closes a TCP connection
	// that sent nothing for that long.
	ConnectionsPerAddress int
	MaxConnections        int
	IdleTimeout           time.Duration
	Now                   func() time.Time
}

func (c *Config) defaults() {
	if c.RelayMinPort <= 0 || c.RelayMaxPort <= 0 || c.RelayMinPort > c.RelayMaxPort {
		c.RelayMinPort, c.RelayMaxPort = 49152, 49407
	}
	if c.CredentialLifetime <= 0 {
		c.CredentialLifetime = 24 * time.Hour
	}
	if c.Realm == "" {
		c.Realm = "chatbox"
	}
	if c.MaxAllocationsPerAccount <= 0 {
		c.MaxAllocationsPerAccount = 10
	}
	if c.ConnectionsPerAddress <= 0 {
		c.ConnectionsPerAddress = 20
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 512
	}
	if c.IdleTimeout <= 0 {
		// Longer than a TURN allocation's default lifetime (10 minutes),
		// which clients refresh before it ends.
		c.IdleTimeout = 11 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Service is where apps reach the box's STUN/TURN service.
type Service struct {
	Host      string // an IP address
	Port      int
	Transport string // "udp" or "tcp"
}

// Server is the STUN/TURN service. It is a service the appliance runs.
type Server struct {
	cfg    Config
	log    *slog.Logger
	secret []byte

	mu       sync.Mutex
	services []Service
	allocs   map[string]int // account -> relays now
}

// New makes the STUN/TURN service; Serve starts it.
func New(cfg Config, log *slog.Logger) *Server {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	return &Server{cfg: cfg, log: log.With("door", "calls"), secret: secret, allocs: map[string]int{}}
}

// Name names the service.
func (s *Server) Name() string { return "calls" }

// Credentials returns TURN credentials for account, valid from now for
// the configured lifetime (whole seconds).
func (s *Server) Credentials(account string, now time.Time) (username, password string, expires time.Time) {
	expires = time.Unix(now.Add(s.cfg.CredentialLifetime).Unix(), 0).UTC()
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + account
	return username, s.password(username), expires
}

func (s *Server) password(username string) string {
	mac := hmac.New(sha1.New, s.secret)
	mac.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Services returns where apps reach the service (empty while it does not
// run): one entry per listener and transport.
func (s *Server) Services() []Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Service(nil), s.services...)
}

// Serve listens on every configured address, calls ready, and serves
// until ctx is done; then it closes the listeners, the TCP connections
// and the relays.
func (s *Server) Serve(ctx context.Context, ready func()) error {
	relayIP, err := s.relayIP()
	if err != nil {
		return err
	}
	bindIP := "0.0.0.0"
	if relayIP.IsLoopback() || isLocalIP(relayIP) {
		bindIP = relayIP.String()
	}
	gen := &relays{inner: &pturn.RelayAddressGeneratorPortRange{
		RelayAddress: relayIP,
		Address:      bindIP,
		MinPort:      uint16(s.cfg.RelayMinPort),
		MaxPort:      uint16(s.cfg.RelayMaxPort),
	}, open: map[*relayConn]struct{}{}}
	gen.idle = sync.NewCond(&gen.mu)
	perm := func(_ net.Addr, peer net.IP) bool { return peerAllowed(peer, relayIP) }

	var (
		pcs      []pturn.PacketConnConfig
		lcs      []pturn.ListenerConfig
		limits   []*limitListener
		services []Service
	)
	closeAll := func() {
		for _, p := range pcs {
			p.PacketConn.Close()
		}
		for _, l := range limits {
			l.Close()
		}
	}
	for _, a := range s.cfg.Listen {
		pc, ln, err := listenBoth(a)
		if err != nil {
			closeAll()
			return err
		}
		lim := &limitListener{Listener: ln, perAddr: map[string]int{}, conns: map[*limitConn]struct{}{},
			max: s.cfg.MaxConnections, maxPer: s.cfg.ConnectionsPerAddress, idle: s.cfg.IdleTimeout}
		limits = append(limits, lim)
		pcs = append(pcs, pturn.PacketConnConfig{PacketConn: pc, RelayAddressGenerator: gen, PermissionHandler: perm})
		lcs = append(lcs, pturn.ListenerConfig{Listener: lim, RelayAddressGenerator: gen, PermissionHandler: perm})
		host := relayIP.String()
		if ap, err := netip.ParseAddrPort(pc.LocalAddr().String()); err == nil && !ap.Addr().IsUnspecified() {
			host = ap.Addr().Unmap().String()
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		for _, tr := range []string{"udp", "tcp"} {
			services = appendService(services, Service{Host: host, Port: port, Transport: tr})
		}
		s.log.Info("listening", "addr", pc.LocalAddr().String(), "transport", "udp")
		s.log.Info("listening", "addr", ln.Addr().String(), "transport", "tcp")
	}
	s.mu.Lock()
	s.allocs = map[string]int{}
	s.mu.Unlock()
	srv, err := pturn.NewServer(pturn.ServerConfig{
		PacketConnConfigs: pcs,
		ListenerConfigs:   lcs,
		LoggerFactory:     loggerFactory{s.log},
		Realm:             s.cfg.Realm,
		AuthHandler:       s.authenticate,
		QuotaHandler:      s.quota,
		EventHandler: pturn.EventHandler{
			OnAllocationCreated: func(src, _ net.Addr, _, username, _ string, relay net.Addr, _ int) {
				account := accountOf(username)
				s.mu.Lock()
				s.allocs[account]++
				s.mu.Unlock()
				s.log.Debug("call relay opened", "account", account, "client", src.String(), "relay", relay.String())
			},
			OnAllocationDeleted: func(src, _ net.Addr, _, username, _ string) {
				account := accountOf(username)
				s.mu.Lock()
				if s.allocs[account]--; s.allocs[account] <= 0 {
					delete(s.allocs, account)
				}
				s.mu.Unlock()
				s.log.Debug("call relay closed", "account", account, "client", src.String())
			},
		},
	})
	if err != nil {
		closeAll()
		return fmt.Errorf("calls: start the STUN/TURN server: %w", err)
	}
	s.mu.Lock()
	s.services = services
	s.mu.Unlock()
	s.log.Info("relaying calls", "relay_ip", relayIP.String(),
		"ports", fmt.Sprintf("%d-%d", s.cfg.RelayMinPort, s.cfg.RelayMaxPort))
	ready()
	<-ctx.Done()
	s.mu.Lock()
	s.services = nil
	s.mu.Unlock()
	srv.Close() // the UDP sockets and TCP listeners
	for _, l := range limits {
		l.closeConns()
	}
	gen.closeAll()
	return nil
}

// relayIP chooses the address relays are announced on (see
// Config.RelayIP).
func (s *Server) relayIP() (net.IP, error) {
	if s.cfg.RelayIP != "" {
		ip, err := netip.ParseAddr(s.cfg.RelayIP)
		if err != nil || !ip.Unmap().Is4() {
			return nil, fmt.Errorf("calls: relay_ip %q is not an IPv4 address (the relay is IPv4 only); set calls.relay_ip to an IPv4 address of this box, or empty to pick one", s.cfg.RelayIP)
		}
		return net.IP(ip.Unmap().AsSlice()), nil
	}
	allLoopback := len(s.cfg.Listen) > 0
	for _, a := range s.cfg.Listen {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return nil, fmt.Errorf("calls: listen address %q: %w", a, err)
		}
		ip, err := netip.ParseAddr(host)
		switch {
		case host == "localhost" || (err == nil && ip.IsLoopback()):
			continue
		case err == nil && ip.Unmap().Is4() && !ip.IsUnspecified():
			return net.IP(ip.Unmap().AsSlice()), nil
		}
		allLoopback = false
	}
	if allLoopback {
		return net.IPv4(127, 0, 0, 1).To4(), nil
	}
	if ip := firstLANIPv4(); ip != nil {
		return ip, nil
	}
	return net.IPv4(127, 0, 0, 1).To4(), nil
}

// authenticate checks TURN REST API credentials and returns the
// long-term key for pion to verify the request's integrity with.
func (s *Server) authenticate(username, realm string, src net.Addr) ([]byte, bool) {
	ts, account, ok := strings.Cut(username, ":")
	exp, err := strconv.ParseInt(ts, 10, 64)
	if !ok || err != nil || account == "" {
		s.log.Debug("call relay refused: not a chatbox username", "client", src.String())
		return nil, false
	}
	if exp < s.cfg.Now().Unix() {
		s.log.Debug("call relay refused: credentials expired", "account", account, "client", src.String())
		return nil, false
	}
	return pturn.GenerateAuthKey(username, realm, s.password(username)), true
}

// quota says whether the username's account may open another relay.
func (s *Server) quota(username, _ string, src net.Addr) bool {
	account := accountOf(username)
	s.mu.Lock()
	n := s.allocs[account]
	s.mu.Unlock()
	if n >= s.cfg.MaxAllocationsPerAccount {
		s.log.Debug("call relay refused: quota reached", "account", account, "client", src.String(), "relays", n)
		return false
	}
	return true
}

func accountOf(username string) string {
	_, account, _ := strings.Cut(username, ":")
	return account
}

// peerAllowed says whether a relay may exchange packets with peer.
func peerAllowed(peer, relayIP net.IP) bool {
	switch {
	case peer == nil, peer.IsUnspecified(), peer.IsMulticast(), peer.Equal(net.IPv4bcast):
		return false
	case peer.IsLoopback():
		return relayIP.IsLoopback()
	}
	return true
}

func appendService(list []Service, sv Service) []Service {
	for _, x := range list {
		if x == sv {
			return list
		}
	}
	return append(list, sv)
}

// listenBoth listens on addr over UDP and TCP, on the same port. With
// port 0 it takes a free UDP port and the same TCP port, trying again if
// that TCP port is taken.
func listenBoth(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("calls: listen address %q: %w (use host:port in calls.listen)", addr, err)
	}
	tries := 1
	if port == "0" {
		tries = 20
	}
	var lastErr error
	for range tries {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("calls: listen on %s/udp: %w (is another server using the port? change calls.listen)", addr, err)
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("calls: listen on %s/tcp: %w (is another server using the port? change calls.listen)", addr, lastErr)
}

// isLocalIP says whether ip is an address of one of the box's interfaces.
func isLocalIP(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// firstLANIPv4 is the first non-loopback IPv4 address of an up
// interface, or nil.
func firstLANIPv4() net.IP {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil
	}
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip4 := n.IP.To4(); ip4 != nil && !ip4.IsLoopback() && !ip4.IsLinkLocalUnicast() {
					return ip4
				}
			}
		}
	}
	return nil
}

// relays wraps pion's port-range generator to keep the relay sockets it
// opened, so that Serve closes every one when it ends (pion closes them
// in the background).
type relays struct {
	inner pturn.RelayAddressGenerator
	mu    sync.Mutex
	open  map[*relayConn]struct{}
	// reading counts reads in progress on the relay sockets; idle
	// (on mu) is signalled when it drops to zero.
	reading int
	idle    *sync.Cond
}

func (r *relays) Validate() error { return r.inner.Validate() }

func (r *relays) AllocatePacketConn(network string, port int) (net.PacketConn, net.Addr, error) {
	pc, addr, err := r.inner.AllocatePacketConn(network, port)
	if err != nil {
		return nil, nil, err
	}
	rc := &relayConn{PacketConn: pc, r: r}
	r.mu.Lock()
	r.open[rc] = struct{}{}
	r.mu.Unlock()
	return rc, addr, nil
}

func (r *relays) AllocateConn(network string, port int) (net.Conn, net.Addr, error) {
	return r.inner.AllocateConn(network, port)
}

func (r *relays) closeAll() {
	r.mu.Lock()
	open := make([]*relayConn, 0, len(r.open))
	for rc := range r.open {
		open = append(open, rc)
	}
	r.mu.Unlock()
	for _, rc := range open {
		rc.Close()
	}
	// A socket is released only when the last read blocked on it returns
	// (Go's poller defers the close(2) until then): wait for pion's
	// readers, so that the ports are free when Serve returns.
	r.mu.Lock()
	for r.reading > 0 {
		r.idle.Wait()
	}
	r.mu.Unlock()
}

type relayConn struct {
	net.PacketConn
	r    *relays
	once sync.Once
}

func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	c.r.mu.Lock()
	c.r.reading++
	c.r.mu.Unlock()
	defer func() {
		c.r.mu.Lock()
		c.r.reading--
		if c.r.reading == 0 {
			c.r.idle.Broadcast()
		}
		c.r.mu.Unlock()
	}()
	return c.PacketConn.ReadFrom(p)
}

func (c *relayConn) Close() error {
	var err error
	c.once.Do(func() {
		c.r.mu.Lock()
		delete(c.r.open, c)
		c.r.mu.Unlock()
		err = c.PacketConn.Close()
	})
	return err
}

// limitListener bounds TCP connections per address and in total, keeps
// them so that Serve can close them (pion closes only the listener) and
// gives each an idle timeout.
type limitListener struct {
	net.Listener
	max, maxPer int
	idle        time.Duration

	mu      sync.Mutex
	closed  bool
	perAddr map[string]int
	conns   map[*limitConn]struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			// Out of file descriptors or the like: wait a little rather
			// than end the TCP service (pion stops at the first error).
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		ip := remoteIP(nc)
		l.mu.Lock()
		if l.closed || len(l.conns) >= l.max || l.perAddr[ip] >= l.maxPer {
			l.mu.Unlock()
			nc.Close()
			continue
		}
		c := &limitConn{Conn: nc, l: l, ip: ip}
		l.conns[c] = struct{}{}
		l.perAddr[ip]++
		l.mu.Unlock()
		return c, nil
	}
}

func (l *limitListener) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	return l.Listener.Close()
}

func (l *limitListener) closeConns() {
	l.Close()
	l.mu.Lock()
	conns := make([]*limitConn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func remoteIP(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP.String()
	}
	return nc.RemoteAddr().String()
}

type limitConn struct {
	net.Conn
	l    *limitListener
	ip   string
	once sync.Once
}

const writeTimeout = 10 * time.Second

func (c *limitConn) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.l.idle))
	return c.Conn.Read(b)
}

func (c *limitConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	return c.Conn.Write(b)
}

func (c *limitConn) Close() error {
	var err error
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		if c.l.perAddr[c.ip]--; c.l.perAddr[c.ip] <= 0 {
			delete(c.l.perAddr, c.ip)
		}
		c.l.mu.Unlock()
		err = c.Conn.Close()
	})
	return err
}

// loggerFactory sends pion's logs to slog. pion logs every packet at
// debug and trace level: those go below slog's debug level, so that even
// a box logging at debug level is not flooded by the media it relays;
// its info is the box's debug, its warnings and errors the box's
// warnings (they are about one client or one packet, not the box).
type loggerFactory struct{ log *slog.Logger }

func (f loggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return pionLogger{f.log.With("pion", scope)}
}

type pionLogger struct{ log *slog.Logger }

const levelTrace = slog.LevelDebug - 4

func (p pionLogger) at(l slog.Level, msg string) { p.log.Log(context.Background(), l, msg) }

func (p pionLogger) atf(l slog.Level, format string, args ...any) {
	if p.log.Enabled(context.Background(), l) {
		p.log.Log(context.Background(), l, fmt.Sprintf(format, args...))
	}
}

func (p pionLogger) Trace(msg string)                  { p.at(levelTrace, msg) }
func (p pionLogger) Tracef(format string, args ...any) { p.atf(levelTrace, format, args...) }
func (p pionLogger) Debug(msg string)                  { p.at(levelTrace, msg) }
func (p pionLogger) Debugf(format string, args ...any) { p.atf(levelTrace, format, args...) }
func (p pionLogger) Info(msg string)                   { p.at(slog.LevelDebug, msg) }
func (p pionLogger) Infof(format string, args ...any)  { p.atf(slog.LevelDebug, format, args...) }
func (p pionLogger) Warn(msg string)                   { p.at(slog.LevelWarn, msg) }
func (p pionLogger) Warnf(format string, args ...any)  { p.atf(slog.LevelWarn, format, args...) }
func (p pionLogger) Error(msg string)                  { p.at(slog.LevelWarn, msg) }
func (p pionLogger) Errorf(format string, args ...any) { p.atf(slog.LevelWarn, format, args...) }
