package xmpp

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// End-to-end tests of service discovery (XEP-0030), the server's entity
// capabilities (XEP-0115) and the small server features: software
// version (XEP-0092), entity time (XEP-0202), last activity (XEP-0012)
// and private XML storage (XEP-0049).

// iqErrorCondition is the defined condition of an error stanza, or "".
func iqErrorCondition(el *Element) string {
	if el.Get("type") != "error" {
		return ""
	}
	for _, k := range el.Child(nsClient, "error").Kids() {
		if k.Space == nsStanzaErr && k.Local != "text" {
			return k.Local
		}
	}
	return ""
}

// iqErr sends an IQ (XML with {id}) that must fail with cond.
func (c *client) iqErr(x, cond string) *Element {
	c.t.Helper()
	id := randomID()
	c.send("%s", strings.Replace(x, "{id}", id, 1))
	r := c.expectID(id)
	if got := iqErrorCondition(r); got != cond {
		c.t.Fatalf("%s: %s: want error %s, got %s", c.jid, x, cond, r)
	}
	return r
}

// rawResponse reads until the IQ response with id.
func rawResponse(c *rawClient, id string) *Element {
	c.t.Helper()
	for {
		el := c.next()
		if el.Local == "iq" && el.Get("id") == id {
			return el
		}
	}
}

// discoFeatures returns the feature vars of a disco#info result, failing
// on duplicates.
func discoFeatures(t *testing.T, r *Element) []string {
	t.Helper()
	q := r.Child(nsDiscoInfo, "query")
	if q == nil {
		t.Fatalf("no disco#info query in %s", r)
	}
	var out []string
	for _, f := range q.Kids() {
		if f.Is(nsDiscoInfo, "feature") {
			if slices.Contains(out, f.Get("var")) {
				t.Errorf("feature %s listed twice", f.Get("var"))
			}
			out = append(out, f.Get("var"))
		}
	}
	return out
}

func discoIdentities(r *Element) [][4]string {
	var out [][4]string
	for _, k := range r.Child(nsDiscoInfo, "query").Kids() {
		if k.Is(nsDiscoInfo, "identity") {
			out = append(out, [4]string{k.Get("category"), k.Get("type"), k.Lang(), k.Get("name")})
		}
	}
	return out
}

// testCapsVer computes a XEP-0115 §5.1 ver from a disco#info result,
// independently of the server's code: identities, features and the
// XEP-0128 forms (§5.4).
func testCapsVer(r *Element) string {
	ids := discoIdentities(r)
	sort.Slice(ids, func(i, j int) bool {
		return strings.Join(ids[i][:3], "/") < strings.Join(ids[j][:3], "/")
	})
	var feats []string
	for _, k := range r.Child(nsDiscoInfo, "query").Kids() {
		if k.Is(nsDiscoInfo, "feature") {
			feats = append(feats, k.Get("var"))
		}
	}
	sort.Strings(feats)
	var s string
	for _, id := range ids {
		s += id[0] + "/" + id[1] + "/" + id[2] + "/" + id[3] + "<"
	}
	for _, f := range feats {
		s += f + "<"
	}
	type form struct {
		formType string
		fields   [][2]string // var and "value<value<"
	}
	var forms []form
	for _, x := range r.Child(nsDiscoInfo, "query").Kids() {
		if !x.Is(nsXData, "x") {
			continue
		}
		var f form
		for _, fl := range x.Kids() {
			if !fl.Is(nsXData, "field") {
				continue
			}
			var vals []string
			for _, v := range fl.Kids() {
				if v.Is(nsXData, "value") {
					vals = append(vals, v.Text())
				}
			}
			if fl.Get("var") == "FORM_TYPE" {
				f.formType = vals[0]
				continue
			}
			sort.Strings(vals)
			var vs string
			for _, v := range vals {
				vs += v + "<"
			}
			f.fields = append(f.fields, [2]string{fl.Get("var"), vs})
		}
		sort.Slice(f.fields, func(i, j int) bool { return f.fields[i][0] < f.fields[j][0] })
		forms = append(forms, f)
	}
	sort.Slice(forms, func(i, j int) bool { return forms[i].formType < forms[j].formType })
	for _, f := range forms {
		s += f.formType + "<"
		for _, fl := range f.fields {
			s += fl[0] + "<" + fl[1]
		}
	}
	sum := sha1.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func requireFeatures(t *testing.T, have []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(have, w) {
			t.Errorf("feature %s missing from %v", w, have)
		}
	}
}

