package irc

import (
	"strings"
	"testing"
	"time"

	"chatbox/internal/rounds"
	"chatbox/services/chat"
)

// TestLazyLinesInOrder: others' JOIN and QUIT lines go by the lazy
// rounds (write.go); each arrives, and a line queued after one (a
// message) never overtakes it, even when the lazy round is far off.
func TestLazyLinesInOrder(t *testing.T) {
	d := newFuzzDoor(t, fuzzDoorOptions{
		accounts: map[string]bool{"u000": false, "u001": false, "u002": false},
		limits: chat.Limits{MessagesPerSecond: 1e6, MessageBurst: 1 << 20,
			FailedLoginsPerMinute: 1 << 20, SessionsPerAccount: 1000},
		cfg: Config{PlainListen: []string{"127.0.0.1:0"}, LinesPerSecond: 1e6, LineBurst: 1 << 20,
			PingInterval: time.Hour, PingTimeout: time.Hour},
	})
	// A lazy round at most every minute: a lazy line that is not taken
	// along by another waits that long.
	d.srv.lazyRounds = rounds.New(1, time.Minute)
	addr := serveDoor(t, d)

	a, ar := slowJoin(t, addr, "u000", 0)
	a.SetReadDeadline(time.Now().Add(slowWait))
	next := func(want ...string) {
		t.Helper()
		for {
			line, err := ar.ReadString('\n')
			if err != nil {
				t.Fatalf("u000 waiting for %q: %v", want, err)
			}
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			if ok {
				return
			}
			if strings.Contains(line, " PRIVMSG ") || strings.Contains(line, " JOIN ") || strings.Contains(line, " QUIT ") {
				t.Fatalf("u000 got %q before a line with %q", line, want)
			}
		}
	}
	b, _ := slowJoin(t, addr, "u001", 0)
	next(":u001!", " JOIN ")
	for i := range 5 {
		c, _ := slowJoin(t, addr, "u002", 0)
		if _, err := b.Write([]byte("PRIVMSG #" + fuzzRoom + " :after the join\r\n")); err != nil {
			t.Fatal(err)
		}
		next(":u002!", " JOIN ")
		next(":u001!", " PRIVMSG ", "after the join")
		c.Write([]byte("QUIT :bye\r\n"))
		c.Close()
		// The message is sent once the core has the quit: sent earlier,
		// it could be routed first, and the lazy QUIT after it would
		// rightly wait for the next lazy round (a minute here).
		for deadline := time.Now().Add(slowWait); len(d.core.Sessions("u002")) > 0; {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: u002's session still open %s after its QUIT", i, slowWait)
			}
			time.Sleep(time.Millisecond)
		}
		if _, err := b.Write([]byte("PRIVMSG #" + fuzzRoom + " :after the quit\r\n")); err != nil {
			t.Fatal(err)
		}
		quit, msg := false, false
		for !quit || !msg {
			line, err := ar.ReadString('\n')
			if err != nil {
				t.Fatalf("round %d: u000 waiting for the QUIT and the message: %v", i, err)
			}
			quit = quit || strings.Contains(line, ":u002!") && strings.Contains(line, " QUIT ")
			msg = msg || strings.Contains(line, "after the quit")
		}
	}
}
