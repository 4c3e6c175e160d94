package irc

import (
	"testing"
	"time"

	"chatbox/services/chat"
)

func TestParseMsgRef(t *testing.T) {
	ts := time.Date(2019, 1, 4, 14, 33, 26, 123e6, time.UTC)
	for _, tc := range []struct {
		in     string
		starOK bool
		ok     bool
		want   msgRef
	}{
		{"*", true, true, msgRef{star: true}},
		{"*", false, false, msgRef{star: true}},
		{"msgid=abc123", false, true, msgRef{msgid: "abc123"}},
		{"msgid=a=b", false, true, msgRef{msgid: "a=b"}},
		{"msgid=", false, false, msgRef{}},
		{"timestamp=2019-01-04T14:33:26.123Z", false, true, msgRef{ts: ts}},
		{"timestamp=2019-01-04T15:33:26.123+01:00", false, true, msgRef{ts: ts}},
		{"timestamp=2019-01-04", false, false, msgRef{}},
		{"timestamp=", false, false, msgRef{}},
		{"2019-01-04T14:33:26.123Z", false, false, msgRef{}},
		{"MSGID=abc", false, false, msgRef{}},
		{"", true, false, msgRef{}},
	} {
		got, ok := parseMsgRef(tc.in, tc.starOK)
		if ok != tc.ok {
			t.Errorf("parseMsgRef(%q, %v) ok = %v, want %v", tc.in, tc.starOK, ok, tc.ok)
			continue
		}
		if ok && (got.star != tc.want.star || got.msgid != tc.want.msgid || !got.ts.Equal(tc.want.ts)) {
			t.Errorf("parseMsgRef(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	// Out of the store's range: clamped, not refused.
	got, ok := parseMsgRef("timestamp=0001-01-01T00:00:00.000Z", false)
	if !ok || got.ts.Year() != 1700 {
		t.Errorf("year 1 = %v %v, want clamped to 1700", got.ts, ok)
	}
	got, ok = parseMsgRef("timestamp=9999-01-01T00:00:00.000Z", false)
	if !ok || got.ts.Year() != 2200 {
		t.Errorf("year 9999 = %v %v, want clamped to 2200", got.ts, ok)
	}
}

func TestParseHistoryLimit(t *testing.T) {
	for in, want := range map[string]int{"1": 1, "50": 50, "100": 100, "101": 100, "100000": 100, "0": 100} {
		if got, ok := parseHistoryLimit(in); !ok || got != want {
			t.Errorf("parseHistoryLimit(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, in := range []string{"-1", "ten", "", "1.5", "*"} {
		if _, ok := parseHistoryLimit(in); ok {
			t.Errorf("parseHistoryLimit(%q) accepted", in)
		}
	}
}

func TestPlanHistory(t *testing.T) {
	base := chat.HistoryQuery{Room: "general"}
	t0 := time.Date(2024, 3, 9, 16, 0, 0, 620_400_000, time.UTC) // 620.4 ms
	ms := t0.Truncate(time.Millisecond)
	ts := position{t: t0}
	id := position{seq: 10, t: t0}
	none := position{}

	p := planHistory("LATEST", base, none, none, true, 50)
	if q := p.first; !q.Last || q.Limit != 50 || q.Room != "general" || !q.Start.IsZero() || q.AfterSeq != 0 || !p.backward {
		t.Errorf("LATEST * = %+v", p)
	}
	p = planHistory("LATEST", base, ts, none, false, 50)
	if q := p.first; !q.Last || !q.Start.Equal(ms.Add(time.Millisecond)) {
		t.Errorf("LATEST timestamp = %+v", q)
	}
	p = planHistory("LATEST", base, id, none, false, 50)
	if q := p.first; !q.Last || q.AfterSeq != 10 || !q.Start.IsZero() {
		t.Errorf("LATEST msgid = %+v", q)
	}
	p = planHistory("BEFORE", base, id, none, false, 20)
	if q := p.first; !q.Last || q.BeforeSeq != 10 || q.Limit != 20 || !p.backward {
		t.Errorf("BEFORE msgid = %+v", p)
	}
	p = planHistory("BEFORE", base, ts, none, false, 20)
	if q := p.first; !q.Last || !q.End.Equal(ms.Add(-time.Nanosecond)) {
		t.Errorf("BEFORE timestamp = %+v", q)
	}
	p = planHistory("AFTER", base, ts, none, false, 20)
	if q := p.first; q.Last || !q.Start.Equal(ms.Add(time.Millisecond)) || p.backward {
		t.Errorf("AFTER timestamp = %+v", p)
	}
	p = planHistory("AFTER", base, id, none, false, 20)
	if q := p.first; q.Last || q.AfterSeq != 10 {
		t.Errorf("AFTER msgid = %+v", q)
	}
	p = planHistory("AROUND", base, id, none, false, 5)
	if !p.around || p.first.BeforeSeq != 10 || p.first.Limit != 2 || !p.first.Last || p.second.AfterSeq != 9 || p.second.Last {
		t.Errorf("AROUND msgid = %+v", p)
	}
	p = planHistory("AROUND", base, ts, none, false, 1)
	if !p.around || p.first.Limit != 0 || !p.second.Start.Equal(ms) {
		t.Errorf("AROUND timestamp, limit 1 = %+v", p)
	}
	later := position{seq: 20, t: t0.Add(time.Hour)}
	p = planHistory("BETWEEN", base, id, later, false, 30)
	if q := p.first; q.Last || q.AfterSeq != 10 || q.BeforeSeq != 20 || p.backward {
		t.Errorf("BETWEEN forward = %+v", p)
	}
	p = planHistory("BETWEEN", base, later, id, false, 30)
	if q := p.first; !q.Last || q.AfterSeq != 10 || q.BeforeSeq != 20 || !p.backward {
		t.Errorf("BETWEEN backward = %+v", p)
	}
	// A msgid and a timestamp: ordered by time, each bound its own kind.
	p = planHistory("BETWEEN", base, position{t: t0.Add(time.Hour)}, id, false, 30)
	if q := p.first; !q.Last || q.AfterSeq != 10 || !q.End.Equal(ms.Add(time.Hour-time.Nanosecond)) {
		t.Errorf("BETWEEN mixed = %+v", q)
	}
	if p = planHistory("BETWEEN", base, ts, ts, false, 30); !p.empty {
		t.Errorf("BETWEEN equal = %+v, want empty", p)
	}
	// The base's target survives in every query.
	p = planHistory("AROUND", chat.HistoryQuery{Peer: "bob"}, id, none, false, 4)
	if p.first.Peer != "bob" || p.second.Peer != "bob" {
		t.Errorf("AROUND peer = %+v", p)
	}
}

func TestInTarget(t *testing.T) {
	room := chat.Message{Room: "general", From: "bob"}
	dm := chat.Message{From: "bob", To: "alice"}
	if !inTarget(&room, chat.HistoryQuery{Room: "general"}, "alice") || inTarget(&room, chat.HistoryQuery{Room: "other"}, "alice") {
		t.Error("room message")
	}
	if inTarget(&room, chat.HistoryQuery{Peer: "bob"}, "alice") {
		t.Error("room message in a conversation")
	}
	if !inTarget(&dm, chat.HistoryQuery{Peer: "bob"}, "alice") || !inTarget(&dm, chat.HistoryQuery{Peer: "alice"}, "bob") {
		t.Error("direct message")
	}
	if inTarget(&dm, chat.HistoryQuery{Peer: "carol"}, "alice") || inTarget(&dm, chat.HistoryQuery{Peer: "bob"}, "carol") {
		t.Error("someone else's direct message")
	}
}

func TestTrimToBudget(t *testing.T) {
	sizes := []int{10, 20, 30, 40}
	for _, tc := range []struct {
		budget   int
		backward bool
		lo, hi   int
	}{
		{100, false, 0, 4},
		{99, false, 0, 3},
		{99, true, 1, 4},
		{45, true, 3, 4},
		{5, true, 3, 4},  // at least one
		{5, false, 0, 1}, // at least one
	} {
		lo, hi := trimToBudget(sizes, tc.budget, tc.backward)
		if lo != tc.lo || hi != tc.hi {
			t.Errorf("trimToBudget(%d, %v) = %d..%d, want %d..%d", tc.budget, tc.backward, lo, hi, tc.lo, tc.hi)
		}
	}
	if lo, hi := trimToBudget(nil, 10, true); lo != 0 || hi != 0 {
		t.Errorf("empty = %d..%d", lo, hi)
	}
}

func TestPickTargets(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	mk := func() []histTarget {
		return []histTarget{{"#c", t0.Add(3 * time.Hour)}, {"bob", t0.Add(time.Hour)}, {"#a", t0.Add(2 * time.Hour)}, {"#b", t0.Add(time.Hour)}}
	}
	names := func(ts []histTarget) string {
		s := ""
		for _, x := range ts {
			s += x.name + " "
		}
		return s
	}
	if got := names(pickTargets(mk(), 10, false)); got != "#b bob #a #c " {
		t.Errorf("all = %q", got)
	}
	if got := names(pickTargets(mk(), 2, false)); got != "#b bob " {
		t.Errorf("oldest 2 = %q", got)
	}
	if got := names(pickTargets(mk(), 2, true)); got != "#a #c " {
		t.Errorf("newest 2 = %q", got)
	}
}
