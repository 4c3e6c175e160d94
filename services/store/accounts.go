package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"chatbox/services/chat"
)

// CreateAccount implements chat.AccountStore.
func (s *Store) CreateAccount(ctx context.Context, a chat.Account, c chat.Credentials) error {
	if a.Name == "" {
		return errors.New("create account: empty name")
	}
	created, err := dbTime(a.Created)
	if err != nil {
		return fmt.Errorf("create account %q: %w", a.Name, err)
	}
	_, err = s.q.ExecContext(ctx, `
		INSERT INTO accounts (name, created, admin,
			sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key,
			sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.Name, created, a.Admin,
		blob(c.SHA256.Salt), c.SHA256.Iterations, blob(c.SHA256.StoredKey), blob(c.SHA256.ServerKey),
		blob(c.SHA1.Salt), c.SHA1.Iterations, blob(c.SHA1.StoredKey), blob(c.SHA1.ServerKey))
	if isUnique(err) {
		return fmt.Errorf("create account %q: %w", a.Name, chat.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create account %q: %w", a.Name, err)
	}
	return nil
}

// Account implements chat.AccountStore.
func (s *Store) Account(ctx context.Context, name string) (chat.Account, chat.Credentials, error) {
	var (
		a       chat.Account
		c       chat.Credentials
		created sql.NullInt64
	)
	err := s.q.QueryRowContext(ctx, `
		SELECT name, created, admin,
			sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key,
			sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key
		FROM accounts WHERE name = ?`, name).Scan(
		&a.Name, &created, &a.Admin,
		&c.SHA256.Salt, &c.SHA256.Iterations, &c.SHA256.StoredKey, &c.SHA256.ServerKey,
		&c.SHA1.Salt, &c.SHA1.Iterations, &c.SHA1.StoredKey, &c.SHA1.ServerKey)
	if errors.Is(err, sql.ErrNoRows) {
		return chat.Account{}, chat.Credentials{}, fmt.Errorf("account %q: %w", name, chat.ErrNotFound)
	}
	if err != nil {
		return chat.Account{}, chat.Credentials{}, fmt.Errorf("account %q: %w", name, err)
	}
	a.Created = goTime(created)
	return a, c, nil
}

// Admins implements chat.AccountStore.
func (s *Store) Admins(ctx context.Context) ([]string, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT name FROM accounts WHERE admin ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list admins: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list admins: %w", err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list admins: %w", err)
	}
	return out, nil
}

// Accounts implements chat.AccountStore.
func (s *Store) Accounts(ctx context.Context) ([]chat.Account, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT name, created, admin FROM accounts ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	defer rows.Close()
	var out []chat.Account
	for rows.Next() {
		var (
			a       chat.Account
			created sql.NullInt64
		)
		if err := rows.Scan(&a.Name, &created, &a.Admin); err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		a.Created = goTime(created)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// SetCredentials implements chat.AccountStore.
func (s *Store) SetCredentials(ctx context.Context, name string, c chat.Credentials) error {
	res, err := s.q.ExecContext(ctx, `
		UPDATE accounts SET
			sha256_salt = ?, sha256_iterations = ?, sha256_stored_key = ?, sha256_server_key = ?,
			sha1_salt = ?, sha1_iterations = ?, sha1_stored_key = ?, sha1_server_key = ?
		WHERE name = ?`,
		blob(c.SHA256.Salt), c.SHA256.Iterations, blob(c.SHA256.StoredKey), blob(c.SHA256.ServerKey),
		blob(c.SHA1.Salt), c.SHA1.Iterations, blob(c.SHA1.StoredKey), blob(c.SHA1.ServerKey),
		name)
	if err != nil {
		return fmt.Errorf("set credentials of %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set credentials of %q: %w", name, err)
	} else if n == 0 {
		return fmt.Errorf("set credentials of %q: %w", name, chat.ErrNotFound)
	}
	return nil
}

// SetAdmin implements chat.AccountStore.
func (s *Store) SetAdmin(ctx context.Context, name string, admin bool) error {
	res, err := s.q.ExecContext(ctx, `UPDATE accounts SET admin = ? WHERE name = ?`, admin, name)
	if err != nil {
		return fmt.Errorf("set admin of %q: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set admin of %q: %w", name, err)
	} else if n == 0 {
		return fmt.Errorf("set admin of %q: %w", name, chat.ErrNotFound)
	}
	return nil
}

// DeleteAccount implements chat.AccountStore: the account goes with its
// offline queue, its vCard, its room affiliations and its direct messages
// (in both directions, and out of everyone's offline queue). Room messages
// it wrote stay.
func (s *Store) DeleteAccount(ctx context.Context, name string) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE name = ?`, name).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return chat.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := raiseSeqFloor(ctx, tx); err != nil {
			return err
		}
		const direct = `conv IS NOT NULL AND (from_account = ?1 OR to_account = ?1)`
		for _, q := range []string{
			`DELETE FROM offline WHERE seq IN (SELECT seq FROM messages WHERE ` + direct + `)`,
			`DELETE FROM messages WHERE ` + direct,
			`DELETE FROM room_affiliations WHERE account = ?1`,
			// Cascades to offline and vcards.
			`DELETE FROM accounts WHERE name = ?1`,
		} {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete account %q: %w", name, err)
	}
	return nil
}

// raiseSeqFloor records the highest seq in use before messages are deleted,
// so that new messages never reuse the seq of a deleted one.
func raiseSeqFloor(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO seq_floor (id, seq)
		SELECT 0, coalesce(max(seq), 0) FROM messages WHERE true
		ON CONFLICT (id) DO UPDATE SET seq = max(seq, excluded.seq)`)
	return err
}
