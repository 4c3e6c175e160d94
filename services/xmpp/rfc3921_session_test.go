package xmpp

import "testing"

// TestSessionRequest: once bound, a session request (RFC 3921 §3, sent
// by Strophe.js whatever the feature says) gets a result; one with a to
// address that is not the server's is routed as any IQ.
func TestSessionRequest(t *testing.T) {
	srv, _ := startInproc(t, Config{}, "alice")
	alice := dialWS(t, serveWS(t, srv))
	alice.login("alice", "web", "SCRAM-SHA-256")
	alice.send(`<iq xmlns="jabber:client" type="set" id="_session_auth_2"><session xmlns="%s"/></iq>`, nsSession)
	if r := alice.expect("the answer", func(e *Element) bool { return e.Get("id") == "_session_auth_2" }); r.Get("type") != "result" || len(r.Kids()) != 0 {
		t.Fatalf("session request answered %s", r)
	}
	alice.send(`<iq xmlns="jabber:client" type="set" id="s2" to="nobody@%s"><session xmlns="%s"/></iq>`, boxDomain, nsSession)
	if r := alice.expect("the answer", func(e *Element) bool { return e.Get("id") == "s2" }); r.Get("type") != "error" {
		t.Fatalf("session request to an account answered %s", r)
	}
}