// TestDiscoServerInfo: disco#info on the domain has the identity
// server/im and the features of the server; the caps in the stream
// features after authentication hash exactly that, and the node#ver node
// answers the same; unknown nodes are item-not-found.
func TestDiscoServerInfo(t *testing.T) {
	b := startBox(t, []string{"alice"})
	alice := b.login(t, "alice", "")
	r := alice.iq(`<iq type="get" id="{id}" to="box.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if r.Get("from") != boxDomain || r.Get("to") != alice.jid {
		t.Fatalf("addresses of %s", r)
	}
	if ids := discoIdentities(r); len(ids) != 1 || ids[0] != [4]string{"server", "im", "", "chatbox"} {
		t.Fatalf("identities %v", ids)
	}
	feats := discoFeatures(t, r)
	requireFeatures(t, feats, nsDiscoInfo, nsDiscoItems, "urn:xmpp:ping", "urn:xmpp:carbons:2",
		"jabber:iq:version", "urn:xmpp:time", "jabber:iq:last", "vcard-temp", "jabber:iq:private", "jabber:iq:register")
	if r.Child(nsDiscoInfo, "query").Get("node") != "" {
		t.Fatalf("a node on a query without one: %s", r)
	}

	if q := r.Child(nsDiscoInfo, "query"); q.Child(nsXData, "x") != nil {
		t.Fatalf("a XEP-0128 form without a box admin: %s", r)
	}

	raw, c := boundCaps(t, b, "alice")
	want := testCapsVer(r)
	if c.Get("hash") != "sha-1" || c.Get("node") != "https://chatbox.invalid" || c.Get("ver") != want {
		t.Fatalf("caps %s, want ver %s (from %s)", c, want, r)
	}
	raw.write(`<iq type="set" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>`)
	if el := rawResponse(raw, "b1"); el.Get("type") != "result" {
		t.Fatalf("bind: %s", el)
	}
	node := c.Get("node") + "#" + c.Get("ver")
	raw.write(`<iq type="get" id="d1" to="box.test"><query xmlns="http://jabber.org/protocol/disco#info" node="` + node + `"/></iq>`)
	rn := rawResponse(raw, "d1")
	if rn.Get("type") != "result" || rn.Child(nsDiscoInfo, "query").Get("node") != node {
		t.Fatalf("disco#info on the caps node: %s", rn)
	}
	if testCapsVer(rn) != want || !slices.Equal(discoFeatures(t, rn), feats) {
		t.Fatalf("the caps node answers %s, the domain %s", rn, r)
	}

	alice.iqErr(`<iq type="get" id="{id}" to="box.test"><query xmlns="http://jabber.org/protocol/disco#info" node="no-such-node"/></iq>`, "item-not-found")
	alice.iqErr(`<iq type="get" id="{id}" to="box.test"><query xmlns="http://jabber.org/protocol/disco#items" node="no-such-node"/></iq>`, "item-not-found")
	alice.iqErr(`<iq type="set" id="{id}" to="box.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, "bad-request")
}

// boundCaps authenticates account on a raw stream and returns it with
// the caps the stream features carry after SASL (read raw: mellium
// hides the features).
func boundCaps(t *testing.T, b *box, account string) (*rawClient, *Element) {
	t.Helper()
	raw, _ := b.rawConnect(t)
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + account + "\x00" + password(account)))
	raw.write(`<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">` + auth + `</auth>`)
	if el := raw.next(); !el.Is(nsSASL, "success") {
		t.Fatalf("PLAIN: %s", el)
	}
	features := raw.open()
	c := features.Child(nsCaps, "c")
	if c == nil {
		t.Fatalf("no caps in the bound stream features %s", features)
	}
	return raw, c
}

