package store

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// TestDeleteMessagesFromPrefix: only the prefix's messages go, matched
// literally ('_' and '%' are not wildcards), offline copies with them.
func TestDeleteMessagesFromPrefix(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "t.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(1, 2))
	for _, from := range []string{"alice", "~visitor", "~x", "_bob", "alice"} {
		m := benchMessage(r)
		m.From = from
		if err := s.AppendMessage(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DeleteMessagesFromPrefix(ctx, ""); err == nil {
		t.Fatal("an empty prefix was accepted")
	}
	if n, err := s.DeleteMessagesFromPrefix(ctx, "%"); err != nil || n != 0 {
		t.Fatalf("prefix %%: %d, %v", n, err)
	}
	n, err := s.DeleteMessagesFromPrefix(ctx, "~")
	if err != nil || n != 2 {
		t.Fatalf("deleted %d, %v; want 2", n, err)
	}
	if c, err := s.CountMessagesSince(ctx, at(-1)); err != nil || c != 3 {
		t.Fatalf("%d messages left, %v; want 3", c, err)
	}
}

// BenchmarkEndEvent deletes 1,000 guest lines out of 10,000 (the end of
// a LAN party's event): one op is one DeleteMessagesFromPrefix over the
// whole table, so it scales with the table, not with the guests.
func BenchmarkEndEvent(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	r := rand.New(rand.NewPCG(1, 2))
	fill := func(guests int) {
		for i := range 10000 {
			m := benchMessage(r)
			if i%10 == 0 && guests > 0 {
				m.From = "~guest"
				guests--
			}
			if err := s.AppendMessage(ctx, m, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	fill(1000)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for range 1000 {
			m := benchMessage(r)
			m.From = "~guest"
			if err := s.AppendMessage(ctx, m, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if n, err := s.DeleteMessagesFromPrefix(ctx, "~"); err != nil || n < 1000 {
			b.Fatalf("%d, %v", n, err)
		}
	}
}
