package xmpp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"chatbox/services/chat"
)

// XEP-0045 Multi-User Chat at rooms.<domain>: a room is the core's room,
// shared with IRC (general@rooms.<domain> is #general), with one history
// and one member list. This file is joining, leaving, occupant presence,
// groupchat messages, subjects, history on join, self-ping (XEP-0410),
// occupant ids (XEP-0421) and the core's room deliveries; administration
// and configuration are in xep0045_muc_admin.go.
//
// Rooms are non-anonymous (an occupant's account is shown to everyone, as
// IRC shows it in the host mask). An IRC member is an occupant whose nick
// is its account name. Private messages to an occupant go through the core
// as direct messages to its account (stored, cross-door), so they come
// from the sender's real JID. IQs to another occupant are not relayed
// (service-unavailable), except XEP-0410 pings to oneself. XEP-0317 hats
// and voice requests are left out; rooms are created unlocked (instant).

const (
	nsMUC        = "http://jabber.org/protocol/muc"
	nsMUCUser    = nsMUC + "#user"
	nsMUCAdmin   = nsMUC + "#admin"
	nsMUCOwner   = nsMUC + "#owner"
	nsOccupantID = "urn:xmpp:occupant-id:0"
)

// mucState is a session's view of the rooms it is in: its own nick in
// each, nothing of the other occupants, whom the core holds once for
// every session (chat.Core.RoomOccupant, OccupantsOfAccount, SessionNick;
// asked outside Sink.Deliver).
type mucState struct {
	mu      sync.Mutex
	rooms   []*mucRoom         // joined (a few: a slice costs less than a map)
	pending map[string]mucJoin // joins waiting for the core's echo; nil when none
}

// takePending removes and returns room's pending join (st.mu held); the
// map goes when it empties (a map keeps its size: each member would
// hold the one its join made).
func (st *mucState) takePending(room string) (mucJoin, bool) {
	j, ok := st.pending[room]
	delete(st.pending, room)
	if len(st.pending) == 0 {
		st.pending = nil
	}
	return j, ok
}

// mucRoom is one joined room as this session knows it.
type mucRoom struct {
	name    string
	nick    string
	lastSeq int64 // history replayed up to (dedupe)
}

// room returns the joined room named name, or nil (st.mu held).
func (st *mucState) room(name string) *mucRoom {
	for _, r := range st.rooms {
		if r.name == name {
			return r
		}
	}
	return nil
}

// setRoom adds or replaces r (st.mu held).
func (st *mucState) setRoom(r *mucRoom) {
	for i, x := range st.rooms {
		if x.name == r.name {
			st.rooms[i] = r
			return
		}
	}
	st.rooms = append(st.rooms, r)
}

// dropRoom forgets the room named name (st.mu held).
func (st *mucState) dropRoom(name string) {
	st.rooms = slices.DeleteFunc(st.rooms, func(r *mucRoom) bool { return r.name == name })
}

// mucJoin is what a join asked for, kept until the core's echo.
type mucJoin struct {
	created bool
	limit   int // history stanzas, -1: the room's default
	since   time.Time
}

func (ss *session) muc() *mucState {
	return ss.state("muc", func() any {
		return &mucState{}
	}).(*mucState)
}

func (s *Server) mucDomain() string { return "rooms." + s.cfg.Domain }

func (s *Server) roomJID(room string) string { return room + "@" + s.mucDomain() }

func registerMUC(f *features, s *Server) {
	f.domains[s.mucDomain()] = s.mucStanza
	for _, k := range []chat.DeliveryKind{chat.DelJoin, chat.DelLeave, chat.DelQuit, chat.DelKick,
		chat.DelNick, chat.DelTopic, chat.DelRole, chat.DelSettings, chat.DelInvite, chat.DelRoomDestroy} {
		f.deliveries[k] = append(f.deliveries[k], (*session).mucDelivery)
	}
}

// mucStanza handles a stanza a client sent to rooms.<domain>.
func (s *Server) mucStanza(ss *session, el *Element) {
	a, _ := parseJID(el.Get("to"))
	typ := el.Get("type")
	if a.Local == "" {
		if el.Local == "iq" && (typ == "get" || typ == "set") {
			s.mucServiceIQ(ss, el)
		}
		return
	}
	room := chat.Fold(a.Local)
	if err := chat.ValidName(room); err != nil {
		if typ != "error" && typ != "result" {
			ss.replyErr(el, "item-not-found", "no such room: "+err.Error())
		}
		return
	}
	switch el.Local {
	case "presence":
		s.mucPresence(ss, el, room, a.Resource)
	case "message":
		s.mucMessage(ss, el, room, a.Resource)
	case "iq":
		if typ == "get" || typ == "set" {
			s.mucIQ(ss, el, room, a.Resource)
		}
	}
}

