package xmpp

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// End-to-end tests of RFC 6121: the roster (§2, XEP-0237 versioning),
// subscriptions (§3, Appendix A on both sides), presence (§4) between
// XMPP resources and from IRC sessions.

const rosterGet = `<iq type="get" id="{id}"><query xmlns="jabber:iq:roster"/></iq>`

// rosPush matches a roster push of jid's item.
func rosPush(jid string) func(*Element) bool {
	return func(e *Element) bool {
		if e.Local != "iq" || e.Get("type") != "set" {
			return false
		}
		return e.Child(nsRoster, "query").Child(nsRoster, "item").Get("jid") == jid
	}
}

// rosPres matches a presence of type typ ("" for available) from from.
func rosPres(from, typ string) func(*Element) bool {
	return func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == from && e.Get("type") == typ
	}
}

// expectPush waits for a roster push of jid and checks the item's
// subscription, ask and approved attributes (RFC 6121 §2.1.2).
func expectPush(t *testing.T, c *client, jid, sub, ask, approved string) (item *Element, ver string) {
	t.Helper()
	e := c.expect("roster push of "+jid+" ("+sub+")", rosPush(jid))
	if e.Get("to") != c.jid || e.Get("id") == "" {
		t.Fatalf("%s: push not addressed to the resource or without id: %s", c.jid, e)
	}
	q := e.Child(nsRoster, "query")
	it := q.Child(nsRoster, "item")
	if len(q.Kids()) != 1 || it.Get("subscription") != sub || it.Get("ask") != ask || it.Get("approved") != approved {
		t.Fatalf("%s: push %s, want subscription=%q ask=%q approved=%q", c.jid, e, sub, ask, approved)
	}
	if q.Get("ver") == "" {
		t.Fatalf("%s: push without ver (XEP-0237): %s", c.jid, e)
	}
	return it, q.Get("ver")
}

// rosterItems returns the items of a roster result by JID.
func rosterItems(t *testing.T, r *Element) map[string]*Element {
	t.Helper()
	q := r.Child(nsRoster, "query")
	if q == nil {
		t.Fatalf("roster result without a query: %s", r)
	}
	out := map[string]*Element{}
	for _, it := range q.Kids() {
		out[it.Get("jid")] = it
	}
	return out
}

// iqErrCond sends an IQ expected to fail and returns its condition.
func iqErrCond(t *testing.T, c *client, x string) string {
	t.Helper()
	id := randomID()
	c.send("%s", strings.Replace(x, "{id}", id, 1))
	r := c.expectID(id)
	if r.Get("type") != "error" {
		t.Fatalf("%s: %s: got %s, want an error", c.jid, x, r)
	}
	for _, k := range r.Child(nsClient, "error").Kids() {
		if k.Space == nsStanzaErr && k.Local != "text" {
			return k.Local
		}
	}
	t.Fatalf("error without a condition: %s", r)
	return ""
}

// online logs user in, gets its roster and sends initial presence (a
// resource that is both interested and available, RFC 6121 §2.2); it
// waits for its own presence to come back.
func online(t *testing.T, b *box, user, presence string) *client {
	t.Helper()
	c := b.login(t, user, "")
	c.iq(rosterGet)
	if presence == "" {
		presence = `<presence/>`
	}
	c.send("%s", presence)
	c.expect("own presence", rosPres(c.jid, ""))
	return c
}

// pushOf matches a roster push of exactly one item for jid with the
// given subscription, ask and approved attributes (RFC 6121 §2.1.2) and
// a version (XEP-0237).
func pushOf(jid, sub, ask, approved string) func(*Element) bool {
	return func(e *Element) bool {
		if !rosPush(jid)(e) || e.Get("id") == "" {
			return false
		}
		q := e.Child(nsRoster, "query")
		it := q.Child(nsRoster, "item")
		return len(q.Kids()) == 1 && q.Get("ver") != "" && it.Get("subscription") == sub &&
			it.Get("ask") == ask && it.Get("approved") == approved
	}
}

