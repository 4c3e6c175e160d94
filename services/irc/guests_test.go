package irc_test

import (
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
)

// TestGuests: with registration.guests on, a client that does not log in
// joins rooms and speaks there, but sends no direct messages; with it
// off (the default) it can do nothing but log in.
func TestGuests(t *testing.T) {
	t.Run("allowed", func(t *testing.T) {
		b := startBox(t, []string{"alice"}, "registration.guests=true")
		alice := b.login(t, "alice")
		alice.send("JOIN #general")
		alice.expectLine("366")
		g := b.dial(t, "visitor", false)
		g.register("Visitor", "")
		g.send("JOIN #general")
		g.expectLine("366")
		alice.expect("the guest's join", isFrom("visitor", "JOIN"))
		g.send("PRIVMSG #general :hello from a guest")
		m := alice.expect("the guest's message", isFrom("visitor", "PRIVMSG", "#general"))
		if lastParam(m) != "hello from a guest" {
			t.Fatalf("alice got %q", lastParam(m))
		}
		g.send("PRIVMSG alice :psst")
		g.expect("a refusal", func(m ircmsg.Message) bool {
			return m.Command == "FAIL" && strings.Contains(strings.Join(m.Params, " "), "FORBIDDEN")
		})
		g.send("NICK alice")
		g.expectLine("432")
	})
	t.Run("refused by default", func(t *testing.T) {
		b := startBox(t, []string{"alice"})
		g := b.dial(t, "visitor", false)
		g.register("visitor", "")
		g.send("JOIN #general")
		g.expect("a request to log in", func(m ircmsg.Message) bool {
			return m.Command == "NOTICE" && strings.Contains(lastParam(m), "log in")
		})
	})
}
