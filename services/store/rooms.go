package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"chatbox/services/chat"
)

// CreateRoom implements chat.RoomStore. It stores the room with its
// affiliations and masks, if r has any.
func (s *Store) CreateRoom(ctx context.Context, r chat.Room) error {
	if r.Name == "" {
		return errors.New("create room: empty name")
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		created, err := dbTime(r.Created)
		if err != nil {
			return err
		}
		topicAt, err := dbTime(r.TopicAt)
		if err != nil {
			return err
		}
		settings, err := json.Marshal(r.Settings)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `
			INSERT INTO rooms (name, topic, topic_by, topic_at, created, settings)
			VALUES (?, ?, ?, ?, ?, ?)`,
			r.Name, r.Topic, r.TopicBy, topicAt, created, string(settings))
		if isUnique(err) {
			return chat.ErrExists
		}
		if err != nil {
			return err
		}
		for account, aff := range r.Affiliations {
			if err := setAffiliation(ctx, tx, r.Name, account, aff); err != nil {
				return err
			}
		}
		for _, e := range r.Masks {
			if err := addMask(ctx, tx, r.Name, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create room %q: %w", r.Name, err)
	}
	return nil
}

// Room implements chat.RoomStore.
func (s *Store) Room(ctx context.Context, name string) (chat.Room, error) {
	var rooms []chat.Room
	err := s.withReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		rooms, err = loadRooms(ctx, tx, name)
		return err
	})
	if err != nil {
		return chat.Room{}, fmt.Errorf("room %q: %w", name, err)
	}
	if len(rooms) == 0 {
		return chat.Room{}, fmt.Errorf("room %q: %w", name, chat.ErrNotFound)
	}
	return rooms[0], nil
}

// Rooms implements chat.RoomStore; every room comes with its affiliations
// and masks.
func (s *Store) Rooms(ctx context.Context) ([]chat.Room, error) {
	var rooms []chat.Room
	err := s.withReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		rooms, err = loadRooms(ctx, tx, "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list rooms: %w", err)
	}
	return rooms, nil
}

// loadRooms reads the room called name, or every room if name is empty,
// ordered by name.
func loadRooms(ctx context.Context, tx *sql.Tx, name string) ([]chat.Room, error) {
	// One room, or all: the filter is written out so that the single-room
	// queries use the primary keys.
	var (
		roomFilter, filter string
		args               []any
	)
	if name != "" {
		roomFilter, filter, args = "WHERE name = ?", "WHERE room = ?", []any{name}
	}
	rows, err := tx.QueryContext(ctx, `
		SELECT name, topic, topic_by, topic_at, created, settings
		FROM rooms `+roomFilter+` ORDER BY name`, args...)
	if err != nil {
		return nil, err
	}
	var (
		rooms []chat.Room
		index = map[string]int{}
	)
	for rows.Next() {
		var (
			r                chat.Room
			topicAt, created sql.NullInt64
			settings         string
		)
		if err := rows.Scan(&r.Name, &r.Topic, &r.TopicBy, &topicAt, &created, &settings); err != nil {
			rows.Close()
			return nil, err
		}
		r.TopicAt = goTime(topicAt)
		r.Created = goTime(created)
		if err := json.Unmarshal([]byte(settings), &r.Settings); err != nil {
			rows.Close()
			return nil, fmt.Errorf("room %q: settings: %w", r.Name, err)
		}
		r.Affiliations = map[string]chat.Affiliation{}
		index[r.Name] = len(rooms)
		rooms = append(rooms, r)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(rooms) == 0 {
		return nil, nil
	}

	rows, err = tx.QueryContext(ctx, `
		SELECT room, account, affiliation FROM room_affiliations
		`+filter+` ORDER BY room, account`, args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var room, account, aff string
		if err := rows.Scan(&room, &account, &aff); err != nil {
			rows.Close()
			return nil, err
		}
		if i, ok := index[room]; ok {
			rooms[i].Affiliations[account] = chat.Affiliation(aff)
		}
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}

	rows, err = tx.QueryContext(ctx, `
		SELECT room, list, mask, set_by, set_at, reason FROM room_masks
		`+filter+` ORDER BY room, list, set_at, mask`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			room, list string
			e          chat.MaskEntry
			setAt      sql.NullInt64
		)
		if err := rows.Scan(&room, &list, &e.Mask, &e.SetBy, &setAt, &e.Reason); err != nil {
			return nil, err
		}
		e.List = chat.MaskList(list)
		e.SetAt = goTime(setAt)
		if i, ok := index[room]; ok {
			rooms[i].Masks = append(rooms[i].Masks, e)
		}
	}
	return rooms, rows.Err()
}

