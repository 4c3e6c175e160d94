package chat

import (
	"context"
	"fmt"
)

// A locked room (issue 11, moderation for events) is one the box's admin
// shut: nobody new may join it — only sessions of accounts already in it,
// the room's owners and admins, and box admins get in — and guests may
// not speak in it (accounts already inside still may). Locking keeps
// everyone inside; it is a setting of the room (RoomSettings.Locked), so
// it survives a restart, and only the box itself (the web admin, a nil
// session) sets it. No IRC channel mode means this (+i is members-only
// with invitations, +m silences everyone without voice), so IRC shows no
// mode for it: joins are refused with the reason and guests' messages are
// answered with it.

// ErrRoomLocked refuses a join or a guest's message in a locked room.
var ErrRoomLocked = fmt.Errorf("%w: the room is locked by the box's admin", ErrForbidden)

// LockRoom locks or unlocks a room (the web admin). Occupants are told
// through the usual settings delivery.
func (c *Core) LockRoom(ctx context.Context, room string, locked bool) error {
	_, err := c.UpdateSettings(ctx, nil, room, func(s *RoomSettings) error {
		s.Locked = locked
		return nil
	})
	if err != nil {
		return fmt.Errorf("lock room %q: %w", room, err)
	}
	c.log.Info("room lock", "room", Fold(room), "locked", locked)
	return nil
}

// lockAllowsJoin refuses a newcomer to a locked room: only an account
// already inside (another session of it), the room's owners and admins,
// and box admins get in.
func (c *Core) lockAllowsJoin(ctx context.Context, s *Session, name string) error {
	r, err := c.loadRoom(ctx, name)
	if err != nil {
		return nil // Join says what is wrong with the room
	}
	c.mu.Lock()
	locked := r.room.Settings.Locked
	aff := r.affiliation(s.info.Account)
	inside := false
	for _, o := range r.occupants {
		if o.account == s.info.Account {
			inside = true
			break
		}
	}
	c.mu.Unlock()
	if !locked || inside || aff == AffOwner || aff == AffAdmin || c.isBoxAdmin(s) {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrRoomLocked, name)
}

// lockSilences says whether s may not speak in r because r is locked;
// c.mu held.
func (r *roomState) lockSilences(s *Session) bool {
	return r.room.Settings.Locked && s.info.Guest
}
