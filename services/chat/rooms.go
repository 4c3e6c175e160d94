package chat

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// MaxTopicBytes bounds a room topic.
const MaxTopicBytes = 1000

// roomState is a room in memory: its stored record and who is in it.
// Fields are guarded by Core.mu; write serialises this room's store writes
// so that store and memory change in the same order.
type roomState struct {
	write     sync.Mutex
	room      Room
	occupants map[string]*occupant // foldNick(nick) -> occupant
	order     []*occupant          // the occupants by key (occupants.go)
	accounts  map[string]int       // account -> its occupants (occupants.go)
	members   []*Session           // every occupant's sessions; nil when stale (occupants.go)
	invited   map[string]bool      // accounts invited until they join
}

// roomNicks is the rooms a session is in, with its nick in each: a few
// (Options.MaxRoomsPerSession bounds them), so a slice, not a map (a
// map with one entry costs about 280 bytes).
type roomNicks []roomNick

type roomNick struct{ room, nick string }

// nick returns the session's nick in room, and whether it is in it.
func (rs roomNicks) nick(room string) (string, bool) {
	for _, rn := range rs {
		if rn.room == room {
			return rn.nick, true
		}
	}
	return "", false
}

// set puts the session in room under nick.
func (rs *roomNicks) set(room, nick string) {
	for i := range *rs {
		if (*rs)[i].room == room {
			(*rs)[i].nick = nick
			return
		}
	}
	*rs = append(*rs, roomNick{room, nick})
}

// drop takes room out.
func (rs *roomNicks) drop(room string) {
	*rs = slices.DeleteFunc(*rs, func(rn roomNick) bool { return rn.room == room })
}

type occupant struct {
	key      string // foldNick(nick): its key in roomState.occupants and order
	nick     string
	account  string
	role     Role
	voiced   bool       // given voice explicitly (IRC +v, MUC role participant)
	sessions []*Session // usually one: a slice costs 8 bytes, a map 200
	// refs is sessions as Occupant.Sessions shows them, sorted by ID:
	// made once and shared by every Occupant copy until sessions
	// changes (then nil, and made anew: a copy handed out is never
	// changed).
	refs []SessionRef
	slot Slot // Occupant.Slot
}

func (r *roomState) affiliation(account string) Affiliation {
	if a, ok := r.room.Affiliations[account]; ok {
		return a
	}
	return AffNone
}

// defaultRole is the role an occupant has by affiliation (XEP-0045 §5.1).
func (r *roomState) defaultRole(account string, voiced bool) Role {
	switch aff := r.affiliation(account); {
	case aff == AffOwner || aff == AffAdmin:
		return RoleModerator
	case aff == AffMember || voiced || !r.room.Settings.Moderated:
		return RoleParticipant
	}
	return RoleVisitor
}

func (r *roomState) public(o *occupant) Occupant {
	if o.refs == nil && len(o.sessions) > 0 {
		refs := make([]SessionRef, 0, len(o.sessions))
		for _, s := range o.sessions {
			refs = append(refs, s.ref())
		}
		slices.SortFunc(refs, func(a, b SessionRef) int { return cmp.Compare(a.ID, b.ID) })
		o.refs = refs
	}
	return Occupant{Nick: o.nick, Account: o.account, Role: o.role, Affiliation: r.affiliation(o.account), Voice: o.voiced, Sessions: o.refs, Slot: &o.slot}
}

// removeSession takes s out of the room; left reports whether its
// occupant is gone (no other session of the account holds the nick).
func (r *roomState) removeSession(s *Session) (occupant *occupant, left bool) {
	nick, ok := s.rooms.nick(r.room.Name)
	if !ok {
		return nil, false
	}
	key := foldNick(nick)
	o := r.occupants[key]
	if o == nil {
		return nil, false
	}
	o.sessions = slices.DeleteFunc(o.sessions, func(x *Session) bool { return x == s })
	o.refs = nil
	r.members = nil
	if len(o.sessions) > 0 {
		return o, false
	}
	r.dropOccupant(key, o)
	return o, true
}

// each calls f for every session in the room.
func (r *roomState) each(f func(*Session)) {
	for _, s := range r.sessions() {
		if !s.closed {
			f(s)
		}
	}
}

func copyRoom(r Room) Room {
	r.Affiliations = maps.Clone(r.Affiliations)
	r.Masks = slices.Clone(r.Masks)
	return r
}

