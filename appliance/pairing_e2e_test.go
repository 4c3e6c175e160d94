package appliance_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"chatbox/appliance"
	"chatbox/hw"
)

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ircClient registers without an account and talks to NickServ.
type ircClient struct {
	t  *testing.T
	nc net.Conn
	rd *bufio.Reader
}

func dialIRC(t *testing.T, addr, nick string) *ircClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &ircClient{t: t, nc: nc, rd: bufio.NewReader(nc)}
	fmt.Fprintf(nc, "NICK %s\r\nUSER %s 0 * :%s\r\n", nick, nick, nick)
	c.waitFor(" 001 ")
	return c
}

// waitFor reads lines until one contains want.
func (c *ircClient) waitFor(want string) string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		line, err := c.rd.ReadString('\n')
		if err != nil {
			c.t.Fatalf("waiting for %q: %v", want, err)
		}
		if strings.HasPrefix(line, "PING ") {
			fmt.Fprintf(c.nc, "PONG %s", line[5:])
		}
		if strings.Contains(line, want) {
			return line
		}
	}
}

func (c *ircClient) register(password string) string {
	fmt.Fprintf(c.nc, "PRIVMSG NickServ :REGISTER %s\r\n", password)
	return c.waitFor(":NickServ!")
}

func waitEvent(t *testing.T, events <-chan appliance.Event, kind string) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Kind == kind {
				return
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}

// TestPairingButtonOpensRegistration: pressing button A of the
// (simulated) panel opens the pairing window, during which an IRC client
// registers an account with NickServ; once the window has closed by
// itself, registration is refused again.
func TestPairingButtonOpensRegistration(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := appliance.Defaults("testhost")
	cfg.DataDir = t.TempDir()
	addr := freePort(t)
	cfg.IRC.PlainListen = []string{addr}
	cfg.IRC.TLSListen = nil
	cfg.XMPP.Listen, cfg.XMPP.TLSListen = nil, nil
	cfg.Calls.Listen = nil
	cfg.Upload.Listen = nil
	cfg.Registration.PairingWindow = 2 * time.Second
	cfg.HW.Backend = "sim"
	box, err := appliance.Open(ctx, appliance.Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	events, stop := box.Subscribe(256)
	defer stop()
	panel, err := hw.New(cfg.HW, box, hw.Options{PairingWindow: cfg.Registration.PairingWindow})
	if err != nil {
		t.Fatal(err)
	}
	go panel.Run(ctx)
	done := make(chan error, 1)
	go func() { done <- box.Run(ctx, 5*time.Second) }()
	waitEvent(t, events, "service.ready")

	early := dialIRC(t, addr, "early")
	if reply := early.register("early-password"); !strings.Contains(reply, "closed") {
		t.Fatalf("registration before pairing: %q", reply)
	}
	panel.Sim().Press(hw.ButtonA, 100*time.Millisecond)
	waitEvent(t, events, "pairing.opened")
	newbie := dialIRC(t, addr, "newbie")
	if reply := newbie.register("newbie-password"); !strings.Contains(reply, "registered") {
		t.Fatalf("registration during pairing: %q", reply)
	}
	if a, err := box.Core().Account(ctx, "newbie"); err != nil || a.Name != "newbie" {
		t.Fatalf("account after pairing registration: %v %v", a, err)
	}
	waitEvent(t, events, "pairing.closed")
	late := dialIRC(t, addr, "late")
	if reply := late.register("late-password"); !strings.Contains(reply, "closed") {
		t.Fatalf("registration after the window closed: %q", reply)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
