package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"chatbox/services/chat"
)

// maxBatch is the most appends one group commit takes. It bounds the
// transaction (and the latency of the last caller in it), not the waiting:
// the writer takes what is queued and commits at once.
const maxBatch = 256

const (
	// commitWindow is how long, under load, the writer waits for more
	// appends before it commits a batch smaller than the previous one: the
	// most it adds to a message's acknowledgement.
	commitWindow = 10 * time.Millisecond
	// busyGap: a batch whose first append comes within busyGap of the
	// previous commit's end is taken to be under load.
	busyGap = 50 * time.Millisecond
)

// ErrClosed is returned by AppendMessage after Close.
var ErrClosed = errors.New("store closed")

// appendReq is one AppendMessage call waiting for the writer. The message
// and recipients are copies, so the writer never touches the caller's
// memory, even after the caller gave up.
type appendReq struct {
	ctx        context.Context
	msg        chat.Message
	conv       []byte // conversation key of a direct message
	time       any    // encoded msg.Time
	offlineFor []string
	done       chan appendResult          // buffered: the writer never blocks on it
	then       func(seq int64, err error) // instead of done (AppendMessageThen)
}

type appendResult struct {
	seq int64
	err error
}

// AppendMessage implements chat.MessageStore. It returns once the message
// and its offline queue entries are committed and synced to disk.
//
// Concurrent calls are committed together by the writer goroutine (group
// commit): one transaction and one fsync for the batch, while each message
// succeeds or fails on its own (a duplicate ID fails only its own call,
// with chat.ErrExists). Recipients in offlineFor that are not accounts are
// skipped. If ctx ends first, AppendMessage returns its error; the message
// may then still be stored, unless it was not yet taken into a batch.
func (s *Store) AppendMessage(ctx context.Context, m *chat.Message, offlineFor []string) error {
	r, err := s.queueAppend(ctx, m, offlineFor, nil)
	if err != nil {
		return err
	}
	select {
	case res := <-r.done:
		if res.err != nil {
			return fmt.Errorf("append message %q: %w", m.ID, res.err)
		}
		m.Seq = res.seq
		return nil
	case <-ctx.Done():
		return fmt.Errorf("append message %q: %w", m.ID, ctx.Err())
	}
}

// AppendMessageThen implements chat.AsyncAppender: AppendMessage without
// waiting. then is called on the writer goroutine after the message's
// batch is committed and synced (or failed), in the order of the calls;
// an error returned (the store is closed, the message is invalid) means
// it is never called. The message is copied: m is not touched.
func (s *Store) AppendMessageThen(ctx context.Context, m *chat.Message, offlineFor []string, then func(seq int64, err error)) error {
	_, err := s.queueAppend(ctx, m, offlineFor, then)
	return err
}

// queueAppend hands a message to the writer.
func (s *Store) queueAppend(ctx context.Context, m *chat.Message, offlineFor []string, then func(int64, error)) (*appendReq, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("append message %q: %w", m.ID, err)
	}
	if err := checkMessage(m); err != nil {
		return nil, fmt.Errorf("append message %q: %w", m.ID, err)
	}
	t, err := dbTime(m.Time)
	if err != nil {
		return nil, fmt.Errorf("append message %q: %w", m.ID, err)
	}
	r := &appendReq{
		ctx:        ctx,
		msg:        *m,
		time:       t,
		offlineFor: slices.Clone(offlineFor),
		then:       then,
	}
	if then == nil {
		r.done = make(chan appendResult, 1)
	}
	if m.To != "" {
		r.conv = convKey(m.From, m.To)
	}

	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, fmt.Errorf("append message %q: %w", m.ID, ErrClosed)
	}
	select {
	case s.appends <- r:
		s.mu.RUnlock()
		return r, nil
	case <-ctx.Done():
		s.mu.RUnlock()
		return nil, fmt.Errorf("append message %q: %w", m.ID, ctx.Err())
	}
}

// checkMessage rejects what the schema would refuse, with a clearer word.
func checkMessage(m *chat.Message) error {
	switch {
	case m.ID == "":
		return errors.New("message has no ID")
	case (m.Room == "") == (m.To == ""):
		return errors.New("a message needs exactly one of Room or To")
	}
	return nil
}

// convKey is the key of the direct conversation between a and b: the two
// names in order, joined by a NUL byte (which no name holds).
func convKey(a, b string) []byte {
	if b < a {
		a, b = b, a
	}
	k := make([]byte, 0, len(a)+1+len(b))
	k = append(k, a...)
	k = append(k, 0)
	return append(k, b...)
}

