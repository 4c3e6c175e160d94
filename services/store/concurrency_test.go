package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatbox/services/chat"
)

// appendConcurrently appends msgs from 16 goroutines and fails the test if
// any append fails.
func appendConcurrently(t testing.TB, s *Store, msgs []*chat.Message) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		errs = make(chan error, len(msgs))
	)
	for range 16 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(len(msgs)) {
					return
				}
				if err := s.AppendMessage(context.Background(), msgs[i], nil); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestTwoStoresOneFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatbox.db")
	server := openTest(t, path)
	cli := openTest(t, path) // the command line, as a second opener

	if err := cli.CreateAccount(ctx, chat.Account{Name: "alice"}, creds(1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := server.Account(ctx, "alice"); err != nil {
		t.Fatalf("server does not see the CLI's account: %v", err)
	}
	if err := server.CreateRoom(ctx, chat.Room{Name: "general"}); err != nil {
		t.Fatal(err)
	}
	if err := cli.SetAffiliation(ctx, "general", "alice", chat.AffOwner); err != nil {
		t.Fatal(err)
	}
	if r, err := server.Room(ctx, "general"); err != nil || r.Affiliations["alice"] != chat.AffOwner {
		t.Fatalf("server does not see the CLI's affiliation: %+v, %v", r, err)
	}

	// Both write history at once.
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 100 {
		st, who := server, "s"
		if i%2 == 1 {
			st, who = cli, "c"
		}
		wg.Go(func() {
			m := &chat.Message{ID: fmt.Sprint(who, i), Room: "general", Time: at(i)}
			errs <- st.AppendMessage(ctx, m, []string{"alice"})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range []*Store{server, cli} {
		h := history(t, st, chat.HistoryQuery{Room: "general", Limit: 1000})
		if len(h) != 100 {
			t.Fatalf("a store sees %d messages, want 100", len(h))
		}
		for i := 1; i < len(h); i++ {
			if h[i].Seq <= h[i-1].Seq {
				t.Fatalf("seqs not increasing: %d after %d", h[i].Seq, h[i-1].Seq)
			}
		}
		if off, err := st.Offline(ctx, "alice", 1000); err != nil || len(off) != 100 {
			t.Fatalf("offline queue holds %d messages (%v), want 100", len(off), err)
		}
	}
}

func TestConcurrentAppends(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	mustCreateAccount(t, s, "bob")
	const goroutines, each = 50, 4
	var wg sync.WaitGroup
	seqs := make(chan int64, goroutines*each)
	errs := make(chan error, goroutines*each)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				m := &chat.Message{ID: fmt.Sprintf("g%d-%d", g, i), Room: "general", From: "bob", Time: at(i)}
				if err := s.AppendMessage(ctx, m, []string{"bob"}); err != nil {
					errs <- err
					continue
				}
				seqs <- m.Seq
			}
		})
	}
	wg.Wait()
	close(errs)
	close(seqs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for seq := range seqs {
		if seen[seq] {
			t.Fatalf("seq %d given twice", seq)
		}
		seen[seq] = true
	}
	if len(seen) != goroutines*each {
		t.Fatalf("%d seqs for %d messages", len(seen), goroutines*each)
	}
	h := history(t, s, chat.HistoryQuery{Room: "general", Limit: 1000})
	if len(h) != goroutines*each {
		t.Fatalf("history holds %d messages", len(h))
	}
	for _, m := range h {
		if !seen[m.Seq] {
			t.Fatalf("history holds seq %d nobody was given", m.Seq)
		}
	}
	if n := count(t, s, `SELECT count(*) FROM offline`); n != goroutines*each {
		t.Fatalf("offline queue holds %d rows", n)
	}
}

// TestBatchIsolation drives one batch through the writer's commit directly,
// so the duplicates are certainly in the same transaction.
func TestBatchIsolation(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	mustCreateAccount(t, s, "bob")
	if err := s.AppendMessage(ctx, &chat.Message{ID: "old", Room: "general"}, nil); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	req := func(ctx context.Context, id string) *appendReq {
		return &appendReq{ctx: ctx, msg: chat.Message{ID: id, Room: "general"},
			offlineFor: []string{"bob"}, done: make(chan appendResult, 1)}
	}
	batch := []*appendReq{
		req(ctx, "a"),
		req(ctx, "old"), // duplicate of a stored message
		req(ctx, "b"),
		req(ctx, "a"), // duplicate within the batch
		req(cancelled, "gone"),
		req(ctx, "c"),
	}
	s.commitBatch(batch)
	var stored []string
	for i, r := range batch {
		res := <-r.done
		switch r.msg.ID {
		case "a", "b", "c":
			if i == 3 {
				if !errors.Is(res.err, chat.ErrExists) {
					t.Errorf("in-batch duplicate: %v", res.err)
				}
				continue
			}
			if res.err != nil || res.seq == 0 {
				t.Errorf("%s: seq %d, %v", r.msg.ID, res.seq, res.err)
			}
			stored = append(stored, r.msg.ID)
		case "old":
			if !errors.Is(res.err, chat.ErrExists) {
				t.Errorf("duplicate of stored: %v", res.err)
			}
		case "gone":
			if !errors.Is(res.err, context.Canceled) {
				t.Errorf("cancelled request: %v", res.err)
			}
		}
	}
	if len(stored) != 3 {
		t.Fatalf("stored %v", stored)
	}
	off, err := s.Offline(ctx, "bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(off); fmt.Sprint(got) != "[a b c]" {
		t.Errorf("offline queue = %v: a failed message left its queue entry", got)
	}
	if _, err := s.MessageByID(ctx, "gone"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("cancelled request was written: %v", err)
	}
}

// TestConcurrentDuplicates sends every ID twice at once: exactly one of
// each pair wins, the other gets ErrExists, and nobody else is harmed.
func TestConcurrentDuplicates(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	const ids = 40
	var (
		wg      sync.WaitGroup
		ok, dup atomic.Int64
		other   = make(chan error, 2*ids)
	)
	for i := range 2 * ids {
		wg.Go(func() {
			err := s.AppendMessage(ctx, &chat.Message{ID: fmt.Sprint("d", i/2), Room: "general"}, nil)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, chat.ErrExists):
				dup.Add(1)
			default:
				other <- err
			}
		})
	}
	wg.Wait()
	close(other)
	for err := range other {
		t.Fatal(err)
	}
	if ok.Load() != ids || dup.Load() != ids {
		t.Fatalf("%d stored and %d duplicates, want %d each", ok.Load(), dup.Load(), ids)
	}
	if n := count(t, s, `SELECT count(*) FROM messages`); n != ids {
		t.Fatalf("%d messages stored", n)
	}
}