// matchMask reports whether a mask list entry matches a session: the mask
// is an account name or a glob over the account name or the door's mask.
func matchMask(mask string, s *Session) bool {
	m := strings.ToLower(mask)
	// account!account@door lets an IRC-style ban on a nick reach the
	// account whatever door it uses.
	full := s.info.Account + "!" + s.info.Account + "@" + s.info.Door
	for _, subject := range []string{s.info.Account, strings.ToLower(s.info.Mask), full, guestMaskSubject(s)} {
		if subject == "" {
			continue
		}
		if m == subject {
			return true
		}
		if globMatch(m, subject) {
			return true
		}
	}
	return false
}

// globMatch matches s against a mask where '*' stands for any run of
// characters and '?' for one; every other character (IRC nicks hold
// '[', ']' and '\\') stands for itself.
func globMatch(mask, s string) bool {
	px, sx := 0, 0
	star, mark := -1, 0
	for sx < len(s) {
		switch {
		case px < len(mask) && (mask[px] == '?' || mask[px] == s[sx]):
			px++
			sx++
		case px < len(mask) && mask[px] == '*':
			star, mark = px, sx
			px++
		case star >= 0:
			px = star + 1
			mark++
			sx = mark
		default:
			return false
		}
	}
	for px < len(mask) && mask[px] == '*' {
		px++
	}
	return px == len(mask)
}

func (r *roomState) onList(list MaskList, s *Session) bool {
	for _, e := range r.room.Masks {
		if e.List == list && matchMask(e.Mask, s) {
			return true
		}
	}
	return false
}

func (r *roomState) banned(s *Session) bool {
	if r.affiliation(s.info.Account) == AffOutcast {
		return true
	}
	return r.onList(ListBan, s) && !r.onList(ListBanExcept, s)
}

