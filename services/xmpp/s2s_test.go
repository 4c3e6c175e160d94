package xmpp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"chatbox/services/chat"
)

// In-process federation tests: two doors in this process (so that the
// race detector sees both sides), each with a self-signed certificate,
// federated through the static host map; clients log in with PLAIN on a
// plaintext c2s listener.

func selfSignedTLS(t testing.TB, names ...string) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

// inprocFed serves domain with federation on s2s (host:port) and the
// given host map.
func inprocFed(t *testing.T, domain, s2s string, fed Federation, accounts ...string) *Server {
	t.Helper()
	fed.Enabled = true
	fed.Listen = []string{s2s}
	srv, _ := startInproc(t, Config{Domain: domain, AllowPlaintext: true, TLS: selfSignedTLS(t, domain, "rooms."+domain),
		Federation: fed}, accounts...)
	return srv
}

// plainLogin logs user in on srv's plaintext c2s listener and sends
// initial presence.
func plainLogin(t *testing.T, srv *Server, user string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", srv.Addrs()[0], waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: nc}
	open := func() {
		c.write(`<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="` + srv.cfg.Domain + `" version="1.0">`)
		c.rd = newStreamReader(nc, 1<<24, 64, nil)
		nc.SetReadDeadline(time.Now().Add(waitLimit))
		if _, err := c.rd.Header(); err != nil {
			t.Fatalf("stream header: %v", err)
		}
		c.next() // features
	}
	open()
	c.write(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">` +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password(user))) + `</auth>`)
	if el := c.next(); !el.Is(nsSASL, "success") {
		t.Fatalf("PLAIN: %s", el)
	}
	open()
	c.write(`<iq type="set" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>`)
	c.jid = c.next().Child(nsBind, "bind").ChildText(nsBind, "jid")
	c.write(`<presence/>`)
	c.expectRaw("own presence", func(e *Element) bool { return e.Local == "presence" })
	return c
}

// expectRaw reads until an element matches (bounded by waitLimit each).
func (c *rawClient) expectRaw(what string, pred func(*Element) bool) *Element {
	c.t.Helper()
	deadline := time.Now().Add(waitLimit)
	var seen []string
	for time.Now().Before(deadline) {
		el := c.next()
		if pred(el) {
			return el
		}
		seen = append(seen, el.String())
	}
	c.t.Fatalf("%s: no %s; got:\n%s", c.jid, what, strings.Join(seen, "\n"))
	return nil
}

func TestFederationInproc(t *testing.T) {
	aAddr, bAddr := randomListen(), randomListen()
	closed, err := net.Listen("tcp", "127.0.0.1:0") // a port nobody answers on
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := closed.Addr().String()
	closed.Close()
	a := inprocFed(t, "a.test", aAddr, Federation{Hosts: map[string]string{"b.test": bAddr, "dead.test": deadAddr},
		QueueTimeout: 100 * time.Millisecond, Block: []string{"evil.test"}}, "alice")
	b := inprocFed(t, "b.test", bAddr, Federation{Hosts: map[string]string{"a.test": aAddr}}, "bob")
	alice := plainLogin(t, a, "alice")
	bob := plainLogin(t, b, "bob")

	alice.write(`<message to="bob@b.test" type="chat" id="m1"><body>hi bob</body></message>`)
	m := bob.expectRaw("alice's message", isMsg("hi bob"))
	if m.Get("from") != alice.jid || m.Get("to") != bob.jid {
		t.Fatalf("bob got %s; want it from %s to %s", m, alice.jid, bob.jid)
	}
	if got := authMethods(b, "a.test"); strings.Join(got, ",") != "dialback" {
		t.Fatalf("b.test authenticated a.test by %q; want dialback (nothing pinned)", got)
	}
	bob.write(`<message to="` + alice.jid + `" type="chat" id="m2"><body>hi alice</body></message>`)
	if m := alice.expectRaw("bob's message", isMsg("hi alice")); m.Get("from") != bob.jid {
		t.Fatalf("alice got %s; want it from %s", m, bob.jid)
	}
	// An unreachable server: the message is bounced after QueueTimeout
	// with remote-server-timeout.
	alice.write(`<message to="x@dead.test" type="chat" id="m3"><body>anyone?</body></message>`)
	e := alice.expectRaw("the bounce", func(e *Element) bool { return e.Local == "message" && e.Get("id") == "m3" })
	if e.Get("type") != "error" || e.Get("from") != "x@dead.test" || e.Child(nsClient, "error").Child(nsStanzaErr, "remote-server-timeout") == nil {
		t.Fatalf("got %s; want a remote-server-timeout error from x@dead.test", e)
	}
	// A blocked domain: refused at once.
	alice.write(`<message to="x@evil.test" type="chat" id="m4"><body>hi</body></message>`)
	e = alice.expectRaw("the refusal", func(e *Element) bool { return e.Local == "message" && e.Get("id") == "m4" })
	if e.Child(nsClient, "error").Child(nsStanzaErr, "remote-server-not-found") == nil {
		t.Fatalf("got %s; want remote-server-not-found", e)
	}
}

// TestDialbackKey checks the XEP-0185 key against one computed
// independently (Python's hmac, with Prosody's formula):
// HEX(HMAC-SHA256(HEX(SHA256(secret)), receiving+" "+originating+" "+id)).
func TestDialbackKey(t *testing.T) {
	f := &federation{cfg: Federation{Secret: []byte("s3cr3tf0rd14lb4ck")}}
	const want = "008c689ff366b50c63d69a3e2d2c0e0e1f8404b0118eb688a0102c87cb691bdc"
	if got := f.dialbackKey("Example.NET", "example.com", "D60000229F"); got != want {
		t.Fatalf("key %s; want %s", got, want)
	}
}

// rawS2S opens a stream to srv's federation listener as from, starts TLS
// and returns the stream id and the reader.
func rawS2S(t *testing.T, srv *Server, from string) (*rawClient, string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", srv.fed.listenAddrs()[0], waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: nc}
	open := func() (string, *Element) {
		c.write(s2sHeader(from, srv.cfg.Domain, ""))
		c.rd = newStreamReader(c.nc, 1<<24, 64, nil)
		c.nc.SetReadDeadline(time.Now().Add(waitLimit))
		hdr, err := c.rd.Header()
		if err != nil {
			t.Fatalf("stream header: %v", err)
		}
		var id string
		for _, a := range hdr.Attr {
			if a.Name.Local == "id" {
				id = a.Value
			}
		}
		return id, c.next()
	}
	_, f := open()
	if f.Child(nsTLS, "starttls").Child(nsTLS, "required") == nil {
		t.Fatalf("features before TLS: %s; want STARTTLS required", f)
	}
	c.write(`<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>`)
	if el := c.next(); !el.Is(nsTLS, "proceed") {
		t.Fatalf("STARTTLS: %s", el)
	}
	tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.nc = tc
	id, f := open()
	if f.Child(nsDialbackFeature, "dialback") == nil || f.Child(nsSASL, "mechanisms") != nil {
		t.Fatalf("features after TLS: %s; want dialback and no SASL EXTERNAL (the certificate is not trusted)", f)
	}
	return c, id
}

// TestFederationIntakeChecks: a peer must use TLS, authenticate, and send
// only from the domains it authenticated.
func TestFederationIntakeChecks(t *testing.T) {
	aAddr, bAddr := randomListen(), randomListen()
	a := inprocFed(t, "a.test", aAddr, Federation{Hosts: map[string]string{"b.test": bAddr}})
	b := inprocFed(t, "b.test", bAddr, Federation{Hosts: map[string]string{"a.test": aAddr}}, "bob")
	streamErrorOf := func(c *rawClient) string {
		for i := 0; i < 10; i++ {
			el := c.next()
			if el.Is(nsStream, "error") {
				return el.First().Local
			}
		}
		return ""
	}

	// Stanzas before authentication.
	c, _ := rawS2S(t, b, "a.test")
	c.write(`<message xmlns="jabber:server" from="x@a.test" to="bob@b.test"><body>hi</body></message>`)
	if cond := streamErrorOf(c); cond != "not-authorized" {
		t.Fatalf("stanza before authentication: stream error %q; want not-authorized", cond)
	}
	// A wrong dialback key is refused (b.test asks a.test, which says
	// invalid).
	c, _ = rawS2S(t, b, "a.test")
	c.write(`<db:result xmlns:db="jabber:server:dialback" from="a.test" to="b.test">0123abcd</db:result>`)
	if el := c.next(); !el.Is(nsDialback, "result") || el.Get("type") != "invalid" {
		t.Fatalf("wrong key: %s; want db:result type invalid", el)
	}
	// The right key (a.test's) authenticates a.test; a stanza from another
	// domain then ends the stream with invalid-from.
	c, id := rawS2S(t, b, "a.test")
	c.write(`<db:result xmlns:db="jabber:server:dialback" from="a.test" to="b.test">` + a.fed.dialbackKey("b.test", "a.test", id) + `</db:result>`)
	if el := c.next(); !el.Is(nsDialback, "result") || el.Get("type") != "valid" || el.Get("from") != "b.test" || el.Get("to") != "a.test" {
		t.Fatalf("right key: %s; want db:result type valid from b.test to a.test", el)
	}
	c.write(`<message xmlns="jabber:server" from="mallory@evil.test" to="bob@b.test"><body>hi</body></message>`)
	if cond := streamErrorOf(c); cond != "invalid-from" {
		t.Fatalf("stanza from another domain: stream error %q; want invalid-from", cond)
	}
	// A dialback request for a domain not served here.
	c, _ = rawS2S(t, b, "a.test")
	c.write(`<db:result xmlns:db="jabber:server:dialback" from="a.test" to="c.test">00</db:result>`)
	if el := c.next(); el.Get("type") != "error" || el.Child(nsServer, "error").Child(nsStanzaErr, "item-not-found") == nil {
		t.Fatalf("dialback to c.test: %s; want an item-not-found dialback error", el)
	}
}

// benchClient is a logged-in plaintext c2s stream for benchmarks.
type benchClient struct {
	nc  net.Conn
	rd  *streamReader
	jid string
}

func benchLogin(tb testing.TB, srv *Server, user string) *benchClient {
	tb.Helper()
	nc, err := net.DialTimeout("tcp", srv.Addrs()[0], waitLimit)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	c := &benchClient{nc: nc}
	must := func(el *Element, err error) *Element {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return el
	}
	open := func() {
		nc.Write([]byte(`<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="` + srv.cfg.Domain + `" version="1.0">`))
		c.rd = newStreamReader(nc, 1<<24, 64, nil)
		nc.SetReadDeadline(time.Now().Add(waitLimit))
		if _, err := c.rd.Header(); err != nil {
			tb.Fatal(err)
		}
		must(c.rd.Next())
	}
	open()
	nc.Write([]byte(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">` +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password(user))) + `</auth>`))
	if el := must(c.rd.Next()); !el.Is(nsSASL, "success") {
		tb.Fatalf("PLAIN: %s", el)
	}
	open()
	nc.Write([]byte(`<iq type="set" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq><presence/>`))
	c.jid = must(c.rd.Next()).Child(nsBind, "bind").ChildText(nsBind, "jid")
	must(c.rd.Next()) // own presence
	return c
}

// BenchmarkFederatedMessage measures the latency of one chat message
// from a client of a.test to a client of b.test over loopback federation
// (client → a.test → s2s stream → b.test → client), one at a time: ns/op
// is the time from writing the message to reading it at the recipient,
// which includes storing it with an fsync on each box.
func BenchmarkFederatedMessage(b *testing.B) {
	aAddr, bAddr := randomListen(), randomListen()
	fedCfg := func(peer, addr string) Federation {
		// No per-peer rate limit (s2s_limits.go): the benchmark floods.
		return Federation{Enabled: true, Hosts: map[string]string{peer: addr}, StanzasPerSecond: 1e6}
	}
	fa, fb := fedCfg("b.test", bAddr), fedCfg("a.test", aAddr)
	fa.Listen, fb.Listen = []string{aAddr}, []string{bAddr}
	// Nor the core's per-account send limit: the message is stored on
	// both boxes (s2s_direct.go), as a local one would be.
	unlimited := chat.Limits{MessagesPerSecond: 1e6, MessageBurst: 1e6}
	sa, _ := startInprocLimits(b, Config{Domain: "a.test", AllowPlaintext: true, TLS: selfSignedTLS(b, "a.test"), Federation: fa,
		StanzasPerSecond: 1e6, StanzaBurst: 1e6}, unlimited, "alice")
	sb, _ := startInprocLimits(b, Config{Domain: "b.test", AllowPlaintext: true, TLS: selfSignedTLS(b, "b.test"), Federation: fb,
		StanzasPerSecond: 1e6, StanzaBurst: 1e6}, unlimited, "bob")
	alice, bob := benchLogin(b, sa, "alice"), benchLogin(b, sb, "bob")
	roundTrip := func(i int) {
		alice.nc.Write([]byte(`<message to="` + bob.jid + `" type="chat" id="b` + strconv.Itoa(i) + `"><body>ping ` + strconv.Itoa(i) + `</body></message>`))
		for {
			bob.nc.SetReadDeadline(time.Now().Add(waitLimit))
			el, err := bob.rd.Next()
			if err != nil {
				b.Fatal(err)
			}
			if el.Local == "message" && el.Get("id") == "b"+strconv.Itoa(i) {
				return
			}
		}
	}
	roundTrip(-1) // connects and authenticates the streams
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		roundTrip(i)
	}
}

// authMethods lists how srv's incoming streams authenticated domain.
func authMethods(srv *Server, domain string) []string {
	srv.fed.mu.Lock()
	defer srv.fed.mu.Unlock()
	var out []string
	for c := range srv.fed.in {
		c.amu.Lock()
		if how := c.domains[domain]; how != "" {
			out = append(out, how)
		}
		c.amu.Unlock()
	}
	return out
}

// TestFederationPinnedCertificate: with each other's certificate pinned
// the boxes log in with SASL EXTERNAL instead of dialback.
func TestFederationPinnedCertificate(t *testing.T) {
	aAddr, bAddr := randomListen(), randomListen()
	tlsA, tlsB := selfSignedTLS(t, "a.test"), selfSignedTLS(t, "b.test")
	pin := func(c *tls.Config) string {
		sum := sha256.Sum256(c.Certificates[0].Certificate[0])
		return "SHA256:" + strings.ToUpper(hex.EncodeToString(sum[:]))
	}
	a, _ := startInproc(t, Config{Domain: "a.test", AllowPlaintext: true, TLS: tlsA, Federation: Federation{Enabled: true,
		Listen: []string{aAddr}, Hosts: map[string]string{"b.test": bAddr}, Pinned: map[string]string{"b.test": pin(tlsB)}}}, "alice")
	b, _ := startInproc(t, Config{Domain: "b.test", AllowPlaintext: true, TLS: tlsB, Federation: Federation{Enabled: true,
		Listen: []string{bAddr}, Hosts: map[string]string{"a.test": aAddr}, Pinned: map[string]string{"a.test": pin(tlsA)}}}, "bob")
	alice, bob := plainLogin(t, a, "alice"), plainLogin(t, b, "bob")
	alice.write(`<message to="bob@b.test" type="chat" id="m1"><body>pinned</body></message>`)
	bob.expectRaw("alice's message", isMsg("pinned"))
	if got := authMethods(b, "a.test"); strings.Join(got, ",") != "sasl-external" {
		t.Fatalf("b.test authenticated a.test by %q; want sasl-external", got)
	}
	bob.write(`<message to="alice@a.test" type="chat" id="m2"><body>pinned too</body></message>`)
	alice.expectRaw("bob's message", isMsg("pinned too"))
	// bob's answer came back on a's own stream (XEP-0288): b never
	// connected to a.
	if got := authMethods(a, "b.test"); len(got) != 0 {
		t.Fatalf("a.test has incoming streams from b.test (%q); want none (bidirectional stream)", got)
	}
	// Without pins (TestFederationInproc) the same boxes use dialback.
}
