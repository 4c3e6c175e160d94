package xmpp

import (
	"context"
	"testing"

	"chatbox/services/chat"
)

// TestReservedNickQuery: asking a room for one's reserved nickname
// (XEP-0045 §7.12) gets an empty answer, not the room's identity.
func TestReservedNickQuery(t *testing.T) {
	srv, core := startInproc(t, Config{}, "alice")
	if err := core.CreateRoom(context.Background(), "general", "", chat.DefaultRoomSettings()); err != nil {
		t.Fatal(err)
	}
	alice := dialWS(t, serveWS(t, srv))
	alice.login("alice", "web", "SCRAM-SHA-256")
	alice.send(`<iq xmlns="jabber:client" type="get" id="n1" to="general@rooms.%s"><query xmlns="%s" node="x-roomuser-item"/></iq>`, boxDomain, nsDiscoInfo)
	r := alice.expect("the answer", func(e *Element) bool { return e.Get("id") == "n1" })
	q := r.Child(nsDiscoInfo, "query")
	if r.Get("type") != "result" || q == nil || q.Get("node") != "x-roomuser-item" || len(q.Kids()) != 0 {
		t.Fatalf("reserved nick answer %s", r)
	}
	alice.send(`<iq xmlns="jabber:client" type="get" id="n2" to="general@rooms.%s"><query xmlns="%s"/></iq>`, boxDomain, nsDiscoInfo)
	r = alice.expect("the answer", func(e *Element) bool { return e.Get("id") == "n2" })
	if id := r.Child(nsDiscoInfo, "query").Child(nsDiscoInfo, "identity"); id == nil || id.Get("name") != "general" {
		t.Fatalf("room disco#info %s", r)
	}
}
