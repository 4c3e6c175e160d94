package xmpp

import (
	"strings"
	"testing"
)

// The subscription states of RFC 6121 Appendix A, as the tables name
// them.
var subStates = []string{"None", "None+PO", "None+PI", "None+PO/PI", "To", "To+PI", "From", "From+PO", "Both"}

func itemOf(state string) *rosterItem {
	it := &rosterItem{JID: "c@box.test"}
	sub, pend, _ := strings.Cut(state, "+")
	it.Sub = strings.ToLower(sub)
	it.Ask = strings.Contains(pend, "PO")
	it.PendingIn = strings.Contains(pend, "PI") || pend == "PO/PI"
	return it
}

func stateOf(it *rosterItem) string {
	if it == nil {
		return "(no item)"
	}
	s := strings.ToUpper(it.Sub[:1]) + it.Sub[1:]
	switch {
	case it.Ask && it.PendingIn:
		s += "+PO/PI"
	case it.Ask:
		s += "+PO"
	case it.PendingIn:
		s += "+PI"
	}
	return s
}

// TestAppendixA checks every row of RFC 6121 Appendix A: the new state
// and whether the stanza is delivered (or routed).
func TestAppendixA(t *testing.T) {
	type row struct {
		after   string
		deliver bool
	}
	tables := map[string]map[string]row{
		// A.2.1 outbound subscribe (always routed).
		"out subscribe": {
			"None": {"None+PO", true}, "None+PO": {"None+PO", true}, "None+PI": {"None+PO/PI", true},
			"None+PO/PI": {"None+PO/PI", true}, "To": {"To", true}, "To+PI": {"To+PI", true},
			"From": {"From+PO", true}, "From+PO": {"From+PO", true}, "Both": {"Both", true},
		},
		// A.2.2 outbound unsubscribe (always routed).
		"out unsubscribe": {
			"None": {"None", true}, "None+PO": {"None", true}, "None+PI": {"None+PI", true},
			"None+PO/PI": {"None+PI", true}, "To": {"None", true}, "To+PI": {"None+PI", true},
			"From": {"From", true}, "From+PO": {"From", true}, "Both": {"From", true},
		},
		// A.2.3 outbound subscribed: routed only when it approves.
		"out subscribed": {
			"None": {"None", false}, "None+PO": {"None+PO", false}, "None+PI": {"From", true},
			"None+PO/PI": {"From+PO", true}, "To": {"To", false}, "To+PI": {"Both", true},
			"From": {"From", false}, "From+PO": {"From+PO", false}, "Both": {"Both", false},
		},
		// A.2.4 outbound unsubscribed.
		"out unsubscribed": {
			"None": {"None", false}, "None+PO": {"None+PO", false}, "None+PI": {"None", true},
			"None+PO/PI": {"None+PO", true}, "To": {"To", false}, "To+PI": {"To", true},
			"From": {"None", true}, "From+PO": {"None+PO", true}, "Both": {"To", true},
		},
		// A.3.1 inbound subscribe: delivered when it becomes pending
		// (From, From+PO and Both are answered by the server instead).
		"in subscribe": {
			"None": {"None+PI", true}, "None+PO": {"None+PO/PI", true}, "None+PI": {"None+PI", false},
			"None+PO/PI": {"None+PO/PI", false}, "To": {"To+PI", true}, "To+PI": {"To+PI", false},
			"From": {"From", false}, "From+PO": {"From+PO", false}, "Both": {"Both", false},
		},
		// A.3.2 inbound subscribed.
		"in subscribed": {
			"None": {"None", false}, "None+PO": {"To", true}, "None+PI": {"None+PI", false},
			"None+PO/PI": {"To+PI", true}, "To": {"To", false}, "To+PI": {"To+PI", false},
			"From": {"From", false}, "From+PO": {"Both", true}, "Both": {"Both", false},
		},
		// A.3.3 inbound unsubscribe.
		"in unsubscribe": {
			"None": {"None", false}, "None+PO": {"None+PO", false}, "None+PI": {"None", true},
			"None+PO/PI": {"None+PO", true}, "To": {"To", false}, "To+PI": {"To", true},
			"From": {"None", true}, "From+PO": {"None+PO", true}, "Both": {"To", true},
		},
		// A.3.4 inbound unsubscribed.
		"in unsubscribed": {
			"None": {"None", false}, "None+PO": {"None", true}, "None+PI": {"None+PI", false},
			"None+PO/PI": {"None+PI", true}, "To": {"None", true}, "To+PI": {"None+PI", true},
			"From": {"From", false}, "From+PO": {"From", true}, "Both": {"From", true},
		},
	}
	apply := map[string]func(*rosterItem) (*rosterItem, bool){
		"out subscribe":   func(it *rosterItem) (*rosterItem, bool) { return outSubscribe(it, it.JID), true },
		"out unsubscribe": func(it *rosterItem) (*rosterItem, bool) { return outUnsubscribe(it), true },
		"out subscribed": func(it *rosterItem) (*rosterItem, bool) {
			a, act := outSubscribed(it, it.JID)
			return a, act == outRoute
		},
		"out unsubscribed": func(it *rosterItem) (*rosterItem, bool) {
			a, act := outUnsubscribed(it)
			return a, act == outRoute
		},
		"in subscribe": func(it *rosterItem) (*rosterItem, bool) {
			a, act := inSubscribe(it, it.JID)
			return a, act == inDeliver
		},
		"in subscribed":   inSubscribed,
		"in unsubscribe":  inUnsubscribe,
		"in unsubscribed": inUnsubscribed,
	}
	for name, table := range tables {
		for _, st := range subStates {
			want := table[st]
			before := itemOf(st)
			after, deliver := apply[name](before)
			if got := stateOf(after); got != want.after || deliver != want.deliver {
				t.Errorf("%s in %s: got %s (deliver %v), want %s (deliver %v)", name, st, got, deliver, want.after, want.deliver)
			}
			if stateOf(before) != st {
				t.Errorf("%s in %s changed the record it was given", name, st)
			}
		}
	}
}

