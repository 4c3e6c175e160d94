package chat

// Show is a presence state, as XMPP's <show/> (RFC 6121 §4.7.2.1) plus
// available and offline; IRC's AWAY is ShowAway with a Status.
type Show string

// Shows, most available first.
const (
	ShowChat      Show = "chat"
	ShowAvailable Show = "available"
	ShowDND       Show = "dnd"
	ShowAway      Show = "away"
	ShowXA        Show = "xa"
	ShowOffline   Show = "offline"
)

func (s Show) rank() int {
	switch s {
	case ShowChat:
		return 5
	case ShowAvailable:
		return 4
	case ShowDND:
		return 3
	case ShowAway:
		return 2
	case ShowXA:
		return 1
	}
	return 0
}

// Valid reports whether s is a known show value.
func (s Show) Valid() bool { return s.rank() > 0 || s == ShowOffline }

// Presence is a session's (or, aggregated, an account's) availability.
type Presence struct {
	Show   Show
	Status string
}

// SetPresence sets a session's presence. The account's other sessions,
// the sessions watching the account (Watch) and those sharing a room with
// it receive a DelPresence with the session's and the account's presence.
func (s *Session) SetPresence(p Presence) error {
	if !p.Show.Valid() {
		return ErrForbidden
	}
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.closed {
		return ErrSessionClosed
	}
	if s.presence == p {
		return nil
	}
	s.presence = p
	c.broadcastPresence(s)
	return nil
}

// Presence returns the session's own presence.
func (s *Session) Presence() Presence {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.presence
}

// AccountPresence aggregates an account's sessions: the most available
// show, and the status that goes with it.
func (c *Core) AccountPresence(account string) Presence {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.accountPresence(Fold(account))
}

func (c *Core) accountPresence(account string) Presence {
	best := Presence{Show: ShowOffline}
	for _, s := range c.byAcct[account] {
		if s.closed {
			continue
		}
		if s.presence.Show.rank() > best.Show.rank() {
			best = s.presence
		}
	}
	return best
}

// Watch subscribes the session to presence changes of accounts (roster
// contacts, IRC MONITOR), and returns their presence now.
func (s *Session) Watch(accounts ...string) map[string]Presence {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	now := map[string]Presence{}
	if s.closed {
		return now
	}
	if s.watching == nil && len(accounts) > 0 {
		s.watching = map[string]bool{}
	}
	for _, a := range accounts {
		a = Fold(a)
		s.watching[a] = true
		if c.watchers[a] == nil {
			c.watchers[a] = map[uint64]*Session{}
		}
		c.watchers[a][s.id] = s
		now[a] = c.accountPresence(a)
	}
	return now
}

// Unwatch ends Watch for accounts.
func (s *Session) Unwatch(accounts ...string) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, a := range accounts {
		a = Fold(a)
		delete(s.watching, a)
		delete(c.watchers[a], s.id)
		if len(c.watchers[a]) == 0 {
			delete(c.watchers, a)
		}
	}
}

// broadcastPresence sends s's presence to everyone concerned; c.mu held.
func (c *Core) broadcastPresence(s *Session) {
	d := Delivery{Kind: DelPresence, From: s.ref(), Presence: s.presence, Account: c.accountPresence(s.info.Account)}
	seen := map[uint64]bool{s.id: true}
	send := func(o *Session) {
		if seen[o.id] || o.closed {
			return
		}
		seen[o.id] = true
		dd := d
		dd.SharesRoom = c.sharesRoomLocked(o, s.info.Account)
		o.sink.Deliver(dd)
	}
	for _, o := range c.byAcct[s.info.Account] {
		send(o)
	}
	for _, o := range c.watchers[s.info.Account] {
		send(o)
	}
	// Room mates of any of the account's sessions: the account's
	// aggregate presence is what they see. A closed session has left its
	// rooms, and their members were told so (DelQuit); where the account
	// stays, through another session, that session's rooms are below.
	// (A thousand IRC clients dropping out of a room made a million
	// presence deliveries after the million quits.)
	rooms := map[string]bool{}
	if !s.closed {
		for _, rn := range s.rooms {
			rooms[rn.room] = true
		}
	}
	for _, o := range c.byAcct[s.info.Account] {
		if o.closed {
			continue
		}
		for _, rn := range o.rooms {
			rooms[rn.room] = true
		}
	}
	for room := range rooms {
		if r := c.rooms[room]; r != nil {
			r.each(send)
		}
	}
}