// The writer's statements, prepared once (see Store.prepareWriter).
const (
	// seq is one past the highest in use or ever deleted (see seq_floor);
	// both subqueries are single index seeks.
	insertMessageSQL = `
		INSERT INTO messages (seq, id, time, from_account, from_nick, room, to_account, conv, kind, body, extra)
		VALUES (
			max(coalesce((SELECT max(seq) FROM messages), 0),
			    coalesce((SELECT seq FROM seq_floor WHERE id = 0), 0)) + 1,
			?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// Unknown accounts are skipped; a duplicate recipient is queued once.
	insertOfflineSQL = `
		INSERT OR IGNORE INTO offline (account, seq)
		SELECT name, ?1 FROM accounts WHERE name = ?2`
)

// prepareWriter prepares the writer's statements. They are prepared on the
// pool and bound to each batch's transaction with Tx.StmtContext, which
// compiles them once on the writer's connection and then reuses them.
func (s *Store) prepareWriter(ctx context.Context) error {
	var err error
	if s.insMsg, err = s.db.PrepareContext(ctx, insertMessageSQL); err != nil {
		return err
	}
	s.insOffline, err = s.db.PrepareContext(ctx, insertOfflineSQL)
	return err
}

// runWriter is the group-commit writer: it owns s.wconn and commits
// whatever appends are queued, in batches of up to maxBatch, until
// s.appends is closed and drained.
//
// Under load (the previous commit ended less than busyGap before this
// batch's first append came) it waits for more appends to join the batch,
// until the batch is as large as the largest of the last eight or
// s.window has passed:
// fewer, larger commits write fewer pages per message (each commit writes
// at least one 4 KiB file-system page of WAL, plus a page of every B-tree
// it touches). With K clients sending back to back, batches settle at K
// messages and the writer commits as soon as the K-th arrives. An idle box
// commits a lone message at once.
func (s *Store) runWriter() {
	defer close(s.writerDone)
	batch := make([]*appendReq, 0, maxBatch)
	var lastCommit time.Time
	var sizes [8]int // the last batches' sizes, for the target
	n := 0
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		r, ok := <-s.appends
		if !ok {
			return
		}
		batch = append(batch[:0], r)
		open := true
	fill:
		for open && len(batch) < maxBatch {
			select {
			case r, ok := <-s.appends:
				if !ok {
					open = false
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		target := min(slices.Max(sizes[:]), maxBatch)
		if open && s.window > 0 && len(batch) < target && time.Since(lastCommit) < busyGap {
			timer.Reset(s.window)
		linger:
			for len(batch) < target {
				select {
				case r, ok := <-s.appends:
					if !ok {
						break linger
					}
					batch = append(batch, r)
				case <-timer.C:
					break linger
				}
			}
			timer.Stop()
		}
		s.commitBatch(batch)
		lastCommit = time.Now()
		sizes[n%len(sizes)] = len(batch)
		n++
		s.commits.Add(1)
		s.appended.Add(int64(len(batch)))
		clear(batch) // let the requests be collected
	}
}

// commitBatch writes batch in one transaction and answers every request.
func (s *Store) commitBatch(batch []*appendReq) {
	results := make([]appendResult, len(batch))
	if err := s.writeBatch(batch, results); err != nil {
		// Nothing of the batch is stored: every caller gets the error,
		// including one whose ID clashed with a message of the batch.
		s.log.Error("append batch failed", "path", s.path, "messages", len(batch), "err", err)
		for i := range results {
			results[i] = appendResult{err: err}
		}
	}
	for i, r := range batch {
		if r.then != nil {
			r.then(results[i].seq, results[i].err)
		} else {
			r.done <- results[i]
		}
	}
}

// writeBatch writes batch in one transaction, filling in results. Each
// message gets a savepoint, so that one that fails (a duplicate ID) is
// undone alone and reported in its result; an error returned means the
// transaction failed and nothing was stored. The transaction is not tied to
// any caller's context: a caller leaving must not undo the others' messages.
func (s *Store) writeBatch(batch []*appendReq, results []appendResult) (err error) {
	ctx := context.Background()
	tx, err := s.wconn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			rollback(tx)
		}
	}()
	insMsg := tx.StmtContext(ctx, s.insMsg)
	insOffline := tx.StmtContext(ctx, s.insOffline)
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i].err = err // the caller is gone: do not write
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT msg`); err != nil {
			return err
		}
		seq, err := insertMessage(ctx, insMsg, insOffline, r)
		if err != nil {
			if _, rbErr := tx.ExecContext(ctx, `ROLLBACK TO msg; RELEASE msg`); rbErr != nil {
				// SQLite rolled the whole transaction back (an I/O error,
				// a full disk): err is what the batch died of.
				return err
			}
			results[i].err = err
			continue
		}
		if _, err := tx.ExecContext(ctx, `RELEASE msg`); err != nil {
			return err
		}
		results[i].seq = seq
	}
	return tx.Commit()
}

// insertMessage stores r's message and its offline queue entries with the
// writer's statements (bound to the batch's transaction), and returns the
// message's seq.
func insertMessage(ctx context.Context, insMsg, insOffline *sql.Stmt, r *appendReq) (int64, error) {
	m := &r.msg
	var room, to any
	if m.Room != "" {
		room = m.Room
	} else {
		to = m.To
	}
	res, err := insMsg.ExecContext(ctx,
		m.ID, r.time, m.From, m.FromNick, room, to, r.conv, string(m.Kind), m.Body, m.Extra)
	if isUnique(err) {
		return 0, fmt.Errorf("message ID %q: %w", m.ID, chat.ErrExists)
	}
	if err != nil {
		return 0, err
	}
	seq, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	for _, account := range r.offlineFor {
		if _, err := insOffline.ExecContext(ctx, seq, account); err != nil {
			return 0, fmt.Errorf("queue for %q: %w", account, err)
		}
	}
	return seq, nil
}