// UpdateRoom implements chat.RoomStore: it replaces the topic (text, setter
// and time) and the settings, and leaves the rest alone.
func (s *Store) UpdateRoom(ctx context.Context, r chat.Room) error {
	topicAt, err := dbTime(r.TopicAt)
	if err != nil {
		return fmt.Errorf("update room %q: %w", r.Name, err)
	}
	settings, err := json.Marshal(r.Settings)
	if err != nil {
		return fmt.Errorf("update room %q: %w", r.Name, err)
	}
	res, err := s.q.ExecContext(ctx, `
		UPDATE rooms SET topic = ?, topic_by = ?, topic_at = ?, settings = ?
		WHERE name = ?`,
		r.Topic, r.TopicBy, topicAt, string(settings), r.Name)
	if err != nil {
		return fmt.Errorf("update room %q: %w", r.Name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update room %q: %w", r.Name, err)
	} else if n == 0 {
		return fmt.Errorf("update room %q: %w", r.Name, chat.ErrNotFound)
	}
	return nil
}

// DeleteRoom implements chat.RoomStore: the room goes with its
// affiliations, mask lists and history (and that history leaves the offline
// queues). ErrNotFound if there is no such room.
func (s *Store) DeleteRoom(ctx context.Context, name string) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM rooms WHERE name = ?`, name).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return chat.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := raiseSeqFloor(ctx, tx); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM offline WHERE seq IN (SELECT seq FROM messages WHERE room = ?1)`,
			`DELETE FROM messages WHERE room = ?1`,
			// Cascades to room_affiliations and room_masks.
			`DELETE FROM rooms WHERE name = ?1`,
		} {
			if _, err := tx.ExecContext(ctx, q, name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete room %q: %w", name, err)
	}
	return nil
}

// SetAffiliation implements chat.RoomStore. ErrNotFound if the room does
// not exist.
func (s *Store) SetAffiliation(ctx context.Context, room, account string, aff chat.Affiliation) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		return setAffiliation(ctx, tx, room, account, aff)
	})
	if err != nil {
		return fmt.Errorf("set affiliation of %q in room %q: %w", account, room, err)
	}
	return nil
}

func setAffiliation(ctx context.Context, tx *sql.Tx, room, account string, aff chat.Affiliation) error {
	if !aff.Valid() {
		return fmt.Errorf("unknown affiliation %q", aff)
	}
	if account == "" {
		return errors.New("empty account name")
	}
	if aff == chat.AffNone {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM rooms WHERE name = ?`, room).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return chat.ErrNotFound
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM room_affiliations WHERE room = ? AND account = ?`, room, account)
		return err
	}
	_, err := tx.ExecContext(ctx, `
		INSERT INTO room_affiliations (room, account, affiliation) VALUES (?, ?, ?)
		ON CONFLICT (room, account) DO UPDATE SET affiliation = excluded.affiliation`,
		room, account, string(aff))
	if isForeignKey(err) {
		return chat.ErrNotFound
	}
	return err
}

// AddMask implements chat.RoomStore. Masks are compared case-insensitively
// (ASCII), as they match. ErrNotFound if the room does not exist.
func (s *Store) AddMask(ctx context.Context, room string, e chat.MaskEntry) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		return addMask(ctx, tx, room, e)
	})
	if err != nil {
		return fmt.Errorf("add %q to the %s list of room %q: %w", e.Mask, e.List, room, err)
	}
	return nil
}

func addMask(ctx context.Context, tx *sql.Tx, room string, e chat.MaskEntry) error {
	if !validList(e.List) {
		return fmt.Errorf("unknown mask list %q", e.List)
	}
	if e.Mask == "" {
		return errors.New("empty mask")
	}
	setAt, err := dbTime(e.SetAt)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `
		INSERT INTO room_masks (room, list, mask, set_by, set_at, reason)
		VALUES (?, ?, ?, ?, ?, ?)`,
		room, string(e.List), e.Mask, e.SetBy, setAt, e.Reason)
	switch {
	case isUnique(err):
		return chat.ErrExists
	case isForeignKey(err):
		return chat.ErrNotFound
	}
	return err
}

// RemoveMask implements chat.RoomStore.
func (s *Store) RemoveMask(ctx context.Context, room string, list chat.MaskList, mask string) error {
	res, err := s.q.ExecContext(ctx,
		`DELETE FROM room_masks WHERE room = ? AND list = ? AND mask = ?`,
		room, string(list), mask)
	if err != nil {
		return fmt.Errorf("remove %q from the %s list of room %q: %w", mask, list, room, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("remove %q from the %s list of room %q: %w", mask, list, room, err)
	} else if n == 0 {
		return fmt.Errorf("remove %q from the %s list of room %q: %w", mask, list, room, chat.ErrNotFound)
	}
	return nil
}

func validList(l chat.MaskList) bool {
	switch l {
	case chat.ListBan, chat.ListBanExcept, chat.ListInvite:
		return true
	}
	return false
}
