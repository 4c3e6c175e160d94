package irc

import (
	"testing"

	"chatbox/services/chat"
)

// TestOccupantIs: an operator names a guest by the nick IRC shows (its
// name without the pseudo-account's prefix); accounts by their name.
func TestOccupantIs(t *testing.T) {
	for _, c := range []struct {
		account, nick string
		want          bool
	}{
		{"alice", "alice", true},
		{"~zoe", "zoe", true},
		{"~zoe", "~zoe", true}, // the session's own pseudo-account (roomStanding)
		{"~zoe", "zo", false},
		{"zoe", "~zoe", false},
		{"alice", "bob", false},
	} {
		if got := occupantIs(chat.Occupant{Account: c.account, Nick: "whatever"}, c.nick); got != c.want {
			t.Errorf("occupantIs(%q, %q) = %v, want %v", c.account, c.nick, got, c.want)
		}
	}
}
