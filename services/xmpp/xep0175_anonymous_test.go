package xmpp

import (
	"strings"
	"testing"
)

// guestWS logs a guest in over the WebSocket and binds resource; it
// returns the client and the bound JID.
func guestWS(t *testing.T, url, resource string) (*wsClient, string) {
	t.Helper()
	g := dialWS(t, url)
	guestHost := "guest." + boxDomain
	open := func() {
		g.send(`<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" to="%s" version="1.0"/>`, guestHost)
		g.next() // open
		g.next() // features
	}
	open()
	g.send(`<auth xmlns="%s" mechanism="ANONYMOUS"/>`, nsSASL)
	if ok := g.next(); !ok.Is(nsSASL, "success") {
		t.Fatalf("got %s, want success", ok)
	}
	open()
	g.send(`<iq xmlns="jabber:client" type="set" id="b"><bind xmlns="%s"><resource>%s</resource></bind></iq>`, nsBind, resource)
	return g, g.next().Child(nsBind, "bind").ChildText(nsBind, "jid")
}

// TestGuestNames: a guest is named after the resource it binds when
// that is a free valid name, else gets a random name; guest.<domain>
// answers disco (no upload service outside event mode, and slot requests
// are refused).
func TestGuestNames(t *testing.T) {
	srv, _ := startInproc(t, Config{Guests: true}, "alice")
	url := serveWS(t, srv)
	host := "guest." + boxDomain
	random := func(jid, res string) bool {
		local, rest, _ := strings.Cut(jid, "@")
		return strings.HasPrefix(local, "guest-") && len(local) == len("guest-")+8 && rest == host+"/"+res
	}
	g, jid := guestWS(t, url, "Zoe")
	if jid != "zoe@"+host+"/Zoe" {
		t.Fatalf("Zoe bound %q", jid)
	}
	for _, res := range []string{"zoe", "Alice", "not a name", "9lives"} {
		if _, jid := guestWS(t, url, res); !random(jid, res) {
			t.Fatalf("resource %q bound %q, want a random guest name", res, jid)
		}
	}

	g.send(`<iq xmlns="jabber:client" type="get" id="i1" to="%s"><query xmlns="%s"/></iq>`, host, nsDiscoInfo)
	r := g.expect("disco#info", func(e *Element) bool { return e.Get("id") == "i1" })
	if r.Get("type") != "result" || r.Get("from") != host || r.First().Child(nsDiscoInfo, "identity").Get("category") != "server" {
		t.Fatalf("disco#info of the guest host: %s", r)
	}
	g.send(`<iq xmlns="jabber:client" type="get" id="i2" to="%s"><query xmlns="%s"/></iq>`, host, nsDiscoItems)
	r = g.expect("disco#items", func(e *Element) bool { return e.Get("id") == "i2" })
	var items []string
	for _, it := range r.First().Kids() {
		items = append(items, it.Get("jid"))
	}
	if r.Get("type") != "result" || strings.Join(items, " ") != "rooms."+boxDomain {
		t.Fatalf("disco#items of the guest host: %s", r)
	}
	g.send(`<iq xmlns="jabber:client" type="get" id="u1" to="upload.%s"><request xmlns="%s" filename="a.png" size="10"/></iq>`, boxDomain, nsUpload)
	if r := g.expect("the slot refusal", func(e *Element) bool { return e.Get("id") == "u1" }); r.Get("type") != "error" || !strings.Contains(r.String(), "forbidden") {
		t.Fatalf("a guest's slot request outside event mode: %s", r)
	}
}

// TestRetractionStanza: the XEP-0425 notice names the stanza-id in both
// the current and the earlier form, with the reason.
func TestRetractionStanza(t *testing.T) {
	el := retractionStanza("general@rooms.box.test", "bob@box.test/web", "abc123", "spam")
	s := el.String()
	for _, want := range []string{
		`from="general@rooms.box.test"`, `type="groupchat"`,
		`<retract xmlns="urn:xmpp:message-retract:1" id="abc123"><moderated xmlns="urn:xmpp:message-moderate:1" by="general@rooms.box.test"/><reason>spam</reason></retract>`,
		`<apply-to xmlns="urn:xmpp:fasten:0" id="abc123"><moderated xmlns="urn:xmpp:message-moderate:0" by="general@rooms.box.test"><retract xmlns="urn:xmpp:message-retract:0"/><reason>spam</reason></moderated></apply-to>`,
	} {
		if !strings.Contains(s, want) {
			t.Fatalf("notice %s\nlacks %s", s, want)
		}
	}
}
