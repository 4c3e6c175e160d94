package chat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// SendRoom stores a message to a room and routes it to every session in
// the room, whichever door; the sender's session gets it with Echo set.
// The returned message is durable.
func (c *Core) SendRoom(ctx context.Context, s *Session, room string, kind MessageKind, body, extra string) (Message, error) {
	r, m, err := c.prepareRoomMessage(ctx, s, room, kind, body, extra)
	if err != nil {
		return Message{}, err
	}
	if err := c.store.AppendMessage(ctx, m, nil); err != nil {
		return Message{}, fmt.Errorf("store message: %w", err)
	}
	c.fanRoom(r, s, m)
	return *m, nil
}

// prepareRoomMessage checks that s may speak in room now and makes the
// message it sends.
func (c *Core) prepareRoomMessage(ctx context.Context, s *Session, room string, kind MessageKind, body, extra string) (*roomState, *Message, error) {
	r, err := c.loadRoom(ctx, Fold(room))
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	if s.closed {
		c.mu.Unlock()
		return nil, nil, ErrSessionClosed
	}
	nick := s.info.Account
	switch o := r.occupantOf(s); {
	case o == nil && (r.room.Settings.NoExternal || r.banned(s)):
		c.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: %s", ErrNotInRoom, r.room.Name)
	case o != nil && o.role == RoleVisitor:
		c.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: %s", ErrModerated, r.room.Name)
	case r.lockSilences(s):
		c.mu.Unlock()
		return nil, nil, fmt.Errorf("%w: %s", ErrRoomLocked, r.room.Name)
	case o != nil:
		nick = o.nick
	}
	c.mu.Unlock()
	if err := c.checkBody(s, body); err != nil {
		return nil, nil, err
	}
	now := c.now().UTC()
	return r, &Message{ID: newMessageID(now), Time: now, From: s.info.Account, FromNick: nick,
		Room: r.room.Name, Kind: kindOrNormal(kind), Body: body, Extra: extra}, nil
}

// fanRoom routes a stored room message to every session in the room, the
// sender's with Echo set.
func (c *Core) fanRoom(r *roomState, s *Session, m *Message) {
	c.fanRoomRun(r, []fanoutJob{{r: r, s: s, m: m}}, nil)
}

// fanRoomRun routes stored messages to one room, in order, to every
// session in it: each member gets the run at once (a BatchSink in one
// call), the order the same for all. buf is scratch for the run's
// deliveries, which sinks must not keep or change; the run's messages
// are published after.
func (c *Core) fanRoomRun(r *roomState, run []fanoutJob, buf []Delivery) []Delivery {
	buf = slices.Grow(buf[:0], len(run))[:len(run)]
	shared := make([]Rendered, len(run))
	n := 0
	c.mu.Lock()
	for i := range run {
		j := &run[i]
		buf[i] = Delivery{Kind: DelMessage, Room: r.room.Name, Message: j.m, From: j.s.ref(), Shared: &shared[i]}
	}
	r.each(func(os *Session) {
		// The same deliveries for every member but the echo: a
		// delivery is over 600 bytes, made once per run.
		for i := range run {
			buf[i].Echo = os == run[i].s
		}
		if bs, ok := os.sink.(BatchSink); ok && len(buf) > 1 {
			bs.DeliverBatch(buf)
		} else {
			for i := range buf {
				os.sink.Deliver(buf[i])
			}
		}
		n++
	})
	c.mu.Unlock()
	clear(buf)
	for i := range run {
		j := &run[i]
		c.publish(Event{Type: EventMessage, Account: j.m.From, Room: j.m.Room, Door: j.s.info.Door, Recipients: n})
	}
	return buf
}

func kindOrNormal(k MessageKind) MessageKind {
	if k == "" {
		return KindNormal
	}
	return k
}

