package xmpp

import (
	"strings"
	"testing"

	"mellium.im/sasl"
)

// TestLoginMechanisms logs in with each SASL mechanism over STARTTLS and
// direct TLS, and checks that wrong passwords are refused (RFC 6120 §6).
func TestLoginMechanisms(t *testing.T) {
	b := startBox(t, []string{"alice"})
	for _, tc := range []struct {
		name string
		o    loginOpts
	}{
		{"SCRAM-SHA-256-PLUS", loginOpts{mechs: []sasl.Mechanism{sasl.ScramSha256Plus}}},
		{"SCRAM-SHA-1-PLUS", loginOpts{mechs: []sasl.Mechanism{sasl.ScramSha1Plus}}},
		{"SCRAM-SHA-256", loginOpts{mechs: []sasl.Mechanism{sasl.ScramSha256}}},
		{"SCRAM-SHA-1", loginOpts{mechs: []sasl.Mechanism{sasl.ScramSha1}}},
		{"PLAIN", loginOpts{mechs: []sasl.Mechanism{sasl.Plain}}},
		{"direct TLS", loginOpts{direct: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := b.login(t, "alice", "r-"+strings.ToLower(strings.ReplaceAll(tc.name, " ", "-")), tc.o)
			if !strings.HasPrefix(c.jid, "alice@"+boxDomain+"/") {
				t.Fatalf("bound %q", c.jid)
			}
			c.iq(`<iq type="get" id="{id}" to="` + boxDomain + `"><ping xmlns="urn:xmpp:ping"/></iq>`)
		})
	}
	for _, mech := range []sasl.Mechanism{sasl.ScramSha256Plus, sasl.ScramSha1, sasl.Plain} {
		if _, err := b.tryLogin(t, "alice", "bad", loginOpts{mechs: []sasl.Mechanism{mech}, password: "wrong-password"}); err == nil {
			t.Fatalf("%s: logged in with a wrong password", mech.Name)
		}
	}
	if _, err := b.tryLogin(t, "nobody", "x"); err == nil {
		t.Fatal("logged in as an account that does not exist")
	}
}

// TestServerGeneratedResource binds without asking for a resource.
func TestServerGeneratedResource(t *testing.T) {
	b := startBox(t, []string{"alice"})
	c := b.login(t, "alice", "")
	if !strings.HasPrefix(c.jid, "alice@"+boxDomain+"/") || len(c.jid) <= len("alice@"+boxDomain+"/") {
		t.Fatalf("bound %q", c.jid)
	}
}

// TestDirectMessage sends a message from one account to another.
func TestDirectMessage(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	alice := b.login(t, "alice", "phone")
	bob := b.login(t, "bob", "laptop")
	bob.send(`<presence/>`)
	alice.send(`<message to="bob@box.test" type="chat" id="m1"><body>hello bob</body><active xmlns="http://jabber.org/protocol/chatstates"/></message>`)
	m := bob.expect("alice's message", isMsg("hello bob"))
	if m.Get("from") != alice.jid || m.Get("type") != "chat" || m.Get("id") != "m1" {
		t.Fatalf("message %s", m)
	}
	if m.Child(nsChatStates, "active") == nil {
		t.Fatalf("the chat state was lost: %s", m)
	}
	if sid := m.Child("urn:xmpp:sid:0", "stanza-id"); sid == nil || sid.Get("by") != "bob@box.test" || sid.Get("id") == "" {
		t.Fatalf("no stanza-id: %s", m)
	}
}
