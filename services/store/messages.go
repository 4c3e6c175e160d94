package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"chatbox/services/chat"
)

const (
	// DefaultLimit is how many messages History and Offline return when
	// asked for 0.
	DefaultLimit = 100
	// MaxLimit caps the messages one History or Offline call returns.
	MaxLimit = 1000
)

// messageColumns are the columns scanMessage reads, in its order.
const messageColumns = `m.seq, m.id, m.time, m.from_account, m.from_nick,
	coalesce(m.room, ''), coalesce(m.to_account, ''), m.kind, m.body, m.extra`

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanMessage(row scanner) (chat.Message, error) {
	var (
		m    chat.Message
		t    sql.NullInt64
		kind string
	)
	err := row.Scan(&m.Seq, &m.ID, &t, &m.From, &m.FromNick, &m.Room, &m.To, &kind, &m.Body, &m.Extra)
	m.Time = goTime(t)
	m.Kind = chat.MessageKind(kind)
	return m, err
}

// History implements chat.MessageStore. Messages are ordered by Seq, the
// order they were stored in. A Limit of 0 means DefaultLimit; a Limit
// above MaxLimit is cut to MaxLimit.
func (s *Store) History(ctx context.Context, q chat.HistoryQuery) ([]chat.Message, error) {
	where, args, err := historyFilter(q)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	limit, err := clampLimit(q.Limit)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	order := "ASC"
	if q.Last {
		order = "DESC"
	}
	args = append(args, limit)
	rows, err := s.q.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages m
		WHERE `+where+` ORDER BY m.seq `+order+` LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	msgs, err := collectMessages(rows)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	if q.Last {
		slices.Reverse(msgs)
	}
	return msgs, nil
}

// historyFilter turns q into a WHERE clause and its arguments.
func historyFilter(q chat.HistoryQuery) (string, []any, error) {
	var (
		conds []string
		args  []any
	)
	switch {
	case q.Room != "" && (q.Account != "" || q.Peer != ""):
		return "", nil, errors.New("query names both a room and a conversation")
	case q.Room != "":
		conds, args = append(conds, "m.room = ?"), append(args, q.Room)
	case q.Account != "" && q.Peer != "":
		conds, args = append(conds, "m.conv = ?"), append(args, convKey(q.Account, q.Peer))
	case q.Account != "":
		// Every direct conversation of the account (its XEP-0313 archive),
		// through the indexes by sender and recipient (0004): the cost
		// follows the account's messages, not the box's.
		conds = append(conds, `m.seq IN (
			SELECT seq FROM messages WHERE conv IS NOT NULL AND from_account = ?
			UNION ALL
			SELECT seq FROM messages WHERE conv IS NOT NULL AND to_account = ?)`)
		args = append(args, q.Account, q.Account)
	default:
		return "", nil, errors.New("query needs a room or an account")
	}
	if q.AfterSeq > 0 {
		conds, args = append(conds, "m.seq > ?"), append(args, q.AfterSeq)
	}
	if q.BeforeSeq > 0 {
		conds, args = append(conds, "m.seq < ?"), append(args, q.BeforeSeq)
	}
	if !q.Start.IsZero() {
		t, err := dbTime(q.Start)
		if err != nil {
			return "", nil, err
		}
		conds, args = append(conds, "m.time >= ?"), append(args, t)
	}
	if !q.End.IsZero() {
		t, err := dbTime(q.End)
		if err != nil {
			return "", nil, err
		}
		conds, args = append(conds, "m.time <= ?"), append(args, t)
	}
	return strings.Join(conds, " AND "), args, nil
}

// CountHistory implements chat.MessageStore: how many messages match q,
// ignoring its Limit and Last.
func (s *Store) CountHistory(ctx context.Context, q chat.HistoryQuery) (int, error) {
	where, args, err := historyFilter(q)
	if err != nil {
		return 0, fmt.Errorf("count history: %w", err)
	}
	var n int
	if err := s.q.QueryRowContext(ctx, `SELECT count(*) FROM messages m WHERE `+where, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count history: %w", err)
	}
	return n, nil
}

