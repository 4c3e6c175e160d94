package xmpp

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// End-to-end tests of PEP (XEP-0163 on XEP-0060), with OMEMO's node
// flow, bookmarks (XEP-0402 and XEP-0048 mirrored) and avatar conversion
// (XEP-0398).

const testCapsNode = "https://chatbox.invalid/test-client"

// capsQuery is a client's disco#info answer with features.
func capsQuery(feats ...string) *Element {
	q := El(nsDiscoInfo, "query").Add(El(nsDiscoInfo, "identity", "category", "client", "type", "pc", "name", "test"))
	for _, f := range feats {
		q.Add(El(nsDiscoInfo, "feature", "var", f))
	}
	return q
}

// capsPresence sends an available presence whose caps (XEP-0115) list
// feats and, unless the server already knows that ver, answers the
// server's disco#info query about them; the ping at the end makes sure
// the server has taken the answer. (mellium answers the query with an
// error first, as it does any IQ its handler does not answer; the server
// takes the real answer that follows.) For a known ver nothing is
// awaited: a query would get mellium's error alone, and the session no
// notifications, which the tests would see.
func (c *client) capsPresence(known bool, feats ...string) {
	c.t.Helper()
	q := capsQuery(feats...)
	ver := testCapsVer(El(nsClient, "iq").Add(q))
	c.send(`<presence><c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="%s" ver="%s"/></presence>`, testCapsNode, ver)
	isQuery := func(e *Element) bool {
		return e.Local == "iq" && e.Get("type") == "get" && e.Child(nsDiscoInfo, "query") != nil
	}
	if known {
		return
	}
	iq := c.expect("caps disco#info query", isQuery)
	if iq.Get("from") != boxDomain || iq.Child(nsDiscoInfo, "query").Get("node") != testCapsNode+"#"+ver {
		c.t.Fatalf("caps query %s", iq)
	}
	q.Set("node", testCapsNode+"#"+ver)
	c.send(`<iq type="result" id="%s" to="%s">%s</iq>`, iq.Get("id"), boxDomain, q)
	c.iq(`<iq type="get" id="{id}" to="` + boxDomain + `"><ping xmlns="urn:xmpp:ping"/></iq>`)
}

// subscribe makes from subscribed to to's presence, with raw subscription
// presence (RFC 6121 §3.1): to's roster then has from with 'from'.
func subscribe(from, to *client) {
	from.t.Helper()
	fromBare, toBare := strings.SplitN(from.jid, "/", 2)[0], strings.SplitN(to.jid, "/", 2)[0]
	from.send(`<presence to="%s" type="subscribe"/>`, toBare)
	to.expect("subscription request", func(e *Element) bool {
		return e.Local == "presence" && e.Get("type") == "subscribe" && e.Get("from") == fromBare
	})
	to.send(`<presence to="%s" type="subscribed"/>`, fromBare)
	from.expect("subscription approval", func(e *Element) bool {
		return e.Local == "presence" && e.Get("type") == "subscribed" && e.Get("from") == toBare
	})
}

// isEvent matches a pubsub event notification about node from from
// (mellium blanks a from equal to the client's own bare JID: own is
// matched as "").
func isEvent(from, node string) func(*Element) bool {
	return func(e *Element) bool {
		if e.Local != "message" || e.Get("from") != from {
			return false
		}
		ev := e.Child(nsPubSubEvent, "event")
		for _, k := range ev.Kids() {
			if k.Get("node") == node {
				return true
			}
		}
		return false
	}
}

// eventItems checks an event notification's shape and returns its
// <items/>.
func eventItems(t *testing.T, e *Element, node string) *Element {
	t.Helper()
	if e.Get("type") != "headline" {
		t.Fatalf("notification is not a headline: %s", e)
	}
	items := e.Child(nsPubSubEvent, "event").Child(nsPubSubEvent, "items")
	if items == nil || items.Get("node") != node {
		t.Fatalf("notification without items of %s: %s", node, e)
	}
	return items
}

func publishXML(node, id, payload string, opts ...[2]string) string {
	x := `<iq type="set" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><publish node="` + node + `">`
	if id != "" {
		x += `<item id="` + id + `">` + payload + `</item>`
	} else {
		x += `<item>` + payload + `</item>`
	}
	x += `</publish>`
	if len(opts) > 0 {
		x += `<publish-options><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#publish-options</value></field>`
		for _, o := range opts {
			x += `<field var="` + o[0] + `"><value>` + o[1] + `</value></field>`
		}
		x += `</x></publish-options>`
	}
	return x + `</pubsub></iq>`
}

