package chat

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// What the box's admin does to guests during an event (issue 11): list
// them, kick one out of every room, wipe what one wrote, and keep guest
// access closed across a restart. Wiping deletes the guest's messages
// from the store, so from every history view (the rooms' history on
// join, XMPP MAM, IRC CHATHISTORY); sessions that were already shown a
// message cannot be made to forget it, but occupants of the room get a
// DelRetract for each (the XMPP door turns it into a XEP-0425 moderation
// notice; IRC has no standard way to take a line back and shows nothing).

// GuestRoom is a room a guest is in, under a nick.
type GuestRoom struct {
	Room string `json:"room"`
	Nick string `json:"nick"`
}

// GuestInfo is one guest online: its pseudo-account (GuestPrefix + its
// login name), the door and address of its first session, its rooms.
type GuestInfo struct {
	Account string      `json:"account"`
	Name    string      `json:"name"` // the account without GuestPrefix
	Door    string      `json:"door"`
	Addr    string      `json:"addr"`
	Rooms   []GuestRoom `json:"rooms"`
}

// Guests lists the guests online, sorted by account.
func (c *Core) Guests() []GuestInfo {
	c.mu.Lock()
	byAcct := map[string]*GuestInfo{}
	for _, s := range c.sessions {
		if !s.info.Guest || s.closed {
			continue
		}
		g := byAcct[s.info.Account]
		if g == nil {
			g = &GuestInfo{Account: s.info.Account, Name: strings.TrimPrefix(s.info.Account, GuestPrefix),
				Door: s.info.Door, Addr: s.info.Addr, Rooms: []GuestRoom{}}
			byAcct[s.info.Account] = g
		}
		for _, rn := range s.rooms {
			room, nick := rn.room, rn.nick
			if !slices.ContainsFunc(g.Rooms, func(r GuestRoom) bool { return r.Room == room }) {
				g.Rooms = append(g.Rooms, GuestRoom{Room: room, Nick: nick})
			}
		}
	}
	c.mu.Unlock()
	out := make([]GuestInfo, 0, len(byAcct))
	for _, g := range byAcct {
		slices.SortFunc(g.Rooms, func(a, b GuestRoom) int { return strings.Compare(a.Room, b.Room) })
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b GuestInfo) int { return strings.Compare(a.Account, b.Account) })
	return out
}

// guestAccount checks that account names a guest's pseudo-account.
func guestAccount(account string) (string, error) {
	if !IsGuest(account) || len(account) == len(GuestPrefix) {
		return "", fmt.Errorf("%w: %q is not a guest (guests' names start with %q)", ErrNotFound, account, GuestPrefix)
	}
	return account, nil
}

// KickGuest kicks a guest out of every room it is in, as the box (the
// web admin), and says from how many rooms. The guest stays connected
// and may join again unless the room is locked or guest access closed.
func (c *Core) KickGuest(ctx context.Context, account, reason string) (int, error) {
	account, err := guestAccount(account)
	if err != nil {
		return 0, err
	}
	type target struct{ room, nick string }
	var targets []target
	c.mu.Lock()
	for _, s := range c.byAcct[account] {
		for _, rn := range s.rooms {
			room, nick := rn.room, rn.nick
			if !slices.Contains(targets, target{room, nick}) {
				targets = append(targets, target{room, nick})
			}
		}
	}
	c.mu.Unlock()
	if len(targets) == 0 {
		return 0, fmt.Errorf("%w: guest %q is in no room", ErrNoSuchOccupant, strings.TrimPrefix(account, GuestPrefix))
	}
	n := 0
	for _, t := range targets {
		if err := c.Kick(ctx, nil, t.room, t.nick, reason); err != nil {
			if errors.Is(err, ErrNoSuchOccupant) {
				continue // left meanwhile
			}
			return n, err
		}
		n++
	}
	c.log.Info("guest kicked", "guest", account, "rooms", n)
	return n, nil
}

// GuestWiper is a store that can delete one sender's messages and the
// guests' room affiliations. The SQLite store implements it.
type GuestWiper interface {
	// DeleteMessagesFrom deletes every message account wrote (offline
	// copies too) and returns them (ID, Room, To, From, FromNick set).
	DeleteMessagesFrom(ctx context.Context, account string) ([]Message, error)
	// DeleteAffiliationsFromPrefix deletes every room affiliation of
	// accounts whose name starts with prefix, and masks that start with it
	// (bans of guests by pseudo-account).
	DeleteAffiliationsFromPrefix(ctx context.Context, prefix string) (int64, error)
}

// maxRetractNotices bounds the DelRetract deliveries of one wipe, so that
// wiping a prolific guest cannot flood the doors' queues.
const maxRetractNotices = 500

