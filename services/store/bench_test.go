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
	"testing"

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

// benchMessage is a typical room line with a random ID, as the core makes.
func benchMessage(r *rand.Rand) *chat.Message {
	return &chat.Message{
		ID:       fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()),
		Time:     at(0),
		From:     "alice",
		FromNick: "alice",
		Room:     "general",
		Kind:     chat.KindNormal,
		Body:     "a typical line of chat, about eighty bytes long, give or take a word or two.",
	}
}

func benchAppend(b *testing.B, parallel bool) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	before, diskOK := diskWrites()
	b.ResetTimer()
	if parallel {
		// Many clients at once: what group commit is for.
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			for pb.Next() {
				if err := s.AppendMessage(ctx, benchMessage(r), nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		r := rand.New(rand.NewPCG(1, 2))
		for range b.N {
			if err := s.AppendMessage(ctx, benchMessage(r), nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	if after, ok := diskWrites(); diskOK && ok {
		b.ReportMetric(float64(after-before)/float64(b.N), "diskB/msg")
	}
}

func BenchmarkAppendSequential(b *testing.B) { benchAppend(b, false) }

func BenchmarkAppendParallel(b *testing.B) { benchAppend(b, true) }
