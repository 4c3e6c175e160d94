package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"chatbox/services/chat"
)

// Account invitations (chat.InviteStore), in table account_invites. A
// used-up invitation is deleted by the redemption that used it; expired
// ones are deleted when the next invitation is created.

const inviteColumns = `token, coalesce(creator, ''), coalesce(contact, ''), coalesce(account, ''), created, expires, uses`

// nullString stores "" as NULL (no account).
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

type rowScanner interface{ Scan(dest ...any) error }

func scanInvite(r rowScanner) (chat.AccountInvite, error) {
	var (
		inv              chat.AccountInvite
		created, expires sql.NullInt64
	)
	if err := r.Scan(&inv.Token, &inv.Creator, &inv.Contact, &inv.Account, &created, &expires, &inv.Uses); err != nil {
		return chat.AccountInvite{}, err
	}
	inv.Created, inv.Expires = goTime(created), goTime(expires)
	return inv, nil
}

// CreateAccountInvite implements chat.InviteStore.
func (s *Store) CreateAccountInvite(ctx context.Context, inv chat.AccountInvite) error {
	if inv.Token == "" || inv.Uses <= 0 {
		return errors.New("create invitation: empty token or no uses")
	}
	created, err := dbTime(inv.Created)
	if err != nil {
		return fmt.Errorf("create invitation: %w", err)
	}
	expires, err := dbTime(inv.Expires)
	if err != nil || expires == nil {
		return fmt.Errorf("create invitation: expiry %s: %w", inv.Expires, errors.Join(err, errors.New("no expiry")))
	}
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM account_invites WHERE expires <= ?`, created); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO account_invites (token, creator, contact, account, created, expires, uses)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			inv.Token, nullString(inv.Creator), nullString(inv.Contact), nullString(inv.Account), created, expires, inv.Uses)
		switch {
		case isUnique(err):
			return chat.ErrExists
		case isForeignKey(err):
			return fmt.Errorf("no account %q or %q: %w", inv.Creator, inv.Contact, chat.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create invitation: %w", err)
	}
	return nil
}

// AccountInvite implements chat.InviteStore.
func (s *Store) AccountInvite(ctx context.Context, token string, now time.Time) (chat.AccountInvite, error) {
	t, err := dbTime(now)
	if err != nil {
		return chat.AccountInvite{}, fmt.Errorf("invitation: %w", err)
	}
	inv, err := scanInvite(s.q.QueryRowContext(ctx, `SELECT `+inviteColumns+`
		FROM account_invites WHERE token = ? AND uses > 0 AND expires > ?`, token, t))
	if errors.Is(err, sql.ErrNoRows) {
		return chat.AccountInvite{}, fmt.Errorf("invitation: %w", chat.ErrNotFound)
	}
	if err != nil {
		return chat.AccountInvite{}, fmt.Errorf("invitation: %w", err)
	}
	return inv, nil
}

// AccountInvites implements chat.InviteStore.
func (s *Store) AccountInvites(ctx context.Context, now time.Time) ([]chat.AccountInvite, error) {
	t, err := dbTime(now)
	if err != nil {
		return nil, fmt.Errorf("list invitations: %w", err)
	}
	rows, err := s.q.QueryContext(ctx, `SELECT `+inviteColumns+`
		FROM account_invites WHERE uses > 0 AND expires > ? ORDER BY created, token`, t)
	if err != nil {
		return nil, fmt.Errorf("list invitations: %w", err)
	}
	defer rows.Close()
	var out []chat.AccountInvite
	for rows.Next() {
		inv, err := scanInvite(rows)
		if err != nil {
			return nil, fmt.Errorf("list invitations: %w", err)
		}
		out = append(out, inv)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list invitations: %w", err)
	}
	return out, nil
}

// RedeemAccountInvite implements chat.InviteStore: the use is taken and
// the account inserted in one write transaction, so that two
// redemptions of the last use cannot both succeed.
func (s *Store) RedeemAccountInvite(ctx context.Context, token string, now time.Time, a chat.Account, c chat.Credentials) (chat.AccountInvite, error) {
	t, err := dbTime(now)
	if err != nil {
		return chat.AccountInvite{}, fmt.Errorf("redeem invitation: %w", err)
	}
	created, err := dbTime(a.Created)
	if err != nil {
		return chat.AccountInvite{}, fmt.Errorf("redeem invitation: %w", err)
	}
	if a.Name == "" {
		return chat.AccountInvite{}, errors.New("redeem invitation: empty account name")
	}
	var inv chat.AccountInvite
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		var err error
		inv, err = scanInvite(tx.QueryRowContext(ctx, `SELECT `+inviteColumns+`
			FROM account_invites WHERE token = ? AND uses > 0 AND expires > ?`, token, t))
		if errors.Is(err, sql.ErrNoRows) {
			return chat.ErrNotFound
		}
		if err != nil {
			return err
		}
		if inv.Account != "" && inv.Account != a.Name {
			return fmt.Errorf("the invitation is for the name %s: %w", inv.Account, chat.ErrForbidden)
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO accounts (name, created, admin,
				sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key,
				sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.Name, created, a.Admin,
			blob(c.SHA256.Salt), c.SHA256.Iterations, blob(c.SHA256.StoredKey), blob(c.SHA256.ServerKey),
			blob(c.SHA1.Salt), c.SHA1.Iterations, blob(c.SHA1.StoredKey), blob(c.SHA1.ServerKey))
		if isUnique(err) {
			return fmt.Errorf("account %q: %w", a.Name, chat.ErrExists)
		}
		if err != nil {
			return err
		}
		if inv.Uses <= 1 {
			_, err = tx.ExecContext(ctx, `DELETE FROM account_invites WHERE token = ?`, token)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE account_invites SET uses = uses - 1 WHERE token = ?`, token)
		}
		return err
	})
	if err != nil {
		return chat.AccountInvite{}, fmt.Errorf("redeem invitation: %w", err)
	}
	return inv, nil
}

// DeleteAccountInvite implements chat.InviteStore.
func (s *Store) DeleteAccountInvite(ctx context.Context, token string) error {
	res, err := s.q.ExecContext(ctx, `DELETE FROM account_invites WHERE token = ?`, token)
	if err != nil {
		return fmt.Errorf("revoke invitation: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("revoke invitation: %w", err)
	} else if n == 0 {
		return fmt.Errorf("revoke invitation: %w", chat.ErrNotFound)
	}
	return nil
}
