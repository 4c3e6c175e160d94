package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"chatbox/services/chat"
)

// appendAll appends msgs one by one, queueing each for offline[msg.ID].
func appendAll(t testing.TB, s *Store, msgs []*chat.Message, offline map[string][]string) {
	t.Helper()
	for _, m := range msgs {
		if err := s.AppendMessage(context.Background(), m, offline[m.ID]); err != nil {
			t.Fatal(err)
		}
	}
}

func history(t testing.TB, s *Store, q chat.HistoryQuery) []chat.Message {
	t.Helper()
	h, err := s.History(context.Background(), q)
	if err != nil {
		t.Fatalf("History(%+v): %v", q, err)
	}
	return h
}

func ids(msgs []chat.Message) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

func TestMessageRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	local := time.Date(2025, 1, 2, 3, 4, 5, 678901234, time.FixedZone("X", -7*3600))
	msgs := []*chat.Message{
		{ID: "r1", Time: local, From: "alice", FromNick: "Al", Room: "general", Kind: chat.KindAction,
			Body: "waves\nline two ✓", Extra: `<x xmlns="urn:example"/>`},
		{ID: "d1", Time: time.Now(), From: "alice", To: "bob", Kind: chat.KindNotice, Body: "hi"},
		{ID: "z1", Room: "general"}, // zero time, empty kind
	}
	for _, m := range msgs {
		in := *m
		if err := s.AppendMessage(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		if m.Seq <= 0 {
			t.Fatalf("%s: Seq not filled in: %d", m.ID, m.Seq)
		}
		got, err := s.MessageByID(ctx, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Time.Equal(in.Time) || (!got.Time.IsZero() && got.Time.Location() != time.UTC) {
			t.Errorf("%s: time %v, want %v in UTC", m.ID, got.Time, in.Time)
		}
		in.Seq, in.Time = m.Seq, got.Time
		if !reflect.DeepEqual(got, in) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, in)
		}
	}
	if _, err := s.MessageByID(ctx, "nope"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("MessageByID(nope): %v", err)
	}

	err := s.AppendMessage(ctx, &chat.Message{ID: "r1", Room: "other"}, nil)
	if !errors.Is(err, chat.ErrExists) {
		t.Errorf("duplicate ID: %v", err)
	}
	for _, bad := range []chat.Message{
		{Room: "general"},                      // no ID
		{ID: "x1"},                             // no room, no recipient
		{ID: "x2", Room: "general", To: "bob"}, // both
		{ID: "x3", Room: "general", Time: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if err := s.AppendMessage(ctx, &bad, nil); err == nil {
			t.Errorf("AppendMessage(%+v) succeeded", bad)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.AppendMessage(cancelled, &chat.Message{ID: "c1", Room: "general"}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("AppendMessage with a cancelled context: %v", err)
	}
	if _, err := s.MessageByID(ctx, "c1"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("message of a cancelled append was stored: %v", err)
	}
}

func TestHistoryRoomPaging(t *testing.T) {
	s := openTest(t, "")
	const n = 250
	var want []string
	var msgs []*chat.Message
	for i := range n {
		id := fmt.Sprint("g", i)
		want = append(want, id)
		msgs = append(msgs, &chat.Message{ID: id, Room: "general", From: "alice", Time: at(i), Body: id})
		if i%10 == 0 { // noise in another room and in a conversation
			msgs = append(msgs,
				&chat.Message{ID: fmt.Sprint("o", i), Room: "other", Time: at(i)},
				&chat.Message{ID: fmt.Sprint("d", i), From: "alice", To: "bob", Time: at(i)})
		}
	}
	// Store concurrently in chunks to keep the test quick; then seqs are
	// not in ID order, so the expected order is read back by seq.
	appendConcurrently(t, s, msgs)
	slices.SortFunc(want, func(a, b string) int {
		return int(seqOf(t, s, a) - seqOf(t, s, b))
	})

	if got := ids(history(t, s, chat.HistoryQuery{Room: "general", Limit: 5000})); !reflect.DeepEqual(got, want) {
		t.Fatalf("whole history (%d messages) differs from what was stored (%d)", len(got), len(want))
	}
	if got := history(t, s, chat.HistoryQuery{Room: "general"}); len(got) != DefaultLimit {
		t.Errorf("default limit returned %d messages", len(got))
	}
	if got := ids(history(t, s, chat.HistoryQuery{Room: "general", Limit: 7, Last: true})); !reflect.DeepEqual(got, want[n-7:]) {
		t.Errorf("Last 7 = %v, want %v", got, want[n-7:])
	}

	for _, page := range []int{1, 7, 40, 100, 249, 250, 251} {
		// Forwards.
		var fwd []string
		var after int64
		for {
			h := history(t, s, chat.HistoryQuery{Room: "general", AfterSeq: after, Limit: page})
			if len(h) == 0 {
				break
			}
			if len(h) > page {
				t.Fatalf("page of %d returned %d", page, len(h))
			}
			fwd = append(fwd, ids(h)...)
			after = h[len(h)-1].Seq
		}
		if !reflect.DeepEqual(fwd, want) {
			t.Errorf("forward paging by %d: got %d messages, want %d in order", page, len(fwd), len(want))
		}

		// Backwards.
		var back [][]string
		var before int64
		for {
			h := history(t, s, chat.HistoryQuery{Room: "general", BeforeSeq: before, Limit: page, Last: true})
			if len(h) == 0 {
				break
			}
			if !slices.IsSortedFunc(h, func(a, b chat.Message) int { return int(a.Seq - b.Seq) }) {
				t.Fatalf("Last page not oldest first: %v", ids(h))
			}
			back = append(back, ids(h))
			before = h[0].Seq
		}
		slices.Reverse(back)
		if got := slices.Concat(back...); !reflect.DeepEqual(got, want) {
			t.Errorf("backward paging by %d: got %d messages, want %d in order", page, len(got), len(want))
		}
	}

	// Both seq bounds at once.
	s10, s20 := seqOf(t, s, want[10]), seqOf(t, s, want[20])
	if got := ids(history(t, s, chat.HistoryQuery{Room: "general", AfterSeq: s10, BeforeSeq: s20})); !reflect.DeepEqual(got, want[11:20]) {
		t.Errorf("between seqs: %v, want %v", got, want[11:20])
	}
}

func TestHistoryTimeBounds(t *testing.T) {
	s := openTest(t, "")
	var msgs []*chat.Message
	for i := range 50 {
		msgs = append(msgs, &chat.Message{ID: fmt.Sprint("g", i), Room: "general", Time: at(i)})
	}
	appendAll(t, s, msgs, nil)
	g := func(from, to int) []string {
		var out []string
		for i := from; i <= to; i++ {
			out = append(out, fmt.Sprint("g", i))
		}
		return out
	}
	for _, c := range []struct {
		name string
		q    chat.HistoryQuery
		want []string
	}{
		{"start and end inclusive", chat.HistoryQuery{Start: at(10), End: at(20)}, g(10, 20)},
		{"start only", chat.HistoryQuery{Start: at(45)}, g(45, 49)},
		{"end only", chat.HistoryQuery{End: at(3)}, g(0, 3)},
		{"between instants", chat.HistoryQuery{Start: at(10).Add(time.Nanosecond), End: at(12).Add(-time.Nanosecond)}, g(11, 11)},
		{"limit", chat.HistoryQuery{Start: at(10), End: at(20), Limit: 3}, g(10, 12)},
		{"last", chat.HistoryQuery{Start: at(10), End: at(20), Limit: 3, Last: true}, g(18, 20)},
		{"time and seq", chat.HistoryQuery{Start: at(10), AfterSeq: msgs[14].Seq, Limit: 2}, g(15, 16)},
		{"other zone", chat.HistoryQuery{Start: at(30).In(time.FixedZone("Y", 5*3600)), End: at(31)}, g(30, 31)},
		{"empty range", chat.HistoryQuery{Start: at(20), End: at(10)}, nil},
	} {
		c.q.Room = "general"
		if got := ids(history(t, s, c.q)); !reflect.DeepEqual(got, append([]string{}, c.want...)) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestHistoryDirect(t *testing.T) {
	s := openTest(t, "")
	var msgs []*chat.Message
	var want []string
	for i := range 30 {
		from, to := "alice", "bob"
		if i%3 == 0 {
			from, to = to, from
		}
		id := fmt.Sprint("ab", i)
		want = append(want, id)
		msgs = append(msgs, &chat.Message{ID: id, From: from, To: to, Time: at(i)})
		if i%5 == 0 {
			msgs = append(msgs,
				&chat.Message{ID: fmt.Sprint("ac", i), From: "alice", To: "carol", Time: at(i)},
				&chat.Message{ID: fmt.Sprint("bb", i), From: "bob", To: "bob", Time: at(i)},
				&chat.Message{ID: fmt.Sprint("r", i), From: "alice", Room: "bob", Time: at(i)})
		}
	}
	appendAll(t, s, msgs, nil)
	for _, q := range []chat.HistoryQuery{{Account: "alice", Peer: "bob"}, {Account: "bob", Peer: "alice"}} {
		if got := ids(history(t, s, q)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s with %s: %v", q.Account, q.Peer, got)
		}
	}
	if got := history(t, s, chat.HistoryQuery{Account: "carol", Peer: "alice"}); len(got) != 6 {
		t.Errorf("carol with alice: %v", ids(got))
	}
	if got := history(t, s, chat.HistoryQuery{Account: "bob", Peer: "bob"}); len(got) != 6 {
		t.Errorf("bob with himself: %v", ids(got))
	}
	q := chat.HistoryQuery{Account: "bob", Peer: "alice", AfterSeq: msgs[0].Seq, Start: at(5), End: at(25), Limit: 4, Last: true}
	if got := ids(history(t, s, q)); !reflect.DeepEqual(got, want[22:26]) {
		t.Errorf("bounded conversation page: %v, want %v", got, want[22:26])
	}

	for _, bad := range []chat.HistoryQuery{
		{},
		{Peer: "alice"},
		{Room: "general", Account: "alice", Peer: "bob"},
		{Room: "general", Peer: "bob"},
		{Room: "general", Limit: -1},
	} {
		if _, err := s.History(context.Background(), bad); err == nil {
			t.Errorf("History(%+v) succeeded", bad)
		}
	}
}

// TestHistoryAccount reads every direct conversation of one account at
// once (Account without Peer: its XEP-0313 archive), with paging, time
// bounds and counts; rooms and other people's conversations stay out.
func TestHistoryAccount(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	var msgs []*chat.Message
	var want []string // alice's direct messages in store order
	for i := range 40 {
		id := fmt.Sprint("m", i)
		var m *chat.Message
		switch i % 4 {
		case 0:
			m = &chat.Message{ID: id, From: "alice", To: "bob", Time: at(i)}
		case 1:
			m = &chat.Message{ID: id, From: "carol", To: "alice", Time: at(i)}
		case 2:
			m = &chat.Message{ID: id, From: "alice", To: "alice", Time: at(i)}
		case 3:
			m = &chat.Message{ID: id, From: "bob", To: "carol", Time: at(i)}
		}
		if m.From == "alice" || m.To == "alice" {
			want = append(want, id)
		}
		msgs = append(msgs, m, &chat.Message{ID: fmt.Sprint("r", i), From: "alice", Room: "alice", Time: at(i)})
	}
	appendAll(t, s, msgs, nil)
	all := chat.HistoryQuery{Account: "alice", Limit: 1000}
	if got := ids(history(t, s, all)); !reflect.DeepEqual(got, want) {
		t.Fatalf("alice's archive: %v\nwant %v", got, want)
	}
	n, err := s.CountHistory(ctx, chat.HistoryQuery{Account: "alice", Limit: 1})
	if err != nil || n != len(want) {
		t.Fatalf("CountHistory(alice) = %d, %v; want %d", n, err, len(want))
	}
	if got := ids(history(t, s, chat.HistoryQuery{Account: "carol", Limit: 1000})); len(got) != 20 {
		t.Errorf("carol's archive has %d messages, want 20: %v", len(got), got)
	}

	// Forwards and backwards by pages of 7 give the whole archive.
	var fwd []string
	var after int64
	for {
		h := history(t, s, chat.HistoryQuery{Account: "alice", AfterSeq: after, Limit: 7})
		if len(h) == 0 {
			break
		}
		fwd, after = append(fwd, ids(h)...), h[len(h)-1].Seq
	}
	var back []string
	var before int64
	for {
		h := history(t, s, chat.HistoryQuery{Account: "alice", BeforeSeq: before, Limit: 7, Last: true})
		if len(h) == 0 {
			break
		}
		back, before = append(ids(h), back...), h[0].Seq
	}
	if !reflect.DeepEqual(fwd, want) || !reflect.DeepEqual(back, want) {
		t.Errorf("paged archive:\nforwards  %v\nbackwards %v\nwant      %v", fwd, back, want)
	}

	// Time bounds and seq bounds combine; counts follow the same filter.
	q := chat.HistoryQuery{Account: "alice", Start: at(8), End: at(21), AfterSeq: msgs[2*9].Seq}
	wantQ := []string{"m10", "m12", "m13", "m14", "m16", "m17", "m18", "m20", "m21"}
	if got := ids(history(t, s, q)); !reflect.DeepEqual(got, wantQ) {
		t.Errorf("bounded archive: %v, want %v", got, wantQ)
	}
	if n, err := s.CountHistory(ctx, q); err != nil || n != len(wantQ) {
		t.Errorf("bounded count = %d, %v; want %d", n, err, len(wantQ))
	}
	if n, err := s.CountHistory(ctx, chat.HistoryQuery{Room: "alice"}); err != nil || n != 40 {
		t.Errorf("room count = %d, %v; want 40", n, err)
	}
	if _, err := s.CountHistory(ctx, chat.HistoryQuery{}); err == nil {
		t.Error("CountHistory of nothing succeeded")
	}
}

func TestClampLimit(t *testing.T) {
	for in, want := range map[int]int{0: DefaultLimit, 1: 1, 999: 999, MaxLimit: MaxLimit, MaxLimit + 1: MaxLimit, math.MaxInt: MaxLimit} {
		if got, err := clampLimit(in); err != nil || got != want {
			t.Errorf("clampLimit(%d) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := clampLimit(-1); err == nil {
		t.Error("clampLimit(-1) succeeded")
	}
}

func TestOffline(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	for _, name := range []string{"alice", "bob", "carol"} {
		mustCreateAccount(t, s, name)
	}
	var msgs []*chat.Message
	offline := map[string][]string{}
	for i := range 10 {
		m := &chat.Message{ID: fmt.Sprint("m", i), From: "alice", To: "bob", Time: at(i)}
		if i%2 == 1 {
			m = &chat.Message{ID: fmt.Sprint("m", i), From: "alice", Room: "general", Time: at(i)}
			offline[m.ID] = []string{"bob", "carol", "nosuch", "bob"}
		} else {
			offline[m.ID] = []string{"bob"}
		}
		msgs = append(msgs, m)
	}
	appendAll(t, s, msgs, offline)

	all, err := s.Offline(ctx, "bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ids(all), ids(derefAll(msgs)); !reflect.DeepEqual(got, want) {
		t.Fatalf("bob's queue = %v, want %v", got, want)
	}
	if got, _ := s.Offline(ctx, "bob", 3); !reflect.DeepEqual(ids(got), ids(all[:3])) {
		t.Errorf("Offline(bob, 3) = %v", ids(got))
	}
	if got, _ := s.Offline(ctx, "carol", 0); !reflect.DeepEqual(ids(got), []string{"m1", "m3", "m5", "m7", "m9"}) {
		t.Errorf("carol's queue = %v", ids(got))
	}
	if got, _ := s.Offline(ctx, "nosuch", 0); len(got) != 0 {
		t.Errorf("unknown account got a queue: %v", ids(got))
	}

	if err := s.AckOffline(ctx, "bob", all[4].Seq); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Offline(ctx, "bob", 0); !reflect.DeepEqual(ids(got), ids(all[5:])) {
		t.Errorf("after ack up to m4: %v", ids(got))
	}
	if got, _ := s.Offline(ctx, "carol", 0); len(got) != 5 {
		t.Errorf("ack of bob touched carol's queue: %v", ids(got))
	}
	if err := s.AckOffline(ctx, "bob", 1<<62); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Offline(ctx, "bob", 0); len(got) != 0 {
		t.Errorf("after ack of everything: %v", ids(got))
	}
	// The messages stay in history.
	if got := history(t, s, chat.HistoryQuery{Account: "alice", Peer: "bob"}); len(got) != 5 {
		t.Errorf("acked messages left history: %v", ids(got))
	}
}

func derefAll(ms []*chat.Message) []chat.Message {
	out := make([]chat.Message, len(ms))
	for i, m := range ms {
		out[i] = *m
	}
	return out
}

func seqOf(t testing.TB, s *Store, id string) int64 {
	t.Helper()
	m, err := s.MessageByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m.Seq
}
