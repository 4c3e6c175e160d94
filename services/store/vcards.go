package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"chatbox/services/chat"
)

// VCard implements chat.VCardStore.
func (s *Store) VCard(ctx context.Context, account string) ([]byte, error) {
	var data []byte
	err := s.q.QueryRowContext(ctx, `SELECT data FROM vcards WHERE account = ?`, account).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("vcard of %q: %w", account, chat.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("vcard of %q: %w", account, err)
	}
	return blob(data), nil
}

// SetVCard implements chat.VCardStore, replacing any previous document.
// ErrNotFound if there is no such account.
func (s *Store) SetVCard(ctx context.Context, account string, data []byte) error {
	_, err := s.q.ExecContext(ctx, `
		INSERT INTO vcards (account, data) VALUES (?, ?)
		ON CONFLICT (account) DO UPDATE SET data = excluded.data`,
		account, blob(data))
	if isForeignKey(err) {
		return fmt.Errorf("set vcard of %q: %w", account, chat.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set vcard of %q: %w", account, err)
	}
	return nil
}