// TestDiscoContactAddresses: XEP-0157 with XEP-0128. Once alice is a box
// admin, disco#info on the domain carries the serverinfo form with
// admin-addresses xmpp:alice@box.test, the caps ver of the stream
// features is computed over identities, features and that form, and the
// caps node answers the form too.
func TestDiscoContactAddresses(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	_, before := boundCaps(t, b, "bob")
	b.cli(t, "", "user", "admin", "alice", "yes")
	bob := b.login(t, "bob", "")
	r := bob.iq(`<iq type="get" id="{id}" to="box.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	var forms []*Element
	for _, k := range r.Child(nsDiscoInfo, "query").Kids() {
		if k.Is(nsXData, "x") {
			forms = append(forms, k)
		}
	}
	if len(forms) != 1 || forms[0].Get("type") != "result" {
		t.Fatalf("want one result form in %s", r)
	}
	vals := xdataValues(forms[0])
	if len(vals) != 2 || !slices.Equal(vals["FORM_TYPE"], []string{"http://jabber.org/network/serverinfo"}) ||
		!slices.Equal(vals["admin-addresses"], []string{"xmpp:alice@box.test"}) {
		t.Fatalf("serverinfo form %v in %s", vals, r)
	}
	for _, f := range forms[0].Kids() {
		if f.Get("var") == "FORM_TYPE" && f.Get("type") != "hidden" {
			t.Fatalf("FORM_TYPE not hidden: %s", f)
		}
	}

	raw, c := boundCaps(t, b, "bob")
	want := testCapsVer(r)
	if c.Get("ver") != want {
		t.Fatalf("caps %s, want ver %s (from %s)", c, want, r)
	}
	if c.Get("ver") == before.Get("ver") {
		t.Fatalf("the caps ver %s did not change with the form", c.Get("ver"))
	}
	raw.write(`<iq type="set" id="b1"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></iq>`)
	if el := rawResponse(raw, "b1"); el.Get("type") != "result" {
		t.Fatalf("bind: %s", el)
	}
	node := c.Get("node") + "#" + c.Get("ver")
	raw.write(`<iq type="get" id="d1" to="box.test"><query xmlns="http://jabber.org/protocol/disco#info" node="` + node + `"/></iq>`)
	rn := rawResponse(raw, "d1")
	if rn.Get("type") != "result" || rn.Child(nsDiscoInfo, "query").Get("node") != node || testCapsVer(rn) != want {
		t.Fatalf("disco#info on the caps node: %s", rn)
	}
	// The old ver's node is gone.
	bob.iqErr(`<iq type="get" id="{id}" to="box.test"><query xmlns="http://jabber.org/protocol/disco#info" node="`+
		before.Get("node")+"#"+before.Get("ver")+`"/></iq>`, "item-not-found")
}

