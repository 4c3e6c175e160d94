package xmpp

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// End-to-end tests of XEP-0401 invitations, their XEP-0050 commands and
// pre-authenticated registration (XEP-0401 §4, XEP-0445).

var inviteURIRe = regexp.MustCompile(`^xmpp:((?:[a-z][a-z0-9_-]*@)?box\.test)\?register;preauth=([a-z2-7]{26})$`)

// commandsItems lists the commands node of the domain: node → item.
func commandsItems(t *testing.T, c *client) map[string]*Element {
	t.Helper()
	r := c.iq(`<iq type="get" id="{id}" to="box.test"><query xmlns="http://jabber.org/protocol/disco#items" node="http://jabber.org/protocol/commands"/></iq>`)
	q := r.Child(nsDiscoItems, "query")
	if q == nil || q.Get("node") != nsCommands {
		t.Fatalf("commands disco#items: %s", r)
	}
	out := map[string]*Element{}
	for _, it := range q.Kids() {
		if it.Get("jid") != boxDomain || it.Get("name") == "" {
			t.Fatalf("command item without the domain's JID or a name: %s", it)
		}
		out[it.Get("node")] = it
	}
	return out
}

// formValue is a data form field's first value.
func formValue(x *Element, name string) string {
	for _, f := range x.Kids() {
		if f.Is(nsXData, "field") && f.Get("var") == name {
			return f.ChildText(nsXData, "value")
		}
	}
	return ""
}

// inviteResult checks a completed invitation command and returns its
// URI's localpart (if any) and token.
func inviteResult(t *testing.T, r *Element, node string) (local, token string) {
	t.Helper()
	cmd := r.Child(nsCommands, "command")
	if cmd == nil || cmd.Get("node") != node || cmd.Get("status") != "completed" || cmd.Get("sessionid") == "" {
		t.Fatalf("command result: %s", r)
	}
	x := cmd.Child(nsXData, "x")
	if x == nil || x.Get("type") != "result" {
		t.Fatalf("no result form: %s", r)
	}
	m := inviteURIRe.FindStringSubmatch(formValue(x, "uri"))
	if m == nil {
		t.Fatalf("uri field %q is no xmpp:box.test?register;preauth=TOKEN: %s", formValue(x, "uri"), r)
	}
	exp, err := time.Parse(time.RFC3339, formValue(x, "expire"))
	if err != nil || time.Until(exp) < 6*24*time.Hour || time.Until(exp) > 8*24*time.Hour {
		t.Fatalf("expire %q is not about 7 days ahead (XEP-0082): %v", formValue(x, "expire"), err)
	}
	if formValue(x, "landing-url") != "" {
		t.Fatalf("landing-url without a web address: %s", r)
	}
	local, _, _ = strings.Cut(m[1], "@")
	if !strings.Contains(m[1], "@") {
		local = ""
	}
	return local, m[2]
}

// preauth presents token on a raw stream and returns the response.
func preauth(c *rawClient, id, token string) *Element {
	c.write(`<iq type="set" id="` + id + `" to="box.test"><preauth xmlns="urn:xmpp:pars:0" token="` + token + `"/></iq>`)
	return rawResponse(c, id)
}

