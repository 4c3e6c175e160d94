package chat

// Account-level occupancy of a room, for doors that show one member per
// account rather than one per nick (IRC: an XMPP account in a room under
// two nicks is one IRC member; an IRC user with two connections is one).
//
// The core counts each room's occupants per account (roomState.accounts)
// and, on every fan-out that changes who is in a room, tells the doors
// what changed at the account level as of that delivery
// (Delivery.AccountFirst, AccountGone, GoneRooms, SharesRoom, Before). A
// door thus needs no copy of the member list per session: it asks the
// core (Core.RoomInfo, Core.Occupants) when a client asks (NAMES, WHO),
// and takes the room as the joiner found it from its join delivery.
//
// The occupants are also kept in nick order (roomState.order, by folded
// nick), so that the list a joiner is sent is a copy, not a sort.

import (
	"slices"
	"strings"
)

// putOccupant adds a new occupant under key (its sessions, if any, are
// added to the members by the caller: addMember); c.mu held.
func (r *roomState) putOccupant(key string, o *occupant) {
	o.key = key
	r.occupants[key] = o
	i, _ := slices.BinarySearchFunc(r.order, key, byKey)
	r.order = slices.Insert(r.order, i, o)
	if r.accounts == nil {
		r.accounts = map[string]int{}
	}
	r.accounts[o.account]++
}

// dropOccupant removes the occupant under key; c.mu held.
func (r *roomState) dropOccupant(key string, o *occupant) {
	delete(r.occupants, key)
	if i, ok := slices.BinarySearchFunc(r.order, key, byKey); ok && r.order[i] == o {
		r.order = slices.Delete(r.order, i, i+1)
	}
	r.members = nil
	if n := r.accounts[o.account] - 1; n > 0 {
		r.accounts[o.account] = n
	} else {
		delete(r.accounts, o.account)
	}
}

func byKey(o *occupant, key string) int { return strings.Compare(o.key, key) }

// addMember adds a session that has just joined the room to the
// members list, if one is kept: appended, so that a caller still walking
// the list as it was sees it unchanged; c.mu held.
func (r *roomState) addMember(s *Session) {
	if r.members != nil {
		r.members = append(r.members, s)
	}
}

// hasAccount reports whether any occupant of the room is account's;
// c.mu held.
func (r *roomState) hasAccount(account string) bool { return r.accounts[account] > 0 }

// sharesRoomLocked reports whether session s is in a room where account
// has an occupant now; c.mu held.
func (c *Core) sharesRoomLocked(s *Session, account string) bool {
	for _, rn := range s.rooms {
		room := rn.room
		if r := c.rooms[room]; r != nil && r.hasAccount(account) {
			return true
		}
	}
	return false
}

// sessions returns every session of the room's occupants: a list kept
// until the room's membership changes, so that a fan-out walks a slice
// rather than two levels of maps; c.mu held. The list is never changed in
// place: a caller may go on walking it while the room changes.
func (r *roomState) sessions() []*Session {
	if r.members == nil {
		n := 0
		for _, o := range r.occupants {
			n += len(o.sessions)
		}
		members := make([]*Session, 0, n)
		for _, o := range r.occupants {
			members = append(members, o.sessions...)
		}
		r.members = members
	}
	return r.members
}