// events waits for notifications from from: want[node] of each node,
// in any order.
func (c *client) events(from string, want map[string]int) map[string][]*Element {
	c.t.Helper()
	got := map[string][]*Element{}
	for n := 0; ; n++ {
		done := true
		for node, k := range want {
			done = done && len(got[node]) >= k
		}
		if done {
			return got
		}
		e := c.expect(fmt.Sprintf("notifications %v", want), func(e *Element) bool {
			for node := range want {
				if isEvent(from, node)(e) {
					return true
				}
			}
			return false
		})
		for node := range want {
			if isEvent(from, node)(e) {
				got[node] = append(got[node], e)
			}
		}
	}
}

// itemIDs returns the ids of a pubsub items result, in order.
func itemIDs(t *testing.T, r *Element, node string) []string {
	t.Helper()
	items := r.Child(nsPubSub, "pubsub").Child(nsPubSub, "items")
	if items == nil || items.Get("node") != node {
		t.Fatalf("no items of %s in %s", node, r)
	}
	ids := []string{}
	for _, it := range items.Kids() {
		ids = append(ids, it.Get("id"))
	}
	return ids
}

func pubsubAppError(r *Element) string {
	for _, k := range r.Child(nsClient, "error").Kids() {
		if k.Space == nsPubSubErrors {
			return k.Local
		}
	}
	return ""
}

const tuneNS = "http://jabber.org/protocol/tune"