// TestInvites: with registration.policy=invite, alice runs
// urn:xmpp:invite#invite and gets an xmpp: URI; a new stream, refused
// registration without a token and refused garbage, presents the token,
// registers newbie and newbie logs in: alice and newbie are each other's
// contacts (subscription both, pushed to alice, presence flows). The
// token then no longer works, nor does a revoked one.
func TestInvites(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"}, "registration.policy=invite")
	alice := online(t, b, "alice", "")

	feats := discoFeatures(t, alice.iq(`<iq type="get" id="{id}" to="box.test"><query xmlns="http://jabber.org/protocol/disco#info"/></iq>`))
	for _, want := range []string{nsInvite, nsCommands} {
		if !strings.Contains(strings.Join(feats, " "), want) {
			t.Errorf("disco#info of the domain lacks %s: %v", want, feats)
		}
	}
	items := commandsItems(t, alice)
	if items[nsInviteInvite] == nil || items[nsInviteCreate] != nil || len(items) != 1 {
		t.Fatalf("commands a non-admin may run under policy invite: %v", items)
	}
	alice.iqErr(`<iq type="set" id="{id}" to="box.test"><command xmlns="http://jabber.org/protocol/commands" node="urn:xmpp:invite#create-account" action="execute"/></iq>`, "forbidden")
	alice.iqErr(`<iq type="set" id="{id}" to="box.test"><command xmlns="http://jabber.org/protocol/commands" node="urn:example:nothing" action="execute"/></iq>`, "item-not-found")
	alice.iqErr(`<iq type="get" id="{id}" to="box.test"><command xmlns="http://jabber.org/protocol/commands" node="urn:xmpp:invite#invite"/></iq>`, "bad-request")

	r := alice.iq(`<iq type="set" id="{id}" to="box.test"><command xmlns="http://jabber.org/protocol/commands" node="urn:xmpp:invite#invite" action="execute"/></iq>`)
	local, token := inviteResult(t, r, nsInviteInvite)
	if local != "" {
		t.Fatalf("an invitation for any name has a localpart: %s", r)
	}

	// Before authentication: the invitation feature, no registration
	// without a token, garbage refused.
	c, f := b.rawConnect(t)
	if f.Child(nsInvite, "register") == nil || f.Child(nsIBRToken, "register") == nil {
		t.Fatalf("no <register xmlns='urn:xmpp:invite'/> and ibr-token stream features: %s", f)
	}
	if f.Child(nsRegisterFeature, "register") != nil {
		t.Fatalf("registration offered under policy invite: %s", f)
	}
	registerSet(c, "r0", "newbie", "password-newbie")
	rawErr(t, c, "r0", "not-allowed")
	for i, garbage := range []string{"garbage", strings.ToUpper(token), ""} {
		if r := preauth(c, "p"+string(rune('0'+i)), garbage); iqErrorCondition(r) != "item-not-found" || r.Get("type") != "error" {
			t.Fatalf("preauth with %q: %s, want item-not-found", garbage, r)
		}
	}
	registerSet(c, "r1", "newbie", "password-newbie")
	rawErr(t, c, "r1", "not-allowed")

	// The token opens registration on this stream.
	if r := preauth(c, "p9", token); r.Get("type") != "result" || len(r.Kids()) != 0 {
		t.Fatalf("preauth with a valid token: %s", r)
	}
	registerSet(c, "r2", "alice", "password-newbie")
	rawErr(t, c, "r2", "conflict")
	registerSet(c, "r3", "newbie", "password-newbie")
	if r := rawResponse(c, "r3"); r.Get("type") != "result" {
		t.Fatalf("registration with an invitation: %s", r)
	}

	// Alice's roster gets newbie (both); newbie's has alice (both).
	expectPush(t, alice, "newbie@box.test", "both", "", "")
	if it := rosterItems(t, alice.iq(rosterGet))["newbie@box.test"]; it == nil || it.Get("subscription") != "both" {
		t.Fatalf("alice's roster item for newbie: %v", it)
	}
	newbie := b.login(t, "newbie", "")
	nr := rosterItems(t, newbie.iq(rosterGet))
	if it := nr["alice@box.test"]; it == nil || it.Get("subscription") != "both" || it.Get("ask") != "" || len(nr) != 1 {
		t.Fatalf("newbie's roster: %v", nr)
	}
	// Presence flows both ways, as between contacts.
	newbie.send(`<presence/>`)
	newbie.expect("alice's presence", rosPres(alice.jid, ""))
	alice.expect("newbie's presence", rosPres(newbie.jid, ""))

	// The token is spent: a new stream cannot use it.
	c2, _ := b.rawConnect(t)
	if r := preauth(c2, "q1", token); iqErrorCondition(r) != "item-not-found" {
		t.Fatalf("preauth with a spent token: %s", r)
	}
	registerSet(c2, "q2", "other", "password-other")
	rawErr(t, c2, "q2", "not-allowed")

	// A token revoked from the command line no longer works.
	_, token = inviteResult(t, alice.iq(`<iq type="set" id="{id}" to="box.test"><command xmlns="http://jabber.org/protocol/commands" node="urn:xmpp:invite#invite" action="execute"/></iq>`), nsInviteInvite)
	if out := b.cli(t, "", "invite", "list"); !strings.Contains(out, token) || !strings.Contains(out, "by alice") {
		t.Fatalf("chatbox invite list does not show alice's invitation %s:\n%s", token, out)
	}
	b.cli(t, "", "invite", "revoke", token)
	if r := preauth(c2, "q3", token); iqErrorCondition(r) != "item-not-found" {
		t.Fatalf("preauth with a revoked token: %s", r)
	}
}