// mucError answers a presence to a room with an error presence.
func mucError(ss *session, p *Element, cond, text string) {
	r := stanzaErrorReply(p, "", cond, text)
	r.Set("to", ss.full)
	r.Add(El(nsMUC, "x"))
	ss.send(r)
}

// mucPresence joins, updates, renames or leaves.
func (s *Server) mucPresence(ss *session, p *Element, room, nick string) {
	typ := p.Get("type")
	st := ss.muc()
	st.mu.Lock()
	joined := st.room(room)
	st.mu.Unlock()
	ctx, cancel := ss.ctx()
	defer cancel()
	switch typ {
	case "unavailable":
		if joined == nil {
			return
		}
		if err := s.core.Part(ctx, ss.core, room, p.ChildText(nsClient, "status")); err != nil && !errors.Is(err, chat.ErrNotInRoom) {
			s.log.Warn("leave room", "room", room, "err", err)
		}
		return
	case "":
	default:
		if typ != "error" {
			ss.replyErr(p, "bad-request", "rooms take available and unavailable presence")
		}
		return
	}
	if nick == "" {
		mucError(ss, p, "jid-malformed", "say which nickname to use: room@"+s.mucDomain()+"/nickname")
		return
	}
	if joined != nil {
		if foldNick(nick) != foldNick(joined.nick) {
			if err := s.core.ChangeNick(ctx, ss.core, room, nick); err != nil {
				mucError(ss, p, mucCondition(err), err.Error())
			}
			return
		}
		// A presence update in the room: the core knows one presence per
		// session, which clients mirror into their rooms.
		ss.core.SetPresence(chat.Presence{Show: presenceShow(p), Status: p.ChildText(nsClient, "status")})
		return
	}
	j := mucJoin{limit: -1}
	password := ""
	if x := p.Child(nsMUC, "x"); x != nil {
		password = x.ChildText(nsMUC, "password")
		if h := x.Child(nsMUC, "history"); h != nil {
			if v := h.Get("maxstanzas"); v != "" {
				j.limit, _ = strconv.Atoi(v)
			}
			if v := h.Get("maxchars"); v == "0" {
				j.limit = 0
			}
			if v := h.Get("seconds"); v != "" {
				if n, err := strconv.Atoi(v); err == nil {
					j.since = s.cfg.Now().Add(-time.Duration(n) * time.Second)
				}
			}
			if v := h.Get("since"); v != "" {
				if t, err := time.Parse(time.RFC3339, v); err == nil {
					j.since = t
				}
			}
		}
	}
	if exists, err := s.core.RoomExists(ctx, room); err == nil && !exists {
		j.created = true
	}
	st.mu.Lock()
	if st.pending == nil {
		st.pending = map[string]mucJoin{}
	}
	st.pending[room] = j
	st.mu.Unlock()
	if _, err := s.core.Join(ctx, ss.core, room, nick, password); err != nil {
		st.mu.Lock()
		st.takePending(room)
		st.mu.Unlock()
		mucError(ss, p, mucCondition(err), err.Error())
	}
}

// mucCondition maps the core's room errors to stanza error conditions
// (XEP-0045 §7.2).
func mucCondition(err error) string {
	switch {
	case errors.Is(err, chat.ErrNickInUse), errors.Is(err, chat.ErrNickReserved):
		return "conflict"
	case errors.Is(err, chat.ErrBanned):
		return "forbidden"
	case errors.Is(err, chat.ErrInviteOnly):
		return "registration-required"
	case errors.Is(err, chat.ErrRoomKey):
		return "not-authorized"
	case errors.Is(err, chat.ErrRoomFull):
		return "service-unavailable"
	case errors.Is(err, chat.ErrRoomCreateDenied):
		return "not-allowed"
	case errors.Is(err, chat.ErrNoSuchRoom), errors.Is(err, chat.ErrNoSuchOccupant):
		return "item-not-found"
	case errors.Is(err, chat.ErrTooManyRooms), errors.Is(err, chat.ErrRateLimited):
		return "resource-constraint"
	case errors.Is(err, chat.ErrForbidden), errors.Is(err, chat.ErrModerated):
		return "forbidden"
	case errors.Is(err, chat.ErrNotInRoom):
		return "not-acceptable"
	case errors.Is(err, chat.ErrTooLong), errors.Is(err, chat.ErrInvalidUTF8), errors.Is(err, chat.ErrEmptyMessage):
		return "not-acceptable"
	case errors.Is(err, chat.ErrBadName):
		return "jid-malformed"
	}
	return "internal-server-error"
}

func foldNick(n string) string { return strings.ToLower(n) }

