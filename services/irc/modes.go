package irc

// MODE (user and channel modes), KICK and INVITE, as Modern IRC
// (https://modern.ircdocs.horse) describes them, over the core's rooms,
// with IRCv3 invite-notify.
//
// User modes: +i invisible, +w wallops, +B bot (ISUPPORT BOT=B); +o is
// given by the server to the box's admin accounts only (OPER restores it
// after a -o), +Z (TLS) is shown, never set.
//
// Channel modes (CHANMODES=beI,k,l,imnpst PREFIX=(qaov)~&@+ MODES=4) map
// to the core: i m n p s t k l are room settings, o v roles, q a
// affiliations, b e I the room's mask lists. What a change does reaches
// every member, this client too, as the core's deliveries (deliver.go);
// this file only answers errors, and echoes a change to an actor who is
// not in the room (a box admin), who gets no delivery.
//
// Left out: voice for channel operators (the core has no voiced
// moderator: +v on an operator does nothing), -v in a channel that is not
// moderated (the core keeps voice until the room is moderated; the client
// is told), INVITE's list of pending invitations (the core does not
// expose them: INVITE with no parameter answers the end of an empty list),
// and extended bans.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ergochat/irc-go/ircmsg"

	"chatbox/services/chat"
)

// Numerics used here that numerics.go does not list.
const (
	rplEndOfInvites     = "337" // Modern IRC RPL_ENDOFINVITELIST (INVITE with no parameter)
	errTooManyTargets   = "407"
	errBanListFull      = "478"
	errInvalidModeParam = "696"
)

const (
	maxModeArgs    = 4      // ISUPPORT MODES
	maxListEntries = 100    // ISUPPORT MAXLIST=beI:100
	kickLen        = 390    // ISUPPORT KICKLEN
	maxKeyLen      = 32     // room password (+k)
	maxUserLimit   = 100000 // +l
)

var modeCommands = map[string]command{
	// MODE on oneself works before login: clients send "MODE nick +i"
	// right after the welcome.
	"MODE":   {fn: handleMode, minParams: 1, unidentified: true},
	"KICK":   {fn: handleKick, minParams: 2},
	"INVITE": {fn: handleInvite},
}

// --- parsing ---

// modeChange is one mode change of a MODE line.
type modeChange struct {
	add  bool
	mode byte
	arg  string
}

// parsedModes is a MODE line's channel modes, parsed (Modern IRC: mixed
// + and - in one string, arguments taken in order by the modes that
// need one).
type parsedModes struct {
	changes []modeChange // to apply, in order
	lists   []byte       // list modes without an argument: list queries, each once
	unknown []rune       // unknown mode characters, each once
	missing []modeChange // modes that need an argument the line lacks
	excess  []modeChange // modes with an argument beyond the first maxModeArgs: not applied
}

// Channel mode classes (CHANMODES=beI,k,l,imnpst and PREFIX=(qaov)).
const (
	listModes   = "beI"
	memberFlags = "qaov"
	flagModes   = "imnpst"
)