// TestInviteCommandsClosed: with registration closed, a non-admin may
// run no invitation command; an admin runs both. create-account is a
// two-stage command (a form, then its submission; canceling ends the
// session); its invitation reserves the name and adds the admin as a
// contact when asked. An invitation from the command line works while
// registration is closed and adds no contact.
func TestInviteCommandsClosed(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	b.cli(t, "", "user", "admin", "bob", "yes")
	alice := b.login(t, "alice", "")
	if items := commandsItems(t, alice); len(items) != 0 {
		t.Fatalf("commands offered to a non-admin while registration is closed: %v", items)
	}
	alice.iqErr(`<iq type="set" id="{id}" to="box.test"><command xmlns="http://jabber.org/protocol/commands" node="urn:xmpp:invite#invite" action="execute"/></iq>`, "forbidden")

	bob := online(t, b, "bob", "")
	if items := commandsItems(t, bob); items[nsInviteInvite] == nil || items[nsInviteCreate] == nil {
		t.Fatalf("commands of an admin: %v", items)
	}

	// Stage one: the form. Cancel ends the session.
	exec := `<iq type="set" id="{id}" to="box.test"><command xmlns="http://jabber.org/protocol/commands" node="urn:xmpp:invite#create-account" action="execute"/></iq>`
	r := bob.iq(exec)
	cmd := r.Child(nsCommands, "command")
	sid := cmd.Get("sessionid")
	x := cmd.Child(nsXData, "x")
	if cmd.Get("status") != "executing" || sid == "" || x == nil || x.Get("type") != "form" ||
		cmd.Child(nsCommands, "actions").Child(nsCommands, "complete") == nil {
		t.Fatalf("create-account, first stage: %s", r)
	}
	var vars []string
	for _, f := range x.Kids() {
		if f.Is(nsXData, "field") {
			vars = append(vars, f.Get("var")+"/"+f.Get("type"))
		}
	}
	if strings.Join(vars, " ") != "username/text-single roster-subscription/boolean" {
		t.Fatalf("create-account form fields: %v", vars)
	}
	r = bob.iq(`<iq type="set" id="{id}" to="box.test"><command xmlns="http://jabber.org/protocol/commands" node="urn:xmpp:invite#create-account" sessionid="` + sid + `" action="cancel"/></iq>`)
	if c := r.Child(nsCommands, "command"); c.Get("status") != "canceled" || c.Get("sessionid") != sid {
		t.Fatalf("cancel: %s", r)
	}
	e := bob.iqErr(`<iq type="set" id="{id}" to="box.test"><command xmlns="http://jabber.org/protocol/commands" node="urn:xmpp:invite#create-account" sessionid="`+sid+`" action="complete"><x xmlns="jabber:x:data" type="submit"/></command></iq>`, "bad-request")
	if e.Child(nsClient, "error").Child(nsCommands, "bad-sessionid") == nil {
		t.Fatalf("a canceled session: %s, want <bad-sessionid/>", e)
	}

	// Stage two: a taken name is a conflict (the session is over), then
	// a reserved name with bob as contact.
	submit := func(sid, user, roster string) string {
		return `<iq type="set" id="{id}" to="box.test"><command xmlns="http://jabber.org/protocol/commands" node="urn:xmpp:invite#create-account" sessionid="` + sid +
			`" action="complete"><x xmlns="jabber:x:data" type="submit"><field var="username"><value>` + user +
			`</value></field><field var="roster-subscription"><value>` + roster + `</value></field></x></command></iq>`
	}
	sid = bob.iq(exec).Child(nsCommands, "command").Get("sessionid")
	bob.iqErr(submit(sid, "alice", "1"), "conflict")
	sid = bob.iq(exec).Child(nsCommands, "command").Get("sessionid")
	local, token := inviteResult(t, bob.iq(submit(sid, "Carol", "1")), nsInviteCreate)
	if local != "carol" {
		t.Fatalf("reserved name in the URI: %q, want carol", local)
	}

	c, f := b.rawConnect(t)
	if f.Child(nsRegisterFeature, "register") != nil || f.Child(nsInvite, "register") == nil {
		t.Fatalf("stream features while registration is closed: %s", f)
	}
	if r := preauth(c, "p1", token); r.Get("type") != "result" {
		t.Fatalf("preauth: %s", r)
	}
	registerSet(c, "r1", "dave", "password-dave")
	rawErr(t, c, "r1", "not-acceptable")
	registerSet(c, "r2", "carol", "password-carol")
	if r := rawResponse(c, "r2"); r.Get("type") != "result" {
		t.Fatalf("registration of the reserved name: %s", r)
	}
	expectPush(t, bob, "carol@box.test", "both", "", "")
	carol := b.login(t, "carol", "")
	if it := rosterItems(t, carol.iq(rosterGet))["bob@box.test"]; it == nil || it.Get("subscription") != "both" {
		t.Fatalf("carol's roster item for bob: %v", it)
	}

	// The command line's invitation: no contact.
	out := b.cli(t, "", "--set", "domain="+boxDomain, "invite")
	m := regexp.MustCompile(`xmpp:box\.test\?register;preauth=([a-z2-7]{26})`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("chatbox invite printed no URI:\n%s", out)
	}
	c, _ = b.rawConnect(t)
	if r := preauth(c, "p2", m[1]); r.Get("type") != "result" {
		t.Fatalf("preauth with the command line's token: %s", r)
	}
	registerSet(c, "r3", "erin", "password-erin")
	if r := rawResponse(c, "r3"); r.Get("type") != "result" {
		t.Fatalf("registration with the command line's invitation: %s", r)
	}
	erin := b.login(t, "erin", "")
	if items := rosterItems(t, erin.iq(rosterGet)); len(items) != 0 {
		t.Fatalf("a box invitation gave erin contacts: %v", items)
	}
	bob.quiet("roster push of erin", rosPush("erin@box.test"))
}