// occupantID is the XEP-0421 id of an account in a room: stable, and
// telling nothing beyond what the room shows.
func (s *Server) occupantID(room, account string) string {
	sum := sha256.Sum256([]byte(s.cfg.Domain + "\x00" + room + "\x00" + account))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// occupantPresence is an occupant's presence in a room, sent to to.
func (s *Server) occupantPresence(room string, o chat.Occupant, to string, codes ...string) *Element {
	return s.occupantPresenceAs(room, o, s.core.AccountPresence(o.Account), to, codes...)
}

// occupantPresenceAs is occupantPresence with the account's presence pr.
func (s *Server) occupantPresenceAs(room string, o chat.Occupant, pr chat.Presence, to string, codes ...string) *Element {
	p := El(nsClient, "presence", "from", s.roomJID(room)+"/"+o.Nick, "to", to)
	if pr.Show != chat.ShowAvailable && pr.Show != chat.ShowOffline && pr.Show != "" {
		p.Add(El(nsClient, "show").Add(string(pr.Show)))
		if pr.Status != "" {
			p.Add(El(nsClient, "status").Add(pr.Status))
		}
	}
	x := El(nsMUCUser, "x")
	item := El(nsMUCUser, "item", "affiliation", string(orNone(o.Affiliation)), "role", string(orRole(o.Role)))
	if !chat.IsGuest(o.Account) {
		item.Set("jid", s.accountJID(o.Account))
	}
	x.Add(item)
	for _, c := range codes {
		x.Add(El(nsMUCUser, "status", "code", c))
	}
	p.Add(x, El(nsOccupantID, "occupant-id", "id", s.occupantID(room, o.Account)))
	return p
}

func orNone(a chat.Affiliation) chat.Affiliation {
	if a == "" {
		return chat.AffNone
	}
	return a
}

func orRole(r chat.Role) chat.Role {
	if r == "" {
		return chat.RoleParticipant
	}
	return r
}

// mucOccupantMoved sends ss another occupant's arrival in a room ss is
// in, or departure, or an IRC member's quit (lazy: as sendPrepared).
func (ss *session) mucOccupantMoved(d *chat.Delivery, lazy bool) {
	if d.Kind == chat.DelQuit {
		ss.sendOccupantQuit(d, lazy)
		return
	}
	st := ss.muc()
	st.mu.Lock()
	r := st.room(d.Room)
	st.mu.Unlock()
	if r == nil {
		return
	}
	if d.Kind == chat.DelLeave {
		ss.sendOccupantLeft(d, lazy)
		return
	}
	ss.sendOccupantJoined(d, lazy)
}

// sendOccupantQuit sends ss an IRC member's quit in each of d's rooms
// ss is in. The core names the quitter's nick (an XMPP session leaves
// each room before it closes, so a quitter here is an IRC one, whose
// nick is one in every room); its entry in the rooms is gone: the
// affiliation is the room's. The presence is the same for every
// receiver: rendered once per room.
func (ss *session) sendOccupantQuit(d *chat.Delivery, lazy bool) {
	s := ss.srv
	st := ss.muc()
	for _, room := range d.Rooms {
		st.mu.Lock()
		in := st.room(room) != nil
		st.mu.Unlock()
		if !in {
			continue
		}
		p := rendered(d.Shared, "xmpp-quit:"+room, func() *Element {
			o := chat.Occupant{Nick: d.Occupant.Nick, Account: d.Occupant.Account}
			o.Affiliation, o.Role = s.core.AffiliationIn(room, o.Account)
			p := s.occupantPresence(room, o, ss.full)
			p.Set("type", "unavailable")
			if d.Reason != "" {
				p.Add(El(nsClient, "status").Add(d.Reason))
			}
			return p
		})
		ss.sendPrepared(lazy, p)
	}
}

func (ss *session) sendOccupantJoined(d *chat.Delivery, lazy bool) {
	// The same presence for every member: rendered once per join.
	p := rendered(d.Shared, "xmpp-join", func() *Element { return ss.srv.occupantPresence(d.Room, d.Occupant, ss.full) })
	ss.sendPrepared(lazy, p)
}

// leavePresence is the unavailable presence of d's occupant, who left.
func (ss *session) leavePresence(d *chat.Delivery) *Element {
	p := ss.srv.occupantPresence(d.Room, d.Occupant, ss.full)
	p.Set("type", "unavailable")
	if d.Reason != "" {
		p.Add(El(nsClient, "status").Add(d.Reason))
	}
	return p
}

func (ss *session) sendOccupantLeft(d *chat.Delivery, lazy bool) {
	// The same presence for every other member: rendered once per leave
	// (when a thousand clients drop at once, a thousand renders, not a
	// million).
	p := rendered(d.Shared, "xmpp-leave", func() *Element { return ss.leavePresence(d) })
	ss.sendPrepared(lazy, p)
}

// mucDelivery turns the core's room events into MUC stanzas.
func (ss *session) mucDelivery(d *chat.Delivery) {
	s := ss.srv
	st := ss.muc()
	st.mu.Lock()
	r := st.room(d.Room)
	st.mu.Unlock()
	switch d.Kind {
	case chat.DelJoin:
		if d.Echo {
			ss.mucJoined(d)
			return
		}
		if r != nil {
			ss.sendOccupantJoined(d, true)
		}
	case chat.DelLeave:
		if r == nil {
			return
		}
		if !d.Echo {
			ss.sendOccupantLeft(d, true) // a lazy round's (classify)
			return
		}
		p := ss.leavePresence(d)
		st.mu.Lock()
		st.dropRoom(d.Room)
		st.mu.Unlock()
		mucStatus(p, "110")
		ss.send(p)
	case chat.DelKick:
		if r == nil {
			return
		}
		o := d.Occupant
		o.Role = chat.RoleNone
		if d.Banned {
			o.Affiliation = chat.AffOutcast
		}
		p := s.occupantPresence(d.Room, o, ss.full)
		p.Set("type", "unavailable")
		item := p.Child(nsMUCUser, "x").Child(nsMUCUser, "item")
		if d.Actor != "" {
			item.Add(El(nsMUCUser, "actor", "nick", d.Actor))
		}
		if d.Reason != "" {
			item.Add(El(nsMUCUser, "reason").Add(d.Reason))
		}
		code := "307"
		if d.Banned {
			code = "301"
		}
		mucStatus(p, code)
		st.mu.Lock()
		if foldNick(d.Occupant.Nick) == foldNick(r.nick) && d.Occupant.Account == ss.account {
			st.dropRoom(d.Room)
			mucStatus(p, "110")
		}
		st.mu.Unlock()
		ss.send(p)
	case chat.DelNick:
		if r == nil {
			return
		}
		old := d.Occupant
		old.Nick = d.OldNick
		p := s.occupantPresence(d.Room, old, ss.full)
		p.Set("type", "unavailable")
		p.Child(nsMUCUser, "x").Child(nsMUCUser, "item").Set("nick", d.Occupant.Nick)
		mucStatus(p, "303")
		np := s.occupantPresence(d.Room, d.Occupant, ss.full)
		st.mu.Lock()
		if foldNick(r.nick) == foldNick(d.OldNick) && d.Occupant.Account == ss.account {
			r.nick = d.Occupant.Nick
			mucStatus(p, "110")
			mucStatus(np, "110")
		}
		st.mu.Unlock()
		ss.send(p)
		ss.send(np)
	case chat.DelTopic:
		if r == nil {
			return
		}
		ss.send(s.subjectMessage(d.Room, d.Topic, d.Actor, ss.full))
	case chat.DelRole:
		if r == nil {
			return
		}
		st.mu.Lock()
		me := foldNick(r.nick) == foldNick(d.Occupant.Nick) && d.Occupant.Account == ss.account
		st.mu.Unlock()
		p := s.occupantPresence(d.Room, d.Occupant, ss.full)
		if d.Actor != "" || d.Reason != "" {
			item := p.Child(nsMUCUser, "x").Child(nsMUCUser, "item")
			if d.Actor != "" {
				item.Add(El(nsMUCUser, "actor", "nick", d.Actor))
			}
			if d.Reason != "" {
				item.Add(El(nsMUCUser, "reason").Add(d.Reason))
			}
		}
		if me {
			mucStatus(p, "110")
		}
		ss.send(p)
	case chat.DelSettings:
		if r == nil {
			return
		}
		ss.send(El(nsClient, "message", "from", s.roomJID(d.Room), "to", ss.full, "type", "groupchat", "id", randomID()).Add(
			El(nsMUCUser, "x").Add(El(nsMUCUser, "status", "code", "104"))))
	case chat.DelQuit:
		ss.sendOccupantQuit(d, true) // a lazy round's (classify)
	case chat.DelRoomDestroy:
		if r == nil {
			return
		}
		st.mu.Lock()
		st.dropRoom(d.Room)
		nick := r.nick
		st.mu.Unlock()
		p := El(nsClient, "presence", "from", s.roomJID(d.Room)+"/"+nick, "to", ss.full, "type", "unavailable")
		destroy := El(nsMUCUser, "destroy")
		if d.Reason != "" {
			destroy.Add(El(nsMUCUser, "reason").Add(d.Reason))
		}
		p.Add(El(nsMUCUser, "x").Add(
			El(nsMUCUser, "item", "affiliation", "none", "role", "none"), destroy,
			El(nsMUCUser, "status", "code", "110")))
		ss.send(p)
	case chat.DelInvite:
		ss.send(s.inviteMessage(*d, ss.full))
	}
}

func mucStatus(p *Element, code string) {
	p.Child(nsMUCUser, "x").Add(El(nsMUCUser, "status", "code", code))
}

// joinScratch is what mucJoined needs for a moment per joiner: a
// thousand joins into one room made half a million entries of each.
type joinScratch struct {
	pres  []chat.Presence
	burst []*prepared
}

var joinScratchPool = sync.Pool{New: func() any { return new(joinScratch) }}

// mucJoined sends the joiner the room (XEP-0045 §7.2.3): the others'
// presence, its own with status codes, the history, then the subject.
func (ss *session) mucJoined(d *chat.Delivery) {
	s := ss.srv
	st := ss.muc()
	st.mu.Lock()
	j, ok := st.takePending(d.Room)
	if !ok {
		j = mucJoin{limit: -1}
	}
	r := &mucRoom{name: d.Room, nick: d.Occupant.Nick}
	st.setRoom(r)
	st.mu.Unlock()
	// The others' presence: one look-up of their accounts' presence, and
	// each stanza rendered once for every joiner (roomPresence). The
	// slices are lent: nothing keeps them once the burst is queued.
	sc := joinScratchPool.Get().(*joinScratch)
	if n := len(d.Occupants); cap(sc.pres) < n {
		sc.pres, sc.burst = make([]chat.Presence, 0, roomy(n)), make([]*prepared, 0, roomy(n))
	}
	sc.pres = s.core.AccountPresences(sc.pres[:0], d.Occupants)
	burst := sc.burst[:0]
	for i, o := range d.Occupants {
		if o.Nick == d.Occupant.Nick { // the joiner: the core's nick, as it is in the list
			continue
		}
		burst = append(burst, s.roomPresence(d.Room, o, sc.pres[i]))
	}
	ss.sendBurst(burst...)
	clear(sc.pres)
	clear(burst)
	sc.burst = burst[:0]
	joinScratchPool.Put(sc)
	codes := []string{"100", "110", "170"}
	if j.created {
		codes = append(codes, "201")
	}
	ss.send(s.occupantPresence(d.Room, d.Occupant, ss.full, codes...))
	// History from the shared store: lines written on IRC included.
	limit := j.limit
	if limit < 0 {
		limit = d.HistoryLimit // the room's, else rooms.default_history
	}
	if limit > 100 {
		limit = 100
	}
	if limit > 0 {
		ctx, cancel := ss.ctx()
		msgs, err := s.core.History(ctx, ss.core, chat.HistoryQuery{Room: d.Room, Limit: limit, Last: true, Start: j.since})
		cancel()
		if err != nil {
			s.log.Warn("room history on join", "room", d.Room, "err", err)
		}
		for i := range msgs {
			m := &msgs[i]
			el := ss.roomMessage(m)
			el.Add(delayEl(s.roomJID(d.Room), m.Time))
			ss.send(el)
			st.mu.Lock()
			if m.Seq > r.lastSeq {
				r.lastSeq = m.Seq
			}
			st.mu.Unlock()
		}
	}
	topic, by := "", ""
	if d.RoomInfo != nil {
		topic, by = d.RoomInfo.Topic, d.RoomInfo.TopicBy
	}
	ss.send(s.subjectMessage(d.Room, topic, by, ss.full))
	if d.Welcome != "" {
		ss.send(s.welcomeMessage(d.Room, d.Welcome, ss.full))
	}
}

// subjectMessage carries a room's subject (always sent on join, empty if
// none, XEP-0045 §7.2.15).
func (s *Server) subjectMessage(room, topic, by, to string) *Element {
	from := s.roomJID(room)
	if by != "" {
		from += "/" + by
	}
	return El(nsClient, "message", "from", from, "to", to, "type", "groupchat", "id", randomID()).Add(
		El(nsClient, "subject").Add(topic))
}

// roomMessage is the stanza of a stored room message.
func (ss *session) roomMessage(m *chat.Message) *Element {
	s := ss.srv
	nick := m.FromNick
	if nick == "" {
		nick = m.From
	}
	el := storedStanza(m, decodeExtra(m.Extra), s.roomJID(m.Room)+"/"+nick, ss.full, "groupchat")
	el.Add(El("urn:xmpp:sid:0", "stanza-id", "id", m.ID, "by", s.roomJID(m.Room)),
		El(nsOccupantID, "occupant-id", "id", s.occupantID(m.Room, m.From)))
	return el
}

// mucRoomMessage delivers a room message the core routed (Echo too: MUC
// reflects a message to its sender).
func (ss *session) mucRoomMessage(d *chat.Delivery) {
	if p := ss.roomMessagePrepared(d); p != nil {
		ss.sendBurst(p)
	}
}

// roomMessagePrepared is the stanza of the room message d for ss, nil
// when ss is not in the room or has had the message (its join's history).
func (ss *session) roomMessagePrepared(d *chat.Delivery) *prepared {
	st := ss.muc()
	st.mu.Lock()
	r := st.room(d.Message.Room)
	dup := r != nil && d.Message.Seq <= r.lastSeq
	st.mu.Unlock()
	if r == nil || dup {
		return nil
	}
	// One rendering for every member (the echo to the sender is the
	// same stanza).
	return rendered(d.Shared, "xmpp-message", func() *Element {
		return ss.roomMessage(d.Message)
	})
}

// mucPresenceChange shows an occupant's new presence in the rooms this
// session shares with it.
func (ss *session) mucPresenceChange(d chat.Delivery) {
	st := ss.muc()
	st.mu.Lock()
	if len(st.rooms) == 0 {
		st.mu.Unlock()
		return
	}
	mine := make(map[string]bool, len(st.rooms))
	nicks := make(map[string]string, len(st.rooms))
	for _, r := range st.rooms {
		room := r.name
		mine[room] = true
		nicks[room] = r.nick
	}
	st.mu.Unlock()
	for _, x := range ss.srv.core.OccupantsOfAccount(d.From.Account, mine) {
		if x.Occupant.Account == ss.account && foldNick(x.Occupant.Nick) == foldNick(nicks[x.Room]) {
			continue
		}
		ss.send(ss.srv.occupantPresence(x.Room, x.Occupant, ss.full))
	}
}

// mucSignal shows a typing notification in a room as a chat state.
func (ss *session) mucSignal(d chat.Delivery) {
	st := ss.muc()
	st.mu.Lock()
	r := st.room(d.Room)
	st.mu.Unlock()
	state := map[string]string{"active": "composing", "paused": "paused", "done": "active"}[d.Tags["typing"]]
	if r == nil || state == "" || d.From.ID == ss.core.ID() {
		return
	}
	nick, ok := ss.srv.core.SessionNick(d.Room, d.From.ID)
	if !ok {
		return
	}
	ss.send(El(nsClient, "message", "from", ss.srv.roomJID(d.Room)+"/"+nick, "to", ss.full, "type", "groupchat").Add(
		El(nsChatStates, state)))
}

// mucMessage handles a message to a room or to an occupant.
func (s *Server) mucMessage(ss *session, msg *Element, room, nick string) {
	typ := msg.Get("type")
	if typ == "error" {
		return
	}
	body, hasBody := bodyOf(msg)
	if nick != "" || typ != "groupchat" || !hasBody || strings.TrimSpace(body) == "" ||
		msg.Child(nsClient, "subject") != nil || msg.Child(nsMUCUser, "x") != nil {
		ss.sends.Wait() // only a plain room message is sent without waiting (below)
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	if nick != "" {
		s.mucPrivate(ctx, ss, msg, room, nick)
		return
	}
	if x := msg.Child(nsMUCUser, "x"); x != nil && x.Child(nsMUCUser, "invite") != nil {
		s.mucInvite(ctx, ss, msg, room, x)
		return
	}
	if typ != "groupchat" {
		ss.replyErr(msg, "bad-request", "messages to a room are of type groupchat")
		return
	}
	if subj := msg.Child(nsClient, "subject"); subj != nil && !hasBody {
		if err := s.core.SetTopic(ctx, ss.core, room, subj.Text()); err != nil {
			ss.replyErr(msg, mucCondition(err), err.Error())
		}
		return
	}
	if !hasBody || strings.TrimSpace(body) == "" {
		// Chat states and markers are relayed to the room, not stored.
		if cs := msg.ChildrenNS(nsChatStates); len(cs) > 0 {
			if tag := chatStateTags[cs[0].Local]; tag != "" {
				s.core.Signal(ctx, ss.core, room, "", map[string]string{"typing": tag})
			}
		}
		return
	}
	x := storedExtra{ID: msg.Get("id"), FromRes: ss.resource, Lang: msg.Lang(), Type: "groupchat"}
	x.X = extensionsOf(msg)
	kind := chat.KindNormal
	if b, me := isMe(body); me {
		body, kind = b, chat.KindAction
	}
	// Stored without keeping the reader (chat.Core.SendRoomAsync): the
	// client's next stanzas are read meanwhile, and wait for it unless
	// they are room messages too (handle).
	ss.sends.Add()
	err := s.core.SendRoomAsync(context.Background(), ss.core, room, kind, body, encodeExtra(x), func(_ chat.Message, err error) {
		defer ss.sends.Done()
		if err != nil {
			ss.replyErr(msg, mucCondition(err), err.Error())
		}
	})
	if err != nil {
		ss.sends.Done()
		ss.replyErr(msg, mucCondition(err), err.Error())
	}
}

// mucPrivate sends a private message to an occupant: a direct message to
// the occupant's account (guests cannot receive them).
func (s *Server) mucPrivate(ctx context.Context, ss *session, msg *Element, room, nick string) {
	o, err := s.core.RoomOccupant(ctx, room, nick)
	switch {
	case errors.Is(err, chat.ErrNoSuchOccupant):
		ss.replyErr(msg, "item-not-found", "nobody is called "+nick+" in that room")
		return
	case err != nil:
		ss.replyErr(msg, "item-not-found", "no such room")
		return
	}
	if chat.IsGuest(o.Account) {
		ss.replyErr(msg, "not-acceptable", nick+" is a guest and cannot receive private messages")
		return
	}
	body, ok := bodyOf(msg)
	if !ok || strings.TrimSpace(body) == "" {
		return
	}
	kind := chat.KindNormal
	if b, me := isMe(body); me {
		body, kind = b, chat.KindAction
	}
	send := s.core.SendDirect
	if chat.IsRemote(o.Account) {
		send = s.core.SendRemote // a remote occupant: to its real JID (s2s_direct.go)
	}
	if _, err := send(ctx, ss.core, o.Account, kind, body, encodeExtra(storedExtra{ID: msg.Get("id"), FromRes: ss.resource})); err != nil {
		ss.replyErr(msg, mucCondition(err), err.Error())
	}
}

// inviteMessage is a mediated invitation (XEP-0045 §7.8.2), with the
// direct-invitation form (XEP-0249) for clients that prefer it.
func (s *Server) inviteMessage(d chat.Delivery, to string) *Element {
	from := d.Actor + "@" + s.cfg.Domain
	inv := El(nsMUCUser, "invite", "from", from)
	if d.Reason != "" {
		inv.Add(El(nsMUCUser, "reason").Add(d.Reason))
	}
	return El(nsClient, "message", "from", s.roomJID(d.Room), "to", to, "id", randomID()).Add(
		El(nsClient, "body").Add(d.Actor+" invites you to the room "+s.roomJID(d.Room)),
		El(nsMUCUser, "x").Add(inv),
		El("jabber:x:conference", "x", "jid", s.roomJID(d.Room), "reason", d.Reason))
}

// mucInvite invites accounts named in a mediated invitation.
func (s *Server) mucInvite(ctx context.Context, ss *session, msg *Element, room string, x *Element) {
	for _, inv := range x.Kids() {
		if !inv.Is(nsMUCUser, "invite") {
			continue
		}
		a, err := parseJID(inv.Get("to"))
		if err != nil || a.Domain != s.cfg.Domain || a.Local == "" {
			ss.replyErr(msg, "jid-malformed", "invite accounts of this server: name@"+s.cfg.Domain)
			return
		}
		if err := s.core.Invite(ctx, ss.core, room, a.Local); err != nil {
			ss.replyErr(msg, mucCondition(err), err.Error())
			return
		}
	}
}

// mucIQ answers IQs to a room or an occupant.
func (s *Server) mucIQ(ss *session, iq *Element, room, nick string) {
	q := iq.First()
	if nick != "" {
		// XEP-0410: a ping to one's own occupant JID says whether one is
		// still joined.
		st := ss.muc()
		st.mu.Lock()
		r := st.room(room)
		st.mu.Unlock()
		switch {
		case q.Is(nsPing, "ping") && r != nil && foldNick(r.nick) == foldNick(nick):
			ss.result(iq, nil)
		case r == nil:
			ss.replyErr(iq, "not-acceptable", "you are not in this room")
		default:
			ss.replyErr(iq, "service-unavailable", "queries to occupants are not relayed")
		}
		return
	}
	switch q.Space {
	case nsDiscoInfo:
		s.roomDiscoInfo(ss, iq, room)
	case nsDiscoItems:
		ss.result(iq, El(nsDiscoItems, "query"))
	case nsMUCAdmin:
		s.mucAdmin(ss, iq, room)
	case nsMUCOwner:
		s.mucOwner(ss, iq, room)
	default:
		if h := s.features.roomIQ[q.Space]; h != nil {
			h(ss, iq, room)
			return
		}
		ss.replyErr(iq, "service-unavailable", "")
	}
}

// encodeExtra serializes what a stored message keeps of its stanza.
func encodeExtra(x storedExtra) string {
	b, _ := json.Marshal(x)
	return string(b)
}

// mucServiceIQ answers disco on rooms.<domain> itself: the service
// (XEP-0045 §6.1) and its public rooms (§6.3).
func (s *Server) mucServiceIQ(ss *session, iq *Element) {
	q := iq.First()
	switch {
	case q.Is(nsDiscoInfo, "query") && iq.Get("type") == "get":
		ss.result(iq, discoInfoElement(q.Get("node"),
			[]discoIdentity{{Category: "conference", Type: "text", Name: "Rooms"}},
			sortedSet([]string{nsDiscoInfo, nsDiscoItems, nsMUC, "urn:xmpp:mam:2", "urn:xmpp:sid:0", nsOccupantID, "http://jabber.org/protocol/muc#self-ping-optimization"})))
	case q.Is(nsDiscoItems, "query") && iq.Get("type") == "get":
		ctx, cancel := ss.ctx()
		defer cancel()
		rooms, err := s.core.Rooms(ctx)
		if err != nil {
			ss.replyErr(iq, "internal-server-error", "")
			return
		}
		res := El(nsDiscoItems, "query")
		for _, r := range rooms {
			if r.Settings.Hidden {
				continue
			}
			name := r.Name
			if r.Settings.Description != "" {
				name = r.Settings.Description
			}
			res.Add(El(nsDiscoItems, "item", "jid", s.roomJID(r.Name), "name", name))
		}
		ss.result(iq, res)
	case q.Is(nsPing, "ping"):
		ss.result(iq, nil)
	default:
		ss.replyErr(iq, "service-unavailable", "")
	}
}

// roomDiscoInfo describes a room (XEP-0045 §6.4) with its muc#roominfo
// form.
//
// The reserved-nickname query (§7.12, node x-roomuser-item) gets an
// empty answer: nicknames are not reserved per room here. (Echoing the
// room's identity there made Converse.js join under the room's name.)
func (s *Server) roomDiscoInfo(ss *session, iq *Element, room string) {
	if iq.First().Get("node") == "x-roomuser-item" {
		ss.result(iq, El(nsDiscoInfo, "query", "node", "x-roomuser-item"))
		return
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	r, occ, err := s.core.RoomInfo(ctx, room)
	if err != nil {
		ss.replyErr(iq, "item-not-found", "no room "+room+" here")
		return
	}
	st := r.Settings
	pick := func(b bool, yes, no string) string {
		if b {
			return yes
		}
		return no
	}
	feats := []string{nsMUC, nsDiscoInfo, "urn:xmpp:mam:2", "urn:xmpp:sid:0", nsOccupantID, "muc_nonanonymous",
		pick(st.Persistent, "muc_persistent", "muc_temporary"),
		pick(st.MembersOnly, "muc_membersonly", "muc_open"),
		pick(st.Moderated, "muc_moderated", "muc_unmoderated"),
		pick(st.Password != "", "muc_passwordprotected", "muc_unsecured"),
		pick(st.Hidden, "muc_hidden", "muc_public")}
	name := r.Name
	q := discoInfoElement(iq.First().Get("node"), []discoIdentity{{Category: "conference", Type: "text", Name: name}}, sortedSet(feats))
	q.Add(xdataForm("result", "http://jabber.org/protocol/muc#roominfo", "",
		xdataField("muc#roominfo_description", "text-single", "Description", st.Description),
		xdataField("muc#roominfo_subject", "text-single", "Subject", r.Topic),
		xdataField("muc#roominfo_occupants", "text-single", "Occupants", strconv.Itoa(len(occ))),
		xdataField("muc#roominfo_changesubject", "boolean", "Occupants may change the subject", boolValue(!st.TopicLocked)),
		xdataField("muc#roomconfig_allowinvites", "boolean", "Occupants may invite", boolValue(st.AnyoneInvite))))
	ss.result(iq, q)
}

// cachedPresence is an occupant's presence stanza, rendered once for
// every joiner shown it (a join shows the joiner every occupant: without
// it, N joins render N² stanzas), kept in the occupant's chat.Slot. It is
// good while the occupant's nick, account, role, affiliation and
// presence are those it was made from.
type cachedPresence struct {
	srv           *Server
	room          string
	nick, account string
	role          chat.Role
	aff           chat.Affiliation
	pr            chat.Presence
	p             *prepared
}

// element makes the presence again (prepared.mk): the entry keeps the
// bytes only, and what makes the stanza, not o's sessions.
func (e *cachedPresence) element() *Element {
	oc := chat.Occupant{Nick: e.nick, Account: e.account, Role: e.role, Affiliation: e.aff}
	return e.srv.occupantPresenceAs(e.room, oc, e.pr, toPlaceholder)
}

// roomPresence returns o's presence in room, from o's slot while good.
func (s *Server) roomPresence(room string, o chat.Occupant, pr chat.Presence) *prepared {
	if o.Slot != nil {
		if e, ok := o.Slot.Load().(*cachedPresence); ok && e.room == room && e.nick == o.Nick &&
			e.account == o.Account && e.role == o.Role && e.aff == o.Affiliation && e.pr == pr {
			return e.p
		}
	}
	e := &cachedPresence{srv: s, room: room, nick: o.Nick, account: o.Account, role: o.Role, aff: o.Affiliation, pr: pr}
	e.p = prepare(e.element())
	if e.p.prefix != nil {
		// Kept while the occupant lives: the bytes only.
		e.p.tmpl, e.p.mk = nil, e.element
	}
	if o.Slot != nil {
		o.Slot.Store(e)
	}
	return e.p
}