// clampLimit applies DefaultLimit and MaxLimit.
func clampLimit(n int) (int, error) {
	switch {
	case n < 0:
		return 0, fmt.Errorf("negative limit %d", n)
	case n == 0:
		return DefaultLimit, nil
	}
	return min(n, MaxLimit), nil
}

func collectMessages(rows *sql.Rows) ([]chat.Message, error) {
	defer rows.Close()
	var msgs []chat.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	return msgs, rows.Err()
}

// MessageByID implements chat.MessageStore.
func (s *Store) MessageByID(ctx context.Context, id string) (chat.Message, error) {
	m, err := scanMessage(s.q.QueryRowContext(ctx,
		`SELECT `+messageColumns+` FROM messages m WHERE m.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Message{}, fmt.Errorf("message %q: %w", id, chat.ErrNotFound)
	}
	if err != nil {
		return chat.Message{}, fmt.Errorf("message %q: %w", id, err)
	}
	return m, nil
}

// Offline implements chat.MessageStore. A limit of 0 means DefaultLimit;
// one above MaxLimit is cut to MaxLimit.
func (s *Store) Offline(ctx context.Context, account string, limit int) ([]chat.Message, error) {
	limit, err := clampLimit(limit)
	if err != nil {
		return nil, fmt.Errorf("offline messages of %q: %w", account, err)
	}
	rows, err := s.q.QueryContext(ctx, `SELECT `+messageColumns+`
		FROM offline o JOIN messages m ON m.seq = o.seq
		WHERE o.account = ? ORDER BY o.seq LIMIT ?`, account, limit)
	if err != nil {
		return nil, fmt.Errorf("offline messages of %q: %w", account, err)
	}
	msgs, err := collectMessages(rows)
	if err != nil {
		return nil, fmt.Errorf("offline messages of %q: %w", account, err)
	}
	return msgs, nil
}

// AckOffline implements chat.MessageStore.
func (s *Store) AckOffline(ctx context.Context, account string, upTo int64) error {
	if _, err := s.q.ExecContext(ctx,
		`DELETE FROM offline WHERE account = ? AND seq <= ?`, account, upTo); err != nil {
		return fmt.Errorf("acknowledge offline messages of %q: %w", account, err)
	}
	return nil
}

// PruneHistory deletes messages older than before, except those still
// waiting in an offline queue (an undelivered message is never dropped).
// It returns how many it deleted.
func (s *Store) PruneHistory(ctx context.Context, before time.Time) (int64, error) {
	t, err := dbTime(before)
	if err != nil {
		return 0, fmt.Errorf("prune history: %w", err)
	}
	var n int64
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		if err := raiseSeqFloor(ctx, tx); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `
			DELETE FROM messages
			WHERE time < ? AND seq NOT IN (SELECT seq FROM offline)`, t)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune history: %w", err)
	}
	return n, nil
}

// QueueOffline implements chat.MessageStore.
func (s *Store) QueueOffline(ctx context.Context, account string, seq int64) error {
	if _, err := s.q.ExecContext(ctx,
		`INSERT OR IGNORE INTO offline (account, seq) VALUES (?, ?)`, account, seq); err != nil {
		return fmt.Errorf("queue message %d for %q: %w", seq, account, err)
	}
	return nil
}

// DeleteMessagesFromPrefix deletes every message written by an account
// whose name starts with prefix (chat.GuestPrefix: the guests' messages,
// when an event ends), offline copies included, and says how many it
// deleted. It implements chat.GuestMessageWiper.
func (s *Store) DeleteMessagesFromPrefix(ctx context.Context, prefix string) (int64, error) {
	if prefix == "" {
		return 0, fmt.Errorf("delete messages by prefix: the prefix is empty (that would delete every message)")
	}
	var n int64
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		if err := raiseSeqFloor(ctx, tx); err != nil {
			return err
		}
		// substr, not LIKE: the prefix is matched literally.
		match := `substr(from_account, 1, length(?)) = ?`
		if _, err := tx.ExecContext(ctx, `DELETE FROM offline WHERE seq IN (SELECT seq FROM messages WHERE `+match+`)`, prefix, prefix); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM messages WHERE `+match, prefix, prefix)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete messages by prefix: %w", err)
	}
	return n, nil
}