// TestSubscriptionsWithoutItem covers the stanzas that meet no roster
// item, and the inbound subscribe answered by the server.
func TestSubscriptionsWithoutItem(t *testing.T) {
	it := outSubscribe(nil, "c@box.test")
	if it == nil || it.Hidden || stateOf(it) != "None+PO" {
		t.Fatalf("outbound subscribe without an item: %+v", it)
	}
	in, act := inSubscribe(nil, "u@box.test")
	if act != inDeliver || !in.Hidden || stateOf(in) != "None+PI" {
		t.Fatalf("inbound subscribe without an item: %+v %v", in, act)
	}
	if _, act := inSubscribe(itemOf("Both"), "u@box.test"); act != inAutoReply {
		t.Fatalf("inbound subscribe while Both: %v, want an automatic subscribed", act)
	}
	if it, ok := inSubscribed(nil); it != nil || ok {
		t.Fatal("inbound subscribed without an item made one")
	}
	if it, ok := inUnsubscribed(nil); it != nil || ok {
		t.Fatal("inbound unsubscribed without an item made one")
	}
	if it := outUnsubscribe(nil); it != nil {
		t.Fatal("outbound unsubscribe without an item made one")
	}
}

// TestPreApproval follows §3.4: subscribed with nothing pending marks the
// item approved (creating it); the contact's request is then approved at
// once; unsubscribed cancels a pre-approval without being routed.
func TestPreApproval(t *testing.T) {
	it, act := outSubscribed(nil, "c@box.test")
	if act != outPreApprove || !it.Approved || it.Hidden || stateOf(it) != "None" {
		t.Fatalf("pre-approval: %+v %v", it, act)
	}
	if _, act := outSubscribed(it, it.JID); act != outIgnore {
		t.Fatalf("second pre-approval: %v", act)
	}
	in, iact := inSubscribe(it, "c@box.test")
	if iact != inPreApproved || in.Approved || stateOf(in) != "From" {
		t.Fatalf("request after pre-approval: %+v %v", in, iact)
	}
	to := itemOf("To")
	to.Approved = true
	if in, _ := inSubscribe(to, to.JID); stateOf(in) != "Both" {
		t.Fatalf("request to a pre-approved To item: %s", stateOf(in))
	}
	cancel, act := outUnsubscribed(it)
	if act != outCancelPre || cancel.Approved || stateOf(cancel) != "None" {
		t.Fatalf("cancelling the pre-approval: %+v %v", cancel, act)
	}
}

// TestRosterItemElement checks the item as results and pushes show it.
func TestRosterItemElement(t *testing.T) {
	it := &rosterItem{JID: "bob@box.test", Name: "Bob", Groups: []string{"Friends", "Work"}, Sub: "none", Ask: true, Approved: true}
	got := it.element().String()
	want := `<item xmlns="jabber:iq:roster" jid="bob@box.test" name="Bob" subscription="none" ask="subscribe" approved="true"><group>Friends</group><group>Work</group></item>`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if !visibleEqual(nil, &rosterItem{Hidden: true}) || visibleEqual(nil, it) {
		t.Fatal("visibleEqual")
	}
}

// TestBlockKeys checks XEP-0016 JID matching as XEP-0191 uses it.
func TestBlockKeys(t *testing.T) {
	for _, tc := range []struct {
		jid  string
		want string
	}{
		{"bob@box.test/phone", "bob@box.test/phone bob@box.test box.test/phone box.test"},
		{"bob@box.test", "bob@box.test box.test"},
		{"box.test/x", "box.test/x box.test"},
		{"example.org", "example.org"},
	} {
		a, err := parseJID(tc.jid)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(blockKeys(a), " "); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.jid, got, tc.want)
		}
	}
}
