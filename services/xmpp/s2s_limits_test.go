package xmpp

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestFederationPeerRate: b.test lets a.test send a burst of 5 stanzas
// and then (almost) nothing; the 6th to 8th messages are dropped and
// their sender gets policy-violation; bob receives exactly the first 5.
func TestFederationPeerRate(t *testing.T) {
	aAddr, bAddr := randomListen(), randomListen()
	a := inprocFed(t, "a.test", aAddr, Federation{Hosts: map[string]string{"b.test": bAddr}}, "alice")
	b := inprocFed(t, "b.test", bAddr, Federation{Hosts: map[string]string{"a.test": aAddr},
		StanzasPerSecond: 0.001, StanzaBurst: 5}, "bob")
	alice, bob := plainLogin(t, a, "alice"), plainLogin(t, b, "bob")
	for i := 1; i <= 8; i++ {
		alice.write(fmt.Sprintf(`<message to="bob@b.test" type="chat" id="m%d"><body>n%d</body></message>`, i, i))
	}
	for i := 1; i <= 5; i++ {
		if m := bob.next(); m.Local != "message" || m.ChildText(nsClient, "body") != fmt.Sprintf("n%d", i) {
			t.Fatalf("bob's stanza %d: %s; want the message n%d", i, m, i)
		}
	}
	for i := 6; i <= 8; i++ {
		e := alice.expectRaw("the refusal", func(e *Element) bool { return e.Local == "message" })
		if e.Get("id") != fmt.Sprintf("m%d", i) || e.Get("type") != "error" || e.Get("from") != "bob@b.test" ||
			e.Child(nsClient, "error").Child(nsStanzaErr, "policy-violation") == nil {
			t.Fatalf("alice got %s; want policy-violation for m%d", e, i)
		}
	}
	// Nothing more reached bob: the next thing he reads is his ping's answer.
	bob.write(`<iq type="get" id="p1" to="b.test"><ping xmlns="urn:xmpp:ping"/></iq>`)
	if r := bob.next(); r.Local != "iq" || r.Get("id") != "p1" {
		t.Fatalf("bob got %s; want only his ping's answer", r)
	}
}

func TestPeerRatesBucket(t *testing.T) {
	r := newPeerRates(2, 3)
	t0 := time.Unix(1000, 0)
	var got []string
	for i, at := range []time.Duration{0, 0, 0, 0, 400 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond, 3 * time.Second} {
		got = append(got, fmt.Sprintf("%d:%v", i, r.admit("Peer.example", t0.Add(at))))
	}
	// 3 at once, the 4th refused; 0.4 s gives 0.8 token (refused), 0.5 s
	// 1.0 (admitted), then none; 3 s refills to the burst.
	want := "0:true 1:true 2:true 3:false 4:false 5:true 6:false 7:true"
	if strings.Join(got, " ") != want {
		t.Fatalf("admits %s; want %s", strings.Join(got, " "), want)
	}
	if !r.admit("other.example", t0) {
		t.Fatal("another domain shares the bucket")
	}
}

// TestFederationQueueBytes: a peer's queue holds at most QueueBytes; a
// stanza that would pass it is refused at once with resource-constraint.
func TestFederationQueueBytes(t *testing.T) {
	closed := randomListen() // nobody listens there: the stanzas wait
	a := inprocFed(t, "a.test", randomListen(), Federation{Hosts: map[string]string{"dead.test": closed},
		QueueBytes: 1000, QueueTimeout: time.Hour}, "alice")
	alice := plainLogin(t, a, "alice")
	body := strings.Repeat("x", 300)
	for i := 1; i <= 3; i++ {
		alice.write(fmt.Sprintf(`<message to="x@dead.test" type="chat" id="q%d"><body>%s</body></message>`, i, body))
	}
	// Two fit (about 450 bytes each), the third does not.
	e := alice.expectRaw("the refusal", func(e *Element) bool { return e.Local == "message" })
	if e.Get("id") != "q3" || e.Child(nsClient, "error").Child(nsStanzaErr, "resource-constraint") == nil {
		t.Fatalf("alice got %s; want resource-constraint for q3", e)
	}
}
