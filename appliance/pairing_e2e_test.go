package appliance_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"fmt"
	"net"
	"os"
	"path/filepath"
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

// xmppRegister asks for an account with XEP-0077 in-band registration
// over direct TLS (trusting the box's CA in dataDir) and returns the type
// of the answer and its error condition, if any.
func xmppRegister(t *testing.T, addr, dataDir, domain, name, password string) (typ, cond string) {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dataDir, "tls", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{ServerName: domain, RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(nc, `<stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="%s" version="1.0">`, domain)
	fmt.Fprintf(nc, `<iq type="set" id="reg1"><query xmlns="jabber:iq:register"><username>%s</username><password>%s</password></query></iq>`, name, password)
	dec := xml.NewDecoder(nc)
	depth := 0
	inAnswer := false
	for {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reading the registration answer: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && tok.Name.Local == "iq" {
				for _, a := range tok.Attr {
					if a.Name.Local == "type" {
						typ = a.Value
					}
				}
				inAnswer = true
			}
			if inAnswer && tok.Name.Space == "urn:ietf:params:xml:ns:xmpp-stanzas" && tok.Name.Local != "text" {
				cond = tok.Name.Local
			}
		case xml.EndElement:
			depth--
			if inAnswer && depth == 1 {
				return typ, cond
			}
		}
	}
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

// waitReady waits for the box to be ready: every service started.
func waitReady(t *testing.T, events <-chan appliance.Event) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Kind == "state" && ev.State == appliance.StateReady {
				return
			}
		case <-timeout:
			t.Fatal("the box did not become ready")
		}
	}
}

// TestPairingButtonOpensRegistration: pressing button A of the
// (simulated) panel opens the pairing window, during which an IRC client
// registers an account with NickServ and an XMPP client with in-band
// registration; once the window has closed by itself, registration is
// refused again on both doors.
func TestPairingButtonOpensRegistration(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg := appliance.Defaults("testhost")
	cfg.DataDir = t.TempDir()
	addr := freePort(t)
	cfg.IRC.PlainListen = []string{addr}
	cfg.IRC.TLSListen = nil
	xaddr := freePort(t)
	cfg.XMPP.Listen, cfg.XMPP.TLSListen = nil, []string{xaddr}
	cfg.Calls.Listen = nil
	cfg.Upload.Listen = nil
	cfg.Web.Listen = ""
	cfg.Registration.PairingWindow = 3 * time.Second
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
	// Every service ready (both doors listening): the box's state, not the
	// first service.ready.
	waitReady(t, events)

	early := dialIRC(t, addr, "early")
	if reply := early.register("early-password"); !strings.Contains(reply, "closed") {
		t.Fatalf("registration before pairing: %q", reply)
	}
	if typ, cond := xmppRegister(t, xaddr, cfg.DataDir, cfg.Domain, "xearly", "xearly-password"); typ != "error" || cond != "not-allowed" {
		t.Fatalf("XMPP registration before pairing: %s %s", typ, cond)
	}
	panel.Sim().Press(hw.ButtonA, 100*time.Millisecond)
	waitEvent(t, events, "pairing.opened")
	if typ, cond := xmppRegister(t, xaddr, cfg.DataDir, cfg.Domain, "xnewbie", "xnewbie-password"); typ != "result" {
		t.Fatalf("XMPP registration during pairing: %s %s", typ, cond)
	}
	if a, err := box.Core().Account(ctx, "xnewbie"); err != nil || a.Name != "xnewbie" {
		t.Fatalf("account after XMPP pairing registration: %v %v", a, err)
	}
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
	if typ, cond := xmppRegister(t, xaddr, cfg.DataDir, cfg.Domain, "xlate", "xlate-password"); typ != "error" || cond != "not-allowed" {
		t.Fatalf("XMPP registration after the window closed: %s %s", typ, cond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
