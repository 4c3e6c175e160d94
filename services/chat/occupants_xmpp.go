package chat

import (
	"context"
	"errors"
	"fmt"
)

// Occupant look-ups for a door that keeps no copy of the rooms' occupants
// (the XMPP door asks when it needs one, outside Sink.Deliver): each is
// one map look-up under the core's lock, not a copy of the room.

// RoomExists reports whether the room exists (loading it from the store
// if it is not in memory yet).
func (c *Core) RoomExists(ctx context.Context, room string) (bool, error) {
	_, err := c.loadRoom(ctx, Fold(room))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNoSuchRoom):
		return false, nil
	}
	return false, err
}

// RoomOccupant returns the occupant of room under nick (compared as
// nicks are), or ErrNoSuchRoom / ErrNoSuchOccupant.
func (c *Core) RoomOccupant(ctx context.Context, room, nick string) (Occupant, error) {
	r, err := c.loadRoom(ctx, Fold(room))
	if err != nil {
		return Occupant{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	o := r.occupants[foldNick(nick)]
	if o == nil {
		return Occupant{}, fmt.Errorf("%w: %q", ErrNoSuchOccupant, nick)
	}
	return r.public(o), nil
}

// RoomOccupancy is an account's occupant in one room.
type RoomOccupancy struct {
	Room     string
	Occupant Occupant
}

// OccupantsOfAccount returns the account's occupants in the rooms it is
// in now (through any of its sessions), among rooms (all of them when
// rooms is nil).
func (c *Core) OccupantsOfAccount(account string, rooms map[string]bool) []RoomOccupancy {
	account = Fold(account)
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []RoomOccupancy
	seen := map[string]bool{}
	for _, s := range c.byAcct[account] {
		if s.closed {
			continue
		}
		for _, rn := range s.rooms {
			room, nick := rn.room, rn.nick
			if (rooms != nil && !rooms[room]) || seen[room+"\x00"+foldNick(nick)] {
				continue
			}
			seen[room+"\x00"+foldNick(nick)] = true
			r := c.rooms[room]
			if r == nil {
				continue
			}
			if o := r.occupants[foldNick(nick)]; o != nil && o.account == account {
				out = append(out, RoomOccupancy{Room: room, Occupant: r.public(o)})
			}
		}
	}
	return out
}

// SessionNick returns the nick the session (by ID) has in room, if it
// is there.
func (c *Core) SessionNick(room string, id uint64) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[id]
	if s == nil || s.closed {
		return "", false
	}
	nick, ok := s.rooms.nick(Fold(room))
	return nick, ok
}

// AffiliationIn returns account's affiliation in room and the role an
// occupant of that affiliation gets by default (what a door shows for an
// occupant who just left, whose own entry is gone).
func (c *Core) AffiliationIn(room, account string) (Affiliation, Role) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rooms[Fold(room)]
	if r == nil {
		return AffNone, RoleParticipant
	}
	return r.affiliation(account), r.defaultRole(account, false)
}

// AccountPresences appends to dst the aggregated presence of each
// occupant's account, in order, under one lock (a join shows every
// occupant's), and returns it.
func (c *Core) AccountPresences(dst []Presence, occupants []Occupant) []Presence {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range occupants {
		dst = append(dst, c.accountPresence(Fold(occupants[i].Account)))
	}
	return dst
}
