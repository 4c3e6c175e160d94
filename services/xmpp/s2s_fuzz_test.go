package xmpp

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzS2SIntake feeds arbitrary XML to an incoming server-to-server
// stream that has authenticated peer.test (after TLS): dialback requests
// and verifications, SASL, and stanzas of every kind addressed anywhere.
// The stream reader is the c2s one (FuzzStanzaIntake fuzzes it); this
// target covers what the s2s side does with the elements. Every input must
// be handled without a panic, and each element either accepted or
// answered with a stream error.
func FuzzS2SIntake(f *testing.F) {
	for _, seed := range []string{
		`<message xmlns="jabber:server" from="x@peer.test/r" to="alice@fuzz.test" type="chat"><body>hi</body></message>`,
		`<presence xmlns="jabber:server" from="x@peer.test" to="alice@fuzz.test" type="subscribe"/>`,
		`<presence xmlns="jabber:server" from="x@peer.test/r" to="general@rooms.fuzz.test/x"/>`,
		`<iq xmlns="jabber:server" from="x@peer.test/r" to="alice@fuzz.test" type="get" id="1"><vCard xmlns="vcard-temp"/></iq>`,
		`<iq xmlns="jabber:server" from="x@peer.test/r" to="fuzz.test" type="get" id="2"><ping xmlns="urn:xmpp:ping"/></iq>`,
		`<db:result xmlns:db="jabber:server:dialback" from="peer.test" to="fuzz.test">abcd</db:result>`,
		`<db:verify xmlns:db="jabber:server:dialback" from="peer.test" to="fuzz.test" id="x">abcd</db:verify>`,
		`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="EXTERNAL">cGVlci50ZXN0</auth>`,
		`<message xmlns="jabber:server" from="x@evil.test" to="alice@fuzz.test"/>`,
		`<bidi xmlns="urn:xmpp:bidi"/><db:result xmlns:db="jabber:server:dialback" from="lan.local" to="fuzz.test">k</db:result>`,
	} {
		f.Add([]byte(seed))
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	dead := closed.Addr().String()
	closed.Close()
	srv, _ := startInproc(f, Config{Domain: "fuzz.test", AllowPlaintext: true, TLS: selfSignedTLS(f, "fuzz.test"),
		StanzasPerSecond: 1e6, StanzaBurst: 1 << 20, Federation: Federation{Enabled: true, Listen: []string{"127.0.0.1:0"},
			Allow: []string{"peer.test"}, Hosts: map[string]string{"peer.test": dead}, RemoteOccupants: true,
			DialTimeout: 2 * time.Second}}, "alice")
	f.Fuzz(func(t *testing.T, data []byte) {
		cli, end := net.Pipe()
		defer cli.Close()
		go io.Copy(io.Discard, cli)
		c := newS2SIn(srv.fed, end, "pipe")
		c.tc = tls.Client(end, &tls.Config{InsecureSkipVerify: true}) // never used for I/O
		c.streamID = "fuzz"
		c.authenticate("peer.test", "fuzz")
		rd := newStreamReader(bytes.NewReader(append([]byte(`<stream:stream xmlns="jabber:server" xmlns:stream="http://etherx.jabber.org/streams">`), data...)),
			srv.cfg.MaxStanzaBytes, srv.cfg.MaxDepth, nil)
		if _, err := rd.Header(); err != nil {
			return
		}
		for range 64 {
			el, err := rd.Next()
			if err != nil {
				return
			}
			if se := c.handle(el); se != nil {
				if se.Condition == "" {
					t.Fatalf("a stream error without a condition for %s", el)
				}
				return
			}
		}
	})
}
