package store

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatbox/services/chat"
)

// diskWrites returns this process's write_bytes from /proc/self/io: bytes
// it caused to be sent to the storage layer.
func diskWrites() (int64, bool) {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// benchMessage is a typical room line with an ID made as the core makes
// them (chat's newMessageID): the time in milliseconds, then random bits,
// so later IDs sort after.
func benchMessage(r *rand.Rand) *chat.Message {
	return &chat.Message{
		ID:       fmt.Sprintf("%012x%016x", time.Now().UnixMilli(), r.Uint64()),
		Time:     at(0),
		From:     "alice",
		FromNick: "alice",
		Room:     "general",
		Kind:     chat.KindNormal,
		Body:     "a typical line of chat, about eighty bytes long, give or take a word or two.",
	}
}

// benchAppend measures AppendMessage from senders goroutines, each
// appending its messages one after the other (as one client's door does),
// into a copy of the database file from (a new store if from is empty).
// It reports the bytes this process caused to be written to disk per
// message (WAL frames and checkpoints; /proc/self/io counts them in 4 KiB
// pages as they are dirtied) and the messages per commit.
func benchAppend(b *testing.B, senders int, from string, window time.Duration) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "bench.db")
	if from != "" {
		data, err := os.ReadFile(from)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	s, err := Open(ctx, path, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	s.window = window
	commits0 := s.commits.Load()
	before, diskOK := diskWrites()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range senders {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 2))
			for next.Add(1) <= int64(b.N) {
				if err := s.AppendMessage(ctx, benchMessage(r), nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if after, ok := diskWrites(); diskOK && ok {
		b.ReportMetric(float64(after-before)/float64(b.N), "diskB/msg")
	}
	b.ReportMetric(float64(b.N)/float64(max(1, s.commits.Load()-commits0)), "msgs/commit")
}

// storedMessages makes a database file holding n room messages with
// random IDs (so that the ID index is as large and as scattered as a real
// one), checkpointed into one file.
func storedMessages(b *testing.B, n int) string {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "stored.db")
	s, err := Open(ctx, path, nil)
	if err != nil {
		b.Fatal(err)
	}
	_, err = s.db.ExecContext(ctx, `
		WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM n WHERE x < ?)
		INSERT INTO messages (seq, id, time, from_account, from_nick, room, kind, body)
		SELECT x, lower(hex(randomblob(13))), 1764582000000000000 + x*100000000, 'bob', 'bob',
		       CASE WHEN x % 10 = 0 THEN 'general' ELSE 'r' || (x % 10) END,
		       'normal', 'a typical line of chat, about eighty bytes long, give or take a word or two.'
		FROM n`, n)
	if err != nil {
		b.Fatalf("filling the store: %v", err)
	}
	if err := s.Close(); err != nil { // checkpoints the WAL into the file
		b.Fatal(err)
	}
	return path
}

// BenchmarkAppend: one sender (a commit per message), ten (chatbench's
// K=10) and a hundred, into a new store and into one of 200,000
// messages, with the group-commit wait and without it.
func BenchmarkAppend(b *testing.B) {
	stored := storedMessages(b, 200_000)
	for _, from := range []struct{ name, path string }{{"0", ""}, {"200000", stored}} {
		for _, senders := range []int{1, 10, 100} {
			for _, window := range []time.Duration{commitWindow, 0} {
				b.Run(fmt.Sprintf("stored=%s/senders=%d/window=%s", from.name, senders, window), func(b *testing.B) {
					benchAppend(b, senders, from.path, window)
				})
			}
		}
	}
}
