package irc

import (
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"chatbox/services/chat"
)

// What the core routes to a session, as IRC lines. Runs on the writer
// goroutine, in the order the core delivered.
//
// A session keeps nothing of the others in its channels: the core counts
// each room's occupants per account and says, in each delivery, whether
// an account came or went as a whole (chat/occupants.go), and a client's
// NAMES comes from the core's occupant list (the join delivery's, or
// Core.RoomInfo). The writer keeps only each channel's settings as it
// last told the client (for MODE changes).
//
// A room fan-out (message, join, part, quit, kick, topic) is rendered
// once per wire variant, not once per receiver: the core hands every
// delivery of one fan-out the same chat.Rendered, and sharedKey names the
// variant, from what the receiver's capabilities change in the lines.

// chanList is the settings of each channel a client is in, as it was
// last told them: a few entries, searched in order.
type chanList []chanEntry

type chanEntry struct {
	room     string
	settings chat.RoomSettings
}

// get returns the settings of room, nil when the client is not in it.
func (l chanList) get(room string) *chat.RoomSettings {
	for i := range l {
		if l[i].room == room {
			return &l[i].settings
		}
	}
	return nil
}

func (l *chanList) set(room string, st chat.RoomSettings) {
	if p := l.get(room); p != nil {
		*p = st
		return
	}
	*l = append(*l, chanEntry{room, st})
}

func (l *chanList) drop(room string) {
	*l = slices.DeleteFunc(*l, func(e chanEntry) bool { return e.room == room })
	if len(*l) == 0 {
		*l = nil
	}
}

// memberModes returns the IRC member modes of an occupant.
func memberModes(o chat.Occupant) string {
	m := ""
	switch o.Affiliation {
	case chat.AffOwner:
		m += "q"
	case chat.AffAdmin:
		m += "a"
	}
	if o.Role == chat.RoleModerator {
		m += "o"
	}
	if o.Voice && o.Role != chat.RoleVisitor {
		m += "v"
	}
	return m
}

// prefixes turns member modes into NAMES prefixes: all of them
// (multi-prefix) or the highest.
func prefixes(modes string, multi bool) string {
	out := ""
	for _, pair := range [][2]string{{"q", "~"}, {"a", "&"}, {"o", "@"}, {"v", "+"}} {
		if strings.Contains(modes, pair[0]) {
			out += pair[1]
			if !multi {
				break
			}
		}
	}
	return out
}

// mergeModes keeps the union of two occupants' modes, ordered.
func mergeModes(a, b string) string {
	out := ""
	for _, f := range "qaov" {
		if strings.ContainsRune(a, f) || strings.ContainsRune(b, f) {
			out += string(f)
		}
	}
	return out
}

// source is nick!user@host for an account coming in by a door.
func (c *conn) source(account, door string) string {
	if door == "" {
		door = "chat"
	}
	if chat.IsRemote(account) {
		return remoteSource(account) // remote.go
	}
	if chat.IsGuest(account) {
		nick := strings.TrimPrefix(account, chat.GuestPrefix)
		return nick + "!guest@" + door + "." + c.srv.cfg.ServerName
	}
	return account + "!" + account + "@" + door + "." + c.srv.cfg.ServerName
}

// selfSource is the client's own nick!user@host as the core knows it (a
// guest's pseudo-account included).
func (c *conn) selfSource(me string) string {
	if s := c.session(); s != nil {
		return c.source(s.Account(), "irc")
	}
	return c.source(fold(me), "irc")
}

// displayNick is the IRC nick of an account, of a guest's
// pseudo-account or of a remote user (remote.go).
func displayNick(account string) string {
	return ircName(strings.TrimPrefix(account, chat.GuestPrefix))
}

// msgTags are the tags of a stored message for this client.
func (c *conn) msgTags(m *chat.Message, caps capSet) map[string]string {
	tags := map[string]string{}
	if caps.has("server-time") {
		tags["time"] = serverTime(m.Time)
	}
	if caps.has("message-tags") {
		tags["msgid"] = m.ID
	}
	if caps.has("account-tag") && !chat.IsGuest(m.From) {
		tags["account"] = m.From
	}
	if len(tags) == 0 {
		return nil
	}
	return tags
}