// SendDirect stores a direct message and routes it to every session of
// the recipient; when it has none, the message waits in its offline
// queue. The sender's other sessions get a copy (Carbon) and the sending
// session an Echo. The returned message is durable.
func (c *Core) SendDirect(ctx context.Context, s *Session, to string, kind MessageKind, body, extra string) (Message, error) {
	to = Fold(to)
	if s.info.Guest {
		return Message{}, fmt.Errorf("%w: guests may only speak in rooms", ErrForbidden)
	}
	if _, _, err := c.store.Account(ctx, to); err != nil {
		if errors.Is(err, ErrNotFound) {
			return Message{}, fmt.Errorf("no account %q: %w", to, ErrNotFound)
		}
		return Message{}, err
	}
	if err := c.checkBody(s, body); err != nil {
		return Message{}, err
	}
	c.mu.Lock()
	if s.closed {
		c.mu.Unlock()
		return Message{}, ErrSessionClosed
	}
	online := len(c.byAcct[to]) > 0
	c.mu.Unlock()
	now := c.now().UTC()
	m := Message{ID: newMessageID(now), Time: now, From: s.info.Account, FromNick: s.info.Account,
		To: to, Kind: kindOrNormal(kind), Body: body, Extra: extra}
	var offline []string
	if !online {
		offline = []string{to}
	}
	if err := c.store.AppendMessage(ctx, &m, offline); err != nil {
		return Message{}, fmt.Errorf("store message: %w", err)
	}
	n := 0
	c.mu.Lock()
	for _, os := range c.byAcct[to] {
		if os != s {
			os.sink.Deliver(Delivery{Kind: DelMessage, Message: &m, From: s.ref()})
			n++
		}
	}
	if to != s.info.Account {
		for _, os := range c.byAcct[s.info.Account] {
			if os != s {
				os.sink.Deliver(Delivery{Kind: DelMessage, Message: &m, From: s.ref(), Carbon: true})
			}
		}
	}
	s.sink.Deliver(Delivery{Kind: DelMessage, Message: &m, From: s.ref(), Echo: true})
	c.mu.Unlock()
	if online && n == 0 && to != s.info.Account {
		// The recipient's last session ended between the check and the
		// delivery: keep the message for its next login.
		if err := c.store.QueueOffline(ctx, to, m.Seq); err != nil {
			c.log.Error("queue a message for an offline recipient", "to", to, "err", err)
		}
	}
	c.publish(Event{Type: EventMessage, Account: m.From, Door: s.info.Door, Recipients: n})
	return m, nil
}

// History answers a history query for a session: a room's history if it
// may see the room (members-only rooms: members and occupants), its own
// direct conversation with q.Peer, or, with q.Account set to its own
// account and no Peer, all of its direct conversations.
func (c *Core) History(ctx context.Context, s *Session, q HistoryQuery) ([]Message, error) {
	q, err := c.historyScope(ctx, s, q)
	if err != nil {
		return nil, err
	}
	return c.store.History(ctx, q)
}

// CountHistory says how many messages History would find for q without
// its Limit (XEP-0059 result set counts), under the same rules.
func (c *Core) CountHistory(ctx context.Context, s *Session, q HistoryQuery) (int, error) {
	q, err := c.historyScope(ctx, s, q)
	if err != nil {
		return 0, err
	}
	return c.store.CountHistory(ctx, q)
}

