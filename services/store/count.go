package store

import (
	"context"
	"fmt"
	"time"
)

// CountMessagesSince counts the messages (room and direct) stored at or
// after since: the web admin's "messages today". It reads the entries of
// messages_time (0007) from since on: the cost follows the answer, not
// the history's size.
func (s *Store) CountMessagesSince(ctx context.Context, since time.Time) (int, error) {
	t, err := dbTime(since)
	if err != nil {
		return 0, fmt.Errorf("count messages: %w", err)
	}
	var n int
	if err := s.q.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE time >= ?`, t).Scan(&n); err != nil {
		return 0, fmt.Errorf("count messages: %w", err)
	}
	return n, nil
}
