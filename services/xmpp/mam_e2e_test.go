package xmpp

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// End-to-end tests of the message archive (XEP-0313 with XEP-0059).

// mamPage is one answered archive query.
type mamPage struct {
	bodies   []string
	ids      []string
	results  []*Element // the <result/> messages
	fin      *Element
	complete bool
	first    string
	index    string
	last     string
	count    string
}

// mamQuery sends an archive query (the form fields and the RSM <set/>
// given as XML) and collects the results up to the <fin/>.
func (c *client) mamQuery(fields, set string, extra ...string) mamPage {
	c.t.Helper()
	id, qid := randomID(), randomID()
	form := ""
	if fields != "" {
		form = `<x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>urn:xmpp:mam:2</value></field>` + fields + `</x>`
	}
	c.send(`<iq type="set" id="%s"><query xmlns="urn:xmpp:mam:2" queryid="%s">%s%s%s</query></iq>`, id, qid, form, set, strings.Join(extra, ""))
	var p mamPage
	for {
		e := c.expect("archive results", func(e *Element) bool {
			return e.Local == "iq" && e.Get("id") == id || e.Local == "message" && e.Child(mamNS, "result") != nil
		})
		if e.Local == "iq" {
			if e.Get("type") != "result" {
				c.t.Fatalf("archive query failed: %s", e)
			}
			p.fin = e.Child(mamNS, "fin")
			if p.fin == nil {
				c.t.Fatalf("no fin: %s", e)
			}
			p.complete = p.fin.Get("complete") == "true"
			rsm := p.fin.Child(mamRSM, "set")
			p.first, p.index = rsm.ChildText(mamRSM, "first"), rsm.Child(mamRSM, "first").Get("index")
			p.last, p.count = rsm.ChildText(mamRSM, "last"), rsm.ChildText(mamRSM, "count")
			return p
		}
		r := e.Child(mamNS, "result")
		if r.Get("queryid") != qid || e.Get("to") != c.jid {
			c.t.Fatalf("result of another query: %s", e)
		}
		fwd := r.Child(mamForward, "forwarded")
		if d := fwd.Child("urn:xmpp:delay", "delay"); d == nil || d.Get("stamp") == "" {
			c.t.Fatalf("result without delay: %s", e)
		}
		m := fwd.Child(nsClient, "message")
		body, _ := bodyOf(m)
		p.bodies = append(p.bodies, body)
		p.ids = append(p.ids, r.Get("id"))
		p.results = append(p.results, e)
	}
}

func seqBodies(prefix string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprint(prefix, i))
	}
	return out
}

func (p mamPage) check(t *testing.T, what string, bodies []string, complete bool, index, count int) {
	t.Helper()
	if !slices.Equal(p.bodies, bodies) || p.complete != complete || p.count != strconv.Itoa(count) ||
		(len(p.ids) > 0 && (p.first != p.ids[0] || p.last != p.ids[len(p.ids)-1] || p.index != strconv.Itoa(index))) {
		t.Fatalf("%s: got %v complete=%v first=%s index=%s last=%s count=%s\nwant %v complete=%v index=%d count=%d\nfin %s",
			what, p.bodies, p.complete, p.first, p.index, p.last, p.count, bodies, complete, index, count, p.fin)
	}
}