// messageLines renders a stored message as PRIVMSG/NOTICE lines to
// target: one per line of the body, each cut (at a character boundary,
// after a space if it can) to fit 512 bytes, never silently shortened.
// A client with draft/multiline (and batch) gets a body of several such
// lines as one draft/multiline batch (multiline.go), the message's tags on
// its opening line; others get the lines alone, the msgid on the first.
func (c *conn) messageLines(m *chat.Message, source, target string, caps capSet) []ircmsg.Message {
	return c.messageLinesAt(m, source, target, caps, c.srv.cfg.Now())
}

// pastMinute says whether t is more than a minute before now: a message
// shown that late to a client without server-time is dated in its text.
// It is now.Sub(t) > time.Minute without Sub's slow path (a stored
// message's time carries no monotonic reading), which was 1 % of a busy
// room's CPU.
func pastMinute(now, t time.Time) bool {
	s := now.Unix() - t.Unix()
	return s > 60 || s == 60 && now.Nanosecond() > t.Nanosecond()
}

// messageLinesAt is messageLines at the time now (a write round's view:
// the time its shared variants were chosen at).
func (c *conn) messageLinesAt(m *chat.Message, source, target string, caps capSet, now time.Time) []ircmsg.Message {
	verb := "PRIVMSG"
	if m.Kind == chat.KindNotice {
		verb = "NOTICE"
	}
	body := m.Body
	if !caps.has("server-time") && pastMinute(now, m.Time) {
		body = "[" + m.Time.Local().Format("2006-01-02 15:04") + "] " + body
	}
	// Room for the text: 512 - CRLF - ":source VERB target :" - CTCP framing.
	room := maxLineBody - 2 - (1 + len(source) + 1 + len(verb) + 1 + len(target) + 2)
	if m.Kind == chat.KindAction {
		room -= len("\x01ACTION \x01")
	}
	room = max(room, 64)
	pieces := splitBody(body, room)
	if len(pieces) > 1 && caps.has("draft/multiline") && caps.has("batch") {
		return multilineBatch(c.msgTags(m, caps), source, verb, target, pieces, m.Kind == chat.KindAction)
	}
	out := make([]ircmsg.Message, 0, len(pieces))
	for i, p := range pieces {
		text := p.text
		if text == "" {
			text = " " // no blank lines to clients without multiline
		}
		if m.Kind == chat.KindAction {
			text = "\x01ACTION " + text + "\x01"
		}
		tags := c.msgTags(m, caps)
		if i > 0 && tags != nil {
			delete(tags, "msgid")
		}
		out = append(out, ircmsg.MakeMessage(tags, source, verb, target, text))
	}
	return out
}

// Wire variants of a shared fan-out (sharedKey): what in the receiver's
// capabilities changes the lines of each kind.
const (
	capServerTime = 1 << iota
	capMessageTags
	capAccountTag
	capMultiline // draft/multiline and batch
	oldMessage   // no server-time and the message is over a minute old: dated in the text
)

// msgKeys and joinKeys name the variants without allocating.
var msgKeys = func() (k [32]string) {
	for i := range k {
		k[i] = "msg" + strconv.Itoa(i)
	}
	return k
}()

var joinKeys = [2]string{"join", "join-extended"}

// view is what rendering a run of deliveries for one client reads once
// for all of them: its capabilities, the wire variant they give a room
// message, and the time (a message over a minute old is dated in its text
// for a client without server-time).
type view struct {
	caps    capSet
	msgBits int // capServerTime, capMessageTags, capAccountTag, capMultiline
	now     time.Time
}

// view reads the client's capabilities and the clock, for render.
func (c *conn) view() view {
	caps := c.capsCopy()
	v := view{caps: caps, now: c.srv.cfg.Now()}
	if caps.has("server-time") {
		v.msgBits |= capServerTime
	}
	if caps.has("message-tags") {
		v.msgBits |= capMessageTags
	}
	if caps.has("account-tag") {
		v.msgBits |= capAccountTag
	}
	if caps.has("draft/multiline") && caps.has("batch") {
		v.msgBits |= capMultiline
	}
	return v
}