// TestDiscoServerItems: disco#items on the domain lists the connected
// components, and no longer once they left.
func TestDiscoServerItems(t *testing.T) {
	b := startBox(t, []string{"alice"}, "xmpp.component_listen=127.0.0.1:0",
		"xmpp.components=bot.box.test="+compSecret)
	alice := b.login(t, "alice", "")
	items := func() []string {
		r := alice.iq(`<iq type="get" id="{id}" to="box.test"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
		q := r.Child(nsDiscoItems, "query")
		if q == nil || q.Get("node") != "" {
			t.Fatalf("disco#items: %s", r)
		}
		var jids []string
		for _, it := range q.Kids() {
			if !it.Is(nsDiscoItems, "item") || it.Get("jid") == "" {
				t.Fatalf("bad item in %s", r)
			}
			jids = append(jids, it.Get("jid"))
		}
		return jids
	}
	if slices.Contains(items(), "bot.box.test") {
		t.Fatal("a component that is not connected is listed")
	}
	nc, _, err := b.component(t, "bot.box.test", compSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := items(); !slices.Contains(got, "bot.box.test") {
		t.Fatalf("items %v lack the connected component", got)
	}
	nc.Close()
}

// TestDiscoAccount: the server answers disco for an account's bare JID
// (identity account/registered), its own or another's; an account that
// does not exist is service-unavailable, an unknown node item-not-found.
func TestDiscoAccount(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	alice := b.login(t, "alice", "")
	for _, to := range []string{` to="bob@box.test"`, ``, ` to="alice@box.test"`} {
		r := alice.iq(`<iq type="get" id="{id}"` + to + `><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
		if !slices.Contains(discoIdentities(r), [4]string{"account", "registered", "", ""}) {
			t.Fatalf("%s: identities %v", to, discoIdentities(r))
		}
		requireFeatures(t, discoFeatures(t, r), nsDiscoInfo, nsDiscoItems, "vcard-temp", "jabber:iq:last")
		it := alice.iq(`<iq type="get" id="{id}"` + to + `><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
		if it.Child(nsDiscoItems, "query") == nil {
			t.Fatalf("disco#items of %s: %s", to, it)
		}
	}
	alice.iqErr(`<iq type="get" id="{id}" to="nobody@box.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`, "service-unavailable")
	alice.iqErr(`<iq type="get" id="{id}" to="nobody@box.test"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`, "service-unavailable")
	alice.iqErr(`<iq type="get" id="{id}" to="bob@box.test"><query xmlns="http://jabber.org/protocol/disco#info" node="x"/></iq>`, "item-not-found")
	alice.iqErr(`<iq type="get" id="{id}" to="bob@box.test"><query xmlns="http://jabber.org/protocol/disco#items" node="no-such-node"/></iq>`, "item-not-found")
}

// TestServerVersionTimeUptime: XEP-0092, XEP-0202 and XEP-0012 (§5,
// server uptime) answered by the domain.
func TestServerVersionTimeUptime(t *testing.T) {
	b := startBox(t, []string{"alice"})
	alice := b.login(t, "alice", "")
	v := alice.iq(`<iq type="get" id="{id}" to="box.test"><query xmlns="jabber:iq:version"/></iq>`).Child("jabber:iq:version", "query")
	if v.ChildText("jabber:iq:version", "name") != "chatbox" || v.ChildText("jabber:iq:version", "version") == "" ||
		v.Child("jabber:iq:version", "os") != nil {
		t.Fatalf("version %s", v)
	}
	tm := alice.iq(`<iq type="get" id="{id}" to="box.test"><time xmlns="urn:xmpp:time"/></iq>`).Child("urn:xmpp:time", "time")
	if tzo := tm.ChildText("urn:xmpp:time", "tzo"); !regexp.MustCompile(`^[+-]\d\d:\d\d$`).MatchString(tzo) {
		t.Fatalf("tzo %q in %s", tzo, tm)
	}
	utc := tm.ChildText("urn:xmpp:time", "utc")
	at, err := time.Parse(time.RFC3339Nano, utc)
	if err != nil || !strings.HasSuffix(utc, "Z") {
		t.Fatalf("utc %q: %v", utc, err)
	}
	if d := time.Since(at); d < -time.Minute || d > time.Minute {
		t.Fatalf("server time %s is %s off", at, d)
	}
	alice.iqErr(`<iq type="set" id="{id}" to="box.test"><time xmlns="urn:xmpp:time"/></iq>`, "bad-request")
	l := alice.iq(`<iq type="get" id="{id}" to="box.test"><query xmlns="jabber:iq:last"/></iq>`).Child(nsLast, "query")
	if n, err := strconv.Atoi(l.Get("seconds")); err != nil || n < 0 || n > 600 {
		t.Fatalf("uptime %s", l)
	}
}

// TestLastActivityOfAccount: XEP-0012 §4. An account may see its own
// last logout (time and status of its unavailable presence) and gets 0
// while online; an account without a subscription is forbidden, one
// with a subscription may ask; an account that does not exist is
// service-unavailable.
func TestLastActivityOfAccount(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	bob1 := b.login(t, "bob", "")
	bob1.send(`<presence/>`)
	bob1.send(`<presence type="unavailable"><status>gone fishing</status></presence>`)
	bob1.expect("its own unavailable presence", func(e *Element) bool {
		return e.Local == "presence" && e.Get("type") == "unavailable"
	})
	bob1.close()
	// bob2 has no available presence: bob is offline for XEP-0012.
	bob2 := b.login(t, "bob", "")
	deadline := time.Now().Add(waitLimit)
	var q *Element
	for {
		id := randomID()
		bob2.send(`<iq type="get" id="%s"><query xmlns="jabber:iq:last"/></iq>`, id)
		r := bob2.expectID(id)
		if r.Get("type") == "result" {
			q = r.Child(nsLast, "query")
			break
		}
		if iqErrorCondition(r) != "item-not-found" || time.Now().After(deadline) {
			t.Fatalf("last activity of bob after logout: %s", r)
		}
	}
	if n, err := strconv.Atoi(q.Get("seconds")); err != nil || n < 0 || n > 60 || q.Text() != "gone fishing" {
		t.Fatalf("last activity %s", q)
	}
	bob2.send(`<presence/>`)
	bob2.expect("its own presence", func(e *Element) bool { return e.Local == "presence" && e.Get("from") == bob2.jid })
	q = bob2.iq(`<iq type="get" id="{id}" to="bob@box.test"><query xmlns="jabber:iq:last"/></iq>`).Child(nsLast, "query")
	if q.Get("seconds") != "0" {
		t.Fatalf("online bob: %s", q)
	}
	alice := b.login(t, "alice", "")
	alice.iqErr(`<iq type="get" id="{id}" to="bob@box.test"><query xmlns="jabber:iq:last"/></iq>`, "forbidden")
	alice.iqErr(`<iq type="get" id="{id}" to="nobody@box.test"><query xmlns="jabber:iq:last"/></iq>`, "service-unavailable")
	// Once bob approved alice's subscription (bob's roster: alice,
	// subscription from), alice may ask.
	alice.send(`<presence/>`)
	alice.send(`<presence to="bob@box.test" type="subscribe"/>`)
	bob2.expect("alice's subscription request", func(e *Element) bool {
		return e.Local == "presence" && e.Get("type") == "subscribe" && e.Get("from") == "alice@box.test"
	})
	bob2.send(`<presence to="alice@box.test" type="subscribed"/>`)
	alice.expect("bob's approval", func(e *Element) bool {
		return e.Local == "presence" && e.Get("type") == "subscribed" && e.Get("from") == "bob@box.test"
	})
	q = alice.iq(`<iq type="get" id="{id}" to="bob@box.test"><query xmlns="jabber:iq:last"/></iq>`).Child(nsLast, "query")
	if q.Get("seconds") != "0" {
		t.Fatalf("bob online, asked by a subscriber: %s", q)
	}
}

// TestPrivateStorage: XEP-0049 get and set of one's own data, the
// reserved namespaces refused, another's data forbidden.
func TestPrivateStorage(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	alice := b.login(t, "alice", "")
	get := func(c *client, ns, local string) *Element {
		r := c.iq(fmt.Sprintf(`<iq type="get" id="{id}"><query xmlns="jabber:iq:private"><%s xmlns="%s"/></query></iq>`, local, ns))
		q := r.Child(nsPrivate, "query")
		if q == nil {
			t.Fatalf("private get: %s", r)
		}
		return q
	}
	// Nothing stored: the request comes back.
	q := get(alice, "exodus:prefs", "exodus")
	if k := q.Kids(); len(k) != 1 || !k[0].Is("exodus:prefs", "exodus") || len(k[0].Kids()) != 0 {
		t.Fatalf("empty storage answered %s", q)
	}
	alice.iq(`<iq type="set" id="{id}"><query xmlns="jabber:iq:private"><exodus xmlns="exodus:prefs"><defaultnick>Hamlet</defaultnick></exodus><other xmlns="x:other" a="1"/></query></iq>`)
	again := b.login(t, "alice", "")
	q = get(again, "exodus:prefs", "exodus")
	if k := q.Kids(); len(k) != 1 || k[0].ChildText("exodus:prefs", "defaultnick") != "Hamlet" {
		t.Fatalf("stored %s", q)
	}
	if k := get(again, "x:other", "other").Kids(); len(k) != 1 || k[0].Get("a") != "1" {
		t.Fatalf("second namespace: %v", k)
	}
	// A set replaces what the namespace held.
	again.iq(`<iq type="set" id="{id}" to="alice@box.test"><query xmlns="jabber:iq:private"><exodus xmlns="exodus:prefs"><defaultnick>Ophelia</defaultnick></exodus></query></iq>`)
	if k := get(alice, "exodus:prefs", "exodus").Kids(); len(k) != 1 || k[0].ChildText("exodus:prefs", "defaultnick") != "Ophelia" {
		t.Fatalf("replaced: %v", k)
	}
	for _, ns := range []string{"jabber:iq:roster", "http://jabber.org/protocol/muc", "vcard-temp"} {
		alice.iqErr(`<iq type="set" id="{id}"><query xmlns="jabber:iq:private"><x xmlns="`+ns+`"/></query></iq>`, "not-acceptable")
		alice.iqErr(`<iq type="get" id="{id}"><query xmlns="jabber:iq:private"><x xmlns="`+ns+`"/></query></iq>`, "not-acceptable")
	}
	alice.iqErr(`<iq type="get" id="{id}"><query xmlns="jabber:iq:private"/></iq>`, "not-acceptable")
	alice.iqErr(`<iq type="set" id="{id}"><query xmlns="jabber:iq:private"><bare/></query></iq>`, "not-acceptable")
	alice.iqErr(`<iq type="set" id="{id}" to="bob@box.test"><query xmlns="jabber:iq:private"><exodus xmlns="exodus:prefs"/></query></iq>`, "forbidden")
	alice.iqErr(`<iq type="get" id="{id}" to="bob@box.test"><query xmlns="jabber:iq:private"><exodus xmlns="exodus:prefs"/></query></iq>`, "forbidden")
	// bob sees none of it.
	bob := b.login(t, "bob", "")
	if k := get(bob, "exodus:prefs", "exodus").Kids(); len(k) != 1 || len(k[0].Kids()) != 0 {
		t.Fatalf("bob got alice's data: %v", k)
	}
}