// loadRoom returns the room's state, reading it from the store on first
// use.
func (c *Core) loadRoom(ctx context.Context, name string) (*roomState, error) {
	c.mu.Lock()
	r := c.rooms[name]
	c.mu.Unlock()
	if r != nil {
		return r, nil
	}
	room, err := c.store.Room(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchRoom, name)
	}
	if err != nil {
		return nil, err
	}
	if room.Affiliations == nil {
		room.Affiliations = map[string]Affiliation{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.rooms[name]; r != nil {
		return r, nil
	}
	r = &roomState{room: room, occupants: map[string]*occupant{}, accounts: map[string]int{}, invited: map[string]bool{}}
	c.rooms[name] = r
	return r, nil
}

// DefaultRoomSettings are the settings of a new room: persistent, open,
// topic set by moderators, messages only from occupants (IRC +nt).
func DefaultRoomSettings() RoomSettings {
	return RoomSettings{Persistent: true, TopicLocked: true, NoExternal: true}
}

// CreateRoom makes a room; owner (an account, may be empty) becomes its
// owner.
func (c *Core) CreateRoom(ctx context.Context, name, owner string, settings RoomSettings) error {
	name = Fold(name)
	if err := ValidName(name); err != nil {
		return err
	}
	r := Room{Name: name, Created: c.now().UTC(), Settings: settings, Affiliations: map[string]Affiliation{}}
	if owner != "" {
		r.Affiliations[Fold(owner)] = AffOwner
	}
	if err := c.store.CreateRoom(ctx, r); err != nil {
		return err
	}
	c.publish(Event{Type: EventRoomCreated, Room: name, Account: owner})
	return nil
}

// Rooms lists every room (stored; the hidden ones too).
func (c *Core) Rooms(ctx context.Context) ([]Room, error) { return c.store.Rooms(ctx) }

// RoomInfo returns a room's record and its occupants now.
func (c *Core) RoomInfo(ctx context.Context, name string) (Room, []Occupant, error) {
	r, err := c.loadRoom(ctx, Fold(name))
	if err != nil {
		return Room{}, nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return copyRoom(r.room), c.occupantsLocked(r), nil
}

func (c *Core) occupantsLocked(r *roomState) []Occupant {
	occ := make([]Occupant, len(r.order))
	for i, o := range r.order {
		occ[i] = r.public(o)
	}
	return occ
}

// RoomsOf returns the rooms a session is in, with its nick in each.
func (s *Session) RoomsOf() map[string]string {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	out := make(map[string]string, len(s.rooms))
	for _, rn := range s.rooms {
		out[rn.room] = rn.nick
	}
	return out
}

// JoinResult is what a joining session needs to show the room.
type JoinResult struct {
	Room      Room
	Self      Occupant
	Occupants []Occupant // everyone, Self included, sorted by nick
	Created   bool       // the join created the room
	Already   bool       // the session was already in the room
}

// Join puts the session in a room under nick. A missing room is created
// when the box allows it (the joiner becomes owner). key is the room
// password, if any.
func (c *Core) Join(ctx context.Context, s *Session, room, nick, key string) (JoinResult, error) {
	name := Fold(room)
	if err := ValidName(name); err != nil {
		return JoinResult{}, fmt.Errorf("%w: %v", ErrNoSuchRoom, err)
	}
	if nick = strings.TrimSpace(nick); nick == "" {
		nick = s.info.Account
	}
	if err := c.eventAllowsJoin(ctx, s, name); err != nil {
		return JoinResult{}, err
	}
	var res JoinResult
	r, err := c.loadRoom(ctx, name)
	if errors.Is(err, ErrNoSuchRoom) {
		if !c.opts.UsersMayCreateRooms || s.info.Guest {
			return JoinResult{}, err
		}
		err = c.CreateRoom(ctx, name, s.info.Account, DefaultRoomSettings())
		if err != nil && !errors.Is(err, ErrExists) {
			return JoinResult{}, err
		}
		res.Created = err == nil
		r, err = c.loadRoom(ctx, name)
	}
	if err != nil {
		return JoinResult{}, err
	}
	if err := c.checkNickOwner(ctx, s, nick); err != nil {
		return JoinResult{}, err
	}
	boxAdmin := c.isBoxAdmin(s)

	c.mu.Lock()
	if s.closed {
		c.mu.Unlock()
		return JoinResult{}, ErrSessionClosed
	}
	if cur, in := s.rooms.nick(name); in {
		res.Already = true
		res.Room = copyRoom(r.room)
		res.Self = r.public(r.occupants[foldNick(cur)])
		res.Occupants = c.occupantsLocked(r)
		c.mu.Unlock()
		return res, nil
	}
	if len(s.rooms) >= c.opts.MaxRoomsPerSession {
		c.mu.Unlock()
		return JoinResult{}, fmt.Errorf("%w (%d)", ErrTooManyRooms, c.opts.MaxRoomsPerSession)
	}
	key1 := foldNick(nick)
	o := r.occupants[key1]
	if o != nil && o.account != s.info.Account {
		c.mu.Unlock()
		return JoinResult{}, fmt.Errorf("%w: %q", ErrNickInUse, nick)
	}
	aff := r.affiliation(s.info.Account)
	privileged := aff == AffOwner || aff == AffAdmin || boxAdmin
	switch {
	case r.banned(s) && !privileged:
		c.mu.Unlock()
		return JoinResult{}, fmt.Errorf("%w: %s", ErrBanned, name)
	case r.room.Settings.MembersOnly && aff == AffNone && !r.invited[s.info.Account] && (s.info.Guest || !r.onList(ListInvite, s)) && !privileged:
		c.mu.Unlock()
		return JoinResult{}, fmt.Errorf("%w: %s", ErrInviteOnly, name)
	case r.room.Settings.Password != "" && key != r.room.Settings.Password && !privileged:
		c.mu.Unlock()
		return JoinResult{}, fmt.Errorf("%w: %s", ErrRoomKey, name)
	case o == nil && r.room.Settings.MaxUsers > 0 && len(r.occupants) >= r.room.Settings.MaxUsers && !privileged:
		c.mu.Unlock()
		return JoinResult{}, fmt.Errorf("%w: %s", ErrRoomFull, name)
	}
	delete(r.invited, s.info.Account)
	isNew := o == nil
	if isNew {
		o = &occupant{nick: nick, account: s.info.Account}
		o.role = r.defaultRole(o.account, false)
		r.putOccupant(key1, o)
	}
	o.sessions = append(o.sessions, s)
	o.refs = nil
	r.addMember(s)
	s.rooms.set(name, o.nick)
	res.Self = r.public(o)
	res.Room = copyRoom(r.room)
	res.Occupants = c.occupantsLocked(r)
	if isNew {
		d := Delivery{Kind: DelJoin, Room: name, Occupant: res.Self, From: s.ref(), Shared: &Rendered{},
			AccountFirst: r.accounts[s.info.Account] == 1}
		r.each(func(os *Session) {
			if os != s {
				os.sink.Deliver(d)
			}
		})
	}
	// The joiner learns the room in the same order as everything after.
	// One copy (its affiliations and masks, O(members) in a members-only
	// room) for the result and the echo: neither is changed by anyone.
	info := res.Room
	limit := r.room.Settings.MaxHistory
	if limit <= 0 {
		limit = c.opts.DefaultHistory
	}
	s.sink.Deliver(Delivery{Kind: DelJoin, Room: name, Occupant: res.Self, From: s.ref(), Echo: true,
		RoomInfo: &info, Occupants: res.Occupants, Welcome: c.eventWelcome(s, name), HistoryLimit: limit})
	c.mu.Unlock()
	return res, nil
}

// checkNickOwner refuses a room nick that is another account's name.
func (c *Core) checkNickOwner(ctx context.Context, s *Session, nick string) error {
	k := foldNick(nick)
	if k == s.info.Account || ValidName(k) != nil {
		return nil
	}
	_, _, err := c.store.Account(ctx, k)
	switch {
	case err == nil:
		return fmt.Errorf("%w: %q", ErrNickReserved, nick)
	case errors.Is(err, ErrNotFound):
		return nil
	}
	return err
}

// actingOn loads the room a session acts on and says whether the
// session acts as the box (a box admin, or the box itself when s is nil).
func (c *Core) actingOn(ctx context.Context, s *Session, room string) (*roomState, bool, error) {
	r, err := c.loadRoom(ctx, Fold(room))
	if err != nil {
		return nil, false, err
	}
	return r, c.isBoxAdmin(s), nil
}

func (c *Core) isBoxAdmin(s *Session) bool {
	return s == nil || s.admin // nil: the box itself (CLI, web admin)
}

// Part takes the session out of a room.
func (c *Core) Part(ctx context.Context, s *Session, room, reason string) error {
	name := Fold(room)
	c.mu.Lock()
	r := c.rooms[name]
	if r == nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotInRoom, name)
	}
	nick, in := s.rooms.nick(name)
	if !in {
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotInRoom, name)
	}
	o, left := r.removeSession(s)
	s.rooms.drop(name)
	var occ Occupant
	if o != nil {
		occ = r.public(o)
	}
	occ.Nick, occ.Account = nick, s.info.Account
	d := Delivery{Kind: DelLeave, Room: name, Occupant: occ, Reason: reason, From: s.ref(),
		AccountGone: !r.hasAccount(s.info.Account), Shared: &Rendered{}}
	if left {
		r.each(func(os *Session) { os.sink.Deliver(d) })
	}
	// The leaving session is told even when another session of its
	// account stays in the room under the same nick.
	d.Echo, d.Shared = true, nil
	s.sink.Deliver(d)
	empty := c.forgetIfEmptyLocked(r)
	c.mu.Unlock()
	if empty {
		c.deleteEmptyRooms(ctx, name)
	}
	return nil
}