// WipeGuest deletes every message a guest wrote, from every history, and
// tells the occupants of the rooms concerned (DelRetract, one per
// message, for the most recent maxRetractNotices). It returns how many
// messages it deleted.
func (c *Core) WipeGuest(ctx context.Context, account, reason string) (int, error) {
	account, err := guestAccount(account)
	if err != nil {
		return 0, err
	}
	w, ok := c.store.(GuestWiper)
	if !ok {
		return 0, errors.New("wipe guest: this store cannot delete one sender's messages")
	}
	gone, err := w.DeleteMessagesFrom(ctx, account)
	if err != nil {
		return 0, fmt.Errorf("wipe guest %q: %w", account, err)
	}
	notices := gone
	if len(notices) > maxRetractNotices {
		notices = notices[len(notices)-maxRetractNotices:] // the most recent: what screens still show
	}
	c.mu.Lock()
	for i := range notices {
		m := &notices[i]
		r := c.rooms[m.Room]
		if m.Room == "" || r == nil {
			continue
		}
		d := Delivery{Kind: DelRetract, Room: m.Room, Message: m, Reason: reason}
		r.each(func(os *Session) { os.sink.Deliver(d) })
	}
	c.mu.Unlock()
	c.log.Info("guest wiped", "guest", account, "messages", len(gone))
	return len(gone), nil
}

// StateStore keeps small named values of the box's own (event mode's
// closed guest access). The SQLite store implements it.
type StateStore interface {
	// BoxState returns the value under key, or ErrNotFound.
	BoxState(ctx context.Context, key string) (string, error)
	SetBoxState(ctx context.Context, key, value string) error
}

const stateGuestsClosed = "event.guests_closed"

// loadEventState reads the closed-guests state that CloseGuests saved, so
// a restart keeps guests out.
func loadEventState(o Options) eventState {
	ss, ok := o.Store.(StateStore)
	if !ok {
		return eventState{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := ss.BoxState(ctx, stateGuestsClosed)
	if err != nil && !errors.Is(err, ErrNotFound) && o.Log != nil {
		o.Log.Error("read whether guest access is closed; it starts open", "err", err)
	}
	return eventState{closed: v == "true"}
}

// saveGuestsClosed records the closed-guests state for the next start.
func (c *Core) saveGuestsClosed(closed bool) {
	ss, ok := c.store.(StateStore)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ss.SetBoxState(ctx, stateGuestsClosed, fmt.Sprint(closed)); err != nil {
		c.log.Error("save whether guest access is closed: a restart may not keep it", "closed", closed, "err", err)
	}
}

// forgetGuestAffiliations removes the guests' room affiliations and bans
// of guests' pseudo-accounts from the store and the loaded rooms, when
// the event ends.
func (c *Core) forgetGuestAffiliations(ctx context.Context) (int64, error) {
	w, ok := c.store.(GuestWiper)
	if !ok {
		return 0, nil
	}
	n, err := w.DeleteAffiliationsFromPrefix(ctx, GuestPrefix)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	for _, r := range c.rooms {
		for a := range r.room.Affiliations {
			if IsGuest(a) {
				delete(r.room.Affiliations, a)
			}
		}
		r.room.Masks = slices.DeleteFunc(r.room.Masks, func(m MaskEntry) bool { return IsGuest(m.Mask) })
	}
	c.mu.Unlock()
	return n, nil
}

// BanGuest bans a guest's pseudo-account from a room (the ban mask is the
// pseudo-account itself, which IRC lists as +b ~name) and removes it from
// the room as banned (XMPP status 301); with ban false it lifts that
// ban. It is for doors whose ban names an account (XEP-0045 outcast):
// guests have no affiliations. Moderators may do it, as IRC operators set
// +b.
func (c *Core) BanGuest(ctx context.Context, s *Session, room, account, reason string, ban bool) error {
	account, err := guestAccount(Fold(account))
	if err != nil {
		return err
	}
	if !ban {
		return c.RemoveMask(ctx, s, room, ListBan, account)
	}
	if err := c.AddMask(ctx, s, room, ListBan, account, reason); err != nil && !errors.Is(err, ErrExists) {
		return err
	}
	r, admin, err := c.actingOn(ctx, s, room)
	if err != nil {
		return err
	}
	c.mu.Lock()
	role, aff := c.actorStanding(r, s, admin)
	for _, o := range r.occupants {
		if o.account == account && mayActOn(role, aff, o.role, r.affiliation(o.account)) {
			c.removeOccupant(r, o, s, reason, true)
		}
	}
	empty := c.forgetIfEmptyLocked(r)
	c.mu.Unlock()
	if empty {
		c.deleteEmptyRooms(ctx, r.room.Name)
	}
	return nil
}

// guestMaskSubject is what a room mask matches a guest as, besides its
// pseudo-account: name!guest@door, as IRC shows it (so MODE +b name!*@*
// reaches an XMPP guest too); "" for accounts.
func guestMaskSubject(s *Session) string {
	if !s.info.Guest {
		return ""
	}
	return strings.TrimPrefix(s.info.Account, GuestPrefix) + "!guest@" + s.info.Door
}