// TestPEPPublishNotify: a publish reaches the owner's resources and the
// contacts subscribed to its presence whose caps ask for node+notify,
// and nobody else; contacts may read the node, strangers may not; a
// session that comes online later gets the last item with a delay; a
// second session with caps already seen is not asked again.
func TestPEPPublishNotify(t *testing.T) {
	b := startBox(t, []string{"alice", "bob", "carol"})
	alice := b.login(t, "alice", "")
	bob := b.login(t, "bob", "")
	bobNoNotify := b.login(t, "bob", "")
	carol := b.login(t, "carol", "")
	alice.capsPresence(false, tuneNS, tuneNS+"+notify")
	bob.capsPresence(false, tuneNS+"+notify", "urn:test:bob")
	bobNoNotify.capsPresence(false, tuneNS, "urn:test:bob2") // caps without +notify: no notifications
	carol.capsPresence(false, tuneNS+"+notify", "urn:test:carol")
	subscribe(bob, alice)

	r := alice.iq(publishXML(tuneNS, "", `<tune xmlns="`+tuneNS+`"><artist>Yes</artist><title>Heart of the Sunrise</title></tune>`))
	pub := r.Child(nsPubSub, "pubsub").Child(nsPubSub, "publish")
	id := pub.Child(nsPubSub, "item").Get("id")
	if pub.Get("node") != tuneNS || id == "" {
		t.Fatalf("publish result %s", r)
	}
	for _, c := range []*client{alice, bob} {
		from := "alice@box.test"
		if c == alice {
			from = "" // mellium blanks the own bare JID
		}
		e := c.expect("tune notification", isEvent(from, tuneNS))
		if e.Get("to") != c.jid {
			t.Fatalf("notification to %q: %s", e.Get("to"), e)
		}
		it := eventItems(t, e, tuneNS).Child(nsPubSubEvent, "item")
		if it.Get("id") != id || it.Child(tuneNS, "tune").ChildText(tuneNS, "title") != "Heart of the Sunrise" {
			t.Fatalf("notification %s", e)
		}
	}
	carol.quiet("notification to a non-contact", isEvent("alice@box.test", tuneNS))
	bobNoNotify.quiet("notification to caps without +notify", isEvent("alice@box.test", tuneNS))

	// Reading: the contact may (presence access), a stranger may not.
	r = bob.iq(`<iq type="get" id="{id}" to="alice@box.test"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="` + tuneNS + `"/></pubsub></iq>`)
	if ids := itemIDs(t, r, tuneNS); !slices.Equal(ids, []string{id}) {
		t.Fatalf("bob read %v", ids)
	}
	e := carol.iqErr(`<iq type="get" id="{id}" to="alice@box.test"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="`+tuneNS+`"/></pubsub></iq>`, "not-authorized")
	if pubsubAppError(e) != "presence-subscription-required" {
		t.Fatalf("stranger's read: %s", e)
	}
	carol.iqErr(strings.Replace(publishXML(tuneNS, "x", `<tune xmlns="`+tuneNS+`"/>`), `<iq `, `<iq to="alice@box.test" `, 1), "forbidden")
	carol.iqErr(`<iq type="get" id="{id}" to="alice@box.test"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="nothing"/></pubsub></iq>`, "item-not-found")

	// A new session of bob with the same caps as the first (known: no
	// query) gets the last item on coming online (XEP-0163 §4.3.2).
	bob2 := b.login(t, "bob", "")
	bob2.capsPresence(true, tuneNS+"+notify", "urn:test:bob")
	e = bob2.expect("last published item", isEvent("alice@box.test", tuneNS))
	if it := eventItems(t, e, tuneNS).Child(nsPubSubEvent, "item"); it.Get("id") != id {
		t.Fatalf("last item %s", e)
	}
	if d := e.Child("urn:xmpp:delay", "delay"); d == nil || d.Get("stamp") == "" {
		t.Fatalf("last item without delay: %s", e)
	}

	// The account's disco#info has the PEP identity and features; its
	// disco#items the nodes a reader may see.
	r = bob.iq(`<iq type="get" id="{id}" to="alice@box.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	if !slices.Contains(discoIdentities(r), [4]string{"pubsub", "pep", "", ""}) {
		t.Fatalf("no pubsub/pep identity: %s", r)
	}
	requireFeatures(t, discoFeatures(t, r), nsPubSub+"#publish", nsPubSub+"#auto-create", nsPubSub+"#publish-options",
		nsPubSub+"#persistent-items", nsPubSub+"#retrieve-items", nsPubSub+"#retract-items", nsPubSub+"#delete-nodes",
		nsPubSub+"#purge-nodes", nsPubSub+"#config-node", nsPubSub+"#last-published", nsPubSub+"#access-presence",
		nsPubSub+"#access-open", nsPubSub+"#access-whitelist", nsBookmarks2+"#compat", nsBookmarks2+"#compat-pep",
		nsPEPVCardConversion)
	r = bob.iq(`<iq type="get" id="{id}" to="alice@box.test"><query xmlns="http://jabber.org/protocol/disco#items"/></iq>`)
	if items := r.Child(nsDiscoItems, "query").Kids(); len(items) != 1 || items[0].Get("node") != tuneNS || items[0].Get("jid") != "alice@box.test" {
		t.Fatalf("disco#items %s", r)
	}
}

// TestPEPCapsVer checks the verification of clients' caps against the
// examples of XEP-0115 §5.2 and §5.3.
func TestPEPCapsVer(t *testing.T) {
	simple := `<query xmlns="http://jabber.org/protocol/disco#info"><identity category="client" name="Exodus 0.9.1" type="pc"/>` +
		`<feature var="http://jabber.org/protocol/caps"/><feature var="http://jabber.org/protocol/disco#info"/>` +
		`<feature var="http://jabber.org/protocol/disco#items"/><feature var="http://jabber.org/protocol/muc"/></query>`
	complex := `<query xmlns="http://jabber.org/protocol/disco#info">` +
		`<identity xml:lang="en" category="client" name="Psi 0.11" type="pc"/>` +
		`<identity xml:lang="el" category="client" name="Ψ 0.11" type="pc"/>` +
		`<feature var="http://jabber.org/protocol/caps"/><feature var="http://jabber.org/protocol/disco#info"/>` +
		`<feature var="http://jabber.org/protocol/disco#items"/><feature var="http://jabber.org/protocol/muc"/>` +
		`<x xmlns="jabber:x:data" type="result"><field var="FORM_TYPE" type="hidden"><value>urn:xmpp:dataforms:softwareinfo</value></field>` +
		`<field var="ip_version"><value>ipv4</value><value>ipv6</value></field><field var="os"><value>Mac</value></field>` +
		`<field var="os_version"><value>10.5.1</value></field><field var="software"><value>Psi</value></field>` +
		`<field var="software_version"><value>0.11</value></field></x></query>`
	for x, want := range map[string]string{simple: "QgayPKawpkPSDYmwT/WM94uAlu0=", complex: "q07IKJEyjvHSyhy//CH0CxmKi8w="} {
		kids := parseFragment(x)
		if len(kids) != 1 {
			t.Fatalf("parse %s", x)
		}
		if got := pepCapsVer(kids[0], "sha-1"); got != want {
			t.Errorf("ver %s, want %s", got, want)
		}
	}
	if pepCapsVer(capsQuery(), "md5") != "" {
		t.Error("an unknown hash verified")
	}
}

// TestPEPOMEMO runs OMEMO's (XEP-0384) node flow: the device list on an
// open node with one item, bundles on an open node with max_items max
// (one item per device) through publish-options; a stranger reads both;
// a subscribed contact is notified of the device list; publish-options
// that contradict the node fail with precondition-not-met. The legacy
// (eu.siacs.conversations.axolotl) flow works the same way.
func TestPEPOMEMO(t *testing.T) {
	const (
		devices = "urn:xmpp:omemo:2:devices"
		bundles = "urn:xmpp:omemo:2:bundles"
		omemo   = "urn:xmpp:omemo:2"
	)
	b := startBox(t, []string{"alice", "bob", "carol"})
	alice := b.login(t, "alice", "")
	bob := b.login(t, "bob", "")
	carol := b.login(t, "carol", "")
	alice.capsPresence(false, devices+"+notify")
	bob.capsPresence(false, devices+"+notify", "urn:test:bob")
	carol.send(`<presence/>`)
	subscribe(bob, alice)

	open := [2]string{"pubsub#access_model", "open"}
	alice.iq(publishXML(devices, "current", `<devices xmlns="`+omemo+`"><device id="31415" label="phone"/></devices>`, open))
	e := bob.expect("device list notification", isEvent("alice@box.test", devices))
	if it := eventItems(t, e, devices).Child(nsPubSubEvent, "item"); it.Get("id") != "current" ||
		it.Child(omemo, "devices").Child(omemo, "device").Get("id") != "31415" {
		t.Fatalf("device list notification %s", e)
	}
	alice.expect("own device list notification", isEvent("", devices))
	// A second device replaces the list (max_items 1).
	alice.iq(publishXML(devices, "current", `<devices xmlns="`+omemo+`"><device id="31415"/><device id="27182"/></devices>`, open))
	bob.expect("device list update", isEvent("alice@box.test", devices))

	max := [2]string{"pubsub#max_items", "max"}
	for _, dev := range []string{"31415", "27182"} {
		alice.iq(publishXML(bundles, dev, `<bundle xmlns="`+omemo+`"><spk id="1">c3BrMQ==</spk><ik>aWsx</ik><prekeys><pk id="1">cGsx</pk></prekeys></bundle>`, max, open))
	}
	// Bundles are not notified to bob (his caps do not ask).
	bob.quiet("bundle notification", isEvent("alice@box.test", bundles))

	// carol, who has no subscription, reads both open nodes.
	r := carol.iq(`<iq type="get" id="{id}" to="alice@box.test"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="` + devices + `"/></pubsub></iq>`)
	ids := itemIDs(t, r, devices)
	devs := r.Child(nsPubSub, "pubsub").Child(nsPubSub, "items").Child(nsPubSub, "item").Child(omemo, "devices")
	if !slices.Equal(ids, []string{"current"}) || len(devs.Kids()) != 2 {
		t.Fatalf("device list read by a stranger: %s", r)
	}
	r = carol.iq(`<iq type="get" id="{id}" to="alice@box.test"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="` + bundles + `"><item id="27182"/></items></pubsub></iq>`)
	if ids := itemIDs(t, r, bundles); !slices.Equal(ids, []string{"27182"}) {
		t.Fatalf("bundle by id: %s", r)
	}
	it := r.Child(nsPubSub, "pubsub").Child(nsPubSub, "items").Child(nsPubSub, "item")
	if it.Child(omemo, "bundle").ChildText(omemo, "ik") != "aWsx" {
		t.Fatalf("bundle payload %s", r)
	}
	r = carol.iq(`<iq type="get" id="{id}" to="alice@box.test"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="` + bundles + `"/></pubsub></iq>`)
	if ids := itemIDs(t, r, bundles); !slices.Equal(ids, []string{"31415", "27182"}) {
		t.Fatalf("both bundles kept (max_items max): %v", ids)
	}
	carol.iqErr(`<iq type="get" id="{id}" to="alice@box.test"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="`+bundles+`"><item id="999"/></items></pubsub></iq>`, "item-not-found")

	// The node's configuration says what publish-options made it.
	r = alice.iq(`<iq type="get" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="` + bundles + `"/></pubsub></iq>`)
	form := r.Child(nsPubSubOwner, "pubsub").Child(nsPubSubOwner, "configure").Child(pepXData, "x")
	_, fields := pepFormFields(form)
	if fields["FORM_TYPE"][0] != nsPubSubConfig || fields["pubsub#max_items"][0] != "max" || fields["pubsub#access_model"][0] != "open" {
		t.Fatalf("bundles configuration %s", r)
	}
	// Options that contradict the node: conflict + precondition-not-met.
	e = alice.iqErr(publishXML(bundles, "31415", `<bundle xmlns="`+omemo+`"/>`, [2]string{"pubsub#access_model", "presence"}), "conflict")
	if pubsubAppError(e) != "precondition-not-met" {
		t.Fatalf("contradicting options: %s", e)
	}
	e = alice.iqErr(publishXML(bundles, "31415", `<bundle xmlns="`+omemo+`"/>`, [2]string{"pubsub#no_such_option", "1"}), "conflict")
	if pubsubAppError(e) != "precondition-not-met" {
		t.Fatalf("unknown option: %s", e)
	}

	// Legacy OMEMO: one node per bundle.
	const legacy = "eu.siacs.conversations.axolotl"
	alice.iq(publishXML(legacy+".devicelist", "current", `<list xmlns="`+legacy+`"><device id="31415"/></list>`, open))
	alice.iq(publishXML(legacy+".bundles:31415", "current", `<bundle xmlns="`+legacy+`"><identityKey>aWsx</identityKey></bundle>`, open))
	r = carol.iq(`<iq type="get" id="{id}" to="alice@box.test"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="` + legacy + `.bundles:31415" max_items="1"/></pubsub></iq>`)
	if ids := itemIDs(t, r, legacy+".bundles:31415"); !slices.Equal(ids, []string{"current"}) {
		t.Fatalf("legacy bundle: %s", r)
	}
}

// TestPEPItemsRetract: max_items drops the oldest items; retrieval by
// max_items and by id; retract notifies (unless notify is false); a
// lower max_items set by configure trims; purge and delete notify and
// empty the node.
func TestPEPItemsRetract(t *testing.T) {
	const node = "urn:test:notes"
	b := startBox(t, []string{"alice"})
	alice := b.login(t, "alice", "")
	alice.capsPresence(false, node+"+notify")
	get := func(extra string) []string {
		t.Helper()
		return itemIDs(t, alice.iq(`<iq type="get" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="`+node+`"`+extra+`</pubsub></iq>`), node)
	}
	for i := 1; i <= 5; i++ {
		alice.iq(publishXML(node, fmt.Sprint("n", i), fmt.Sprintf(`<note xmlns="urn:test">%d</note>`, i), [2]string{"pubsub#max_items", "3"}))
		alice.expect("notification", isEvent("", node))
	}
	if ids := get(`/>`); !slices.Equal(ids, []string{"n3", "n4", "n5"}) {
		t.Fatalf("after 5 publishes with max_items 3: %v", ids)
	}
	if ids := get(` max_items="2"/>`); !slices.Equal(ids, []string{"n4", "n5"}) {
		t.Fatalf("max_items 2: %v", ids)
	}
	if ids := get(`><item id="n3"/><item id="n5"/></items>`); !slices.Equal(ids, []string{"n3", "n5"}) {
		t.Fatalf("by id: %v", ids)
	}
	// Republishing an id makes it the newest.
	alice.iq(publishXML(node, "n3", `<note xmlns="urn:test">3 again</note>`))
	alice.expect("notification", isEvent("", node))
	if ids := get(`/>`); !slices.Equal(ids, []string{"n4", "n5", "n3"}) {
		t.Fatalf("after republishing n3: %v", ids)
	}

	alice.iq(`<iq type="set" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><retract node="` + node + `" notify="true"><item id="n4"/></retract></pubsub></iq>`)
	e := alice.expect("retract notification", isEvent("", node))
	if rt := eventItems(t, e, node).Child(nsPubSubEvent, "retract"); rt == nil || rt.Get("id") != "n4" {
		t.Fatalf("retract notification %s", e)
	}
	alice.iq(`<iq type="set" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><retract node="` + node + `" notify="false"><item id="n5"/></retract></pubsub></iq>`)
	alice.quiet("notification of a retract with notify false", isEvent("", node))
	if ids := get(`/>`); !slices.Equal(ids, []string{"n3"}) {
		t.Fatalf("after retracts: %v", ids)
	}
	alice.iqErr(`<iq type="set" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><retract node="`+node+`"><item id="n4"/></retract></pubsub></iq>`, "item-not-found")

	// Configure: raise to 10, publish 3 more, lower to 2: the oldest go.
	cfg := func(maxItems string) {
		alice.iq(`<iq type="set" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="` + node + `">` +
			`<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#node_config</value></field>` +
			`<field var="pubsub#max_items"><value>` + maxItems + `</value></field></x></configure></pubsub></iq>`)
	}
	cfg("10")
	for i := 6; i <= 8; i++ {
		alice.iq(publishXML(node, fmt.Sprint("n", i), `<note xmlns="urn:test"/>`))
	}
	if ids := get(`/>`); !slices.Equal(ids, []string{"n3", "n6", "n7", "n8"}) {
		t.Fatalf("with max_items 10: %v", ids)
	}
	cfg("2")
	if ids := get(`/>`); !slices.Equal(ids, []string{"n7", "n8"}) {
		t.Fatalf("after lowering max_items to 2: %v", ids)
	}
	alice.iqErr(`<iq type="set" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><configure node="`+node+`">`+
		`<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>http://jabber.org/protocol/pubsub#node_config</value></field>`+
		`<field var="pubsub#access_model"><value>authorize</value></field></x></configure></pubsub></iq>`, "not-acceptable")

	alice.iq(`<iq type="set" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><purge node="` + node + `"/></pubsub></iq>`)
	alice.expect("purge notification", func(e *Element) bool {
		return isEvent("", node)(e) && e.Child(nsPubSubEvent, "event").Child(nsPubSubEvent, "purge") != nil
	})
	if ids := get(`/>`); len(ids) != 0 {
		t.Fatalf("after purge: %v", ids)
	}
	alice.iq(`<iq type="set" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub#owner"><delete node="` + node + `"/></pubsub></iq>`)
	e = alice.expect("delete notification", isEvent("", node))
	if e.Child(nsPubSubEvent, "event").Child(nsPubSubEvent, "delete") == nil {
		t.Fatalf("delete notification %s", e)
	}
	alice.iqErr(`<iq type="get" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="`+node+`"/></pubsub></iq>`, "item-not-found")
	alice.iqErr(`<iq type="set" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><subscribe node="`+node+`" jid="alice@box.test"/></pubsub></iq>`, "feature-not-implemented")
}