// TestMAMPaging: 25 messages to bob are paged by 10 forwards and
// backwards; with filters by contact; a message written on IRC is in the
// archive of both sides; the extended fields, metadata, form and
// preferences answer as XEP-0313 says.
func TestMAMPaging(t *testing.T) {
	b := startBox(t, []string{"alice", "bob", "carol", "dave"}, "limits.messages_per_second=1000", "limits.message_burst=1000")
	alice := b.login(t, "alice", "")
	bob := b.login(t, "bob", "")
	bob.send(`<presence/>`)
	start := time.Now().UTC().Add(-time.Second)
	var live *Element
	for i := 1; i <= 25; i++ {
		alice.send(`<message to="bob@box.test" type="chat" id="mid%d"><body>m%d</body></message>`, i, i)
		m := bob.expect("message", isMsg(fmt.Sprint("m", i)))
		if i == 7 {
			live = m
		}
		if i%10 == 0 {
			alice.send(`<message to="carol@box.test" type="chat"><body>c%d</body></message>`, i/10)
		}
	}
	carol := b.ircLogin(t, "carol")
	carol.raw("PRIVMSG alice :from irc")
	alice.expect("carol's message", isMsg("from irc"))

	withBob := `<field var="with"><value>bob@box.test</value></field>`
	// Forwards by 10.
	p := alice.mamQuery(withBob, `<set xmlns="http://jabber.org/protocol/rsm"><max>10</max></set>`)
	p.check(t, "first page", seqBodies("m", 1, 10), false, 0, 25)
	// The archive id is the stanza-id bob saw live.
	if sid := live.Child("urn:xmpp:sid:0", "stanza-id"); sid == nil || p.ids[6] != sid.Get("id") {
		t.Fatalf("archive id %s, live stanza-id %s", p.ids[6], live)
	}
	inner := p.results[6].Child(mamNS, "result").Child(mamForward, "forwarded").Child(nsClient, "message")
	if inner.Get("from") != alice.jid || inner.Get("to") != "bob@box.test" || inner.Get("type") != "chat" || inner.Get("id") != "mid7" {
		t.Fatalf("archived message %s", inner)
	}
	p = alice.mamQuery(withBob, `<set xmlns="http://jabber.org/protocol/rsm"><max>10</max><after>`+p.last+`</after></set>`)
	p.check(t, "second page", seqBodies("m", 11, 20), false, 10, 25)
	p = alice.mamQuery(withBob, `<set xmlns="http://jabber.org/protocol/rsm"><max>10</max><after>`+p.last+`</after></set>`)
	p.check(t, "third page", seqBodies("m", 21, 25), true, 20, 25)

	// Backwards from the end.
	p = alice.mamQuery(withBob, `<set xmlns="http://jabber.org/protocol/rsm"><max>10</max><before/></set>`)
	p.check(t, "last page", seqBodies("m", 16, 25), false, 15, 25)
	p = alice.mamQuery(withBob, `<set xmlns="http://jabber.org/protocol/rsm"><max>10</max><before>`+p.first+`</before></set>`)
	p.check(t, "page before", seqBodies("m", 6, 15), false, 5, 25)
	six := p.first
	p = alice.mamQuery(withBob, `<set xmlns="http://jabber.org/protocol/rsm"><max>10</max><before>`+p.first+`</before></set>`)
	p.check(t, "first page backwards", seqBodies("m", 1, 5), true, 0, 25)
	one := p.first

	// The same conversation in bob's archive (shared history).
	p = bob.mamQuery(`<field var="with"><value>alice@box.test</value></field>`, `<set xmlns="http://jabber.org/protocol/rsm"><max>100</max></set>`)
	p.check(t, "bob's archive", seqBodies("m", 1, 25), true, 0, 25)

	// with carol: two XMPP messages and the IRC one, from her bare JID.
	p = alice.mamQuery(`<field var="with"><value>carol@box.test</value></field>`, "")
	p.check(t, "with carol", []string{"c1", "c2", "from irc"}, true, 0, 3)
	irc := p.results[2].Child(mamNS, "result").Child(mamForward, "forwarded").Child(nsClient, "message")
	if irc.Get("from") != "carol@box.test" || irc.Get("to") != "alice@box.test" {
		t.Fatalf("IRC message in the archive: %s", irc)
	}
	// Everything, no filter: 28 messages, in order.
	p = alice.mamQuery("", `<set xmlns="http://jabber.org/protocol/rsm"><max>100</max></set>`)
	want := append(seqBodies("m", 1, 10), "c1")
	want = append(append(append(want, seqBodies("m", 11, 20)...), "c2"), seqBodies("m", 21, 25)...)
	p.check(t, "whole archive", append(want, "from irc"), true, 0, 28)
	// Nobody by that name: empty and complete.
	p = alice.mamQuery(`<field var="with"><value>someone@elsewhere.example</value></field>`, "")
	p.check(t, "with a stranger", nil, true, 0, 0)

	// #extended: after-id and before-id bound a range, ids pick, flip-page.
	p = alice.mamQuery(withBob+`<field var="after-id"><value>`+one+`</value></field><field var="before-id"><value>`+six+`</value></field>`, "")
	p.check(t, "between m1 and m6", seqBodies("m", 2, 5), true, 0, 4)
	p = alice.mamQuery(`<field var="ids"><value>`+six+`</value><value>`+one+`</value></field>`, "")
	if !slices.Equal(p.bodies, []string{"m1", "m6"}) {
		t.Fatalf("ids: %v", p.bodies)
	}
	p = alice.mamQuery(withBob, `<set xmlns="http://jabber.org/protocol/rsm"><max>3</max></set>`, `<flip-page/>`)
	if !slices.Equal(p.bodies, []string{"m3", "m2", "m1"}) || p.first != p.ids[2] {
		t.Fatalf("flipped page: %v first %s", p.bodies, p.first)
	}
	// Time bounds: everything since start, nothing in the future.
	p = alice.mamQuery(withBob+`<field var="start"><value>`+start.Format(time.RFC3339)+`</value></field>`, `<set xmlns="http://jabber.org/protocol/rsm"><max>5</max></set>`)
	p.check(t, "since start", seqBodies("m", 1, 5), false, 0, 25)
	p = alice.mamQuery(withBob+`<field var="start"><value>`+time.Now().Add(time.Hour).UTC().Format(time.RFC3339)+`</value></field>`, "")
	p.check(t, "from the future", nil, true, 0, 0)

	// Errors.
	alice.iqErr(`<iq type="set" id="{id}"><query xmlns="urn:xmpp:mam:2"><set xmlns="http://jabber.org/protocol/rsm"><after>no-such-id</after></set></query></iq>`, "item-not-found")
	alice.iqErr(`<iq type="set" id="{id}"><query xmlns="urn:xmpp:mam:2"><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>urn:xmpp:mam:2</value></field><field var="{urn:example}search"><value>x</value></field></x></query></iq>`, "feature-not-implemented")
	alice.iqErr(`<iq type="set" id="{id}"><query xmlns="urn:xmpp:mam:2"><x xmlns="jabber:x:data" type="submit"><field var="FORM_TYPE" type="hidden"><value>urn:xmpp:mam:2</value></field><field var="start"><value>yesterday</value></field></x></query></iq>`, "bad-request")
	alice.iqErr(`<iq type="set" id="{id}" to="bob@box.test"><query xmlns="urn:xmpp:mam:2"/></iq>`, "forbidden")

	// The form, the metadata, the preferences.
	r := alice.iq(`<iq type="get" id="{id}"><query xmlns="urn:xmpp:mam:2"/></iq>`)
	_, fields := pepFormFields(r.Child(mamNS, "query").Child(pepXData, "x"))
	for _, f := range []string{"FORM_TYPE", "with", "start", "end", "before-id", "after-id", "ids"} {
		if _, ok := fields[f]; !ok {
			t.Errorf("form lacks %s: %s", f, r)
		}
	}
	all := alice.mamQuery("", `<set xmlns="http://jabber.org/protocol/rsm"><max>100</max></set>`)
	r = alice.iq(`<iq type="get" id="{id}"><metadata xmlns="urn:xmpp:mam:2"/></iq>`)
	md := r.Child(mamNS, "metadata")
	if md.Child(mamNS, "start").Get("id") != all.ids[0] || md.Child(mamNS, "end").Get("id") != all.ids[len(all.ids)-1] ||
		md.Child(mamNS, "end").Get("timestamp") == "" {
		t.Fatalf("metadata %s", r)
	}
	r = alice.iq(`<iq type="get" id="{id}"><prefs xmlns="urn:xmpp:mam:2"/></iq>`)
	if r.Child(mamNS, "prefs").Get("default") != "always" {
		t.Fatalf("prefs %s", r)
	}
	alice.iq(`<iq type="set" id="{id}"><prefs xmlns="urn:xmpp:mam:2" default="always"><always/><never/></prefs></iq>`)
	alice.iqErr(`<iq type="set" id="{id}"><prefs xmlns="urn:xmpp:mam:2" default="never"/></iq>`, "feature-not-implemented")
	alice.iqErr(`<iq type="set" id="{id}"><prefs xmlns="urn:xmpp:mam:2" default="always"><never><jid>bob@box.test</jid></never></prefs></iq>`, "feature-not-implemented")
	r = alice.iq(`<iq type="get" id="{id}"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`)
	requireFeatures(t, discoFeatures(t, r), "urn:xmpp:mam:2", "urn:xmpp:mam:2#extended")

	// An empty archive has empty metadata.
	r = b.login(t, "dave", "").iq(`<iq type="get" id="{id}"><metadata xmlns="urn:xmpp:mam:2"/></iq>`)
	if md := r.Child(mamNS, "metadata"); md == nil || len(md.Kids()) != 0 {
		t.Fatalf("metadata of an empty archive %s", r)
	}
}