// TestCloseFlushes closes the store while appends run: every append that
// returned nil is in the file afterwards, the others failed with ErrClosed.
func TestCloseFlushes(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatbox.db")
	s, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		acked = make(chan string, 1000)
		bad   = make(chan error, 1000)
		start = make(chan struct{})
	)
	for g := range 20 {
		wg.Go(func() {
			<-start
			for i := 0; ; i++ {
				id := fmt.Sprintf("c%d-%d", g, i)
				err := s.AppendMessage(ctx, &chat.Message{ID: id, Room: "general"}, nil)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					bad <- err
					return
				}
				acked <- id
				if i == 40 {
					return
				}
			}
		})
	}
	close(start)
	var got []string
	for range 50 {
		got = append(got, <-acked) // let some through, then close under the rest
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(bad)
	close(acked)
	for err := range bad {
		t.Fatal(err)
	}
	for id := range acked {
		got = append(got, id)
	}
	s = openTest(t, path)
	for _, id := range got {
		if _, err := s.MessageByID(ctx, id); err != nil {
			t.Fatalf("acked %s lost on close: %v", id, err)
		}
	}
	if have := count(t, s, `SELECT count(*) FROM messages`); have < len(got) {
		t.Fatalf("%d messages stored, %d acked", have, len(got))
	}
}

