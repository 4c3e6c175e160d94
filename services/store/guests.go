package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"chatbox/services/chat"
)

// What event mode's moderation needs from the store (issue 11): delete one
// sender's messages (the web admin wipes a guest), the guests' room
// affiliations (the event ends), and the box's own small state (whether
// guest access is closed, kept across a restart).

// DeleteMessagesFrom deletes every message account wrote, rooms and
// direct, offline copies included, and returns them. It implements
// chat.GuestWiper.
func (s *Store) DeleteMessagesFrom(ctx context.Context, account string) ([]chat.Message, error) {
	if account == "" {
		return nil, errors.New("delete messages by sender: the sender is empty (name the account whose messages go)")
	}
	var gone []chat.Message
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		if err := raiseSeqFloor(ctx, tx); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages m WHERE m.from_account = ? ORDER BY m.seq`, account)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			m, err := scanMessage(rows)
			if err != nil {
				return err
			}
			m.Body, m.Extra = "", "" // gone: only what names the message is returned
			gone = append(gone, m)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM offline WHERE seq IN (SELECT seq FROM messages WHERE from_account = ?)`, account); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM messages WHERE from_account = ?`, account)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("delete messages of %q: %w", account, err)
	}
	return gone, nil
}

// DeleteAffiliationsFromPrefix deletes the room affiliations of every
// account whose name starts with prefix (chat.GuestPrefix), and the room
// masks naming such an account (the XMPP door bans a guest with the mask
// "~name"), and says how many. It implements chat.GuestWiper.
func (s *Store) DeleteAffiliationsFromPrefix(ctx context.Context, prefix string) (int64, error) {
	if prefix == "" {
		return 0, errors.New("delete affiliations by prefix: the prefix is empty (that would delete every affiliation)")
	}
	var n int64
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM room_affiliations WHERE substr(account, 1, length(?)) = ?`,
			`DELETE FROM room_masks WHERE substr(mask, 1, length(?)) = ?`,
		} {
			res, err := tx.ExecContext(ctx, q, prefix, prefix)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete affiliations by prefix: %w", err)
	}
	return n, nil
}

// BoxState implements chat.StateStore.
func (s *Store) BoxState(ctx context.Context, key string) (string, error) {
	var v string
	err := s.q.QueryRowContext(ctx, `SELECT value FROM box_state WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("box state %q: %w", key, chat.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("box state %q: %w", key, err)
	}
	return v, nil
}

// SetBoxState implements chat.StateStore.
func (s *Store) SetBoxState(ctx context.Context, key, value string) error {
	if _, err := s.q.ExecContext(ctx, `INSERT INTO box_state (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value); err != nil {
		return fmt.Errorf("save box state %q: %w", key, err)
	}
	return nil
}
