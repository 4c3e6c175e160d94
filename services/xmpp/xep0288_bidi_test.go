package xmpp

import (
	"testing"
)

// streamsIn counts srv's incoming s2s streams and how many are
// bidirectional.
func streamsIn(srv *Server) (all, bidi int) {
	srv.fed.mu.Lock()
	defer srv.fed.mu.Unlock()
	for c := range srv.fed.in {
		all++
		if c.bidi.Load() {
			bidi++
		}
	}
	return all, bidi
}

// TestFederationBidi: when both servers offer XEP-0288, a's one stream
// to b carries b's answers too; with it off on one side, each opens its
// own.
func TestFederationBidi(t *testing.T) {
	for _, c := range []struct {
		name           string
		noBidiB        bool
		wantA, wantB   int // incoming streams
		wantBidiLinkOK bool
	}{
		{"both offer", false, 0, 1, true},
		{"b does not", true, 1, 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			aAddr, bAddr := randomListen(), randomListen()
			a := inprocFed(t, "a.test", aAddr, Federation{Hosts: map[string]string{"b.test": bAddr}}, "alice")
			b := inprocFed(t, "b.test", bAddr, Federation{Hosts: map[string]string{"a.test": aAddr}, NoBidi: c.noBidiB}, "bob")
			alice, bob := plainLogin(t, a, "alice"), plainLogin(t, b, "bob")
			for i, body := range []string{"one", "two"} {
				alice.write(`<message to="bob@b.test" type="chat"><body>` + body + `</body></message>`)
				bob.expectRaw("alice's message", isMsg(body))
				bob.write(`<message to="` + alice.jid + `" type="chat"><body>re ` + body + `</body></message>`)
				if m := alice.expectRaw("bob's answer", isMsg("re "+body)); m.Get("from") != bob.jid {
					t.Fatalf("round %d: alice got %s", i, m)
				}
			}
			// An IQ both ways: ping b's server from alice, and back.
			alice.write(`<iq type="get" id="ping1" to="b.test"><ping xmlns="urn:xmpp:ping"/></iq>`)
			if r := alice.expectRaw("the pong", func(e *Element) bool { return e.Local == "iq" }); r.Get("id") != "ping1" || r.Get("type") != "result" {
				t.Fatalf("alice's ping got %s", r)
			}
			inA, _ := streamsIn(a)
			inB, bidiB := streamsIn(b)
			if inA != c.wantA || inB != c.wantB {
				t.Fatalf("incoming streams: a %d, b %d; want %d, %d", inA, inB, c.wantA, c.wantB)
			}
			if (bidiB == 1) != c.wantBidiLinkOK || (b.fed.bidiLink("b.test", "a.test") != nil) != c.wantBidiLinkOK {
				t.Fatalf("b's stream from a bidirectional: %d streams, link %v; want %v", bidiB, b.fed.bidiLink("b.test", "a.test"), c.wantBidiLinkOK)
			}
		})
	}
}