// sharedKey says whether what d shows this client is the same for every
// receiver of its fan-out with the same key, and which key, once the
// receiver-specific checks (translate) said it shows anything. d.Shared
// is non-nil.
func (c *conn) sharedKey(d *chat.Delivery, v *view) (string, bool) {
	switch d.Kind {
	case chat.DelMessage:
		m := d.Message
		if m == nil || m.Room == "" || d.Echo {
			return "", false
		}
		bits := v.msgBits
		if bits&capServerTime == 0 && pastMinute(v.now, m.Time) {
			bits |= oldMessage
		}
		return msgKeys[bits], true
	case chat.DelJoin:
		if d.Echo {
			return "", false
		}
		if v.caps.has("extended-join") {
			return joinKeys[1], true
		}
		return joinKeys[0], true
	case chat.DelLeave, chat.DelTopic:
		return string(d.Kind), !d.Echo
	case chat.DelKick:
		return string(d.Kind), !c.kickedMe(d)
	case chat.DelQuit:
		return string(d.Kind), !d.SharesRoom // one QUIT line; otherwise PARTs per room
	}
	return "", false
}

// writeDelivery writes what d shows this client to w: a shared fan-out's
// bytes rendered once per variant, anything else rendered here.
func (c *conn) writeDelivery(w io.Writer, d *chat.Delivery, v *view) {
	if d.Shared != nil && c.shows(d) {
		if key, ok := c.sharedKey(d, v); ok {
			b := d.Shared.Bytes(key, func() []byte { return c.serialise(nil, c.translate(d, v)) })
			if sw, ok := w.(*batch); ok {
				sw.writeShared(b)
			} else {
				w.Write(b)
			}
			return
		}
	}
	for _, m := range c.translate(d, v) {
		if b, err := m.LineBytesStrict(false, maxLineBody); b != nil {
			w.Write(b)
		} else {
			c.srv.log.Warn("unserialisable delivery", "cmd", m.Command, "err", err)
		}
	}
}

// serialise appends the wire form of lines to buf.
func (c *conn) serialise(buf []byte, lines []ircmsg.Message) []byte {
	for _, m := range lines {
		if b, err := m.LineBytesStrict(false, maxLineBody); b != nil {
			buf = append(buf, b...)
		} else {
			c.srv.log.Warn("unserialisable delivery", "cmd", m.Command, "err", err)
		}
	}
	return buf
}

// shows runs the receiver's own checks and state changes for a shareable
// delivery and says whether it shows anything at all; translate makes the
// same checks, so it may run again (once per variant) with no effect.
func (c *conn) shows(d *chat.Delivery) bool {
	switch d.Kind {
	case chat.DelMessage:
		m := d.Message
		return !d.Echo && (m.Room == "" || m.Seq == 0 || m.Seq > c.replayed[m.Room])
	case chat.DelJoin:
		return d.Echo || c.chans.get(d.Room) != nil && d.AccountFirst
	case chat.DelLeave:
		if d.Echo {
			return true
		}
		return d.AccountGone
	case chat.DelQuit:
		return len(d.GoneRooms) > 0
	case chat.DelKick:
		return c.kickedMe(d) || d.AccountGone
	}
	return true
}

// kickedMe says whether a kick removes this session.
func (c *conn) kickedMe(d *chat.Delivery) bool {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		return false
	}
	for _, ref := range d.Occupant.Sessions {
		if ref.ID == s.ID() {
			return true
		}
	}
	return false
}

