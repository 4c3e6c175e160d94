package turn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	pturn "github.com/pion/turn/v4"
)

const waitLimit = 10 * time.Second

// start runs a service on a free loopback port and stops it when the
// test ends, checking that Serve then returns nil.
func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.Listen == nil {
		cfg.Listen = []string{"127.0.0.1:0"}
	}
	if cfg.Realm == "" {
		cfg.Realm = "box.test"
	}
	s := New(cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("Serve failed before ready: %v", err)
	case <-time.After(waitLimit):
		cancel()
		t.Fatal("Serve not ready")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after its context ended, want nil", err)
			}
		case <-time.After(waitLimit):
			t.Error("Serve did not return after its context ended")
		}
	})
	return s
}

// serviceAddr is the address of the service's listener for transport.
func serviceAddr(t *testing.T, s *Server, transport string) string {
	t.Helper()
	for _, sv := range s.Services() {
		if sv.Transport == transport {
			return net.JoinHostPort(sv.Host, strconv.Itoa(sv.Port))
		}
	}
	t.Fatalf("no %s service in %+v", transport, s.Services())
	return ""
}

// dial makes a pion TURN client over transport with the credentials.
func dial(t *testing.T, s *Server, transport, user, pass string) *pturn.Client {
	t.Helper()
	addr := serviceAddr(t, s, transport)
	var conn net.PacketConn
	if transport == "tcp" {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn = pturn.NewSTUNConn(nc)
	} else {
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = pc
	}
	c, err := pturn.NewClient(&pturn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: user, Password: pass, RTO: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

func TestServicesAndListeners(t *testing.T) {
	s := start(t, Config{})
	svcs := s.Services()
	if len(svcs) != 2 || svcs[0].Transport != "udp" || svcs[1].Transport != "tcp" {
		t.Fatalf("services = %+v, want udp and tcp", svcs)
	}
	for _, sv := range svcs {
		if sv.Host != "127.0.0.1" || sv.Port == 0 || sv.Port != svcs[0].Port {
			t.Errorf("service %+v: want host 127.0.0.1 and one port for both transports", sv)
		}
	}
}

func TestSTUNBinding(t *testing.T) {
	s := start(t, Config{})
	for _, tr := range []string{"udp", "tcp"} {
		// No credentials: STUN is for anyone.
		c := dial(t, s, tr, "", "")
		mapped, err := c.SendBindingRequest()
		if err != nil {
			t.Fatalf("%s: binding request: %v", tr, err)
		}
		ua, ok := mapped.(*net.UDPAddr)
		if !ok || !ua.IP.Equal(net.IPv4(127, 0, 0, 1)) || ua.Port == 0 {
			t.Errorf("%s: mapped address %v, want 127.0.0.1:port", tr, mapped)
		}
	}
}

// relayRoundTrip allocates a relay and exchanges a packet each way with
// a UDP peer.
func relayRoundTrip(t *testing.T, c *pturn.Client, minPort, maxPort int) {
	t.Helper()
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	defer relay.Close()
	ra := relay.LocalAddr().(*net.UDPAddr)
	if !ra.IP.Equal(net.IPv4(127, 0, 0, 1)) || ra.Port < minPort || ra.Port > maxPort {
		t.Errorf("relay address %v, want 127.0.0.1 with a port in %d-%d", ra, minPort, maxPort)
	}
	peer, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := relay.WriteTo([]byte("hello peer"), peer.LocalAddr()); err != nil {
		t.Fatalf("relay write: %v", err)
	}
	buf := make([]byte, 1500)
	peer.SetReadDeadline(time.Now().Add(waitLimit))
	n, from, err := peer.ReadFrom(buf)
	if err != nil {
		t.Fatalf("peer got nothing through the relay: %v", err)
	}
	if string(buf[:n]) != "hello peer" || from.String() != ra.String() {
		t.Fatalf("peer got %q from %v, want %q from the relay %v", buf[:n], from, "hello peer", ra)
	}
	if _, err := peer.WriteTo([]byte("hello client"), from); err != nil {
		t.Fatal(err)
	}
	relay.SetReadDeadline(time.Now().Add(waitLimit))
	n, from, err = relay.ReadFrom(buf)
	if err != nil {
		t.Fatalf("client got nothing back through the relay: %v", err)
	}
	if string(buf[:n]) != "hello client" || from.String() != peer.LocalAddr().String() {
		t.Fatalf("client got %q from %v, want %q from %v", buf[:n], from, "hello client", peer.LocalAddr())
	}
}

func TestRelayWithFreshCredentials(t *testing.T) {
	s := start(t, Config{RelayMinPort: 49152, RelayMaxPort: 49407})
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			user, pass, exp := s.Credentials("alice", time.Now())
			if want := strconv.FormatInt(exp.Unix(), 10) + ":alice"; user != want {
				t.Errorf("username %q, want %q", user, want)
			}
			if d := time.Until(exp); d < 23*time.Hour || d > 24*time.Hour {
				t.Errorf("credentials expire in %v, want the default 24h", d)
			}
			relayRoundTrip(t, dial(t, s, tr, user, pass), 49152, 49407)
		})
	}
}