// historyScope checks that the session may read what q selects and
// returns q in the store's terms.
func (c *Core) historyScope(ctx context.Context, s *Session, q HistoryQuery) (HistoryQuery, error) {
	switch {
	case q.Room != "":
		r, err := c.loadRoom(ctx, Fold(q.Room))
		if err != nil {
			return q, err
		}
		q.Room = r.room.Name
		c.mu.Lock()
		aff := r.affiliation(s.info.Account)
		allowed := r.occupantOf(s) != nil ||
			(!r.room.Settings.MembersOnly && !r.banned(s)) ||
			aff.rank() >= AffMember.rank()
		c.mu.Unlock()
		if !allowed {
			return q, fmt.Errorf("%w: history of %s is for its members", ErrForbidden, r.room.Name)
		}
		q.Account, q.Peer = "", ""
	case (q.Peer != "" || q.Account != "") && s.info.Guest:
		return q, fmt.Errorf("%w: guests have no direct conversations", ErrForbidden)
	case q.Peer != "":
		q.Account, q.Peer = s.info.Account, Fold(q.Peer)
	case q.Account != "":
		if Fold(q.Account) != s.info.Account {
			return q, fmt.Errorf("%w: an account's direct messages are its own to read", ErrForbidden)
		}
		q.Account = s.info.Account
	default:
		return q, fmt.Errorf("%w: a history query names a room, a peer or the session's own account", ErrForbidden)
	}
	return q, nil
}

// MessageByID returns one message the session may see (a room's, under
// History's rule, or one of its own direct conversations), or ErrNotFound.
func (c *Core) MessageByID(ctx context.Context, s *Session, id string) (Message, error) {
	m, err := c.store.MessageByID(ctx, id)
	if err != nil {
		return Message{}, err
	}
	if m.Room != "" {
		if _, err := c.History(ctx, s, HistoryQuery{Room: m.Room, Limit: 1}); err != nil {
			return Message{}, fmt.Errorf("message %s: %w", id, ErrNotFound)
		}
		return m, nil
	}
	if m.From != s.info.Account && m.To != s.info.Account {
		return Message{}, fmt.Errorf("message %s: %w", id, ErrNotFound)
	}
	return m, nil
}

// Offline returns up to limit direct messages that waited for the
// session's account, oldest first. The door delivers them and then calls
// AckOffline with the last Seq it delivered.
func (c *Core) Offline(ctx context.Context, s *Session, limit int) ([]Message, error) {
	if s.info.Guest {
		return nil, nil
	}
	return c.store.Offline(ctx, s.info.Account, limit)
}

// AckOffline drops the account's queued messages up to seq (inclusive).
func (c *Core) AckOffline(ctx context.Context, s *Session, seq int64) error {
	return c.store.AckOffline(ctx, s.info.Account, seq)
}

// PruneHistory forgets messages older than keep (history retention),
// except direct messages still waiting for their recipient.
func (c *Core) PruneHistory(ctx context.Context, keep time.Duration) (int64, error) {
	n, err := c.store.PruneHistory(ctx, c.now().Add(-keep))
	if err == nil && n > 0 {
		c.log.Info("history pruned", "messages", n, "older_than", keep)
	}
	return n, err
}

// Signal relays an unstored signal (a typing notification, an IRC
// TAGMSG) to a room's occupants or to an account's sessions. Signals are
// not history: they are lost if nobody is there.
func (c *Core) Signal(ctx context.Context, s *Session, room, to string, tags map[string]string) error {
	if len(tags) == 0 {
		return nil
	}
	size := 0
	for k, v := range tags {
		size += len(k) + len(v)
	}
	if size > 4096 {
		return fmt.Errorf("%w: signal of %d bytes", ErrTooLong, size)
	}
	if !c.sendLimit.Allow(s.info.Account) {
		return ErrRateLimited
	}
	d := Delivery{Kind: DelSignal, From: s.ref(), Tags: tags}
	if room != "" {
		r, err := c.loadRoom(ctx, Fold(room))
		if err != nil {
			return err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		o := r.occupantOf(s)
		if o == nil {
			return fmt.Errorf("%w: %s", ErrNotInRoom, r.room.Name)
		}
		d.Room = r.room.Name
		r.each(func(os *Session) {
			if os != s {
				os.sink.Deliver(d)
			}
		})
		return nil
	}
	to = Fold(to)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byAcct[to]) == 0 {
		return fmt.Errorf("%w: %s has no session", ErrNotFound, to)
	}
	for _, os := range c.byAcct[to] {
		if os != s {
			os.sink.Deliver(d)
		}
	}
	return nil
}
