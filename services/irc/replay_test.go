package irc_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
)

// TestJoinReplayWhileTalking: joining while someone speaks, a client
// without chathistory gets the recent lines once each and in order, the
// replay before anything newer (the replay is made right after the JOIN
// burst, on the writer, and live copies of replayed lines are skipped).
func TestJoinReplayWhileTalking(t *testing.T) {
	t.Parallel()
	b := startBox(t, []string{"alice", "bob"},
		"rooms.default_history=20", "limits.messages_per_second=100000", "limits.message_burst=100000")
	alice := b.login(t, "alice")
	join(alice, "#general")
	const n = 200
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= n; i++ {
			alice.send(fmt.Sprintf("PRIVMSG #general :line %d", i))
		}
	}()
	bob := b.login(t, "bob")
	bob.send("JOIN #general")
	var got []int
	bob.expect("the last line", func(m ircmsg.Message) bool {
		if m.Command != "PRIVMSG" || m.Params[0] != "#general" {
			return false
		}
		k, err := strconv.Atoi(strings.TrimPrefix(m.Params[1], "line "))
		if err != nil {
			t.Fatalf("unexpected line %v", m.Params)
		}
		got = append(got, k)
		return k == n
	})
	<-done
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("lines out of order or repeated at %d: %v", i, got)
		}
	}
}