func TestRefusedCredentials(t *testing.T) {
	s := start(t, Config{})
	user, pass, _ := s.Credentials("alice", time.Now())
	expUser, expPass, _ := s.Credentials("alice", time.Now().Add(-25*time.Hour))
	other := New(Config{}, nil) // another secret
	_, otherPass, _ := other.Credentials("alice", time.Now())
	for _, tc := range []struct{ name, user, pass string }{
		{"expired", expUser, expPass},
		{"forged password", user, otherPass},
		{"password of another account", strings.Replace(user, ":alice", ":bob", 1), pass},
		{"not a TURN REST username", "alice", pass},
		{"no account", strings.TrimSuffix(user, "alice"), s.password(strings.TrimSuffix(user, "alice"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s, "udp", tc.user, tc.pass)
			relay, err := c.Allocate()
			if err == nil {
				relay.Close()
				t.Fatalf("allocation with %s credentials (%q) succeeded, want refused", tc.name, tc.user)
			}
		})
	}
}

func TestQuotaPerAccount(t *testing.T) {
	s := start(t, Config{MaxAllocationsPerAccount: 1})
	user, pass, _ := s.Credentials("alice", time.Now())
	first, err := dial(t, s, "udp", user, pass).Allocate()
	if err != nil {
		t.Fatalf("first allocation: %v", err)
	}
	if r, err := dial(t, s, "udp", user, pass).Allocate(); err == nil {
		r.Close()
		t.Fatal("a second allocation of alice succeeded, want 486 Allocation Quota Reached")
	} else if !strings.Contains(err.Error(), "486") {
		t.Errorf("second allocation error %v, want 486", err)
	}
	buser, bpass, _ := s.Credentials("bob", time.Now())
	r, err := dial(t, s, "udp", buser, bpass).Allocate()
	if err != nil {
		t.Fatalf("bob's allocation (own quota): %v", err)
	}
	r.Close()
	// Released relays give the quota back.
	first.Close() // sends a Refresh with lifetime 0: the server deletes it
	deadline := time.Now().Add(waitLimit)
	for {
		r, err := dial(t, s, "udp", user, pass).Allocate()
		if err == nil {
			r.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice cannot allocate after releasing her relay: %v", err)
		}
	}
}

func TestPeerAllowed(t *testing.T) {
	lan, lo := net.ParseIP("192.168.1.10"), net.ParseIP("127.0.0.1")
	for _, tc := range []struct {
		peer, relay net.IP
		want        bool
	}{
		{net.ParseIP("192.168.1.20"), lan, true},
		{lan, lan, true}, // both parties on this relay
		{net.ParseIP("127.0.0.1"), lan, false},
		{net.ParseIP("127.0.0.1"), lo, true},
		{net.ParseIP("0.0.0.0"), lan, false},
		{net.ParseIP("224.0.0.251"), lan, false},
		{net.ParseIP("255.255.255.255"), lan, false},
	} {
		if got := peerAllowed(tc.peer, tc.relay); got != tc.want {
			t.Errorf("peerAllowed(%v, relay %v) = %v, want %v", tc.peer, tc.relay, got, tc.want)
		}
	}
}