// expectAll waits until every predicate has matched a stanza, in any
// order, and returns the stanzas by name; other stanzas are passed over.
func expectAll(t *testing.T, c *client, want map[string]func(*Element) bool) map[string]*Element {
	t.Helper()
	got := map[string]*Element{}
	var skipped []string
	deadline := time.After(waitLimit)
	for len(got) < len(want) {
		select {
		case el := <-c.in:
			matched := false
			for name, pred := range want {
				if got[name] == nil && pred(el) {
					got[name], matched = el, true
					break
				}
			}
			if !matched {
				skipped = append(skipped, el.String())
			}
		case <-deadline:
			var missing []string
			for name := range want {
				if got[name] == nil {
					missing = append(missing, name)
				}
			}
			t.Fatalf("%s: still waiting for %s after %s; got:\n%s", c.jid, strings.Join(missing, ", "), waitLimit, strings.Join(skipped, "\n"))
		}
	}
	return got
}

// befriend makes two accounts subscribed to each other (both) with
// sessions that end before the test goes on.
func befriend(t *testing.T, b *box, user, contact string) {
	t.Helper()
	u, c := online(t, b, user, ""), online(t, b, contact, "")
	ub, cb := user+"@"+boxDomain, contact+"@"+boxDomain
	u.send(`<presence to="%s" type="subscribe"/>`, cb)
	c.expect("request", rosPres(ub, "subscribe"))
	c.send(`<presence to="%s" type="subscribed"/>`, ub)
	u.expect("to", pushOf(cb, "to", "", ""))
	c.send(`<presence to="%s" type="subscribe"/>`, ub)
	u.expect("request", rosPres(cb, "subscribe"))
	u.send(`<presence to="%s" type="subscribed"/>`, cb)
	u.expect("both", pushOf(cb, "both", "", ""))
	c.expect("both", pushOf(ub, "both", "", ""))
	u.close()
	c.close()
}

