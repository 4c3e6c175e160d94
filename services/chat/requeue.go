package chat

import (
	"context"
	"errors"
	"fmt"
)

// RequeueOffline puts direct messages back in the offline queue of s's
// account: messages the door delivered to s but whose receipt the client
// never confirmed (XEP-0198 stream management: the connection dropped,
// or the session ended, with them unacknowledged). The account's next
// login then gets them again. Nothing is queued while the account has
// another open session, which got the messages too. ids are message IDs;
// those that are not direct messages to s's account (a sent copy, a room
// message, a deleted message) are skipped. It returns how many it queued.
func (c *Core) RequeueOffline(ctx context.Context, s *Session, ids []string) (int, error) {
	if s.info.Guest || len(ids) == 0 {
		return 0, nil
	}
	acct := s.info.Account
	c.mu.Lock()
	others := 0
	for _, os := range c.byAcct[acct] {
		if os != s && !os.closed {
			others++
		}
	}
	c.mu.Unlock()
	if others > 0 {
		return 0, nil
	}
	n := 0
	for _, id := range ids {
		m, err := c.store.MessageByID(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("requeue message %s for %s: %w", id, acct, err)
		}
		if m.Room != "" || m.To != acct {
			continue
		}
		if err := c.store.QueueOffline(ctx, acct, m.Seq); err != nil {
			return n, fmt.Errorf("requeue message %s for %s: %w", id, acct, err)
		}
		n++
	}
	return n, nil
}