// forgetIfEmptyLocked drops a temporary (non-persistent) room nobody is in
// any more from memory and says so: the caller then deletes it from the
// store (deleteEmptyRooms) once c.mu is released. c.mu held.
func (c *Core) forgetIfEmptyLocked(r *roomState) bool {
	if len(r.occupants) != 0 || r.room.Settings.Persistent || c.rooms[r.room.Name] != r {
		return false
	}
	delete(c.rooms, r.room.Name)
	return true
}

// deleteEmptyRooms deletes temporary rooms their last occupant left (by
// part, quit or kick) from the store.
func (c *Core) deleteEmptyRooms(ctx context.Context, names ...string) {
	for _, name := range names {
		if err := c.store.DeleteRoom(ctx, name); err != nil && !errors.Is(err, ErrNotFound) {
			c.log.Warn("delete empty temporary room", "room", name, "err", err)
		}
	}
}

// Occupants returns who is in a room now.
func (c *Core) Occupants(ctx context.Context, room string) ([]Occupant, error) {
	_, occ, err := c.RoomInfo(ctx, room)
	return occ, err
}

// occupantOf returns the session's occupant in r; c.mu held.
func (r *roomState) occupantOf(s *Session) *occupant {
	nick, ok := s.rooms.nick(r.room.Name)
	if !ok {
		return nil
	}
	return r.occupants[foldNick(nick)]
}

