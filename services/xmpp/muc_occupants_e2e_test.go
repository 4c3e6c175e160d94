package xmpp

import (
	"fmt"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
)

// TestMUCOccupantsFromCore: the door keeps no copy of the occupants, so
// what needs one asks the core. Bob shares two rooms with alice, who is
// A1 in one and A2 in the other: her presence change shows in both under
// the right nick, a private message finds her by nick (and a missing
// nick is item-not-found), and when her connection ends bob sees each
// nick leave (her session leaves each room before it closes).
func TestMUCOccupantsFromCore(t *testing.T) {
	b := startBox(t, []string{"alice", "bob", "carol"})
	bob := b.login(t, "bob", "laptop")
	bob.send(`<presence/>`)
	bob.join("room1", "bob")
	bob.join("room2", "bob")
	alice := b.login(t, "alice", "phone")
	alice.send(`<presence/>`)
	alice.join("room1", "A1")
	alice.join("room2", "A2")
	from := func(room, nick string) string { return room + "@" + roomsDomain + "/" + nick }
	for _, x := range [][2]string{{"room1", "A1"}, {"room2", "A2"}} {
		p := bob.expect("alice joining "+x[0], func(e *Element) bool {
			return e.Local == "presence" && e.Get("from") == from(x[0], x[1])
		})
		if it := mucItem(p); it.Get("jid") != "alice@"+boxDomain || it.Get("role") != "participant" {
			t.Fatalf("alice's presence in %s: %s", x[0], p)
		}
	}

	// Her rooms come in no set order (the core walks a map): wait for
	// both, whichever first.
	bothRooms := func() map[string]bool {
		return map[string]bool{from("room1", "A1"): true, from("room2", "A2"): true}
	}
	alice.send(`<presence><show>away</show><status>lunch</status></presence>`)
	for want := bothRooms(); len(want) > 0; {
		p := bob.expect(fmt.Sprintf("alice away in %v", want), func(e *Element) bool {
			return e.Local == "presence" && want[e.Get("from")] && e.Get("type") == "" &&
				e.ChildText(nsClient, "show") == "away" && e.ChildText(nsClient, "status") == "lunch"
		})
		delete(want, p.Get("from"))
	}

	bob.send(`<message to="%s" type="chat" id="pm1"><body>psst</body></message>`, from("room1", "a1"))
	pm := alice.expect("the private message", isMsg("psst"))
	if a, _ := parseJID(pm.Get("from")); a.Bare() != "bob@"+boxDomain {
		t.Fatalf("private message from %q", pm.Get("from"))
	}
	bob.send(`<message to="%s" type="chat" id="pm2"><body>anyone?</body></message>`, from("room1", "nobody"))
	e := bob.expect("error for nobody", func(e *Element) bool { return e.Get("id") == "pm2" })
	if e.Get("type") != "error" || e.Child(nsClient, "error").Child(nsStanzaErr, "item-not-found") == nil {
		t.Fatalf("private message to a missing nick: %s", e)
	}

	// An IRC member's quit (the core's DelQuit: its entry is gone when
	// the door shows it).
	carol := b.ircLogin(t, "carol")
	carol.raw("JOIN #room1")
	carol.expect("join", func(m ircmsg.Message) bool { return m.Command == "366" })
	bob.expect("carol joining", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == from("room1", "carol") && e.Get("type") == ""
	})
	carol.raw("QUIT :bye")
	q := bob.expect("carol quitting", func(e *Element) bool {
		return e.Local == "presence" && e.Get("from") == from("room1", "carol") && e.Get("type") == "unavailable"
	})
	if it := mucItem(q); it.Get("jid") != "carol@"+boxDomain || it.Get("affiliation") != "none" || q.ChildText(nsClient, "status") != "Quit: bye" {
		t.Fatalf("carol's quit: %s", q)
	}

	alice.close()
	for want := bothRooms(); len(want) > 0; {
		p := bob.expect(fmt.Sprintf("alice leaving %v", want), func(e *Element) bool {
			return e.Local == "presence" && want[e.Get("from")] && e.Get("type") == "unavailable"
		})
		if it := mucItem(p); it.Get("jid") != "alice@"+boxDomain || it.Get("affiliation") != "none" {
			t.Fatalf("alice's leaving %s: %s", p.Get("from"), p)
		}
		delete(want, p.Get("from"))
	}
}
