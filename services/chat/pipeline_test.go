package chat_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatbox/services/chat"
)

// pipeWait bounds every wait of the pipeline tests (a hang detector).
const pipeWait = 10 * time.Second

// holds says whether r received message id, and whether as an echo; it
// keeps what r holds.
func (r *recorder) holds(id string) (got, echo bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.d {
		if d.Kind == chat.DelMessage && d.Message != nil && d.Message.ID == id {
			return true, d.Echo
		}
	}
	return false, false
}

// doneCall is one call of a SendRoomAsync done, with what was true when
// it ran.
type doneCall struct {
	tag      string
	m        chat.Message
	err      error
	stored   bool // the store had the message
	receiver bool // the other occupant's session had it
	echo     bool // the sender's session had it, as an echo
}

// doneLog makes done funcs that record their calls in order.
type doneLog struct {
	mu    sync.Mutex
	calls []doneCall
	c     chan struct{}
	check func(m chat.Message) doneCall // what to look at when done runs
}

func newDoneLog(n int, check func(chat.Message) doneCall) *doneLog {
	return &doneLog{c: make(chan struct{}, n), check: check}
}

func (l *doneLog) done(tag string) func(chat.Message, error) {
	return func(m chat.Message, err error) {
		var c doneCall
		if err == nil && l.check != nil {
			c = l.check(m)
		}
		c.tag, c.m, c.err = tag, m, err
		l.mu.Lock()
		l.calls = append(l.calls, c)
		l.mu.Unlock()
		l.c <- struct{}{}
	}
}

func (l *doneLog) wait(t *testing.T, n int) []doneCall {
	t.Helper()
	timeout := time.After(pipeWait)
	for k := range n {
		select {
		case <-l.c:
		case <-timeout:
			t.Fatalf("only %d of %d done calls", k, n)
		}
	}
	return l.got()
}

func (l *doneLog) got() []doneCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]doneCall(nil), l.calls...)
}

// roomPair makes alice and bob, each with a session, both in #general.
func roomPair(f *fixture) (a, b *chat.Session, ra, rb *recorder) {
	f.t.Helper()
	f.account("alice", "bob")
	a, ra = f.open("alice", "irc")
	b, rb = f.open("bob", "xmpp")
	for _, s := range []*chat.Session{a, b} {
		if _, err := f.core.Join(f.ctx, s, "general", "", ""); err != nil {
			f.t.Fatal(err)
		}
	}
	ra.take()
	rb.take()
	return a, b, ra, rb
}

// TestSendRoomAsyncOrderAndDelivery: over the real store, done is called
// once per message, in send order, after the message is stored and the
// room's sessions (the sender's as an echo) have it.
func TestSendRoomAsyncOrderAndDelivery(t *testing.T) {
	f := newFixture(t, nil)
	a, _, ra, rb := roomPair(f)
	const n = 200
	l := newDoneLog(n+1, func(m chat.Message) doneCall {
		var c doneCall
		got, err := f.st.MessageByID(context.Background(), m.ID)
		c.stored = err == nil && got.Seq == m.Seq && got.Body == m.Body
		c.receiver, _ = rb.holds(m.ID)
		var echoed bool
		echoed, c.echo = ra.holds(m.ID)
		c.echo = c.echo && echoed
		return c
	})
	for i := range n {
		body := fmt.Sprintf("message %d", i)
		if err := f.core.SendRoomAsync(f.ctx, a, "General", chat.KindNormal, body, "", l.done(body)); err != nil {
			t.Fatalf("SendRoomAsync %d: %v", i, err)
		}
	}
	calls := l.wait(t, n)
	var last int64
	for i, c := range calls {
		if want := fmt.Sprintf("message %d", i); c.tag != want || c.m.Body != want {
			t.Fatalf("done call %d is for %q (body %q): not in send order", i, c.tag, c.m.Body)
		}
		if c.err != nil {
			t.Fatalf("%s: %v", c.tag, c.err)
		}
		if c.m.Seq <= last || c.m.Room != "general" || c.m.From != "alice" || c.m.ID == "" {
			t.Fatalf("%s: message %+v (previous seq %d)", c.tag, c.m, last)
		}
		last = c.m.Seq
		if !c.stored || !c.receiver || !c.echo {
			t.Fatalf("%s: when done ran: stored %v, bob had it %v, alice had its echo %v", c.tag, c.stored, c.receiver, c.echo)
		}
	}
	// bob got every message once, in order.
	got := rb.messages()
	if len(got) != n {
		t.Fatalf("bob got %d messages, want %d", len(got), n)
	}
	for i, m := range got {
		if m.ID != calls[i].m.ID {
			t.Fatalf("bob's message %d is %q, want %q", i, m.Body, calls[i].m.Body)
		}
	}
	h, err := f.core.History(f.ctx, a, chat.HistoryQuery{Room: "general", Limit: 1000})
	if err != nil || len(h) != n {
		t.Fatalf("history: %d messages, %v", len(h), err)
	}
	for i, m := range h {
		if m.ID != calls[i].m.ID || m.Seq != calls[i].m.Seq {
			t.Fatalf("history %d: %s seq %d, want %s seq %d", i, m.ID, m.Seq, calls[i].m.ID, calls[i].m.Seq)
		}
	}
	// Nothing is called twice: a marker's done comes after any repeat.
	if err := f.core.SendRoomAsync(f.ctx, a, "general", chat.KindNormal, "marker", "", l.done("marker")); err != nil {
		t.Fatal(err)
	}
	if calls := l.wait(t, 1); len(calls) != n+1 || calls[n].tag != "marker" {
		t.Fatalf("%d done calls for %d messages", len(calls), n+1)
	}
}

