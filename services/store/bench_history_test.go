package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"chatbox/services/chat"
)

// benchHistoryEnv sets how many messages BenchmarkHistoryPage's store
// holds (default 100,000; `make bench` asks for 1,000,000, the goal's
// size, which takes a while to build).
const benchHistoryEnv = "CHATBOX_BENCH_MESSAGES"

// BenchmarkHistoryPage measures one page of 50 messages of a room read
// from a large store: the newest page (a join's replay, MAM's first
// page) and a page from the middle (scrolling back, BeforeSeq), in a
// store where the room holds one message in ten (nine other rooms and
// direct messages fill the rest). The store is filled in one
// transaction by SQL, not through AppendMessage, to keep the set-up
// short; the rows are what AppendMessage writes.
func BenchmarkHistoryPage(b *testing.B) {
	total := 100_000
	if v := os.Getenv(benchHistoryEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("%s=%q: want a number of messages, at least 1000", benchHistoryEnv, v)
		}
		total = n
	}
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	// Every tenth message to #general, the others to r1..r9; ids and
	// times as the core makes them (random-looking, increasing).
	_, err = s.db.ExecContext(ctx, `
		WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM n WHERE x < ?)
		INSERT INTO messages (seq, id, time, from_account, from_nick, room, kind, body)
		SELECT x, printf('%016x%016x', x*2654435761, x), 1764582000000000000 + x*100000000,
		       'u' || (x % 97), 'u' || (x % 97),
		       CASE WHEN x % 10 = 0 THEN 'general' ELSE 'r' || (x % 10) END,
		       'normal', 'a typical line of chat, about eighty bytes long, give or take a word or two.'
		FROM n`, total)
	if err != nil {
		b.Fatalf("filling the store: %v", err)
	}
	mid := int64(total / 2)
	for _, bc := range []struct {
		name string
		q    chat.HistoryQuery
	}{
		{"newest", chat.HistoryQuery{Room: "general", Limit: 50, Last: true}},
		{"middle", chat.HistoryQuery{Room: "general", Limit: 50, Last: true, BeforeSeq: mid}},
	} {
		b.Run(fmt.Sprintf("msgs=%d/%s", total, bc.name), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				page, err := s.History(ctx, bc.q)
				if err != nil {
					b.Fatal(err)
				}
				if len(page) != 50 || page[0].Room != "general" || page[49].Seq >= bc.q.BeforeSeq && bc.q.BeforeSeq != 0 {
					b.Fatalf("page of %d messages, first %+v", len(page), page[0])
				}
			}
		})
	}
}
