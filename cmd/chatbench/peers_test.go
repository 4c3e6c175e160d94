package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeIRC is an IRC server without accounts, CAP, MOTD or echo-message,
// that refuses a JOIN before the login is complete (451).
type fakeIRC struct {
	ln      net.Listener
	mu      sync.Mutex
	members map[net.Conn]string
	lines   []string // every line every client sent
}

func startFakeIRC(t *testing.T) *fakeIRC {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeIRC{ln: ln, members: map[net.Conn]string{}}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.members {
			c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { s.serve(c) })
		}
	})
	return s
}

func (s *fakeIRC) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	var nick string
	var welcomed bool
	write := func(l string) { c.Write([]byte(l + "\r\n")) } // one Write per line: whole lines
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			s.mu.Lock()
			delete(s.members, c)
			s.mu.Unlock()
			return
		}
		line = strings.TrimRight(line, "\r\n")
		s.mu.Lock()
		s.lines = append(s.lines, line)
		s.mu.Unlock()
		cmd, rest, _ := strings.Cut(line, " ")
		switch cmd {
		case "NICK":
			nick = rest
		case "USER":
			write(":fake 001 " + nick + " :Welcome")
			write(":fake 422 " + nick + " :MOTD File is missing")
			welcomed = true
		case "JOIN":
			if !welcomed {
				write(":fake 451 * JOIN :You have not registered")
				continue
			}
			s.mu.Lock()
			s.members[c] = nick
			s.mu.Unlock()
			write(":" + nick + "!u@h JOIN " + rest)
			write(":fake 366 " + nick + " " + rest + " :End of /NAMES list.")
		case "PRIVMSG":
			target, text, _ := strings.Cut(rest, " ")
			s.mu.Lock()
			for o := range s.members {
				if o != c { // no echo-message
					o.Write([]byte(":" + nick + "!u@h PRIVMSG " + target + " " + text + "\r\n"))
				}
			}
			s.mu.Unlock()
		case "QUIT":
			return
		default:
			write(":fake 421 " + cmd + " :Unknown command")
		}
	}
}

// TestNickLoginToServerWithoutEcho runs the tool with --irc-login nick
// against fakeIRC: no PASS is sent, the JOIN comes once after the
// welcome, and since the server does not echo, a sender's own messages
// are not expected.
func TestNickLoginToServerWithoutEcho(t *testing.T) {
	srv := startFakeIRC(t)
	o, err := parse("--irc", srv.ln.Addr().String(), "--irc-login", "nick", "--clients", "5", "--senders", "2",
		"--messages", "3", "--timeout", "60s", "--join-timeout", "20s")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := run(ctx, o, nil)
	if err != nil {
		t.Fatalf("run: %v\nreport: %+v", err, rep)
	}
	if !rep.Complete || rep.MessagesSent != 6 || rep.DeliveriesExpected != 24 || rep.Deliveries != 24 || rep.Duplicates != 0 {
		t.Errorf("want 6 messages to 4 others each (24 deliveries), got %+v", rep)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	joins := 0
	for _, l := range srv.lines {
		if strings.HasPrefix(l, "PASS") {
			t.Errorf("--irc-login nick sent %q", l)
		}
		if strings.HasPrefix(l, "JOIN") {
			joins++
		}
	}
	if joins != 5 {
		t.Errorf("%d JOIN lines from 5 clients, want 5", joins)
	}
}

// fakeRegistrar is an XMPP server that does STARTTLS and in-band
// registration (XEP-0077) and nothing else: the first registration of a
// name succeeds, the next ones get <conflict/>, and "refused…" names get
// <not-acceptable/>.
type fakeRegistrar struct {
	ln       net.Listener
	mu       sync.Mutex
	accounts map[string]string
}

func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), DNSNames: []string{"bench.local"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func startFakeRegistrar(t *testing.T) *fakeRegistrar {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	s := &fakeRegistrar{ln: ln, accounts: map[string]string{}}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				s.serve(c, cfg)
			})
		}
	})
	return s
}

