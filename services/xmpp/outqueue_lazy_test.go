package xmpp

import (
	"strings"
	"sync"
	"testing"
	"time"

	"chatbox/internal/rounds"
)

// recWriter records each Write.
type recWriter struct {
	mu     sync.Mutex
	writes []string
	got    chan struct{}
}

func (w *recWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.writes = append(w.writes, string(b))
	w.mu.Unlock()
	select {
	case w.got <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (w *recWriter) all() (string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.writes, ""), len(w.writes)
}

func (w *recWriter) waitFor(t *testing.T, want string) int {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if s, n := w.all(); s == want {
			return n
		} else if len(s) > len(want) || !strings.HasPrefix(want, s) {
			t.Fatalf("written %q, want %q", s, want)
		}
		select {
		case <-w.got:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			s, _ := w.all()
			t.Fatalf("written %q after 10 s, want %q", s, want)
		}
	}
}

func lazyQueue(lazy *rounds.Rounds) (*outQueue, *recWriter) {
	w := &recWriter{got: make(chan struct{}, 1)}
	q := newOutQueue(w, 1<<20, nil)
	q.rounds, q.shard = rounds.New(1, 0), 0
	q.lazy = lazy
	q.start(nil)
	return q, w
}

// blocker holds a lazy round's shard busy until released: the lazy
// stanzas queued meanwhile wait for the next round, as in a storm of
// joins.
type blocker struct {
	in, out chan struct{}
}

func (b blocker) Flush() {
	b.in <- struct{}{}
	<-b.out
}

// TestLazyStanzasWaitAndGoTogether: other occupants' presence waits for
// the lazy round and then goes in one write, in order.
func TestLazyStanzasWaitAndGoTogether(t *testing.T) {
	lazy := rounds.New(1, 0)
	b := blocker{in: make(chan struct{}), out: make(chan struct{})}
	lazy.Add(0, b)
	<-b.in // the lazy shard is busy
	q, w := lazyQueue(lazy)
	want := ""
	for i := range 10 {
		s := "<presence n='" + string(rune('0'+i)) + "'/>"
		if !q.pushPrepared(true, []byte(s[5:9]), &prepared{prefix: []byte(s[:5]), suffix: []byte(s[9:])}) {
			t.Fatal("pushPrepared refused")
		}
		want += s
	}
	time.Sleep(50 * time.Millisecond)
	if s, _ := w.all(); s != "" {
		t.Fatalf("written before the lazy round: %q", s)
	}
	close(b.out)
	if n := w.waitFor(t, want); n != 1 {
		t.Fatalf("%d writes for 10 lazy stanzas, want 1", n)
	}
}

// TestLazyThenUrgent: a stanza pushed the usual way takes what waited
// with it, in order, without waiting for the lazy round.
func TestLazyThenUrgent(t *testing.T) {
	lazy := rounds.New(1, 0)
	b := blocker{in: make(chan struct{}), out: make(chan struct{})}
	lazy.Add(0, b)
	<-b.in
	defer close(b.out)
	q, w := lazyQueue(lazy)
	q.pushPrepared(true, nil, whole("<presence/>"))
	q.pushPrepared(false, nil, whole("<message/>"))
	w.waitFor(t, "<presence/><message/>")
}

// TestLazyAloneIsWritten: with nothing else, the lazy round writes it
// (at once when the lazy shard is idle); a lazy push while a writer runs
// goes with that writer.
func TestLazyAloneIsWritten(t *testing.T) {
	q, w := lazyQueue(rounds.New(1, lazyCoalesce))
	q.pushPrepared(true, nil, whole("<presence a='1'/>"))
	w.waitFor(t, "<presence a='1'/>")
	q.pushPrepared(true, nil, whole("<presence a='2'/>"))
	q.pushPrepared(true, nil, whole("<presence a='3'/>"))
	w.waitFor(t, "<presence a='1'/><presence a='2'/><presence a='3'/>")
	if !q.flush() {
		t.Fatal("flush: not written")
	}
}

// whole is a stanza s as a prepared one with an empty to.
func whole(s string) *prepared { return &prepared{prefix: []byte(s), suffix: []byte{}} }