// translate turns one delivery into the lines this client should see,
// as the round's view v has the client (the shared variant's key was
// chosen from the same view).
func (c *conn) translate(d *chat.Delivery, v *view) []ircmsg.Message {
	caps := v.caps
	c.mu.Lock()
	me := c.nick
	c.mu.Unlock()
	server := c.srv.cfg.ServerName
	from := c.source(d.From.Account, d.From.Door)
	actor := func() string {
		if d.From.Account != "" {
			return from
		}
		if d.Actor != "" {
			return d.Actor
		}
		return server
	}
	switch d.Kind {
	case chat.DelMessage:
		m := d.Message
		if d.Echo {
			return nil // the command's own reply echoes it, labelled
		}
		src := c.source(m.From, d.From.Door)
		if m.Room != "" {
			if m.Seq != 0 && m.Seq <= c.replayed[m.Room] {
				return nil // already shown by the join's replay
			}
			return c.messageLinesAt(m, src, channelOf(m.Room), caps, v.now)
		}
		if d.Carbon || m.From == fold(me) && m.To != fold(me) {
			// Sent by another session of this account: show it as ours.
			return c.messageLinesAt(m, src, ircName(m.To), caps, v.now)
		}
		return c.messageLinesAt(m, src, me, caps, v.now)

	case chat.DelSignal:
		if !caps.has("message-tags") {
			return nil
		}
		tags := map[string]string{}
		for k, v := range d.Tags {
			tags["+"+k] = v
		}
		target := me
		if d.Room != "" {
			target = channelOf(d.Room)
		}
		return []ircmsg.Message{ircmsg.MakeMessage(tags, from, "TAGMSG", target)}

	case chat.DelJoin:
		if d.Echo {
			out := append(c.joinBurst(d, caps), c.replayOnJoin(d.Room, caps)...)
			return append(out, welcomeLines(server, d)...)
		}
		if !c.shows(d) {
			return nil // not ours to show, or the account was there already
		}
		acct := d.Occupant.Account
		src := c.source(acct, d.From.Door)
		var out []ircmsg.Message
		if caps.has("extended-join") {
			out = append(out, makeMsg(src, "JOIN", channelOf(d.Room), acct, acct))
		} else {
			out = append(out, makeMsg(src, "JOIN", channelOf(d.Room)))
		}
		if modes := memberModes(d.Occupant); modes != "" {
			out = append(out, c.memberModeLine(d.Room, server, "+", modes, acct))
		}
		return out

	case chat.DelLeave:
		if d.Echo {
			c.chans.drop(d.Room)
			return []ircmsg.Message{c.partLine(c.selfSource(me), d.Room, d.Reason)}
		}
		if d.AccountGone {
			return []ircmsg.Message{c.partLine(from, d.Room, d.Reason)}
		}
		return nil

	case chat.DelQuit:
		if len(d.GoneRooms) == 0 {
			return nil
		}
		if !d.SharesRoom {
			reason := d.Reason
			if reason == "" {
				reason = "Quit"
			}
			return []ircmsg.Message{makeMsg(from, "QUIT", reason)}
		}
		var out []ircmsg.Message
		for _, room := range d.GoneRooms {
			out = append(out, c.partLine(from, room, d.Reason))
		}
		return out

	case chat.DelKick:
		target := displayNick(d.Occupant.Account)
		if c.kickedMe(d) {
			c.chans.drop(d.Room)
			target = me
		} else if !d.AccountGone {
			return nil
		}
		reason := d.Reason
		if reason == "" {
			reason = target
		}
		return []ircmsg.Message{makeMsg(actor(), "KICK", channelOf(d.Room), target, reason)}

	case chat.DelTopic:
		return []ircmsg.Message{makeMsg(actor(), "TOPIC", channelOf(d.Room), d.Topic)}

	case chat.DelRole:
		if c.chans.get(d.Room) == nil || d.Before == nil {
			return nil
		}
		was, now := memberModes(*d.Before), memberModes(d.Occupant)
		var plus, minus string
		for _, f := range "qaov" {
			had, has := strings.ContainsRune(was, f), strings.ContainsRune(now, f)
			if has && !had {
				plus += string(f)
			} else if had && !has {
				minus += string(f)
			}
		}
		var out []ircmsg.Message
		if minus != "" {
			out = append(out, c.memberModeLine(d.Room, actor(), "-", minus, d.Occupant.Account))
		}
		if plus != "" {
			out = append(out, c.memberModeLine(d.Room, actor(), "+", plus, d.Occupant.Account))
		}
		return out

	case chat.DelSettings:
		was := c.chans.get(d.Room)
		if was == nil {
			return nil
		}
		change := modeDiff(*was, d.Settings)
		*was = d.Settings
		if len(change) == 0 {
			return nil
		}
		return []ircmsg.Message{makeMsg(actor(), "MODE", append([]string{channelOf(d.Room)}, change...)...)}

	case chat.DelMask:
		flag := map[chat.MaskList]string{chat.ListBan: "b", chat.ListBanExcept: "e", chat.ListInvite: "I"}[d.Mask.List]
		sign := "+"
		if d.Removed {
			sign = "-"
		}
		return []ircmsg.Message{makeMsg(actor(), "MODE", channelOf(d.Room), sign+flag, d.Mask.Mask)}

	case chat.DelPresence:
		return c.presenceLines(d, caps, from)

	case chat.DelInvite:
		return []ircmsg.Message{makeMsg(actor(), "INVITE", me, channelOf(d.Room))}

	case chat.DelRoomDestroy:
		c.chans.drop(d.Room)
		return []ircmsg.Message{makeMsg(server, "KICK", channelOf(d.Room), me, "Room destroyed: "+d.Reason)}

	case chat.DelDisconnect:
		c.kill(d.Reason)
		return nil
	}
	return nil
}