// TestRosterStreamFeatures checks that a bound stream offers roster
// versioning (XEP-0237) and subscription pre-approval (RFC 6121 §3.4).
func TestRosterStreamFeatures(t *testing.T) {
	b := startBox(t, []string{"alice"})
	c, _ := b.rawConnect(t)
	c.write(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">` +
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00"+password("alice"))) + `</auth>`)
	if el := c.next(); !el.Is(nsSASL, "success") {
		t.Fatalf("PLAIN: %s", el)
	}
	f := c.open()
	if f.Child(nsRosterVer, "ver") == nil || f.Child(nsPreApproval, "sub") == nil {
		t.Fatalf("features after authentication lack ver or sub: %s", f)
	}
}

// TestRosterGetSetPushRemove: roster sets are pushed to every interested
// resource with a new version, a get with the current version is an
// empty result, validation errors follow §2.3.3, and removal pushes
// subscription="remove" (§2.5).
func TestRosterGetSetPushRemove(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	a1 := b.login(t, "alice", "")
	a2 := b.login(t, "alice", "")
	a3 := b.login(t, "alice", "") // never asks for the roster: no pushes
	r := a1.iq(`<iq type="get" id="{id}"><query xmlns="jabber:iq:roster" ver=""/></iq>`)
	q := r.Child(nsRoster, "query")
	if q == nil || q.Get("ver") == "" || len(q.Kids()) != 0 || r.Get("to") != a1.jid {
		t.Fatalf("empty roster: %s", r)
	}
	ver0 := q.Get("ver")
	a2.iq(rosterGet)

	// ask and subscription (other than remove) are the server's to set.
	a1.iq(`<iq type="set" id="{id}"><query xmlns="jabber:iq:roster"><item jid="bob@box.test" name="Bob" subscription="both" ask="subscribe"><group>Friends</group><group>Work</group></item></query></iq>`)
	var ver1 string
	for _, c := range []*client{a1, a2} {
		it, ver := expectPush(t, c, "bob@box.test", "none", "", "")
		if it.Get("name") != "Bob" || len(it.Kids()) != 2 || it.Kids()[0].Text() != "Friends" || it.Kids()[1].Text() != "Work" {
			t.Fatalf("pushed item %s", it)
		}
		if ver == ver0 || ver1 != "" && ver != ver1 {
			t.Fatalf("push version %q (before %q, other push %q)", ver, ver0, ver1)
		}
		ver1 = ver
	}
	a3.quiet("roster push to a resource that did not ask for the roster", rosPush("bob@box.test"))

	// XEP-0237: the current version gets an empty result; an older one the
	// whole roster.
	r = a2.iq(`<iq type="get" id="{id}"><query xmlns="jabber:iq:roster" ver="` + ver1 + `"/></iq>`)
	if len(r.Kids()) != 0 {
		t.Fatalf("get with the current version: %s, want an empty result", r)
	}
	r = a2.iq(`<iq type="get" id="{id}"><query xmlns="jabber:iq:roster" ver="` + ver0 + `"/></iq>`)
	items := rosterItems(t, r)
	if r.Child(nsRoster, "query").Get("ver") != ver1 || len(items) != 1 || items["bob@box.test"].Get("subscription") != "none" {
		t.Fatalf("get with an old version: %s", r)
	}
	// A second account's session shares nothing of it; a second session
	// of the account sees the same roster.
	bob := b.login(t, "bob", "")
	if r := bob.iq(rosterGet); len(rosterItems(t, r)) != 0 {
		t.Fatalf("bob's roster: %s", r)
	}
	if r := a3.iq(rosterGet); len(rosterItems(t, r)) != 1 {
		t.Fatalf("alice's roster from another session: %s", r)
	}

	// An update replaces name and groups.
	a1.iq(`<iq type="set" id="{id}"><query xmlns="jabber:iq:roster"><item jid="bob@box.test" name="Robert"/></query></iq>`)
	for _, c := range []*client{a1, a2, a3} {
		it, ver := expectPush(t, c, "bob@box.test", "none", "", "")
		if it.Get("name") != "Robert" || len(it.Kids()) != 0 || ver == ver1 {
			t.Fatalf("update pushed %s (ver %s)", it, ver)
		}
	}

	// Errors (§2.3.3, §2.5.3).
	for _, tc := range []struct{ x, cond string }{
		{`<iq type="set" id="{id}"><query xmlns="jabber:iq:roster"><item jid="a@box.test"/><item jid="b@box.test"/></query></iq>`, "bad-request"},
		{`<iq type="set" id="{id}"><query xmlns="jabber:iq:roster"/></iq>`, "bad-request"},
		{`<iq type="set" id="{id}"><query xmlns="jabber:iq:roster"><item name="x"/></query></iq>`, "bad-request"},
		{`<iq type="set" id="{id}"><query xmlns="jabber:iq:roster"><item jid="a@b@c"/></query></iq>`, "jid-malformed"},
		{`<iq type="set" id="{id}"><query xmlns="jabber:iq:roster"><item jid="carol@box.test"><group>G</group><group>G</group></item></query></iq>`, "bad-request"},
		{`<iq type="set" id="{id}"><query xmlns="jabber:iq:roster"><item jid="carol@box.test"><group></group></item></query></iq>`, "not-acceptable"},
		{`<iq type="set" id="{id}"><query xmlns="jabber:iq:roster"><item jid="carol@box.test" name="` + strings.Repeat("n", 2000) + `"/></query></iq>`, "not-acceptable"},
		{`<iq type="set" id="{id}"><query xmlns="jabber:iq:roster"><item jid="carol@box.test"><group>` + strings.Repeat("g", 2000) + `</group></item></query></iq>`, "not-acceptable"},
		{`<iq type="set" id="{id}"><query xmlns="jabber:iq:roster"><item jid="alice@box.test"/></query></iq>`, "not-allowed"},
		{`<iq type="set" id="{id}"><query xmlns="jabber:iq:roster"><item jid="carol@box.test" subscription="remove"/></query></iq>`, "item-not-found"},
		{`<iq type="get" id="{id}" to="bob@box.test"><query xmlns="jabber:iq:roster"/></iq>`, "forbidden"},
		{`<iq type="set" id="{id}" to="bob@box.test"><query xmlns="jabber:iq:roster"><item jid="x@box.test"/></query></iq>`, "forbidden"},
	} {
		if got := iqErrCond(t, a1, tc.x); got != tc.cond {
			t.Errorf("%.120s: got <%s/>, want <%s/>", tc.x, got, tc.cond)
		}
	}
	a2.quiet("push after a failed set", rosPush("carol@box.test"))

	// Removal (§2.5): result, then a push of subscription="remove".
	a2.iq(`<iq type="set" id="{id}"><query xmlns="jabber:iq:roster"><item jid="bob@box.test" subscription="remove"/></query></iq>`)
	for _, c := range []*client{a1, a2, a3} {
		e := c.expect("removal push", rosPush("bob@box.test"))
		it := e.Child(nsRoster, "query").Child(nsRoster, "item")
		if it.Get("subscription") != "remove" || e.Child(nsRoster, "query").Get("ver") == "" {
			t.Fatalf("removal push %s", e)
		}
	}
	if r := a1.iq(rosterGet); len(rosterItems(t, r)) != 0 {
		t.Fatalf("roster after removal: %s", r)
	}
}

// TestSubscriptionHandshake runs alice ⇄ bob from none to both and back
// (RFC 6121 §3.1-§3.3), checking at each step the roster pushes of both
// sides, the stanzas delivered (from bare JIDs, §3.1.2) and the presence
// sent on approval and on cancellation.
func TestSubscriptionHandshake(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	a1, a2 := online(t, b, "alice", ""), online(t, b, "alice", "")
	b1 := online(t, b, "bob", `<presence><show>chat</show><status>hello</status></presence>`)
	const ab, bb = "alice@box.test", "bob@box.test"
	for _, c := range []*client{a1, a2} {
		c.expect("the other resource", func(e *Element) bool {
			return e.Local == "presence" && e.Get("from") != c.jid && strings.HasPrefix(e.Get("from"), ab+"/")
		})
	}

	// alice asks (to a full JID: subscriptions are to the bare JID).
	a1.send(`<presence to="bob@box.test/whatever" type="subscribe" id="s1"><status>it is alice</status></presence>`)
	for _, c := range []*client{a1, a2} {
		c.expect("push none+ask", pushOf(bb, "none", "subscribe", ""))
	}
	req := b1.expect("alice's request", rosPres(ab, "subscribe"))
	if req.Get("to") != bb || req.Get("id") != "s1" || req.ChildText(nsClient, "status") != "it is alice" {
		t.Fatalf("request %s", req)
	}
	// A pending inbound request is no roster change; a second request
	// while one is pending is not delivered again.
	a2.send(`<presence to="bob@box.test" type="subscribe"/>`)
	b1.quiet("a push or a repeated request", func(e *Element) bool { return rosPush(ab)(e) || rosPres(ab, "subscribe")(e) })

	// bob approves: his side says from, alice's to; alice's resources get
	// subscribed and bob's presence.
	b1.send(`<presence to="alice@box.test" type="subscribed"/>`)
	b1.expect("push from", pushOf(ab, "from", "", ""))
	for _, c := range []*client{a1, a2} {
		got := expectAll(t, c, map[string]func(*Element) bool{
			"push to":        pushOf(bb, "to", "", ""),
			"subscribed":     rosPres(bb, "subscribed"),
			"bob's presence": rosPres(b1.jid, ""),
		})
		p := got["bob's presence"]
		if p.ChildText(nsClient, "show") != "chat" || p.ChildText(nsClient, "status") != "hello" || p.Get("to") != c.jid {
			t.Fatalf("bob's presence after approval: %s", p)
		}
	}
	// bob's presence now reaches alice; alice's does not reach bob.
	b1.send(`<presence><show>away</show></presence>`)
	for _, c := range []*client{a1, a2} {
		if p := c.expect("bob away", rosPres(b1.jid, "")); p.ChildText(nsClient, "show") != "away" {
			t.Fatalf("bob's presence: %s", p)
		}
	}
	a1.send(`<presence><show>xa</show></presence>`)
	a2.expect("a1's presence (own account)", func(e *Element) bool {
		return rosPres(a1.jid, "")(e) && e.ChildText(nsClient, "show") == "xa"
	})
	b1.quiet("alice's presence without a subscription", rosPres(a1.jid, ""))

	// bob asks back; alice (a2) approves: both.
	b1.send(`<presence to="alice@box.test" type="subscribe"/>`)
	b1.expect("push from+ask", pushOf(ab, "from", "subscribe", ""))
	for _, c := range []*client{a1, a2} {
		c.expect("bob's request", rosPres(bb, "subscribe"))
	}
	a2.send(`<presence to="bob@box.test" type="subscribed"/>`)
	for _, c := range []*client{a1, a2} {
		c.expect("push both", pushOf(bb, "both", "", ""))
	}
	got := expectAll(t, b1, map[string]func(*Element) bool{
		"push both":    pushOf(ab, "both", "", ""),
		"subscribed":   rosPres(ab, "subscribed"),
		"a1 presence":  rosPres(a1.jid, ""),
		"a2 presence:": rosPres(a2.jid, ""),
	})
	if got["a1 presence"].ChildText(nsClient, "show") != "xa" {
		t.Fatalf("a1's presence after approval: %s", got["a1 presence"])
	}
	if it := rosterItems(t, a1.iq(rosterGet))[bb]; it.Get("subscription") != "both" || it.Get("ask") != "" {
		t.Fatalf("alice's item for bob: %s", it)
	}
	if it := rosterItems(t, b1.iq(rosterGet))[ab]; it.Get("subscription") != "both" {
		t.Fatalf("bob's item for alice: %s", it)
	}

	// alice unsubscribes (§3.3): alice from, bob to; alice gets bob's
	// unavailable, bob the unsubscribe.
	a1.send(`<presence to="bob@box.test" type="unsubscribe"/>`)
	for _, c := range []*client{a1, a2} {
		expectAll(t, c, map[string]func(*Element) bool{
			"push from":       pushOf(bb, "from", "", ""),
			"bob unavailable": rosPres(b1.jid, "unavailable"),
		})
	}
	expectAll(t, b1, map[string]func(*Element) bool{
		"push to":     pushOf(ab, "to", "", ""),
		"unsubscribe": rosPres(ab, "unsubscribe"),
	})

	// alice cancels bob's subscription (§3.2): bob gets unavailable from
	// alice's resources and unsubscribed.
	a2.send(`<presence to="bob@box.test" type="unsubscribed"/>`)
	for _, c := range []*client{a1, a2} {
		c.expect("push none", pushOf(bb, "none", "", ""))
	}
	expectAll(t, b1, map[string]func(*Element) bool{
		"push none":      pushOf(ab, "none", "", ""),
		"a1 unavailable": rosPres(a1.jid, "unavailable"),
		"a2 unavailable": rosPres(a2.jid, "unavailable"),
		"unsubscribed":   rosPres(ab, "unsubscribed"),
	})
	// Nothing crosses any more.
	b1.send(`<presence><show>dnd</show></presence>`)
	a1.quiet("bob's presence after unsubscribing", rosPres(b1.jid, ""))
}

// TestRosterRemoveCancelsBothWays: removing a contact with a subscription
// both ways sends unsubscribe and unsubscribed on the user's behalf
// (§2.5.2).
func TestRosterRemoveCancelsBothWays(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	befriend(t, b, "alice", "bob")
	a1 := online(t, b, "alice", "")
	b1 := online(t, b, "bob", "")
	a1.expect("bob's presence", rosPres(b1.jid, ""))
	a1.iq(`<iq type="set" id="{id}"><query xmlns="jabber:iq:roster"><item jid="bob@box.test" subscription="remove"/></query></iq>`)
	expectAll(t, a1, map[string]func(*Element) bool{
		"removal push":    pushOf("bob@box.test", "remove", "", ""),
		"bob unavailable": rosPres(b1.jid, "unavailable"),
	})
	expectAll(t, b1, map[string]func(*Element) bool{
		"push to":           pushOf("alice@box.test", "to", "", ""),
		"push none":         pushOf("alice@box.test", "none", "", ""),
		"alice unavailable": rosPres(a1.jid, "unavailable"),
		"unsubscribe":       rosPres("alice@box.test", "unsubscribe"),
		"unsubscribed":      rosPres("alice@box.test", "unsubscribed"),
	})
	if r := b1.iq(rosterGet); rosterItems(t, r)["alice@box.test"].Get("subscription") != "none" {
		t.Fatalf("bob's roster after alice removed him: %s", r)
	}
}

// TestSubscriptionPreApproval: subscribed sent with nothing pending is a
// pre-approval (approved="true", §3.4); the contact's request is then
// approved without reaching the user; unsubscribed cancels one.
func TestSubscriptionPreApproval(t *testing.T) {
	b := startBox(t, []string{"alice", "bob", "carol"})
	a1, b1 := online(t, b, "alice", ""), online(t, b, "bob", "")
	a1.send(`<presence to="bob@box.test" type="subscribed"/>`)
	a1.expect("pre-approval push", pushOf("bob@box.test", "none", "", "true"))
	b1.quiet("a pre-approval routed to the contact", rosPres("alice@box.test", "subscribed"))

	b1.send(`<presence to="alice@box.test" type="subscribe"/>`)
	expectAll(t, b1, map[string]func(*Element) bool{
		"push none+ask":    pushOf("alice@box.test", "none", "subscribe", ""),
		"push to":          pushOf("alice@box.test", "to", "", ""),
		"subscribed":       rosPres("alice@box.test", "subscribed"),
		"alice's presence": rosPres(a1.jid, ""),
	})
	a1.expect("push from", pushOf("bob@box.test", "from", "", ""))
	a1.quiet("a pre-approved request", rosPres("bob@box.test", "subscribe"))

	// Cancelling a pre-approval is not routed (§3.2.2).
	a1.send(`<presence to="carol@box.test" type="subscribed"/>`)
	a1.expect("pre-approval push", pushOf("carol@box.test", "none", "", "true"))
	a1.send(`<presence to="carol@box.test" type="unsubscribed"/>`)
	a1.expect("pre-approval cancelled", pushOf("carol@box.test", "none", "", ""))
	c1 := online(t, b, "carol", "")
	c1.send(`<presence to="alice@box.test" type="subscribe"/>`)
	a1.expect("carol's request", rosPres("carol@box.test", "subscribe"))
	c1.quiet("unsubscribed after a cancelled pre-approval", rosPres("alice@box.test", "unsubscribed"))
}

// TestSubscriptionRequestAtNextLogin: a request to an offline contact is
// kept and delivered at each of its initial presences until answered
// (§3.1.3); a request to an account that does not exist is answered with
// unsubscribed.
func TestSubscriptionRequestAtNextLogin(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	a1 := online(t, b, "alice", "")
	a1.send(`<presence to="bob@box.test" type="subscribe"><status>add me</status></presence>`)
	a1.expect("push none+ask", pushOf("bob@box.test", "none", "subscribe", ""))

	b1 := b.login(t, "bob", "")
	if r := b1.iq(rosterGet); len(rosterItems(t, r)) != 0 {
		t.Fatalf("a pending request shows in the roster: %s", r)
	}
	b1.quiet("a request before initial presence", rosPres("alice@box.test", "subscribe"))
	b1.send(`<presence/>`)
	if p := b1.expect("alice's request", rosPres("alice@box.test", "subscribe")); p.ChildText(nsClient, "status") != "add me" || p.Get("to") != "bob@box.test" {
		t.Fatalf("request %s", p)
	}
	b2 := b.login(t, "bob", "")
	b2.iq(rosterGet)
	b2.send(`<presence/>`)
	b2.expect("alice's request again", rosPres("alice@box.test", "subscribe"))
	b2.send(`<presence to="alice@box.test" type="subscribed"/>`)
	b2.expect("push from", pushOf("alice@box.test", "from", "", ""))
	a1.expect("push to", pushOf("bob@box.test", "to", "", ""))
	b3 := b.login(t, "bob", "")
	b3.send(`<presence/>`)
	b3.expect("own presence", rosPres(b3.jid, ""))
	b3.quiet("an answered request", rosPres("alice@box.test", "subscribe"))

	a1.send(`<presence to="nobody@box.test" type="subscribe"/>`)
	expectAll(t, a1, map[string]func(*Element) bool{
		"push none+ask": pushOf("nobody@box.test", "none", "subscribe", ""),
		"push none":     pushOf("nobody@box.test", "none", "", ""),
		"unsubscribed":  rosPres("nobody@box.test", "unsubscribed"),
	})
}

// TestPresenceTwoResources: each of alice's two resources sees each of
// bob's two with its show, status and priority, from the probes at
// initial presence and from the broadcasts after; a resource that ends
// without unavailable presence is announced unavailable (§4.5.2).
func TestPresenceTwoResources(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	befriend(t, b, "alice", "bob")
	b1 := online(t, b, "bob", `<presence><show>away</show><status>lunch</status><priority>5</priority></presence>`)
	b2 := online(t, b, "bob", `<presence><show>dnd</show><priority>-1</priority></presence>`)
	a1 := online(t, b, "alice", `<presence><priority>3</priority></presence>`)
	a2 := online(t, b, "alice", "")
	type want struct{ show, status, prio string }
	check := func(c *client, wants map[string]want) {
		t.Helper()
		preds := map[string]func(*Element) bool{}
		for from := range wants {
			preds[from] = rosPres(from, "")
		}
		for from, p := range expectAll(t, c, preds) {
			w := wants[from]
			if p.ChildText(nsClient, "show") != w.show || p.ChildText(nsClient, "status") != w.status ||
				p.ChildText(nsClient, "priority") != w.prio || p.Get("to") != c.jid {
				t.Fatalf("%s: presence %s, want show %q status %q priority %q", c.jid, p, w.show, w.status, w.prio)
			}
		}
	}
	check(a1, map[string]want{b1.jid: {"away", "lunch", "5"}, b2.jid: {"dnd", "", "-1"}, a2.jid: {}})
	check(a2, map[string]want{b1.jid: {"away", "lunch", "5"}, b2.jid: {"dnd", "", "-1"}, a1.jid: {"", "", "3"}})
	check(b1, map[string]want{a1.jid: {"", "", "3"}, a2.jid: {}})

	b1.send(`<presence><show>chat</show><priority>10</priority></presence>`)
	check(a1, map[string]want{b1.jid: {"chat", "", "10"}})
	check(a2, map[string]want{b1.jid: {"chat", "", "10"}})
	b2.close()
	for _, c := range []*client{a1, a2, b1} {
		c.expect("b2 unavailable", rosPres(b2.jid, "unavailable"))
	}
	a2.send(`<presence type="unavailable"/>`)
	b1.expect("a2 unavailable", rosPres(a2.jid, "unavailable"))
	a1.expect("a2 unavailable", rosPres(a2.jid, "unavailable"))
	b1.send(`<presence><show>xa</show></presence>`)
	a1.expect("bob xa", rosPres(b1.jid, ""))
	a2.quiet("presence to an unavailable resource", rosPres(b1.jid, ""))
}

// TestIRCPresenceOfContact: the presence of bob's IRC session (AWAY and
// back, then quitting) reaches alice, who is subscribed to bob, as the
// resource irc-<n>; carol, who is not, sees nothing.
func TestIRCPresenceOfContact(t *testing.T) {
	b := startBox(t, []string{"alice", "bob", "carol"})
	befriend(t, b, "alice", "bob")
	irc := b.ircLogin(t, "bob")
	irc.raw("AWAY :gone fishing")
	irc.expect("RPL_NOWAWAY", func(m ircmsg.Message) bool { return m.Command == "306" })

	isIRC := func(typ string) func(*Element) bool {
		return func(e *Element) bool {
			return e.Local == "presence" && strings.HasPrefix(e.Get("from"), "bob@box.test/irc-") && e.Get("type") == typ
		}
	}
	a1 := online(t, b, "alice", "")
	c1 := online(t, b, "carol", "")
	p := a1.expect("bob's IRC presence (probe)", isIRC(""))
	if p.ChildText(nsClient, "show") != "away" || p.ChildText(nsClient, "status") != "gone fishing" || p.Get("to") != a1.jid {
		t.Fatalf("IRC presence at login: %s", p)
	}
	res := p.Get("from")
	irc.raw("AWAY")
	irc.expect("RPL_UNAWAY", func(m ircmsg.Message) bool { return m.Command == "305" })
	p = a1.expect("bob back", isIRC(""))
	if p.Get("from") != res || p.Child(nsClient, "show") != nil {
		t.Fatalf("IRC presence after AWAY: %s", p)
	}
	irc.raw("QUIT :bye")
	a1.expect("bob's IRC session gone", func(e *Element) bool { return isIRC("unavailable")(e) && e.Get("from") == res })
	c1.quiet("IRC presence of someone carol is not subscribed to", isIRC(""))
}