func TestRelayIPChoice(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Listen: []string{"127.0.0.1:3478"}}, "127.0.0.1"},
		{Config{Listen: []string{"localhost:3478", "[::1]:3478"}}, "127.0.0.1"},
		{Config{Listen: []string{"192.168.7.1:3478"}}, "192.168.7.1"},
		{Config{Listen: []string{":3478"}, RelayIP: "10.1.2.3"}, "10.1.2.3"},
	} {
		ip, err := New(tc.cfg, nil).relayIP()
		if err != nil || ip.String() != tc.want {
			t.Errorf("relay IP for %+v = %v, %v; want %s", tc.cfg, ip, err, tc.want)
		}
	}
	if _, err := New(Config{Listen: []string{":3478"}, RelayIP: "fd00::1"}, nil).relayIP(); err == nil {
		t.Error("an IPv6 relay_ip was accepted; the relay is IPv4 only")
	}
	ip, err := New(Config{Listen: []string{":3478"}}, nil).relayIP()
	if err != nil || ip.To4() == nil {
		t.Errorf("relay IP for a wildcard listener = %v, %v; want an IPv4 address", ip, err)
	}
}

func TestTCPConnectionsPerAddress(t *testing.T) {
	s := start(t, Config{ConnectionsPerAddress: 1})
	addr := serviceAddr(t, s, "tcp")
	first, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetReadDeadline(time.Now().Add(waitLimit))
	if _, err := second.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("second connection from one address: read %v, want it closed by the server", err)
	}
	// The first still works: a STUN binding over it.
	c, err := pturn.NewClient(&pturn.ClientConfig{STUNServerAddr: addr, Conn: pturn.NewSTUNConn(first), RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SendBindingRequest(); err != nil {
		t.Fatalf("binding over the first connection: %v", err)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "reset")
}

func TestStopClosesConnectionsAndRelays(t *testing.T) {
	s := New(Config{Listen: []string{"127.0.0.1:0"}, Realm: "box.test"}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	user, pass, _ := s.Credentials("alice", time.Now())
	addr := serviceAddr(t, s, "tcp")
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c, err := pturn.NewClient(&pturn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr,
		Conn: pturn.NewSTUNConn(nc), Username: user, Password: pass, RTO: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	relayPort := relay.LocalAddr().(*net.UDPAddr).Port
	if owned, err := ownUDPPort(relayPort); err == nil && !owned {
		t.Fatalf("relay port %d: no socket of this process holds it while the relay is open", relayPort)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Serve did not return")
	}
	if len(s.Services()) != 0 {
		t.Errorf("services after stop: %+v, want none", s.Services())
	}
	// The relay's socket is closed: Serve closed it before returning. The
	// port itself may already be taken by another process on the machine
	// (the relay range lies in the ephemeral range), so what is checked is
	// that no socket of this process is bound to it any more.
	if owned, err := ownUDPPort(relayPort); err != nil {
		t.Logf("cannot inspect sockets (%v); checking the port instead", err)
		pc, err := net.ListenPacket("udp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(relayPort)))
		if err != nil {
			t.Errorf("relay port %d still in use after Serve returned: %v", relayPort, err)
		} else {
			pc.Close()
		}
	} else if owned {
		t.Errorf("relay port %d still held by this process after Serve returned", relayPort)
	}
	// The TCP listener is closed.
	raw, _ := net.Dial("tcp", addr)
	if raw != nil {
		raw.Close()
		t.Errorf("the TCP listener %s still accepts after Serve returned", addr)
	}
}

// ownUDPPort says whether a UDP socket of this process is bound to port,
// from /proc/net/udp and the process's file descriptors (Linux).
func ownUDPPort(port int) (bool, error) {
	inodes := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return false, err
	}
	for _, fd := range fds {
		target, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	table, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return false, err
	}
	hexPort := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(table), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		if strings.HasSuffix(f[1], hexPort) && inodes[f[9]] {
			return true, nil
		}
	}
	return false, nil
}
