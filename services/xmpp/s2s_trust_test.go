package xmpp

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"
)

// waitPeer waits (bounded) until srv lists domain in state and returns it.
func waitPeer(t *testing.T, srv *Server, domain, state string) FederationPeer {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		for _, p := range srv.FederationPeers() {
			if p.Domain == domain && p.State == state {
				return p
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s: %s not %s within %s; peers: %+v", srv.cfg.Domain, domain, state, waitLimit, srv.FederationPeers())
	return FederationPeer{}
}

// TestFederationFirstContact: two LAN boxes (.local) that trust nothing
// yet hold each other as pending on first contact, with the certificate's
// SHA-256; the message waits in the queue; once each owner approves the
// other, it is delivered without a restart and the boxes authenticate by
// their pinned certificates (SASL EXTERNAL). A rejected peer is blocked
// and what waited for it is bounced.
func TestFederationFirstContact(t *testing.T) {
	aAddr, bAddr, cAddr := randomListen(), randomListen(), randomListen()
	tlsA, tlsB, tlsC := selfSignedTLS(t, "a.local"), selfSignedTLS(t, "b.local"), selfSignedTLS(t, "c.local")
	hosts := map[string]string{"a.local": aAddr, "b.local": bAddr, "c.local": cAddr}
	start := func(domain, addr string, tc *tls.Config, user string) *Server {
		srv, _ := startInproc(t, Config{Domain: domain, AllowPlaintext: true, TLS: tc, Federation: Federation{Enabled: true,
			Listen: []string{addr}, Hosts: hosts}}, user)
		return srv
	}
	a := start("a.local", aAddr, tlsA, "alice")
	b := start("b.local", bAddr, tlsB, "bob")
	start("c.local", cAddr, tlsC, "carol")
	alice, bob := plainLogin(t, a, "alice"), plainLogin(t, b, "bob")

	alice.write(`<message to="bob@b.local" type="chat" id="m1"><body>first contact</body></message>`)
	pb := waitPeer(t, a, "b.local", PeerPending)
	if want := certFingerprint(tlsB.Certificates[0].Certificate[0]); pb.Fingerprint != want || pb.Addr != bAddr || pb.Since.IsZero() {
		t.Fatalf("pending b.local = %+v; want fingerprint %s at %s", pb, want, bAddr)
	}
	// A fingerprint other than the one shown is refused.
	if _, err := a.ApproveFederationPeer("b.local", "sha256:"+strings.Repeat("00", 32)); err == nil {
		t.Fatal("approving b.local with another certificate's fingerprint succeeded")
	}
	if pin, err := a.ApproveFederationPeer("b.local", pb.Fingerprint); err != nil || pin != pb.Fingerprint {
		t.Fatalf("approve b.local: %q, %v", pin, err)
	}
	waitPeer(t, a, "b.local", PeerApproved)
	// a now talks to b, which does not know a yet: a is pending there.
	pa := waitPeer(t, b, "a.local", PeerPending)
	if want := certFingerprint(tlsA.Certificates[0].Certificate[0]); pa.Fingerprint != want {
		t.Fatalf("pending a.local = %+v; want fingerprint %s", pa, want)
	}
	if _, err := b.ApproveFederationPeer("a.local", ""); err != nil {
		t.Fatal(err)
	}
	m := bob.expectRaw("alice's message, after both approvals", isMsg("first contact"))
	if m.Get("from") != alice.jid {
		t.Fatalf("bob got %s", m)
	}
	if got := authMethods(b, "a.local"); strings.Join(got, ",") != "sasl-external" {
		t.Fatalf("b.local authenticated a.local by %q; want sasl-external (pinned)", got)
	}
	bob.write(`<message to="` + alice.jid + `" type="chat" id="m2"><body>welcome</body></message>`)
	alice.expectRaw("bob's answer", isMsg("welcome"))

	// c.local is met, held, and rejected: the waiting message bounces.
	alice.write(`<message to="carol@c.local" type="chat" id="m3"><body>who are you?</body></message>`)
	waitPeer(t, a, "c.local", PeerPending)
	if err := a.RejectFederationPeer("c.local"); err != nil {
		t.Fatal(err)
	}
	e := alice.expectRaw("the bounce", func(e *Element) bool { return e.Local == "message" && e.Get("id") == "m3" })
	if e.Get("type") != "error" || e.Child(nsClient, "error").Child(nsStanzaErr, "remote-server-not-found") == nil {
		t.Fatalf("got %s; want remote-server-not-found", e)
	}
	waitPeer(t, a, "c.local", PeerBlocked)
	alice.write(`<message to="carol@c.local" type="chat" id="m4"><body>again</body></message>`)
	e = alice.expectRaw("the refusal", func(e *Element) bool { return e.Local == "message" && e.Get("id") == "m4" })
	if e.Child(nsClient, "error").Child(nsStanzaErr, "remote-server-not-found") == nil {
		t.Fatalf("got %s; want remote-server-not-found", e)
	}
}