// actorRole returns the actor's role and affiliation in r, the box
// itself (s == nil) and box admins acting as owner; c.mu held.
func (c *Core) actorStanding(r *roomState, s *Session, boxAdmin bool) (Role, Affiliation) {
	if s == nil || boxAdmin {
		return RoleModerator, AffOwner
	}
	aff := r.affiliation(s.info.Account)
	if o := r.occupantOf(s); o != nil {
		return o.role, aff
	}
	if aff == AffOwner || aff == AffAdmin {
		return RoleModerator, aff
	}
	return RoleNone, aff
}

func actorName(s *Session, r *roomState) string {
	if s == nil {
		return ""
	}
	if nick, ok := s.rooms.nick(r.room.Name); ok {
		return nick
	}
	return s.info.Account
}

// mayActOn reports whether an actor of that standing may kick or change
// the role of a target of that standing (XEP-0045 §8.2, §9.1): moderators
// act on non-moderators below admin; admins and owners on anyone of a
// lower affiliation.
func mayActOn(role Role, aff Affiliation, tRole Role, tAff Affiliation) bool {
	if aff.rank() > tAff.rank() && aff.rank() >= AffAdmin.rank() {
		return true
	}
	return role == RoleModerator && tRole != RoleModerator && tAff.rank() < AffAdmin.rank()
}

// SetTopic changes the room's subject.
func (c *Core) SetTopic(ctx context.Context, s *Session, room, topic string) error {
	if len(topic) > MaxTopicBytes {
		return fmt.Errorf("%w: topic of %d bytes, at most %d", ErrTooLong, len(topic), MaxTopicBytes)
	}
	if !utf8.ValidString(topic) {
		return ErrInvalidUTF8
	}
	r, admin, err := c.actingOn(ctx, s, room)
	if err != nil {
		return err
	}
	r.write.Lock()
	defer r.write.Unlock()
	c.mu.Lock()
	role, _ := c.actorStanding(r, s, admin)
	if s != nil && r.occupantOf(s) == nil && !admin {
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotInRoom, r.room.Name)
	}
	if role == RoleVisitor || (r.room.Settings.TopicLocked && role != RoleModerator) {
		c.mu.Unlock()
		return fmt.Errorf("%w: only moderators may change the topic of %s", ErrForbidden, r.room.Name)
	}
	upd := copyRoom(r.room)
	upd.Topic, upd.TopicBy, upd.TopicAt = topic, actorName(s, r), c.now().UTC()
	c.mu.Unlock()
	if err := c.store.UpdateRoom(ctx, upd); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r.room.Topic, r.room.TopicBy, r.room.TopicAt = upd.Topic, upd.TopicBy, upd.TopicAt
	d := Delivery{Kind: DelTopic, Room: r.room.Name, Topic: topic, Actor: upd.TopicBy, Shared: &Rendered{}}
	if s != nil {
		d.From = s.ref()
	}
	r.each(func(os *Session) { os.sink.Deliver(d) })
	return nil
}

