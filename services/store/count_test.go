package store

import (
	"context"
	"fmt"
	"testing"

	"chatbox/services/chat"
)

func TestCountMessagesSince(t *testing.T) {
	s := openTest(t, "")
	var msgs []*chat.Message
	for i := range 10 {
		msgs = append(msgs, &chat.Message{ID: fmt.Sprint("g", i), Room: "general", Time: at(i)})
	}
	msgs = append(msgs, &chat.Message{ID: "d", From: "alice", To: "bob", Time: at(7)})
	appendAll(t, s, msgs, nil)
	for _, c := range []struct {
		from, want int
	}{{0, 11}, {7, 4}, {9, 1}, {10, 0}} {
		n, err := s.CountMessagesSince(context.Background(), at(c.from))
		if err != nil || n != c.want {
			t.Errorf("since at(%d): %d, %v; want %d", c.from, n, err, c.want)
		}
	}
}
