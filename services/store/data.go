package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"chatbox/services/chat"
)

// PutData implements chat.DataStore: the document replaces any under the
// same key and moves to the end of its collection.
func (s *Store) PutData(ctx context.Context, account, collection, key string, value []byte, at time.Time) error {
	t, err := dbTime(at)
	if err != nil {
		return fmt.Errorf("store %s/%s of %q: %w", collection, key, account, err)
	}
	if t == nil {
		t = int64(0)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store %s/%s of %q: %w", collection, key, account, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM account_data WHERE account = ? AND collection = ? AND key = ?`,
		account, collection, key); err != nil {
		return fmt.Errorf("store %s/%s of %q: %w", collection, key, account, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO account_data (account, collection, key, value, updated) VALUES (?, ?, ?, ?, ?)`,
		account, collection, key, blob(value), t)
	if isForeignKey(err) {
		return fmt.Errorf("store %s/%s of %q: %w", collection, key, account, chat.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store %s/%s of %q: %w", collection, key, account, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store %s/%s of %q: %w", collection, key, account, err)
	}
	return nil
}

// Data implements chat.DataStore.
func (s *Store) Data(ctx context.Context, account, collection, key string) (chat.DataItem, error) {
	var (
		it      chat.DataItem
		updated int64
	)
	err := s.q.QueryRowContext(ctx, `SELECT key, value, updated FROM account_data WHERE account = ? AND collection = ? AND key = ?`,
		account, collection, key).Scan(&it.Key, &it.Value, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return it, fmt.Errorf("%s/%s of %q: %w", collection, key, account, chat.ErrNotFound)
	}
	if err != nil {
		return it, fmt.Errorf("%s/%s of %q: %w", collection, key, account, err)
	}
	it.Value = blob(it.Value)
	it.Updated = time.Unix(0, updated).UTC()
	return it, nil
}

// ListData implements chat.DataStore.
func (s *Store) ListData(ctx context.Context, account, collection string) ([]chat.DataItem, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT key, value, updated FROM account_data WHERE account = ? AND collection = ? ORDER BY seq`,
		account, collection)
	if err != nil {
		return nil, fmt.Errorf("list %s of %q: %w", collection, account, err)
	}
	defer rows.Close()
	var items []chat.DataItem
	for rows.Next() {
		var (
			it      chat.DataItem
			updated int64
		)
		if err := rows.Scan(&it.Key, &it.Value, &updated); err != nil {
			return nil, fmt.Errorf("list %s of %q: %w", collection, account, err)
		}
		it.Value = blob(it.Value)
		it.Updated = time.Unix(0, updated).UTC()
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s of %q: %w", collection, account, err)
	}
	return items, nil
}

// DeleteData implements chat.DataStore.
func (s *Store) DeleteData(ctx context.Context, account, collection, key string) error {
	res, err := s.q.ExecContext(ctx, `DELETE FROM account_data WHERE account = ? AND collection = ? AND key = ?`,
		account, collection, key)
	if err != nil {
		return fmt.Errorf("delete %s/%s of %q: %w", collection, key, account, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delete %s/%s of %q: %w", collection, key, account, chat.ErrNotFound)
	}
	return nil
}

// DeleteCollection implements chat.DataStore.
func (s *Store) DeleteCollection(ctx context.Context, account, collection string) error {
	if _, err := s.q.ExecContext(ctx, `DELETE FROM account_data WHERE account = ? AND collection = ?`,
		account, collection); err != nil {
		return fmt.Errorf("delete %s of %q: %w", collection, account, err)
	}
	return nil
}