// parseChannelModes parses a channel modestring and its arguments. A list
// mode without an argument is a query; -k may come with or without its
// argument; -l takes none.
func parseChannelModes(modestr string, args []string) parsedModes {
	var p parsedModes
	add := true
	next, withArg := 0, 0
	take := func() (string, bool) {
		if next < len(args) {
			next++
			return args[next-1], true
		}
		return "", false
	}
	record := func(m modeChange) {
		if withArg >= maxModeArgs {
			p.excess = append(p.excess, m)
			return
		}
		withArg++
		p.changes = append(p.changes, m)
	}
	for _, r := range modestr {
		if r == '+' || r == '-' {
			add = r == '+'
			continue
		}
		if r >= 0x80 {
			p.addUnknown(r)
			continue
		}
		f := byte(r)
		switch {
		case strings.IndexByte(listModes, f) >= 0:
			if arg, ok := take(); ok {
				record(modeChange{add, f, arg})
			} else if strings.IndexByte(string(p.lists), f) < 0 {
				p.lists = append(p.lists, f)
			}
		case strings.IndexByte(memberFlags, f) >= 0:
			if arg, ok := take(); ok {
				record(modeChange{add, f, arg})
			} else {
				p.missing = append(p.missing, modeChange{add: add, mode: f})
			}
		case f == 'k':
			arg, ok := take()
			switch {
			case ok:
				record(modeChange{add, f, arg})
			case add:
				p.missing = append(p.missing, modeChange{add: add, mode: f})
			default:
				p.changes = append(p.changes, modeChange{add: false, mode: f})
			}
		case f == 'l':
			if !add {
				p.changes = append(p.changes, modeChange{add: false, mode: f})
			} else if arg, ok := take(); ok {
				record(modeChange{add, f, arg})
			} else {
				p.missing = append(p.missing, modeChange{add: add, mode: f})
			}
		case strings.IndexByte(flagModes, f) >= 0:
			p.changes = append(p.changes, modeChange{add: add, mode: f})
		default:
			p.addUnknown(r)
		}
	}
	return p
}

func (p *parsedModes) addUnknown(r rune) {
	for _, u := range p.unknown {
		if u == r {
			return
		}
	}
	p.unknown = append(p.unknown, r)
}

