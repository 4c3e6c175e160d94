package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"chatbox/services/chat"
)

// AddCert implements chat.AccountStore: ErrExists if the fingerprint
// already belongs to an account, ErrNotFound if the account is missing.
func (s *Store) AddCert(ctx context.Context, account, fingerprint string, added time.Time) error {
	t, err := dbTime(added)
	if err != nil {
		return fmt.Errorf("add certificate of %q: %w", account, err)
	}
	_, err = s.q.ExecContext(ctx, `INSERT INTO account_certs (fingerprint, account, added) VALUES (?, ?, ?)`,
		fingerprint, account, t)
	switch {
	case isUnique(err):
		return fmt.Errorf("add certificate of %q: %w", account, chat.ErrExists)
	case isForeignKey(err):
		return fmt.Errorf("add certificate of %q: %w", account, chat.ErrNotFound)
	case err != nil:
		return fmt.Errorf("add certificate of %q: %w", account, err)
	}
	return nil
}

// RemoveCert implements chat.AccountStore.
func (s *Store) RemoveCert(ctx context.Context, account, fingerprint string) error {
	res, err := s.q.ExecContext(ctx, `DELETE FROM account_certs WHERE account = ? AND fingerprint = ?`, account, fingerprint)
	if err != nil {
		return fmt.Errorf("remove certificate of %q: %w", account, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("remove certificate of %q: %w", account, chat.ErrNotFound)
	}
	return nil
}

// Certs implements chat.AccountStore: an account's fingerprints, oldest
// first.
func (s *Store) Certs(ctx context.Context, account string) ([]string, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT fingerprint FROM account_certs WHERE account = ? ORDER BY added, fingerprint`, account)
	if err != nil {
		return nil, fmt.Errorf("certificates of %q: %w", account, err)
	}
	defer rows.Close()
	var fps []string
	for rows.Next() {
		var fp string
		if err := rows.Scan(&fp); err != nil {
			return nil, fmt.Errorf("certificates of %q: %w", account, err)
		}
		fps = append(fps, fp)
	}
	return fps, rows.Err()
}

// AccountByCert implements chat.AccountStore.
func (s *Store) AccountByCert(ctx context.Context, fingerprint string) (string, error) {
	var account string
	err := s.q.QueryRowContext(ctx, `SELECT account FROM account_certs WHERE fingerprint = ?`, fingerprint).Scan(&account)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("certificate %s: %w", fingerprint, chat.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("certificate %s: %w", fingerprint, err)
	}
	return account, nil
}