// TestBookmarksCompat: XEP-0402 bookmarks show in XEP-0048 private XML
// and on the legacy PEP node, and a XEP-0048 document stored either way
// becomes XEP-0402 items (notifying only what changed).
func TestBookmarksCompat(t *testing.T) {
	b := startBox(t, []string{"alice"})
	alice := b.login(t, "alice", "")
	alice.capsPresence(false, nsBookmarks2+"+notify", nsBookmarks1+"+notify")
	bm2opts := [][2]string{{"pubsub#persist_items", "true"}, {"pubsub#max_items", "max"},
		{"pubsub#send_last_published_item", "never"}, {"pubsub#access_model", "whitelist"}}
	alice.iq(publishXML(nsBookmarks2, "council@rooms.box.test",
		`<conference xmlns="urn:xmpp:bookmarks:1" name="The Council" autojoin="true"><nick>Alice</nick></conference>`, bm2opts...))
	alice.expect("bookmark notification", isEvent("", nsBookmarks2))
	e := alice.expect("legacy node notification", isEvent("", nsBookmarks1))
	legacy := eventItems(t, e, nsBookmarks1).Child(nsPubSubEvent, "item").Child(nsBookmarks1, "storage")
	checkLegacy := func(what string, storage *Element, want ...[4]string) {
		t.Helper()
		var got [][4]string
		for _, c := range storage.Kids() {
			if c.Is(nsBookmarks1, "conference") {
				got = append(got, [4]string{c.Get("jid"), c.Get("name"), c.Get("autojoin"), c.ChildText(nsBookmarks1, "nick")})
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: conferences %v, want %v in %s", what, got, want, storage)
		}
	}
	checkLegacy("legacy PEP notification", legacy, [4]string{"council@rooms.box.test", "The Council", "true", "Alice"})
	privateGet := func() *Element {
		t.Helper()
		r := alice.iq(`<iq type="get" id="{id}"><query xmlns="jabber:iq:private"><storage xmlns="storage:bookmarks"/></query></iq>`)
		return r.Child(nsPrivate, "query").Child(nsBookmarks1, "storage")
	}
	checkLegacy("private XML", privateGet(), [4]string{"council@rooms.box.test", "The Council", "true", "Alice"})
	r := alice.iq(`<iq type="get" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="storage:bookmarks"/></pubsub></iq>`)
	checkLegacy("legacy PEP node", r.Child(nsPubSub, "pubsub").Child(nsPubSub, "items").Child(nsPubSub, "item").Child(nsBookmarks1, "storage"),
		[4]string{"council@rooms.box.test", "The Council", "true", "Alice"})

	bookmarks := func() map[string]*Element {
		t.Helper()
		r := alice.iq(`<iq type="get" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="urn:xmpp:bookmarks:1"/></pubsub></iq>`)
		out := map[string]*Element{}
		for _, it := range r.Child(nsPubSub, "pubsub").Child(nsPubSub, "items").Kids() {
			out[it.Get("id")] = it.Child(nsBookmarks2, "conference")
		}
		return out
	}

	// XEP-0048 in private XML: council unchanged, a new room, a URL.
	alice.iq(`<iq type="set" id="{id}"><query xmlns="jabber:iq:private"><storage xmlns="storage:bookmarks">` +
		`<conference jid="council@rooms.box.test" name="The Council" autojoin="1"><nick>Alice</nick></conference>` +
		`<conference jid="garden@rooms.box.test" name="Garden"><nick>Al</nick><password>rose</password></conference>` +
		`<url name="Home" url="https://example.org/"/></storage></query></iq>`)
	ev := alice.events("", map[string]int{nsBookmarks2: 1, nsBookmarks1: 1})
	if it := eventItems(t, ev[nsBookmarks2][0], nsBookmarks2).Child(nsPubSubEvent, "item"); it.Get("id") != "garden@rooms.box.test" {
		t.Fatalf("notification for %s, want only the new garden bookmark: %s", it.Get("id"), ev[nsBookmarks2][0])
	}
	alice.quiet("notification of an unchanged bookmark", isEvent("", nsBookmarks2))
	bm := bookmarks()
	if len(bm) != 2 || bm["garden@rooms.box.test"].Get("name") != "Garden" || bm["garden@rooms.box.test"].Get("autojoin") != "" ||
		bm["garden@rooms.box.test"].ChildText(nsBookmarks2, "nick") != "Al" || bm["garden@rooms.box.test"].ChildText(nsBookmarks2, "password") != "rose" {
		t.Fatalf("bookmarks after private XML set: %v", bm)
	}

	// Retracting a XEP-0402 item rewrites both legacy forms; the URL stays.
	alice.iq(`<iq type="set" id="{id}"><pubsub xmlns="http://jabber.org/protocol/pubsub"><retract node="urn:xmpp:bookmarks:1" notify="true"><item id="council@rooms.box.test"/></retract></pubsub></iq>`)
	alice.expect("retract notification", isEvent("", nsBookmarks2))
	alice.expect("legacy node notification", isEvent("", nsBookmarks1))
	storage := privateGet()
	checkLegacy("private XML after retract", storage, [4]string{"garden@rooms.box.test", "Garden", "false", "Al"})
	if u := storage.Child(nsBookmarks1, "url"); u == nil || u.Get("url") != "https://example.org/" {
		t.Fatalf("URL bookmark lost: %s", storage)
	}

	// XEP-0048 on the legacy PEP node: garden goes, study comes.
	alice.iq(publishXML(nsBookmarks1, "current", `<storage xmlns="storage:bookmarks"><conference jid="study@rooms.box.test" name="Study" autojoin="true"/></storage>`,
		[2]string{"pubsub#persist_items", "true"}, [2]string{"pubsub#access_model", "whitelist"}))
	seen := map[string]bool{}
	for range 2 {
		e := alice.expect("bookmark notification", isEvent("", nsBookmarks2))
		items := eventItems(t, e, nsBookmarks2)
		if it := items.Child(nsPubSubEvent, "item"); it != nil {
			seen["publish "+it.Get("id")] = true
		}
		if rt := items.Child(nsPubSubEvent, "retract"); rt != nil {
			seen["retract "+rt.Get("id")] = true
		}
	}
	if !seen["publish study@rooms.box.test"] || !seen["retract garden@rooms.box.test"] {
		t.Fatalf("notifications %v", seen)
	}
	if bm := bookmarks(); len(bm) != 1 || bm["study@rooms.box.test"].Get("autojoin") != "true" {
		t.Fatalf("bookmarks after legacy PEP publish: %v", bm)
	}
	checkLegacy("private XML after legacy PEP publish", privateGet(), [4]string{"study@rooms.box.test", "Study", "true", ""})
}

// TestAvatarConversion: a vCard PHOTO becomes the PEP avatar (data and
// metadata, notified) and a PEP avatar becomes the vCard PHOTO.
func TestAvatarConversion(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	alice := b.login(t, "alice", "")
	bob := b.login(t, "bob", "")
	alice.capsPresence(false, nsAvatarMetadata+"+notify")
	bob.capsPresence(false, nsAvatarMetadata+"+notify", "urn:test:bob")
	subscribe(bob, alice)

	photo := bytes.Repeat([]byte("\x89PNG\r\n\x1a\nvcard photo"), 20)
	sum := sha1.Sum(photo)
	id := hex.EncodeToString(sum[:])
	alice.iq(`<iq type="set" id="{id}"><vCard xmlns="vcard-temp"><FN>Alice</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>` +
		base64.StdEncoding.EncodeToString(photo) + `</BINVAL></PHOTO></vCard></iq>`)
	e := bob.expect("avatar metadata notification", isEvent("alice@box.test", nsAvatarMetadata))
	it := eventItems(t, e, nsAvatarMetadata).Child(nsPubSubEvent, "item")
	info := it.Child(nsAvatarMetadata, "metadata").Child(nsAvatarMetadata, "info")
	if it.Get("id") != id || info.Get("id") != id || info.Get("type") != "image/png" || info.Get("bytes") != fmt.Sprint(len(photo)) {
		t.Fatalf("metadata notification %s", e)
	}
	r := bob.iq(`<iq type="get" id="{id}" to="alice@box.test"><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="urn:xmpp:avatar:data"><item id="` + id + `"/></items></pubsub></iq>`)
	data := r.Child(nsPubSub, "pubsub").Child(nsPubSub, "items").Child(nsPubSub, "item").ChildText(nsAvatarData, "data")
	if got, err := base64.StdEncoding.DecodeString(data); err != nil || !bytes.Equal(got, photo) {
		t.Fatalf("avatar data %s", r)
	}

	// PEP to vCard.
	avatar := bytes.Repeat([]byte("GIF89a pep avatar"), 10)
	sum = sha1.Sum(avatar)
	id2 := hex.EncodeToString(sum[:])
	alice.iq(publishXML(nsAvatarData, id2, `<data xmlns="urn:xmpp:avatar:data">`+base64.StdEncoding.EncodeToString(avatar)+`</data>`))
	alice.iq(publishXML(nsAvatarMetadata, id2, `<metadata xmlns="urn:xmpp:avatar:metadata"><info bytes="`+fmt.Sprint(len(avatar))+`" id="`+id2+`" type="image/gif"/>`+
		`<info bytes="1" id="elsewhere" type="image/png" url="https://example.org/a.png"/></metadata>`))
	bob.expect("new avatar notification", isEvent("alice@box.test", nsAvatarMetadata))
	alice.iq(`<iq type="get" id="{id}" to="` + boxDomain + `"><ping xmlns="urn:xmpp:ping"/></iq>`) // the conversion follows the notification
	r = bob.iq(`<iq type="get" id="{id}" to="alice@box.test"><vCard xmlns="vcard-temp"/></iq>`)
	p := r.Child(nsVCard, "vCard").Child(nsVCard, "PHOTO")
	got, err := base64.StdEncoding.DecodeString(strings.Map(dropSpace, p.ChildText(nsVCard, "BINVAL")))
	if err != nil || !bytes.Equal(got, avatar) || p.ChildText(nsVCard, "TYPE") != "image/gif" {
		t.Fatalf("vCard after PEP avatar: %s", r)
	}
	if r.Child(nsVCard, "vCard").ChildText(nsVCard, "FN") != "Alice" {
		t.Fatalf("the rest of the vCard was lost: %s", r)
	}
	// Disabling the avatar removes the photo.
	alice.iq(publishXML(nsAvatarMetadata, "", `<metadata xmlns="urn:xmpp:avatar:metadata"/>`))
	bob.expect("avatar disabled notification", isEvent("alice@box.test", nsAvatarMetadata))
	alice.iq(`<iq type="get" id="{id}" to="` + boxDomain + `"><ping xmlns="urn:xmpp:ping"/></iq>`)
	r = bob.iq(`<iq type="get" id="{id}" to="alice@box.test"><vCard xmlns="vcard-temp"/></iq>`)
	if r.Child(nsVCard, "vCard").Child(nsVCard, "PHOTO") != nil {
		t.Fatalf("photo kept after the avatar was disabled: %s", r)
	}
}