// renderModes writes changes as MODE parameters: "+ov-b", then the
// arguments.
func renderModes(changes []modeChange) []string {
	var b strings.Builder
	var args []string
	sign := byte(0)
	for _, m := range changes {
		s := byte('-')
		if m.add {
			s = '+'
		}
		if s != sign {
			b.WriteByte(s)
			sign = s
		}
		b.WriteByte(m.mode)
		if m.arg != "" {
			args = append(args, m.arg)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	return append([]string{b.String()}, args...)
}

// signed renders one change's mode with its sign ("+k").
func (m modeChange) signed() string {
	if m.add {
		return "+" + string(m.mode)
	}
	return "-" + string(m.mode)
}

// canonMask completes a mask to nick!user@host (bans, WHO): a bare nick
// becomes nick!*@*, user@host becomes *!user@host, nick!user is
// nick!user@*.
func canonMask(m string) string {
	nick, rest, hasBang := strings.Cut(m, "!")
	if !hasBang {
		if u, h, hasAt := strings.Cut(m, "@"); hasAt {
			return "*!" + maskPart(u) + "@" + maskPart(h)
		}
		return maskPart(m) + "!*@*"
	}
	user, host, hasAt := strings.Cut(rest, "@")
	if !hasAt {
		host = "*"
	}
	return maskPart(nick) + "!" + maskPart(user) + "@" + maskPart(host)
}

func maskPart(s string) string {
	if s == "" {
		return "*"
	}
	return s
}

// validKey accepts a room key IRC can carry: 1 to maxKeyLen bytes, no
// spaces, commas (JOIN separates keys with them) or control characters,
// not starting with ':'.
func validKey(k string) bool {
	if k == "" || len(k) > maxKeyLen || k[0] == ':' {
		return false
	}
	for _, r := range k {
		if r <= ' ' || r == ',' || r == 0x7f {
			return false
		}
	}
	return true
}

// --- MODE ---

func handleMode(r *request) {
	target := r.msg.Params[0]
	if strings.HasPrefix(target, "#") {
		if r.c.session() == nil {
			r.notice("You must log in first: use SASL, PASS account:password, or /msg NickServ IDENTIFY password")
			return
		}
		channelMode(r, target)
		return
	}
	userMode(r, target)
}

// userMode queries or changes the client's own user modes.
func userMode(r *request, target string) {
	c := r.c
	c.mu.Lock()
	me := c.nick
	c.mu.Unlock()
	if fold(target) != fold(me) {
		if len(c.srv.nickHolders(target)) == 0 {
			if _, err := c.srv.core.Account(context.Background(), target); err != nil {
				r.numeric(ERR_NOSUCHNICK, target, "No such nick/channel")
				return
			}
		}
		if len(r.msg.Params) < 2 {
			r.numeric(ERR_USERSDONTMATCH, "Can't view modes for other users")
		} else {
			r.numeric(ERR_USERSDONTMATCH, "Can't change mode for other users")
		}
		return
	}
	if len(r.msg.Params) < 2 {
		c.mu.Lock()
		modes := c.umodeStringLocked()
		c.mu.Unlock()
		r.numeric(RPL_UMODEIS, modes)
		return
	}
	changes, unknown := parseUserModes(r.msg.Params[1])
	var applied []modeChange
	c.mu.Lock()
	for _, m := range changes {
		switch {
		case m.mode == 'o' && m.add:
			continue // only the server gives +o (OPER restores it for admins)
		case m.mode == 'Z':
			continue // set by the server on TLS connections
		}
		if c.modes[m.mode] == m.add {
			continue
		}
		if m.add {
			c.modes[m.mode] = true
		} else {
			delete(c.modes, m.mode)
		}
		applied = append(applied, m)
	}
	c.mu.Unlock()
	if unknown {
		r.numeric(ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag (user modes here: +i invisible, +w wallops, +B bot; -o)")
	}
	if len(applied) > 0 {
		r.send(makeMsg(c.prefix(), "MODE", append([]string{me}, renderModes(applied)...)...))
	}
}

// parseUserModes parses a user modestring: the known modes (i w B o Z)
// as changes, and whether it held any other.
func parseUserModes(modestr string) (changes []modeChange, unknown bool) {
	add := true
	for _, r := range modestr {
		switch {
		case r == '+' || r == '-':
			add = r == '+'
		case r < 0x80 && strings.IndexByte("iwBoZ", byte(r)) >= 0:
			changes = append(changes, modeChange{add: add, mode: byte(r)})
		default:
			unknown = true
		}
	}
	return changes, unknown
}

// chanCtx is what handling a channel MODE needs to know of the room and
// of the client.
type chanCtx struct {
	r       *request
	sess    *chat.Session
	room    string
	channel string
	info    chat.Room
	occ     []chat.Occupant
	in      bool // the client's session is in the room
	op      bool // the client may change the room (moderator, owner, admin or box admin)
}

// occupantsOf returns the room's occupants of account (an account may be
// present under several nicks: an XMPP nick and its IRC one).
func occupantsOf(occ []chat.Occupant, account string) []chat.Occupant {
	var out []chat.Occupant
	for _, o := range occ {
		if occupantIs(o, account) { // guests.go
			out = append(out, o)
		}
	}
	return out
}

// roomStanding says whether the account may act as a channel operator:
// it is a moderator there, the room's owner or admin, or a box admin.
func roomStanding(info chat.Room, occ []chat.Occupant, account string, boxAdmin bool) bool {
	if boxAdmin {
		return true
	}
	if a := info.Affiliations[account]; a == chat.AffOwner || a == chat.AffAdmin {
		return true
	}
	for _, o := range occupantsOf(occ, account) {
		if o.Role == chat.RoleModerator {
			return true
		}
	}
	return false
}

func channelMode(r *request, ch string) {
	c := r.c
	ctx := context.Background()
	room := roomOf(ch)
	if chat.ValidName(room) != nil {
		r.numeric(ERR_NOSUCHCHANNEL, ch, "No such channel")
		return
	}
	info, occ, err := c.srv.core.RoomInfo(ctx, room)
	if err != nil {
		if !errors.Is(err, chat.ErrNoSuchRoom) {
			c.srv.log.Error("mode: room info", "channel", ch, "err", err)
		}
		r.numeric(ERR_NOSUCHCHANNEL, ch, "No such channel")
		return
	}
	s := c.session()
	c.mu.Lock()
	boxAdmin := c.admin
	c.mu.Unlock()
	_, in := s.RoomsOf()[info.Name]
	cc := &chanCtx{r: r, sess: s, room: info.Name, channel: channelOf(info.Name), info: info, occ: occ, in: in,
		op: roomStanding(info, occ, s.Account(), boxAdmin)}
	if len(r.msg.Params) < 2 {
		if info.Settings.Hidden && !in && !cc.op {
			r.numeric(ERR_NOTONCHANNEL, cc.channel, "You're not on that channel")
			return
		}
		r.numeric(RPL_CHANNELMODEIS, append([]string{cc.channel}, channelModes(info.Settings, in || cc.op)...)...)
		r.numeric(RPL_CREATIONTIME, cc.channel, strconv.FormatInt(info.Created.Unix(), 10))
		return
	}
	p := parseChannelModes(r.msg.Params[1], r.msg.Params[2:])
	for _, u := range p.unknown {
		r.numeric(ERR_UNKNOWNMODE, string(u), "is unknown mode char to me")
	}
	for _, m := range p.missing {
		r.numeric(errInvalidModeParam, cc.channel, string(m.mode), "*", "You must give a parameter for "+m.signed())
	}
	if len(p.excess) > 0 {
		r.fail("TOO_MANY_MODES", fmt.Sprintf("At most %d modes with a parameter per MODE line (MODES=%d); not applied: %s",
			maxModeArgs, maxModeArgs, strings.Join(renderModes(p.excess), " ")), cc.channel)
	}
	for _, f := range p.lists {
		cc.showList(f)
	}
	cc.applySettings(p.changes)
	var applied []modeChange
	for _, m := range p.changes {
		var ok bool
		switch {
		case m.mode == 'o' || m.mode == 'v':
			ok = cc.setRole(m)
		case m.mode == 'q' || m.mode == 'a':
			ok = cc.setAffiliation(m)
		case strings.IndexByte(listModes, m.mode) >= 0:
			m.arg = cc.listMask(m)
			ok = cc.setMask(m)
		}
		if ok {
			applied = append(applied, m)
		}
	}
	if !in && len(applied) > 0 {
		// No delivery reaches an actor outside the room: tell it here.
		r.send(makeMsg(c.prefix(), "MODE", append([]string{cc.channel}, renderModes(applied)...)...))
	}
}

// showList answers a list query (MODE #c b, e or I).
func (cc *chanCtx) showList(f byte) {
	r := cc.r
	type listInfo struct {
		list         chat.MaskList
		item, end    string
		endText      string
		operatorOnly bool
	}
	li := map[byte]listInfo{
		'b': {chat.ListBan, RPL_BANLIST, RPL_ENDOFBANLIST, "End of channel ban list", false},
		'e': {chat.ListBanExcept, RPL_EXCEPTLIST, RPL_ENDOFEXCEPTLIST, "End of channel exception list", true},
		'I': {chat.ListInvite, RPL_INVITELIST, RPL_ENDOFINVITELIST, "End of channel invite list", true},
	}[f]
	switch {
	case li.operatorOnly && !cc.op:
		r.numeric(ERR_CHANOPRIVSNEEDED, cc.channel, "You're not channel operator (the +"+string(f)+" list is for channel operators)")
		return
	case cc.info.Settings.Hidden && !cc.in && !cc.op:
		r.numeric(ERR_NOTONCHANNEL, cc.channel, "You're not on that channel")
		return
	}
	server := r.c.srv.cfg.ServerName
	for _, e := range cc.info.Masks {
		if e.List != li.list {
			continue
		}
		by := e.SetBy
		if by == "" {
			by = server
		}
		r.numeric(li.item, cc.channel, e.Mask, by, strconv.FormatInt(e.SetAt.Unix(), 10))
	}
	r.numeric(li.end, cc.channel, li.endText)
}

// applySettings makes the i m n p s t k l changes in one core update, so
// that members see one MODE line for them.
func (cc *chanCtx) applySettings(changes []modeChange) {
	r := cc.r
	var sets []modeChange
	for _, m := range changes {
		switch {
		case strings.IndexByte(flagModes, m.mode) >= 0:
		case m.mode == 'k' && m.add:
			if !validKey(m.arg) {
				r.numeric(ERR_INVALIDKEY, cc.channel, fmt.Sprintf("Key is not well-formed: 1 to %d characters, no spaces or commas", maxKeyLen))
				continue
			}
		case m.mode == 'l' && m.add:
			if n, err := strconv.Atoi(m.arg); err != nil || n < 0 || n > maxUserLimit {
				r.numeric(errInvalidModeParam, cc.channel, "l", m.arg,
					fmt.Sprintf("Invalid limit: give a number of users from 1 to %d (-l removes the limit)", maxUserLimit))
				continue
			}
		case m.mode == 'k' || m.mode == 'l':
		default:
			continue
		}
		sets = append(sets, m)
	}
	if len(sets) == 0 {
		return
	}
	before := cc.info.Settings
	after, err := r.c.srv.core.UpdateSettings(context.Background(), cc.sess, cc.room, func(st *chat.RoomSettings) error {
		for _, m := range sets {
			applySetting(st, m)
		}
		return nil
	})
	if err != nil {
		cc.modeError(err, "", sets[0])
		return
	}
	cc.info.Settings = after
	if !cc.in {
		if change := modeDiff(before, after); len(change) > 0 {
			r.send(makeMsg(r.c.prefix(), "MODE", append([]string{cc.channel}, change...)...))
		}
	}
}

// applySetting makes one i m n p s t k l change to the settings.
func applySetting(st *chat.RoomSettings, m modeChange) {
	switch m.mode {
	case 'i':
		st.MembersOnly = m.add
	case 'm':
		st.Moderated = m.add
	case 'n':
		st.NoExternal = m.add
	case 'p':
		st.Private = m.add
	case 's':
		st.Hidden = m.add
	case 't':
		st.TopicLocked = m.add
	case 'k':
		st.Password = ""
		if m.add {
			st.Password = m.arg
		}
	case 'l':
		st.MaxUsers = 0
		if m.add {
			st.MaxUsers, _ = strconv.Atoi(m.arg)
		}
	}
}

// noop answers a change that would change nothing: nothing for a channel
// operator, ERR_CHANOPRIVSNEEDED for others (as a real change would).
func (cc *chanCtx) noop() bool {
	if !cc.op {
		cc.r.numeric(ERR_CHANOPRIVSNEEDED, cc.channel, "You're not channel operator")
	}
	return false
}

// setRole applies +o -o +v -v to every occupant of the named account.
func (cc *chanCtx) setRole(m modeChange) bool {
	r := cc.r
	occs := occupantsOf(cc.occ, nickAccount(m.arg))
	if len(occs) == 0 {
		cc.notInChannel(m.arg)
		return false
	}
	done := false
	for _, o := range occs {
		if m.mode == 'v' {
			if o.Voice == m.add {
				continue
			}
			if err := r.c.srv.core.SetVoice(context.Background(), cc.sess, cc.room, o.Nick, m.add); err != nil {
				cc.modeError(err, m.arg, m)
				return false
			}
			done = true
			continue
		}
		role, act := cc.roleFor(o, m)
		if !act {
			continue
		}
		if err := r.c.srv.core.SetRole(context.Background(), cc.sess, cc.room, o.Nick, role, ""); err != nil {
			cc.modeError(err, m.arg, m)
			return false
		}
		done = true
	}
	if !done {
		return cc.noop()
	}
	return true
}

// roleFor says what role +o/-o gives occupant o, and whether it
// changes anything (+v/-v go to the core's SetVoice).
func (cc *chanCtx) roleFor(o chat.Occupant, m modeChange) (chat.Role, bool) {
	if m.add {
		return chat.RoleModerator, o.Role != chat.RoleModerator
	}
	return cc.fallbackRole(o), o.Role == chat.RoleModerator
}

// fallbackRole is the role an operator losing -o falls back to: a
// participant, or a visitor in a moderated room when she has neither
// voice nor membership.
func (cc *chanCtx) fallbackRole(o chat.Occupant) chat.Role {
	aff := cc.info.Affiliations[o.Account]
	if cc.info.Settings.Moderated && !o.Voice && aff != chat.AffMember && aff != chat.AffAdmin && aff != chat.AffOwner {
		return chat.RoleVisitor
	}
	return chat.RoleParticipant
}

// setAffiliation applies +q -q +a -a to an account (present or not).
func (cc *chanCtx) setAffiliation(m modeChange) bool {
	acct := fold(m.arg)
	if chat.ValidName(acct) != nil {
		cc.r.numeric(ERR_NOSUCHNICK, m.arg, "No such nick/channel")
		return false
	}
	want := map[byte]chat.Affiliation{'q': chat.AffOwner, 'a': chat.AffAdmin}[m.mode]
	cur := cc.info.Affiliations[acct]
	switch {
	case m.add && cur == want:
		return cc.noop()
	case !m.add && cur != want:
		return cc.noop()
	case !m.add:
		want = chat.AffMember
	}
	if err := cc.r.c.srv.core.SetAffiliation(context.Background(), cc.sess, cc.room, acct, want, ""); err != nil {
		cc.modeError(err, m.arg, m)
		return false
	}
	if cc.info.Affiliations == nil {
		cc.info.Affiliations = map[string]chat.Affiliation{}
	}
	cc.info.Affiliations[acct] = want
	return true
}

// maskLists maps the list modes to the core's lists.
var maskLists = map[byte]chat.MaskList{'b': chat.ListBan, 'e': chat.ListBanExcept, 'I': chat.ListInvite}

// listMask is the mask a b e I change names: completed to
// nick!user@host, except that a removal names an entry as it is listed
// (the other door may list bare account names).
func (cc *chanCtx) listMask(m modeChange) string {
	if !m.add {
		for _, e := range cc.info.Masks {
			if e.List == maskLists[m.mode] && strings.EqualFold(e.Mask, m.arg) {
				return e.Mask
			}
		}
	}
	return canonMask(m.arg)
}

// setMask adds to or removes from the ban, exception or invite list.
func (cc *chanCtx) setMask(m modeChange) bool {
	r := cc.r
	list := maskLists[m.mode]
	ctx := context.Background()
	if strings.ContainsAny(m.arg, " ,") || strings.HasPrefix(m.arg, ":") {
		r.numeric(errInvalidModeParam, cc.channel, string(m.mode), m.arg, "Invalid mask: no spaces or commas, and no ':' first")
		return false
	}
	var err error
	if m.add {
		if len(cc.info.Masks) >= maxListEntries {
			r.numeric(errBanListFull, cc.channel, string(m.mode),
				fmt.Sprintf("Channel list is full (%d entries for +b, +e and +I together)", maxListEntries))
			return false
		}
		err = r.c.srv.core.AddMask(ctx, cc.sess, cc.room, list, m.arg, "")
	} else {
		err = r.c.srv.core.RemoveMask(ctx, cc.sess, cc.room, list, m.arg)
	}
	switch {
	case err == nil:
		if m.add {
			cc.info.Masks = append(cc.info.Masks, chat.MaskEntry{List: list, Mask: m.arg})
		}
		return true
	case m.add && errors.Is(err, chat.ErrExists), !m.add && errors.Is(err, chat.ErrNotFound):
		return cc.noop() // already on the list, or not on it
	}
	cc.modeError(err, m.arg, m)
	return false
}

func (cc *chanCtx) notInChannel(nick string) {
	if _, err := cc.r.c.srv.core.Account(context.Background(), nick); err != nil {
		cc.r.numeric(ERR_NOSUCHNICK, nick, "No such nick/channel")
		return
	}
	cc.r.numeric(ERR_USERNOTINCHANNEL, nick, cc.channel, "They aren't on that channel")
}

// modeError maps a core error on a mode change to the IRC reply.
func (cc *chanCtx) modeError(err error, target string, m modeChange) {
	r := cc.r
	switch {
	case errors.Is(err, chat.ErrForbidden):
		r.numeric(ERR_CHANOPRIVSNEEDED, cc.channel, "You're not channel operator ("+err.Error()+")")
	case errors.Is(err, chat.ErrNoSuchOccupant):
		r.numeric(ERR_USERNOTINCHANNEL, target, cc.channel, "They aren't on that channel")
	case errors.Is(err, chat.ErrNotInRoom):
		r.numeric(ERR_NOTONCHANNEL, cc.channel, "You're not on that channel")
	case errors.Is(err, chat.ErrNoSuchRoom):
		r.numeric(ERR_NOSUCHCHANNEL, cc.channel, "No such channel")
	case errors.Is(err, chat.ErrNotFound):
		r.numeric(ERR_NOSUCHNICK, target, "No such nick/channel")
	case errors.Is(err, chat.ErrBadName):
		r.numeric(errInvalidModeParam, cc.channel, string(m.mode), maskPart(m.arg), "Invalid parameter: "+err.Error())
	default:
		r.c.srv.log.Error("mode", "channel", cc.channel, "mode", m.signed(), "arg", m.arg, "err", err)
		r.fail("MODE_ERROR", "Could not apply "+m.signed()+": "+err.Error()+"; try again", cc.channel)
	}
}

// --- KICK ---

func handleKick(r *request) {
	c := r.c
	chans := strings.Split(r.msg.Params[0], ",")
	users := strings.Split(r.msg.Params[1], ",")
	reason := c.currentNick()
	if len(r.msg.Params) > 2 && r.msg.Params[2] != "" {
		reason = r.msg.Params[2]
	}
	reason = truncateAtRune(reason, kickLen)
	if len(chans) != 1 && len(chans) != len(users) {
		r.numeric(ERR_NEEDMOREPARAMS, "KICK", "Give one channel, or as many channels as nicks")
		return
	}
	if len(users) > maxTargets {
		r.numeric(errTooManyTargets, strings.Join(users[maxTargets:], ","),
			fmt.Sprintf("Too many KICK targets: at most %d per line; these were not kicked", maxTargets))
		users = users[:maxTargets]
	}
	for i, u := range users {
		ch := chans[0]
		if len(chans) > 1 {
			ch = chans[i]
		}
		kickOne(r, ch, u, reason)
	}
}

// truncateAtRune cuts s to at most n bytes at a character boundary.
func truncateAtRune(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func kickOne(r *request, ch, nick, reason string) {
	c := r.c
	ctx := context.Background()
	room := roomOf(ch)
	info, occ, err := c.srv.core.RoomInfo(ctx, room)
	if room == "" || err != nil {
		r.numeric(ERR_NOSUCHCHANNEL, ch, "No such channel")
		return
	}
	channel := channelOf(info.Name)
	s := c.session()
	_, in := s.RoomsOf()[info.Name]
	occs := occupantsOf(occ, nickAccount(nick))
	if len(occs) == 0 {
		if !in {
			r.numeric(ERR_NOTONCHANNEL, channel, "You're not on that channel")
			return
		}
		r.numeric(ERR_USERNOTINCHANNEL, nick, channel, "They aren't on that channel")
		return
	}
	for i, o := range occs {
		err := c.srv.core.Kick(ctx, s, info.Name, o.Nick, reason)
		switch {
		case err == nil:
			if !in && i == 0 {
				// No delivery reaches a kicker outside the room.
				r.send(makeMsg(c.prefix(), "KICK", channel, o.Account, reason))
			}
			continue
		case errors.Is(err, chat.ErrForbidden) && !in:
			r.numeric(ERR_NOTONCHANNEL, channel, "You're not on that channel")
		case errors.Is(err, chat.ErrForbidden):
			r.numeric(ERR_CHANOPRIVSNEEDED, channel, "You're not channel operator ("+err.Error()+")")
		case errors.Is(err, chat.ErrNoSuchOccupant):
			r.numeric(ERR_USERNOTINCHANNEL, nick, channel, "They aren't on that channel")
		default:
			c.srv.log.Error("kick", "channel", channel, "nick", nick, "err", err)
			r.fail("KICK_ERROR", "Could not kick "+nick+": "+err.Error(), channel, nick)
		}
		return
	}
}

// --- INVITE ---

func handleInvite(r *request) {
	c := r.c
	switch len(r.msg.Params) {
	case 0:
		// Pending invitations are the core's; it does not list them.
		r.numeric(rplEndOfInvites, "End of /INVITE list")
		return
	case 1:
		r.numeric(ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
		return
	}
	nick, ch := r.msg.Params[0], r.msg.Params[1]
	ctx := context.Background()
	acct := fold(nick)
	if chat.ValidName(acct) != nil {
		r.numeric(ERR_NOSUCHNICK, nick, "No such nick/channel")
		return
	}
	room := roomOf(ch)
	info, occ, err := c.srv.core.RoomInfo(ctx, room)
	if room == "" || err != nil {
		r.numeric(ERR_NOSUCHCHANNEL, ch, "No such channel")
		return
	}
	channel := channelOf(info.Name)
	if len(occupantsOf(occ, acct)) > 0 {
		r.numeric(ERR_USERONCHANNEL, acct, channel, "is already on channel")
		return
	}
	err = c.srv.core.Invite(ctx, c.session(), info.Name, acct)
	switch {
	case err == nil:
	case errors.Is(err, chat.ErrNotFound):
		r.numeric(ERR_NOSUCHNICK, nick, "No such nick/channel")
		return
	case errors.Is(err, chat.ErrNotInRoom):
		r.numeric(ERR_NOTONCHANNEL, channel, "You're not on that channel")
		return
	case errors.Is(err, chat.ErrForbidden):
		r.numeric(ERR_CHANOPRIVSNEEDED, channel, "You're not channel operator (only operators may invite to a +i channel)")
		return
	case errors.Is(err, chat.ErrNoSuchRoom):
		r.numeric(ERR_NOSUCHCHANNEL, ch, "No such channel")
		return
	default:
		c.srv.log.Error("invite", "channel", channel, "nick", nick, "err", err)
		r.fail("INVITE_ERROR", "Could not invite "+nick+": "+err.Error(), nick, channel)
		return
	}
	r.numeric(RPL_INVITING, acct, channel)
	switch p := c.srv.core.AccountPresence(acct); p.Show {
	case chat.ShowAway, chat.ShowXA, chat.ShowDND:
		msg := p.Status
		if msg == "" {
			msg = string(p.Show)
		}
		r.numeric(RPL_AWAY, acct, msg)
	}
	c.notifyInvite(info.Name, acct, occ)
}

// notifyInvite tells the room's IRC members that asked for invite-notify
// (IRCv3) of an invitation: the core tells only the invitee.
func (c *conn) notifyInvite(room, invitee string, occ []chat.Occupant) {
	ids := map[uint64]bool{}
	for _, o := range occ {
		for _, ref := range o.Sessions {
			if ref.Door == "irc" {
				ids[ref.ID] = true
			}
		}
	}
	if len(ids) == 0 {
		return
	}
	src := c.prefix()
	now := c.srv.cfg.Now()
	for _, other := range c.srv.snapshotConns() {
		if other == c {
			continue
		}
		s := other.session()
		if s == nil || !ids[s.ID()] || s.Account() == invitee {
			continue
		}
		caps := other.capsCopy()
		if !caps.has("invite-notify") {
			continue
		}
		var tags map[string]string
		if caps.has("server-time") {
			tags = map[string]string{"time": serverTime(now)}
		}
		other.sendLine(ircmsg.MakeMessage(tags, src, "INVITE", invitee, channelOf(room)))
	}
}