func (c *conn) partLine(src, room, reason string) ircmsg.Message {
	if reason == "" {
		return makeMsg(src, "PART", channelOf(room))
	}
	return makeMsg(src, "PART", channelOf(room), reason)
}

func (c *conn) memberModeLine(room, src, sign, flags, account string) ircmsg.Message {
	params := []string{channelOf(room), sign + flags}
	for range flags {
		params = append(params, displayNick(account))
	}
	return makeMsg(src, "MODE", params...)
}

// joinBurst is what a client sees when it joins: JOIN, topic, names.
func (c *conn) joinBurst(d *chat.Delivery, caps capSet) []ircmsg.Message {
	c.mu.Lock()
	me, realname := c.nick, c.realname
	c.mu.Unlock()
	var settings chat.RoomSettings
	if d.RoomInfo != nil {
		settings = d.RoomInfo.Settings
	}
	c.chans.set(d.Room, settings)
	channel := channelOf(d.Room)
	self := c.selfSource(me)
	server := c.srv.cfg.ServerName
	var out []ircmsg.Message
	if caps.has("extended-join") {
		out = append(out, makeMsg(self, "JOIN", channel, fold(me), realname))
	} else {
		out = append(out, makeMsg(self, "JOIN", channel))
	}
	if d.RoomInfo != nil && d.RoomInfo.Topic != "" {
		out = append(out, makeMsg(server, RPL_TOPIC, me, channel, d.RoomInfo.Topic))
		by := d.RoomInfo.TopicBy
		if by == "" {
			by = server
		}
		out = append(out, makeMsg(server, RPL_TOPICWHOTIME, me, channel, by, strconv.FormatInt(d.RoomInfo.TopicAt.Unix(), 10)))
	}
	out = append(out, c.namesLines(d.Room, settings, d.Occupants, caps)...)
	return out
}