const fakeHeader = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='` + nsStreams +
	`' from='bench.local' id='s1' version='1.0'>`

// untilStart reads tokens until a start element and returns it.
func untilStart(dec *xml.Decoder) (xml.StartElement, bool) {
	for {
		tok, err := dec.Token()
		if err != nil {
			return xml.StartElement{}, false
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se, true
		}
	}
}

func (s *fakeRegistrar) serve(c net.Conn, cfg *tls.Config) {
	dec := xml.NewDecoder(c)
	if se, ok := untilStart(dec); !ok || se.Name.Local != "stream" {
		return
	}
	c.Write([]byte(fakeHeader + `<stream:features><starttls xmlns='` + nsTLS + `'><required/></starttls></stream:features>`))
	if se, ok := untilStart(dec); !ok || se.Name.Local != "starttls" {
		return
	}
	c.Write([]byte(`<proceed xmlns='` + nsTLS + `'/>`))
	tc := tls.Server(c, cfg)
	if tc.Handshake() != nil {
		return
	}
	dec = xml.NewDecoder(tc)
	if se, ok := untilStart(dec); !ok || se.Name.Local != "stream" {
		return
	}
	tc.Write([]byte(fakeHeader + `<stream:features><register xmlns='http://jabber.org/features/iq-register'/></stream:features>`))
	se, ok := untilStart(dec)
	if !ok || se.Name.Local != "iq" {
		return
	}
	var iq struct {
		ID    string `xml:"id,attr"`
		Query struct {
			Username string `xml:"username"`
			Password string `xml:"password"`
		} `xml:"jabber:iq:register query"`
	}
	if dec.DecodeElement(&iq, &se) != nil {
		return
	}
	s.mu.Lock()
	_, exists := s.accounts[iq.Query.Username]
	refused := strings.HasPrefix(iq.Query.Username, "refused")
	if !exists && !refused {
		s.accounts[iq.Query.Username] = iq.Query.Password
	}
	s.mu.Unlock()
	reply := `<iq type='result' id='` + iq.ID + `'/>`
	switch {
	case refused:
		reply = `<iq type='error' id='` + iq.ID + `'><error type='modify'><not-acceptable xmlns='` + nsStanzas + `'/></error></iq>`
	case exists:
		reply = `<iq type='error' id='` + iq.ID + `'><error type='cancel'><conflict xmlns='` + nsStanzas + `'/></error></iq>`
	}
	tc.Write([]byte(reply))
	untilStart(dec) // until the client closes
}

// TestInBandRegistration registers four accounts, again (they exist: not
// an error), and then an account the server refuses (an error naming it).
func TestInBandRegistration(t *testing.T) {
	srv := startFakeRegistrar(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for round := range 2 {
		o, err := parse("--xmpp", srv.ln.Addr().String(), "--domain", "bench.local", "--insecure",
			"--xmpp-share", "1", "--xmpp-register", "--clients", "4", "--timeout", "60s", "--join-timeout", "20s")
		if err != nil {
			t.Fatal(err)
		}
		if err := registerAll(ctx, &o, func(int) {}); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		srv.mu.Lock()
		if len(srv.accounts) != 4 || srv.accounts["u0003"] != "pw-u0003" {
			t.Errorf("round %d: accounts %v, want u0000…u0003 with passwords pw-u0000…", round, srv.accounts)
		}
		srv.mu.Unlock()
	}
	o, err := parse("--xmpp", srv.ln.Addr().String(), "--domain", "bench.local", "--insecure",
		"--xmpp-share", "1", "--xmpp-register", "--clients", "2", "--accounts-prefix", "refused", "--join-timeout", "20s")
	if err != nil {
		t.Fatal(err)
	}
	err = registerAll(ctx, &o, func(int) {})
	if err == nil || !strings.Contains(err.Error(), "refused000") || !strings.Contains(err.Error(), "not-acceptable") {
		t.Errorf("a refused registration: got %v, want an error naming the account and not-acceptable", err)
	}
}