func TestSnapshotDuringAppends(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, filepath.Join(dir, "chatbox.db"))
	mustCreateAccount(t, s, "bob")
	if err := s.SetVCard(ctx, "bob", []byte("card")); err != nil {
		t.Fatal(err)
	}

	var (
		wg      sync.WaitGroup
		stop    = make(chan struct{})
		total   atomic.Int64
		started = make(chan struct{}, 8)
		errs    = make(chan error, 8)
	)
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				m := &chat.Message{ID: fmt.Sprintf("s%d-%d", g, i), Room: "general", Time: at(i)}
				if err := s.AppendMessage(ctx, m, []string{"bob"}); err != nil {
					errs <- err
					return
				}
				total.Add(1)
				if i == 5 {
					started <- struct{}{}
				}
			}
		})
	}
	for range 8 {
		<-started
	}
	snap := filepath.Join(dir, "snapshot.db")
	snapErr := s.Snapshot(ctx, snap)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if snapErr != nil {
		t.Fatal(snapErr)
	}
	if err := s.Snapshot(ctx, snap); err == nil {
		t.Error("Snapshot overwrote an existing file")
	}

	c := openTest(t, snap)
	if err := c.QuickCheck(ctx); err != nil {
		t.Fatal(err)
	}
	n := count(t, c, `SELECT count(*) FROM messages`)
	if n < 8*5 || int64(n) > total.Load() {
		t.Fatalf("snapshot holds %d messages; %d were appended, at least 40 before", n, total.Load())
	}
	// One instant: the snapshot holds exactly the messages up to its
	// newest, each with its offline entry.
	maxSeq := count(t, c, `SELECT max(seq) FROM messages`)
	if live := count(t, s, `SELECT count(*) FROM messages WHERE seq <= ?`, maxSeq); live != n {
		t.Errorf("snapshot holds %d messages up to seq %d, the live database %d", n, maxSeq, live)
	}
	if q := count(t, c, `SELECT count(*) FROM offline`); q != n {
		t.Errorf("snapshot holds %d messages but %d queue entries", n, q)
	}
	if card, err := c.VCard(ctx, "bob"); err != nil || string(card) != "card" {
		t.Errorf("snapshot vCard: %q, %v", card, err)
	}
}

// TestIdleConnectionsClose: the readers' connections a burst opened are
// closed once idle (idleConnTime, shortened here); the group-commit
// writer keeps its own, and the store still answers afterwards.
func TestIdleConnectionsClose(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "chat.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A burst: three readers at once, each on a connection of its own.
	var txs []*sql.Tx
	for range 3 {
		tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
	for _, tx := range txs {
		tx.Rollback()
	}
	if open := s.db.Stats().OpenConnections; open < 4 {
		t.Fatalf("after the burst: %d connections open, want the writer's and 3 readers'", open)
	}
	// Open set the idle time (database/sql keeps it unexported).
	if f := reflect.ValueOf(s.db).Elem().FieldByName("maxIdleTime"); !f.IsValid() || time.Duration(f.Int()) != idleConnTime {
		t.Fatalf("the pool's idle time is not idleConnTime (%v)", idleConnTime)
	}
	s.db.SetConnMaxIdleTime(20 * time.Millisecond)
	deadline := time.Now().Add(10 * time.Second) // the pool's cleaner runs once a second
	for s.db.Stats().OpenConnections > 1 {
		if time.Now().After(deadline) {
			t.Fatalf("idle readers' connections not closed: %+v", s.db.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := s.db.Stats(); st.MaxIdleTimeClosed < 3 {
		t.Fatalf("closed for idleness: %d, want 3", st.MaxIdleTimeClosed)
	}
	if err := s.AppendMessage(ctx, &chat.Message{ID: "after-idle", Room: "r", From: "alice", Body: "still here", Time: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
}