// UpdateSettings changes a room's settings with change (which may refuse
// by returning an error). Moderators may change settings (as IRC channel
// operators set modes); doors may ask for more (XMPP: owners).
func (c *Core) UpdateSettings(ctx context.Context, s *Session, room string, change func(*RoomSettings) error) (RoomSettings, error) {
	r, admin, err := c.actingOn(ctx, s, room)
	if err != nil {
		return RoomSettings{}, err
	}
	r.write.Lock()
	defer r.write.Unlock()
	c.mu.Lock()
	role, _ := c.actorStanding(r, s, admin)
	if role != RoleModerator {
		c.mu.Unlock()
		return RoomSettings{}, fmt.Errorf("%w: only moderators may change %s's settings", ErrForbidden, r.room.Name)
	}
	upd := copyRoom(r.room)
	c.mu.Unlock()
	if err := change(&upd.Settings); err != nil {
		return RoomSettings{}, err
	}
	if err := c.store.UpdateRoom(ctx, upd); err != nil {
		return RoomSettings{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r.room.Settings = upd.Settings
	d := Delivery{Kind: DelSettings, Room: r.room.Name, Settings: upd.Settings, Actor: actorName(s, r), From: refOf(s)}
	r.each(func(os *Session) { os.sink.Deliver(d) })
	// A room that becomes moderated silences those without voice; one
	// that stops being moderated gives everyone voice back.
	for _, o := range r.occupants {
		if o.role == RoleModerator {
			continue
		}
		if want := r.defaultRole(o.account, o.voiced); want != o.role {
			before := r.public(o)
			o.role = want
			c.deliverRole(r, o, before, s, "")
		}
	}
	return upd.Settings, nil
}

// refOf is the reference of an acting session; the box itself (nil) has
// none.
func refOf(s *Session) SessionRef {
	if s == nil {
		return SessionRef{}
	}
	return s.ref()
}

// deliverRole tells the room of o's new role or affiliation; before is
// o as it was.
func (c *Core) deliverRole(r *roomState, o *occupant, before Occupant, actor *Session, reason string) {
	d := Delivery{Kind: DelRole, Room: r.room.Name, Occupant: r.public(o), Actor: actorName(actor, r), Reason: reason, From: refOf(actor), Before: &before}
	r.each(func(os *Session) { os.sink.Deliver(d) })
}

// Kick removes nick's occupant (every session under it) from the room.
func (c *Core) Kick(ctx context.Context, s *Session, room, nick, reason string) error {
	r, admin, err := c.actingOn(ctx, s, room)
	if err != nil {
		return err
	}
	c.mu.Lock()
	o := r.occupants[foldNick(nick)]
	if o == nil {
		c.mu.Unlock()
		return fmt.Errorf("%w: %q in %s", ErrNoSuchOccupant, nick, r.room.Name)
	}
	role, aff := c.actorStanding(r, s, admin)
	if !mayActOn(role, aff, o.role, r.affiliation(o.account)) {
		c.mu.Unlock()
		return fmt.Errorf("%w: you cannot kick %s from %s", ErrForbidden, o.nick, r.room.Name)
	}
	c.removeOccupant(r, o, s, reason, false)
	empty := c.forgetIfEmptyLocked(r)
	c.mu.Unlock()
	if empty {
		c.deleteEmptyRooms(ctx, r.room.Name)
	}
	return nil
}

// removeOccupant kicks o out of r and tells everyone (o included); c.mu held.
func (c *Core) removeOccupant(r *roomState, o *occupant, actor *Session, reason string, banned bool) {
	d := Delivery{Kind: DelKick, Room: r.room.Name, Occupant: r.public(o), Actor: actorName(actor, r), Reason: reason, Banned: banned, From: refOf(actor),
		AccountGone: r.accounts[o.account] <= 1, Shared: &Rendered{}}
	r.each(func(os *Session) { os.sink.Deliver(d) })
	for _, ts := range o.sessions {
		ts.rooms.drop(r.room.Name)
	}
	r.dropOccupant(foldNick(o.nick), o)
}

// SetRole changes the role of nick's occupant: RoleModerator (IRC +o),
// RoleParticipant (voice, +v), RoleVisitor (no voice); RoleNone kicks.
func (c *Core) SetRole(ctx context.Context, s *Session, room, nick string, role Role, reason string) error {
	if role == RoleNone {
		return c.Kick(ctx, s, room, nick, reason)
	}
	r, admin, err := c.actingOn(ctx, s, room)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	o := r.occupants[foldNick(nick)]
	if o == nil {
		return fmt.Errorf("%w: %q in %s", ErrNoSuchOccupant, nick, r.room.Name)
	}
	aRole, aAff := c.actorStanding(r, s, admin)
	tAff := r.affiliation(o.account)
	switch {
	case aRole != RoleModerator:
		return fmt.Errorf("%w: only moderators may change roles in %s", ErrForbidden, r.room.Name)
	case tAff.rank() >= AffAdmin.rank() && aAff.rank() <= tAff.rank():
		return fmt.Errorf("%w: %s is an %s of %s", ErrForbidden, o.nick, tAff, r.room.Name)
	}
	voiced := o.voiced
	switch role {
	case RoleParticipant:
		// In a moderated room a participant is one who was given voice.
		voiced = voiced || r.room.Settings.Moderated
	case RoleVisitor:
		voiced = false
	}
	if o.role == role && o.voiced == voiced {
		return nil
	}
	before := r.public(o)
	o.role, o.voiced = role, voiced
	c.deliverRole(r, o, before, s, reason)
	return nil
}

// SetVoice gives or takes the voice of nick's occupant (IRC +v/-v): in a
// moderated room only occupants with voice (or membership) may speak.
// Moderators keep their role.
func (c *Core) SetVoice(ctx context.Context, s *Session, room, nick string, voice bool) error {
	r, admin, err := c.actingOn(ctx, s, room)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	o := r.occupants[foldNick(nick)]
	if o == nil {
		return fmt.Errorf("%w: %q in %s", ErrNoSuchOccupant, nick, r.room.Name)
	}
	if aRole, _ := c.actorStanding(r, s, admin); aRole != RoleModerator {
		return fmt.Errorf("%w: only moderators may give or take voice in %s", ErrForbidden, r.room.Name)
	}
	role := o.role
	if role != RoleModerator {
		role = r.defaultRole(o.account, voice)
	}
	if o.voiced == voice && o.role == role {
		return nil
	}
	before := r.public(o)
	o.voiced, o.role = voice, role
	c.deliverRole(r, o, before, s, "")
	return nil
}

// SetAffiliation records account's affiliation (owner, admin, member,
// none, outcast) in the room. Owners may set any; admins may set member,
// none and outcast for accounts below admin; the box (s == nil) and box
// admins may set anything. Outcasts present are removed.
func (c *Core) SetAffiliation(ctx context.Context, s *Session, room, account string, aff Affiliation, reason string) error {
	account = Fold(account)
	if !aff.Valid() {
		return fmt.Errorf("%w: unknown affiliation %q", ErrForbidden, aff)
	}
	if IsRemote(account) { // a remote user (remote.go)
		if _, err := RemoteJID(account); err != nil {
			return fmt.Errorf("affiliation for %q: %w", account, err)
		}
	} else if _, _, err := c.store.Account(ctx, account); err != nil {
		return fmt.Errorf("affiliation for %q: %w", account, err)
	}
	r, admin, err := c.actingOn(ctx, s, room)
	if err != nil {
		return err
	}
	r.write.Lock()
	defer r.write.Unlock()
	c.mu.Lock()
	_, aAff := c.actorStanding(r, s, admin)
	cur := r.affiliation(account)
	ok := aAff == AffOwner ||
		(aAff == AffAdmin && cur.rank() < AffAdmin.rank() && aff.rank() < AffAdmin.rank())
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: you cannot make %s %s of %s", ErrForbidden, account, aff, r.room.Name)
	}
	if err := c.store.SetAffiliation(ctx, r.room.Name, account, aff); err != nil {
		return err
	}
	c.mu.Lock()
	befores := map[*occupant]Occupant{}
	for _, o := range r.occupants {
		if o.account == account {
			befores[o] = r.public(o)
		}
	}
	if aff == AffNone {
		delete(r.room.Affiliations, account)
	} else {
		r.room.Affiliations[account] = aff
	}
	for _, o := range r.occupants {
		if o.account != account {
			continue
		}
		if aff == AffOutcast {
			c.removeOccupant(r, o, s, reason, true)
			continue
		}
		o.role = r.defaultRole(o.account, o.voiced)
		c.deliverRole(r, o, befores[o], s, reason)
	}
	empty := c.forgetIfEmptyLocked(r)
	c.mu.Unlock()
	if empty {
		c.deleteEmptyRooms(ctx, r.room.Name)
	}
	return nil
}

// AddMask puts an entry on one of the room's mask lists (ban, exception,
// invite exception). Moderators may. Bans do not remove anyone present
// (as on IRC); a kick does.
func (c *Core) AddMask(ctx context.Context, s *Session, room string, list MaskList, mask, reason string) error {
	return c.changeMask(ctx, s, room, MaskEntry{List: list, Mask: mask, Reason: reason}, false)
}

// RemoveMask takes an entry off a mask list.
func (c *Core) RemoveMask(ctx context.Context, s *Session, room string, list MaskList, mask string) error {
	return c.changeMask(ctx, s, room, MaskEntry{List: list, Mask: mask}, true)
}

func (c *Core) changeMask(ctx context.Context, s *Session, room string, e MaskEntry, remove bool) error {
	if e.List != ListBan && e.List != ListBanExcept && e.List != ListInvite {
		return fmt.Errorf("%w: unknown list %q", ErrForbidden, e.List)
	}
	if e.Mask = strings.TrimSpace(e.Mask); e.Mask == "" || len(e.Mask) > 200 {
		return fmt.Errorf("%w: a mask must have 1 to 200 characters", ErrBadName)
	}
	r, admin, err := c.actingOn(ctx, s, room)
	if err != nil {
		return err
	}
	r.write.Lock()
	defer r.write.Unlock()
	c.mu.Lock()
	role, _ := c.actorStanding(r, s, admin)
	e.SetBy, e.SetAt = actorName(s, r), c.now().UTC()
	c.mu.Unlock()
	if role != RoleModerator {
		return fmt.Errorf("%w: only moderators may change %s's lists", ErrForbidden, r.room.Name)
	}
	if remove {
		err = c.store.RemoveMask(ctx, r.room.Name, e.List, e.Mask)
	} else {
		err = c.store.AddMask(ctx, r.room.Name, e)
	}
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if remove {
		r.room.Masks = slices.DeleteFunc(r.room.Masks, func(m MaskEntry) bool {
			return m.List == e.List && strings.EqualFold(m.Mask, e.Mask)
		})
	} else {
		r.room.Masks = append(r.room.Masks, e)
	}
	d := Delivery{Kind: DelMask, Room: r.room.Name, Mask: e, Removed: remove, Actor: e.SetBy, From: refOf(s)}
	r.each(func(os *Session) { os.sink.Deliver(d) })
	return nil
}

// ChangeNick renames the session's occupant in a room (every session
// sharing it follows).
func (c *Core) ChangeNick(ctx context.Context, s *Session, room, newNick string) error {
	newNick = strings.TrimSpace(newNick)
	if newNick == "" {
		return fmt.Errorf("%w: empty nickname", ErrBadName)
	}
	if err := c.checkNickOwner(ctx, s, newNick); err != nil {
		return err
	}
	name := Fold(room)
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rooms[name]
	if r == nil {
		return fmt.Errorf("%w: %s", ErrNotInRoom, name)
	}
	o := r.occupantOf(s)
	if o == nil {
		return fmt.Errorf("%w: %s", ErrNotInRoom, name)
	}
	nk := foldNick(newNick)
	if other := r.occupants[nk]; other != nil && other != o {
		return fmt.Errorf("%w: %q", ErrNickInUse, newNick)
	}
	old := o.nick
	r.dropOccupant(foldNick(old), o)
	o.nick = newNick
	r.putOccupant(nk, o)
	for _, os := range o.sessions {
		os.rooms.set(name, newNick)
	}
	d := Delivery{Kind: DelNick, Room: name, Occupant: r.public(o), OldNick: old, From: s.ref()}
	r.each(func(os *Session) { os.sink.Deliver(d) })
	return nil
}

// Invite lets account into a members-only room once and tells its
// sessions. Occupants may invite when the room allows it; moderators
// always.
func (c *Core) Invite(ctx context.Context, s *Session, room, account string) error {
	account = Fold(account)
	if _, _, err := c.store.Account(ctx, account); err != nil {
		return fmt.Errorf("invite %q: %w", account, err)
	}
	r, admin, err := c.actingOn(ctx, s, room)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	role, _ := c.actorStanding(r, s, admin)
	if role == RoleNone {
		return fmt.Errorf("%w: %s", ErrNotInRoom, r.room.Name)
	}
	if r.room.Settings.MembersOnly && role != RoleModerator && !r.room.Settings.AnyoneInvite {
		return fmt.Errorf("%w: only moderators may invite to %s", ErrForbidden, r.room.Name)
	}
	r.invited[account] = true
	d := Delivery{Kind: DelInvite, Room: r.room.Name, Actor: actorName(s, r)}
	if s != nil {
		d.From = s.ref()
	}
	for _, ts := range c.byAcct[account] {
		ts.sink.Deliver(d)
	}
	return nil
}

// DestroyRoom removes a room and its history. Only its owners (and the
// box) may.
func (c *Core) DestroyRoom(ctx context.Context, s *Session, room, reason string) error {
	r, admin, err := c.actingOn(ctx, s, room)
	if err != nil {
		return err
	}
	r.write.Lock()
	defer r.write.Unlock()
	c.mu.Lock()
	_, aff := c.actorStanding(r, s, admin)
	c.mu.Unlock()
	if aff != AffOwner {
		return fmt.Errorf("%w: only owners may destroy %s", ErrForbidden, r.room.Name)
	}
	if err := c.store.DeleteRoom(ctx, r.room.Name); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	d := Delivery{Kind: DelRoomDestroy, Room: r.room.Name, Reason: reason, Actor: actorName(s, r), From: refOf(s)}
	r.each(func(os *Session) {
		os.sink.Deliver(d)
		os.rooms.drop(r.room.Name)
	})
	delete(c.rooms, r.room.Name)
	return nil
}
