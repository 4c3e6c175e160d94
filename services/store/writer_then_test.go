package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"chatbox/services/chat"
)

// thenLog records AppendMessageThen's callbacks in the order they ran.
type thenLog struct {
	mu    sync.Mutex
	calls []thenCall
	c     chan struct{} // one send per callback (buffered)
}

type thenCall struct {
	i   int
	seq int64
	err error
}

func newThenLog(n int) *thenLog { return &thenLog{c: make(chan struct{}, n)} }

// then returns the callback of the i-th call.
func (l *thenLog) then(i int) func(int64, error) {
	return func(seq int64, err error) {
		l.mu.Lock()
		l.calls = append(l.calls, thenCall{i, seq, err})
		l.mu.Unlock()
		l.c <- struct{}{}
	}
}

func (l *thenLog) wait(t *testing.T, n int) []thenCall {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for k := range n {
		select {
		case <-l.c:
		case <-timeout:
			t.Fatalf("only %d of %d callbacks ran", k, n)
		}
	}
	return l.got()
}

func (l *thenLog) got() []thenCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]thenCall(nil), l.calls...)
}

func roomMsg(id string) *chat.Message {
	return &chat.Message{ID: id, Time: at(1), From: "alice", FromNick: "alice", Room: "general", Body: "body of " + id}
}

// TestAppendMessageThenOrder: callbacks run once each, in call order,
// with increasing seqs that are the stored messages'; a duplicate ID
// fails alone; m itself is not touched.
func TestAppendMessageThenOrder(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	const n = 300
	l := newThenLog(n + 1)
	var msgs []*chat.Message
	for i := range n {
		id := fmt.Sprintf("m%03d", i)
		if i == 150 {
			id = "m010" // a duplicate: its callback gets ErrExists
		}
		m := roomMsg(id)
		msgs = append(msgs, m)
		if err := s.AppendMessageThen(ctx, m, nil, l.then(i)); err != nil {
			t.Fatalf("AppendMessageThen %d: %v", i, err)
		}
	}
	calls := l.wait(t, n)
	var last int64
	for k, c := range calls {
		if c.i != k {
			t.Fatalf("callback %d is call %d's: not in call order", k, c.i)
		}
		if k == 150 {
			if !errors.Is(c.err, chat.ErrExists) {
				t.Fatalf("duplicate ID: err %v, want ErrExists", c.err)
			}
			continue
		}
		if c.err != nil || c.seq <= last {
			t.Fatalf("call %d: seq %d (previous %d), err %v", k, c.seq, last, c.err)
		}
		last = c.seq
		if got, err := s.MessageByID(ctx, msgs[k].ID); err != nil || got.Seq != c.seq || got.Body != msgs[k].Body {
			t.Fatalf("call %d: stored %+v, %v; callback said seq %d", k, got, err, c.seq)
		}
		if msgs[k].Seq != 0 {
			t.Fatalf("call %d: m.Seq set to %d: m must not be touched", k, msgs[k].Seq)
		}
	}
	h := history(t, s, chat.HistoryQuery{Room: "general", Limit: 1000})
	if len(h) != n-1 {
		t.Fatalf("history holds %d messages, want %d", len(h), n-1)
	}
	// Interleaved with AppendMessage, order still holds.
	if err := s.AppendMessage(ctx, roomMsg("sync"), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendMessageThen(ctx, roomMsg("after"), nil, l.then(n)); err != nil {
		t.Fatal(err)
	}
	if c := l.wait(t, 1)[n]; c.err != nil || c.seq <= last+1 {
		t.Fatalf("message after a synchronous one: %+v (last async seq %d)", c, last)
	}
	select {
	case <-l.c:
		t.Fatalf("an extra callback: %+v", l.got())
	default:
	}
}

// TestAppendMessageThenRefused: an invalid message, a done context or a
// closed store return an error, and the callback is never called.
func TestAppendMessageThenRefused(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "refused.db"))
	l := newThenLog(10)
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	bad := []struct {
		name string
		ctx  context.Context
		m    *chat.Message
	}{
		{"no ID", ctx, &chat.Message{Room: "general", Body: "x"}},
		{"room and recipient", ctx, &chat.Message{ID: "b1", Room: "general", To: "bob"}},
		{"neither room nor recipient", ctx, &chat.Message{ID: "b2"}},
		{"context done", cancelled, roomMsg("b3")},
	}
	for i, b := range bad {
		if err := s.AppendMessageThen(b.ctx, b.m, nil, l.then(i)); err == nil {
			t.Errorf("%s: no error", b.name)
		}
	}
	// A good message after them: its callback is the only one.
	if err := s.AppendMessageThen(ctx, roomMsg("good"), nil, l.then(99)); err != nil {
		t.Fatal(err)
	}
	calls := l.wait(t, 1)
	if len(calls) != 1 || calls[0].i != 99 || calls[0].err != nil {
		t.Fatalf("callbacks %+v, want only the good message's", calls)
	}
	if _, err := s.MessageByID(ctx, "b3"); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("message refused for a done context was stored: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendMessageThen(ctx, roomMsg("late"), nil, l.then(100)); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v, want ErrClosed", err)
	}
	if calls := l.got(); len(calls) != 1 {
		t.Fatalf("callbacks %+v after refusals", calls)
	}
}

// TestAppendMessageThenCommittedByClose: messages queued before Close are
// committed, and their callbacks have run, when Close returns.
func TestAppendMessageThenCommittedByClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "close.db")
	s, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	l := newThenLog(n)
	for i := range n {
		if err := s.AppendMessageThen(context.Background(), roomMsg(fmt.Sprintf("c%03d", i)), nil, l.then(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	calls := l.got() // no wait: Close waited for the writer
	if len(calls) != n {
		t.Fatalf("%d of %d callbacks ran before Close returned", len(calls), n)
	}
	for k, c := range calls {
		if c.i != k || c.err != nil || c.seq <= 0 {
			t.Fatalf("callback %d: %+v", k, c)
		}
	}
	s = openTest(t, path)
	h := history(t, s, chat.HistoryQuery{Room: "general", Limit: 1000})
	if len(h) != n {
		t.Fatalf("reopened store holds %d of %d messages", len(h), n)
	}
	for k, m := range h {
		if want := fmt.Sprintf("c%03d", k); m.ID != want || m.Seq != calls[k].seq {
			t.Fatalf("message %d: %s seq %d, want %s seq %d", k, m.ID, m.Seq, want, calls[k].seq)
		}
	}
}
