package chat_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"chatbox/services/chat"
)

// TestOccupantsInNickOrder checks the order the core keeps its occupants
// in (the list a joiner gets, Core.Occupants) through joins in any order,
// second sessions, nick changes, parts and closed sessions: always every
// occupant once, by folded nick, with its sessions as they are now.
func TestOccupantsInNickOrder(t *testing.T) {
	f := newFixture(t, nil)
	nicks := []string{"Mia", "bob", "zed", "Alice", "carl", "dora", "Eve", "al"}
	sessions := map[string]*chat.Session{}
	for i, n := range nicks {
		acct := fmt.Sprintf("user%d", i)
		f.account(acct)
		s, _ := f.open(acct, "irc")
		if _, err := f.core.Join(f.ctx, s, "general", n, ""); err != nil {
			t.Fatal(err)
		}
		sessions[n] = s
	}
	check := func(step string, want ...string) {
		t.Helper()
		occ, err := f.core.Occupants(f.ctx, "general")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range occ {
			got = append(got, fmt.Sprintf("%s:%d", o.Nick, len(o.Sessions)))
		}
		slices.SortFunc(want, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
		if !slices.Equal(got, want) {
			t.Fatalf("%s: occupants %v, want %v", step, got, want)
		}
	}
	check("joined", "Mia:1", "bob:1", "zed:1", "Alice:1", "carl:1", "dora:1", "Eve:1", "al:1")

	// A second session of bob's account under the same nick: one occupant, two sessions.
	b2, _ := f.open("user1", "xmpp")
	res, err := f.core.Join(f.ctx, b2, "general", "bob", "")
	if err != nil || len(res.Self.Sessions) != 2 || res.Self.Sessions[0].ID > res.Self.Sessions[1].ID {
		t.Fatalf("second session: %+v %v", res.Self, err)
	}
	check("second session", "Mia:1", "bob:2", "zed:1", "Alice:1", "carl:1", "dora:1", "Eve:1", "al:1")

	if err := f.core.ChangeNick(f.ctx, sessions["zed"], "general", "Aaron"); err != nil {
		t.Fatal(err)
	}
	if err := f.core.ChangeNick(f.ctx, sessions["al"], "general", "Zoe"); err != nil {
		t.Fatal(err)
	}
	check("nick changes", "Mia:1", "bob:2", "Aaron:1", "Alice:1", "carl:1", "dora:1", "Eve:1", "Zoe:1")

	if err := f.core.Part(f.ctx, sessions["carl"], "general", ""); err != nil {
		t.Fatal(err)
	}
	sessions["Mia"].Close("gone")
	b2.Close("gone")
	check("parts", "bob:1", "Aaron:1", "Alice:1", "dora:1", "Eve:1", "Zoe:1")

	// A second occupant of Aaron's account, under a nick that sorts first;
	// the list the joiner gets is the same.
	s, _ := f.open("user2", "xmpp")
	res, err = f.core.Join(f.ctx, s, "general", "aa", "")
	if err != nil || res.Occupants[0].Nick != "aa" || len(res.Occupants) != 7 {
		t.Fatalf("join after parts: %+v %v", res.Occupants, err)
	}
	check("rejoined", "aa:1", "bob:1", "Aaron:1", "Alice:1", "dora:1", "Eve:1", "Zoe:1")
}