// namesLines renders RPL_NAMREPLY lines and RPL_ENDOFNAMES for a room's
// occupants, one name per account (the union of its occupants' modes,
// the door of its first occupant's first session for its host).
func (c *conn) namesLines(room string, settings chat.RoomSettings, occ []chat.Occupant, caps capSet) []ircmsg.Message {
	me := c.currentNick()
	server := c.srv.cfg.ServerName
	channel := channelOf(room)
	symbol := "="
	if settings.Hidden {
		symbol = "@"
	} else if settings.Private {
		symbol = "*"
	}
	type member struct{ account, door, modes string }
	members := make([]member, 0, len(occ))
	for _, o := range occ {
		door := ""
		if len(o.Sessions) > 0 {
			door = o.Sessions[0].Door
		}
		members = append(members, member{o.Account, door, memberModes(o)})
	}
	// One per account: the first occupant (in the core's order) gives the
	// door, the modes are the union.
	slices.SortStableFunc(members, func(a, b member) int { return strings.Compare(a.account, b.account) })
	multi, userhost := caps.has("multi-prefix"), caps.has("userhost-in-names")
	names := make([]string, 0, len(members))
	for i := 0; i < len(members); {
		mv := members[i]
		j := i + 1
		for ; j < len(members) && members[j].account == mv.account; j++ {
			mv.modes = mergeModes(mv.modes, members[j].modes)
		}
		i = j
		n := prefixes(mv.modes, multi)
		if userhost {
			n += c.source(mv.account, mv.door)
		} else {
			n += displayNick(mv.account)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var out []ircmsg.Message
	var line strings.Builder
	for _, n := range names {
		if line.Len()+len(n)+1 > 400 {
			out = append(out, makeMsg(server, RPL_NAMREPLY, me, symbol, channel, line.String()))
			line.Reset()
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(n)
	}
	if line.Len() > 0 {
		out = append(out, makeMsg(server, RPL_NAMREPLY, me, symbol, channel, line.String()))
	}
	return append(out, makeMsg(server, RPL_ENDOFNAMES, me, channel, "End of /NAMES list."))
}

// modeDiff renders the channel-mode change from a to b as MODE params.
func modeDiff(a, b chat.RoomSettings) []string {
	var plus, minus string
	var plusArgs []string
	flag := func(f string, was, is bool) {
		if is && !was {
			plus += f
		} else if was && !is {
			minus += f
		}
	}
	flag("i", a.MembersOnly, b.MembersOnly)
	flag("m", a.Moderated, b.Moderated)
	flag("n", a.NoExternal, b.NoExternal)
	flag("p", a.Private, b.Private)
	flag("s", a.Hidden, b.Hidden)
	flag("t", a.TopicLocked, b.TopicLocked)
	if a.Password != b.Password {
		if b.Password == "" {
			minus += "k"
		} else {
			plus += "k"
			plusArgs = append(plusArgs, b.Password)
		}
	}
	if a.MaxUsers != b.MaxUsers {
		if b.MaxUsers == 0 {
			minus += "l"
		} else {
			plus += "l"
			plusArgs = append(plusArgs, strconv.Itoa(b.MaxUsers))
		}
	}
	s := ""
	if plus != "" {
		s += "+" + plus
	}
	if minus != "" {
		s += "-" + minus
	}
	if s == "" {
		return nil
	}
	return append([]string{s}, plusArgs...)
}

// channelModes renders a room's settings as IRC channel modes (with
// arguments when showArgs: members see the key).
func channelModes(st chat.RoomSettings, showArgs bool) []string {
	m := "+"
	var args []string
	for _, fl := range []struct {
		f  string
		on bool
	}{{"i", st.MembersOnly}, {"m", st.Moderated}, {"n", st.NoExternal}, {"p", st.Private}, {"s", st.Hidden}, {"t", st.TopicLocked}} {
		if fl.on {
			m += fl.f
		}
	}
	if st.Password != "" {
		m += "k"
		if showArgs {
			args = append(args, st.Password)
		} else {
			args = append(args, "*")
		}
	}
	if st.MaxUsers > 0 {
		m += "l"
		args = append(args, strconv.Itoa(st.MaxUsers))
	}
	return append([]string{m}, args...)
}

// presenceLines tells the client of an account's away state changes
// (away-notify) for accounts it shares a channel with.
func (c *conn) presenceLines(d *chat.Delivery, caps capSet, from string) []ircmsg.Message {
	acct := d.From.Account
	var out []ircmsg.Message
	out = append(out, c.monitorLines(d)...)
	if !caps.has("away-notify") || acct == fold(c.currentNick()) || !d.SharesRoom {
		return out
	}
	switch d.Account.Show {
	case chat.ShowAway, chat.ShowXA, chat.ShowDND:
		msg := d.Account.Status
		if msg == "" {
			msg = string(d.Account.Show)
		}
		out = append(out, makeMsg(from, "AWAY", msg))
	case chat.ShowOffline:
	default:
		out = append(out, makeMsg(from, "AWAY"))
	}
	return out
}