// TestSendRoomAsyncConcurrentSenders: several sessions sending at once
// each see their own messages' done in their order, and every receiver
// gets the messages in the order the dones ran (commit order).
func TestSendRoomAsyncConcurrentSenders(t *testing.T) {
	f := newFixture(t, nil)
	const senders, each = 4, 50
	var sessions []*chat.Session
	var recs []*recorder
	for i := range senders {
		name := fmt.Sprintf("user%d", i)
		f.account(name)
		s, r := f.open(name, "irc")
		if _, err := f.core.Join(f.ctx, s, "general", "", ""); err != nil {
			t.Fatal(err)
		}
		sessions, recs = append(sessions, s), append(recs, r)
	}
	for _, r := range recs {
		r.take()
	}
	l := newDoneLog(senders*each, nil)
	var wg sync.WaitGroup
	errc := make(chan error, senders)
	for i, s := range sessions {
		wg.Go(func() {
			for k := range each {
				tag := fmt.Sprintf("%d/%d", i, k)
				if err := f.core.SendRoomAsync(f.ctx, s, "general", chat.KindNormal, tag, "", l.done(tag)); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	calls := l.wait(t, senders*each)
	next := make([]int, senders)
	var last int64
	for _, c := range calls {
		var i, k int
		fmt.Sscanf(c.tag, "%d/%d", &i, &k)
		if c.err != nil || k != next[i] || c.m.Seq <= last {
			t.Fatalf("done for %s (err %v, seq %d after %d): want %d/%d next", c.tag, c.err, c.m.Seq, last, i, next[i])
		}
		next[i]++
		last = c.m.Seq
	}
	for j, r := range recs {
		got := r.messages()
		if len(got) != len(calls) {
			t.Fatalf("user%d got %d messages, want %d", j, len(got), len(calls))
		}
		for x, m := range got {
			if m.ID != calls[x].m.ID {
				t.Fatalf("user%d's message %d is %q, done order has %q", j, x, m.Body, calls[x].m.Body)
			}
		}
	}
}

// TestSendRoomAsyncSynchronousErrors: what SendRoom refuses is returned
// at once and done is never called.
func TestSendRoomAsyncSynchronousErrors(t *testing.T) {
	f := newFixture(t, nil)
	a, _, _, _ := roomPair(f)
	f.account("carol")
	c, rc := f.open("carol", "irc") // not in the room (+n)
	closed, _ := f.open("carol", "xmpp")
	closed.Close("gone")
	l := newDoneLog(10, nil)
	cases := []struct {
		name string
		s    *chat.Session
		room string
		body string
		want error
	}{
		{"outsider", c, "general", "hi", chat.ErrNotInRoom},
		{"no such room", a, "nowhere", "hi", chat.ErrNoSuchRoom},
		{"closed session", closed, "general", "hi", chat.ErrSessionClosed},
	}
	for _, tc := range cases {
		err := f.core.SendRoomAsync(f.ctx, tc.s, tc.room, chat.KindNormal, tc.body, "", l.done(tc.name))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := f.core.SendRoomAsync(f.ctx, a, "general", chat.KindNormal, longBody(), "", l.done("too long")); err == nil {
		t.Error("an over-long body: no error")
	}
	// A good message after them: its done is the only one.
	if err := f.core.SendRoomAsync(f.ctx, a, "general", chat.KindNormal, "fine", "", l.done("fine")); err != nil {
		t.Fatal(err)
	}
	if calls := l.wait(t, 1); len(calls) != 1 || calls[0].tag != "fine" || calls[0].err != nil {
		t.Fatalf("done calls %+v, want only the good message's", calls)
	}
	if got := rc.messages(); len(got) != 0 {
		t.Fatalf("the outsider got %+v", got)
	}
}

// longBody is a body longer than any limit on one message.
func longBody() string { return strings.Repeat("x", 1<<20) }

// syncOnlyStore is the real store without AppendMessageThen (the method
// set of the embedded interface only), counting AppendMessage calls.
type syncOnlyStore struct {
	chat.Store
	appends atomic.Int32
	fail    error
}

func (s *syncOnlyStore) AppendMessage(ctx context.Context, m *chat.Message, offlineFor []string) error {
	s.appends.Add(1)
	if s.fail != nil {
		return s.fail
	}
	return s.Store.AppendMessage(ctx, m, offlineFor)
}

// TestSendRoomAsyncWithoutAsyncStore: over a store that cannot queue a
// message, SendRoomAsync stores, routes and calls done before returning;
// a store error reaches done, not the return.
func TestSendRoomAsyncWithoutAsyncStore(t *testing.T) {
	var ss *syncOnlyStore
	f := newFixture(t, func(o *chat.Options) {
		ss = &syncOnlyStore{Store: o.Store}
		o.Store = ss
	})
	if _, ok := chat.Store(ss).(chat.AsyncAppender); ok {
		t.Fatal("the wrapper still has AppendMessageThen")
	}
	a, _, ra, rb := roomPair(f)
	var called int
	var got chat.Message
	err := f.core.SendRoomAsync(f.ctx, a, "general", chat.KindNormal, "sync", "", func(m chat.Message, err error) {
		called++
		got = m
		if err != nil {
			t.Errorf("done: %v", err)
		}
		if ok, _ := rb.holds(m.ID); !ok {
			t.Error("done ran before bob got the message")
		}
		if _, echo := ra.holds(m.ID); !echo {
			t.Error("done ran before alice got her echo")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if called != 1 {
		t.Fatalf("done called %d times before SendRoomAsync returned, want 1", called)
	}
	if ss.appends.Load() != 1 || got.Seq <= 0 {
		t.Fatalf("%d AppendMessage calls, seq %d", ss.appends.Load(), got.Seq)
	}
	if stored, err := f.st.MessageByID(f.ctx, got.ID); err != nil || stored.Body != "sync" {
		t.Fatalf("stored %+v, %v", stored, err)
	}
	// A store failure: done gets it, SendRoomAsync returns nil, nobody
	// is sent the message.
	ss.fail = errors.New("disk on fire")
	rb.take()
	called = 0
	var derr error
	err = f.core.SendRoomAsync(f.ctx, a, "general", chat.KindNormal, "lost", "", func(m chat.Message, err error) {
		called++
		derr = err
	})
	if err != nil || called != 1 || !errors.Is(derr, ss.fail) {
		t.Fatalf("failing store: returned %v, done called %d times with %v", err, called, derr)
	}
	if got := rb.messages(); len(got) != 0 {
		t.Fatalf("bob got a message that was not stored: %+v", got)
	}
}

// failingAsyncStore queues nothing: every message fails on the "writer".
type failingAsyncStore struct {
	chat.Store
	err error
}

func (s *failingAsyncStore) AppendMessageThen(ctx context.Context, m *chat.Message, offlineFor []string, then func(int64, error)) error {
	go then(0, s.err)
	return nil
}

// TestSendRoomAsyncStoreFailure: a message the store fails to commit is
// reported to done with the store's error, and routed to nobody.
func TestSendRoomAsyncStoreFailure(t *testing.T) {
	boom := errors.New("batch failed")
	f := newFixture(t, func(o *chat.Options) { o.Store = &failingAsyncStore{Store: o.Store, err: boom} })
	a, _, ra, rb := roomPair(f)
	l := newDoneLog(1, nil)
	if err := f.core.SendRoomAsync(f.ctx, a, "general", chat.KindNormal, "doomed", "", l.done("doomed")); err != nil {
		t.Fatal(err)
	}
	c := l.wait(t, 1)[0]
	if !errors.Is(c.err, boom) || c.m.ID != "" {
		t.Fatalf("done got %+v, %v; want the store's error and no message", c.m, c.err)
	}
	if got := append(ra.messages(), rb.messages()...); len(got) != 0 {
		t.Fatalf("a failed message was routed: %+v", got)
	}
}

// TestInFlight: Add blocks once MaxInFlight are in flight, until a Done;
// Wait returns only when none is.
func TestInFlight(t *testing.T) {
	var f chat.InFlight
	f.Wait() // zero value, nothing in flight: returns at once
	filled := make(chan struct{})
	go func() {
		for range chat.MaxInFlight {
			f.Add()
		}
		close(filled)
	}()
	select {
	case <-filled:
	case <-time.After(pipeWait):
		t.Fatalf("%d Adds did not return", chat.MaxInFlight)
	}
	var added atomic.Bool
	addDone := make(chan struct{})
	go func() {
		f.Add()
		added.Store(true)
		close(addDone)
	}()
	waited := make(chan struct{})
	var waitReturned atomic.Bool
	go func() {
		f.Wait()
		waitReturned.Store(true)
		close(waited)
	}()
	// Give a wrong Add or Wait a chance to return; a right one never does
	// before the Done below, so this cannot fail spuriously.
	time.Sleep(20 * time.Millisecond)
	if added.Load() {
		t.Fatalf("Add returned with %d in flight", chat.MaxInFlight)
	}
	f.Done()
	select {
	case <-addDone:
	case <-time.After(pipeWait):
		t.Fatal("a blocked Add did not return after a Done")
	}
	// MaxInFlight in flight again: Wait needs every one Done.
	for i := range chat.MaxInFlight {
		if waitReturned.Load() {
			t.Fatalf("Wait returned with %d in flight", chat.MaxInFlight-i)
		}
		f.Done()
	}
	select {
	case <-waited:
	case <-time.After(pipeWait):
		t.Fatal("Wait did not return with nothing in flight")
	}
	f.Wait()
}

// batchRecorder is a recorder that also takes runs (chat.BatchSink).
type batchRecorder struct {
	recorder
	runs []int
}

func (r *batchRecorder) DeliverBatch(ds []chat.Delivery) {
	r.mu.Lock()
	r.runs = append(r.runs, len(ds))
	r.d = append(r.d, ds...)
	r.mu.Unlock()
}

// TestFanRoomRun: a run of messages to one room reaches a BatchSink in
// one call and a plain Sink one by one, in the same order, each sender's
// own as its echo, each message with its own fan-out.
func TestFanRoomRun(t *testing.T) {
	f := newFixture(t, nil)
	f.account("alice", "bob", "carol")
	alice, ra := f.open("alice", "irc")
	bob, rb := f.open("bob", "xmpp")
	rc := &batchRecorder{}
	carol, err := f.core.Open(f.ctx, chat.SessionInfo{Account: "carol", Door: "xmpp", Resource: "c", Addr: "127.0.0.1"}, rc)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*chat.Session{alice, bob, carol} {
		if _, err := f.core.Join(f.ctx, s, "general", s.Info().Account, ""); err != nil {
			t.Fatal(err)
		}
	}
	ra.take()
	rb.take()
	rc.take()
	senders := []*chat.Session{alice, bob, alice}
	var msgs []*chat.Message
	for i, s := range senders {
		msgs = append(msgs, &chat.Message{ID: fmt.Sprint("m", i), Seq: int64(100 + i), Room: "general", From: s.Info().Account, Body: fmt.Sprint("line ", i)})
	}
	f.core.FanRoomRun("general", senders, msgs)
	if len(rc.runs) != 1 || rc.runs[0] != 3 {
		t.Fatalf("carol's calls: runs %v, want one of 3", rc.runs)
	}
	got := map[string]struct {
		got  []chat.Delivery
		echo []bool
	}{
		"alice": {ra.take(), []bool{true, false, true}},
		"bob":   {rb.take(), []bool{false, true, false}},
		"carol": {rc.take(), []bool{false, false, false}},
	}
	for who, c := range got {
		if len(c.got) != 3 {
			t.Fatalf("%s got %d deliveries, want 3", who, len(c.got))
		}
		for i, d := range c.got {
			if d.Kind != chat.DelMessage || d.Message != msgs[i] || d.Echo != c.echo[i] || d.From.Account != senders[i].Info().Account || d.Shared == nil {
				t.Fatalf("%s's delivery %d: %+v, want message %d (echo %v)", who, i, d, i, c.echo[i])
			}
		}
		if c.got[0].Shared == c.got[1].Shared {
			t.Fatalf("%s: two messages of the run share a fan-out", who)
		}
		if c.got[1].Shared != got["carol"].got[1].Shared {
			t.Fatalf("%s and carol: one message, two fan-outs", who)
		}
	}
}
