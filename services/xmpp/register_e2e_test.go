package xmpp

import (
	"crypto/tls"
	"encoding/base64"
	"net"
	"testing"
	"time"

	"mellium.im/sasl"
)

// rawStartTLS opens a stream on the STARTTLS port, upgrades it, and
// returns the client with the features offered before authentication.
func (b *box) rawStartTLS(t *testing.T) (*rawClient, *Element) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", b.xmppAddr, waitLimit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &rawClient{t: t, nc: nc}
	if f := c.open(); f.Child(nsTLS, "starttls") == nil {
		t.Fatalf("no STARTTLS offered: %s", f)
	}
	c.write(`<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>`)
	if el := c.next(); !el.Is(nsTLS, "proceed") {
		t.Fatalf("STARTTLS: %s", el)
	}
	tc := tls.Client(nc, b.tlsConfig())
	tc.SetDeadline(time.Now().Add(waitLimit))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	c.nc = tc
	return c, c.open()
}

// rawErr reads the response to id and checks its error condition.
func rawErr(t *testing.T, c *rawClient, id, cond string) *Element {
	t.Helper()
	r := rawResponse(c, id)
	if got := iqErrorCondition(r); got != cond {
		t.Fatalf("IQ %s: want error %s, got %s", id, cond, r)
	}
	return r
}

func registerSet(c *rawClient, id, user, pass string) {
	c.write(`<iq type="set" id="` + id + `"><query xmlns="jabber:iq:register"><username>` + user +
		`</username><password>` + pass + `</password></query></iq>`)
}

// TestInBandRegistration: XEP-0077 with registration open. Before SASL
// the form is offered and an account made (bad names, weak passwords and
// taken names refused, attempts per connection bounded); the account
// then logs in, changes its password and removes itself.
func TestInBandRegistration(t *testing.T) {
	b := startBox(t, []string{"alice"}, "registration.policy=open")

	// One connection: refusals, then the bound on attempts.
	c, f := b.rawStartTLS(t)
	if f.Child(nsRegisterFeature, "register") == nil {
		t.Fatalf("no register feature before authentication: %s", f)
	}
	registerSet(c, "r1", "9lives", "long-enough-password")
	if r := rawErr(t, c, "r1", "not-acceptable"); r.Child(nsClient, "error").ChildText(nsStanzaErr, "text") == "" {
		t.Fatalf("no text saying what is wrong with the name: %s", r)
	}
	registerSet(c, "r2", "alice", "long-enough-password")
	rawErr(t, c, "r2", "conflict")
	registerSet(c, "r3", "carol", "short")
	rawErr(t, c, "r3", "not-acceptable")
	registerSet(c, "r4", "carol", "password-carol")
	rawErr(t, c, "r4", "policy-violation")

	// Another: the form, an account, and no second one; then SASL on the
	// same stream.
	c, _ = b.rawStartTLS(t)
	c.write(`<iq type="get" id="g1"><query xmlns="jabber:iq:register"/></iq>`)
	r := rawResponse(c, "g1")
	q := r.Child(nsRegister, "query")
	if r.Get("type") != "result" || q == nil || q.Child(nsRegister, "username") == nil ||
		q.Child(nsRegister, "password") == nil || q.ChildText(nsRegister, "instructions") == "" {
		t.Fatalf("registration form: %s", r)
	}
	registerSet(c, "s1", "Carol", "password-carol")
	if r := rawResponse(c, "s1"); r.Get("type") != "result" {
		t.Fatalf("registration: %s", r)
	}
	registerSet(c, "s2", "dave", "password-dave")
	rawErr(t, c, "s2", "policy-violation")
	auth := base64.StdEncoding.EncodeToString([]byte("\x00carol\x00password-carol"))
	c.write(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">` + auth + `</auth>`)
	if el := c.next(); !el.Is(nsSASL, "success") {
		t.Fatalf("login after registration: %s", el)
	}
	if f := c.open(); f.Child(nsRegisterFeature, "register") != nil {
		t.Fatalf("register offered after authentication: %s", f)
	}

	// The new account logs in with a real client and changes its password.
	carol := b.login(t, "carol", "")
	r = carol.iq(`<iq type="get" id="{id}" to="box.test"><query xmlns="jabber:iq:register"/></iq>`)
	if q := r.Child(nsRegister, "query"); q.Child(nsRegister, "registered") == nil || q.ChildText(nsRegister, "username") != "carol" {
		t.Fatalf("registration of a logged-in account: %s", r)
	}
	carol.iqErr(`<iq type="set" id="{id}" to="box.test"><query xmlns="jabber:iq:register"><username>alice</username><password>stolen-password</password></query></iq>`, "not-allowed")
	carol.iqErr(`<iq type="set" id="{id}" to="box.test"><query xmlns="jabber:iq:register"><username>carol</username><password>short</password></query></iq>`, "not-acceptable")
	carol.iqErr(`<iq type="set" id="{id}" to="box.test"><query xmlns="jabber:iq:register"><password>no-username-given</password></query></iq>`, "bad-request")
	carol.iq(`<iq type="set" id="{id}" to="box.test"><query xmlns="jabber:iq:register"><username>carol</username><password>a-new-password</password></query></iq>`)
	if _, err := b.tryLogin(t, "carol", "", loginOpts{mechs: []sasl.Mechanism{sasl.ScramSha256}}); err == nil {
		t.Fatal("the old password still logs in")
	}
	carol2 := b.login(t, "carol", "", loginOpts{password: "a-new-password"})
	if _, err := b.tryLogin(t, "alice", ""); err != nil {
		t.Fatalf("alice's password changed too: %v", err)
	}

	// Removal: the result, then every stream of the account ends.
	id := randomID()
	carol2.send(`<iq type="set" id="%s" to="box.test"><query xmlns="jabber:iq:register"><remove/></query></iq>`, id)
	if r := carol2.expectID(id); r.Get("type") != "result" {
		t.Fatalf("remove: %s", r)
	}
	for _, c := range []*client{carol, carol2} {
		select {
		case <-c.done:
		case <-time.After(waitLimit):
			t.Fatalf("%s: the stream did not end after the account was removed", c.jid)
		}
	}
	if _, err := b.tryLogin(t, "carol", "", loginOpts{password: "a-new-password"}); err == nil {
		t.Fatal("a removed account logs in")
	}
	alice := b.login(t, "alice", "")
	alice.iqErr(`<iq type="get" id="{id}" to="carol@box.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, "service-unavailable")
}

// TestInBandRegistrationClosed: with the default policy (closed) nothing
// is offered and requests are not-allowed.
func TestInBandRegistrationClosed(t *testing.T) {
	b := startBox(t, []string{"alice"})
	c, f := b.rawStartTLS(t)
	if f.Child(nsRegisterFeature, "register") != nil {
		t.Fatalf("register offered while registration is closed: %s", f)
	}
	c.write(`<iq type="get" id="g1"><query xmlns="jabber:iq:register"/></iq>`)
	rawErr(t, c, "g1", "not-allowed")
	registerSet(c, "s1", "carol", "password-carol")
	rawErr(t, c, "s1", "not-allowed")
	if _, err := b.tryLogin(t, "carol", ""); err == nil {
		t.Fatal("an account was made while registration is closed")
	}
}
