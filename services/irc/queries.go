package irc

// Query commands (RFC 2812 §3.5–3.7 as Modern IRC documents them, and
// IRCv3): WHO with WHOX (ircdocs "WHOX"), WHOIS, WHOWAS, LIST with the
// ELIST=CMNTU filters, USERHOST, ISON, MONITOR (IRCv3 monitor), AWAY,
// SETNAME (IRCv3 setname), VERSION, TIME and INFO.
//
// People are the core's accounts with an open session, whatever door they
// came in by (an XMPP user is shown with host xmpp.<domain>), plus IRC
// clients that have not logged in yet. What only an IRC connection knows
// (TLS, idle time, real name, user modes) is read from the account's IRC
// connections; for an account on XMPP only it is left out.
//
// Left out: server masks (the box is one server: a server parameter is
// accepted when it names this server), WHOX oplevels (always "0"), a
// SETNAME broadcast to others sharing a channel (the core has no delivery
// for it: only the sender is answered), and channel wildcards in WHO.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"chatbox/services/chat"
)

const (
	monitorLimit = 100 // ISUPPORT MONITOR
	awayLen      = 390 // ISUPPORT AWAYLEN
	realnameLen  = 390
	userhostMax  = 5   // RFC 2812 §4.8
	isonReplyMax = 400 // bytes of nicks in one RPL_ISON
	listLineMax  = 400 // bytes of items in one list-carrying numeric
	hiddenIP     = "255.255.255.255"
)

var queryCommands = map[string]command{
	"WHO":      {fn: handleWho},
	"WHOIS":    {fn: handleWhois},
	"WHOWAS":   {fn: handleWhowas},
	"LIST":     {fn: handleList},
	"USERHOST": {fn: handleUserhost, minParams: 1},
	"ISON":     {fn: handleIson, minParams: 1},
	"MONITOR":  {fn: handleMonitor, minParams: 1},
	"AWAY":     {fn: handleAway},
	"SETNAME":  {fn: handleSetname, minParams: 1},
	"VERSION":  {fn: handleVersion, unidentified: true},
	"TIME":     {fn: handleTime, unidentified: true},
	"INFO":     {fn: handleInfo, unidentified: true},
}

// --- who is who ---

// connInfo is a snapshot of one IRC connection, taken under its lock.
type connInfo struct {
	c                  *conn
	nick, user         string
	realname, account  string
	umodes             string
	registered, secure bool
	bot, invisible     bool
	ip                 string
	signon, idleSince  time.Time
	sess               *chat.Session
}

func (c *conn) info() connInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return connInfo{c: c, nick: c.nick, user: c.userLocked(), realname: c.realname, account: c.account,
		umodes: c.umodeStringLocked(), registered: c.state >= stateRegistered, secure: c.isTLS,
		bot: c.modes['B'], invisible: c.modes['i'], ip: c.ip, signon: c.signon, idleSince: c.idleSince, sess: c.sess}
}

// accountConns returns the IRC connections logged in to account, oldest
// first (they all hold the account's nick).
func (s *Server) accountConns(account string) []connInfo {
	var out []connInfo
	for _, c := range s.nickHolders(account) {
		if ci := c.info(); ci.account == account {
			out = append(out, ci)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].signon.Before(out[j].signon) })
	return out
}

// guestConns returns the registered IRC connections that have not logged
// in, by nick.
func (s *Server) guestConns() []connInfo {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var out []connInfo
	for _, c := range conns {
		if ci := c.info(); ci.registered && ci.account == "" && ci.nick != "" {
			out = append(out, ci)
		}
	}
	sort.Slice(out, func(i, j int) bool { return fold(out[i].nick) < fold(out[j].nick) })
	return out
}

// ircUser is one person as WHO, WHOIS, USERHOST and ISON show her: an
// account holder with at least one session (whatever her doors), an IRC
// client that has not logged in, or the built-in NickServ.
type ircUser struct {
	nick, user, host, realname string
	account                    string // "" when not logged in
	admin, bot, invisible      bool
	away                       bool
	awayMsg                    string
	doors                      []string // doors of the sessions, oldest first, once each
	sessions                   []chat.SessionRef
	irc                        []connInfo // IRC connections, oldest first
	service                    bool
}

// secure reports whether every way the person is connected is known to
// be TLS (only IRC connections are known).
func (u *ircUser) secure() bool {
	if len(u.irc) == 0 {
		return false
	}
	for _, ref := range u.sessions {
		if ref.Door != "irc" {
			return false
		}
	}
	for _, ci := range u.irc {
		if !ci.secure {
			return false
		}
	}
	return true
}

// idle returns the idle time and signon time over the IRC connections.
func (u *ircUser) idle(now time.Time) (time.Duration, time.Time, bool) {
	if len(u.irc) == 0 {
		return 0, time.Time{}, false
	}
	idle := time.Duration(1<<63 - 1)
	signon := u.irc[0].signon
	for _, ci := range u.irc {
		idle = min(idle, max(now.Sub(ci.idleSince), 0))
		if ci.signon.Before(signon) {
			signon = ci.signon
		}
	}
	return idle, signon, true
}

func (u *ircUser) ip() string {
	if len(u.irc) == 0 {
		return ""
	}
	return u.irc[0].ip
}

// awayOf maps an aggregated presence to IRC's away state, as away-notify
// does in deliver.go.
func awayOf(p chat.Presence) (bool, string) {
	switch p.Show {
	case chat.ShowAway, chat.ShowXA, chat.ShowDND:
		if p.Status != "" {
			return true, p.Status
		}
		return true, string(p.Show)
	}
	return false, ""
}

// finder looks people up for one command.
type finder struct {
	c        *conn
	ctx      context.Context
	accounts map[string]chat.Account // every account, once loadAll ran
	me       string                  // the asker's account
	admin    bool                    // the asker is a box admin (IRC operator)
	friends  map[string]bool         // accounts sharing a channel with the asker
}

func newFinder(c *conn) *finder {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &finder{c: c, ctx: context.Background(), me: c.account, admin: c.admin}
}

// loadAll reads every account once (a WHO over a channel or a mask).
func (f *finder) loadAll() {
	if f.accounts != nil {
		return
	}
	f.accounts = map[string]chat.Account{}
	list, err := f.c.srv.core.Accounts(f.ctx)
	if err != nil {
		f.c.srv.log.Warn("list accounts", "err", err)
		return
	}
	for _, a := range list {
		f.accounts[a.Name] = a
	}
}

func (f *finder) account(name string) (chat.Account, bool) {
	if f.accounts != nil {
		a, ok := f.accounts[name]
		return a, ok
	}
	a, err := f.c.srv.core.Account(f.ctx, name)
	if err != nil {
		if !errors.Is(err, chat.ErrNotFound) {
			f.c.srv.log.Warn("look up account", "account", name, "err", err)
		}
		return chat.Account{}, false
	}
	return a, true
}

// hostOf is the host the door gives people coming in by door (see
// conn.source).
func (c *conn) hostOf(door string) string {
	_, host, _ := strings.Cut(c.source("x", door), "@")
	return host
}

// sessionsOf returns an account's open sessions, oldest first.
func (f *finder) sessionsOf(account string) []chat.SessionRef {
	refs := f.c.srv.core.Sessions(account)
	slices.SortFunc(refs, func(a, b chat.SessionRef) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return refs
}

// fromAccount describes an account with open sessions refs.
func (f *finder) fromAccount(a chat.Account, refs []chat.SessionRef) *ircUser {
	u := &ircUser{nick: a.Name, user: a.Name, account: a.Name, realname: a.Name, admin: a.Admin, sessions: refs}
	door := ""
	if len(refs) > 0 {
		door = refs[0].Door
	}
	u.host = f.c.hostOf(door)
	for _, ref := range refs {
		if !slices.Contains(u.doors, ref.Door) {
			u.doors = append(u.doors, ref.Door)
		}
	}
	u.irc = f.c.srv.accountConns(a.Name)
	named := false
	for _, ci := range u.irc {
		u.bot = u.bot || ci.bot
		u.invisible = u.invisible || ci.invisible
		if !named && ci.realname != "" {
			u.realname, named = ci.realname, true
		}
	}
	u.away, u.awayMsg = awayOf(f.c.srv.core.AccountPresence(a.Name))
	return u
}

func (f *finder) fromGuest(ci connInfo) *ircUser {
	u := &ircUser{nick: ci.nick, user: ci.user, host: ci.c.host(), realname: ci.realname,
		bot: ci.bot, invisible: ci.invisible, doors: []string{"irc"}, irc: []connInfo{ci}}
	if u.realname == "" {
		u.realname = ci.nick
	}
	return u
}

func nickservUser() *ircUser {
	return &ircUser{nick: "NickServ", user: "NickServ", host: "services", service: true,
		realname: "Account services: /msg NickServ HELP"}
}

// byNick finds who uses nick now. An account without an open session is
// not found (as Ergo answers for an offline account).
func (f *finder) byNick(nick string) (*ircUser, bool) {
	key := fold(nick)
	if key == "nickserv" {
		return nickservUser(), true
	}
	if chat.ValidName(key) == nil {
		if refs := f.sessionsOf(key); len(refs) > 0 {
			if a, ok := f.account(key); ok {
				return f.fromAccount(a, refs), true
			}
		}
	}
	for _, h := range f.c.srv.nickHolders(nick) {
		if ci := h.info(); ci.registered && ci.account == "" {
			return f.fromGuest(ci), true
		}
	}
	return nil, false
}

// online lists everyone connected: accounts with a session, by name,
// then IRC clients not logged in.
func (f *finder) online() []*ircUser {
	f.loadAll()
	names := make([]string, 0, len(f.accounts))
	for name := range f.accounts {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []*ircUser
	for _, name := range names {
		if refs := f.sessionsOf(name); len(refs) > 0 {
			out = append(out, f.fromAccount(f.accounts[name], refs))
		}
	}
	for _, ci := range f.c.srv.guestConns() {
		out = append(out, f.fromGuest(ci))
	}
	return out
}

// isSelf reports whether u is the asker.
func (f *finder) isSelf(u *ircUser) bool {
	if u.account != "" {
		return u.account == f.me
	}
	return len(u.irc) == 1 && u.irc[0].c == f.c
}

// shares reports whether u shares a channel with the asker (RFC 2812:
// invisible users are seen by those who share a channel with them).
func (f *finder) shares(u *ircUser) bool {
	if u.account == "" {
		return false
	}
	if f.friends == nil {
		f.friends = map[string]bool{}
		if s := f.c.session(); s != nil {
			for room := range s.RoomsOf() {
				occ, err := f.c.srv.core.Occupants(f.ctx, room)
				if err != nil {
					continue
				}
				for _, o := range occ {
					f.friends[o.Account] = true
				}
			}
		}
	}
	return f.friends[u.account]
}

// myRooms returns the rooms the asker is in.
func (f *finder) myRooms() map[string]string {
	if s := f.c.session(); s != nil {
		return s.RoomsOf()
	}
	return map[string]string{}
}

// --- masks ---

// matchGlob reports whether s matches an IRC wildcard pattern ('*' any
// run, '?' one character), ASCII case-insensitively.
func matchGlob(pattern, s string) bool {
	p, t := []rune(fold(pattern)), []rune(fold(s))
	pi, ti := 0, 0
	star, mark := -1, 0
	for ti < len(t) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == t[ti]):
			pi++
			ti++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, ti
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			ti = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

func hasWildcard(s string) bool { return strings.ContainsAny(s, "*?") }

// whoMatches reports whether a WHO mask matches u: a nick!user@host mask
// against the full mask, otherwise against the nick, host, real name
// and account (RFC 2812 §3.6.1).
func whoMatches(mask string, u *ircUser) bool {
	if strings.ContainsAny(mask, "!@") {
		return matchGlob(canonMask(mask), u.nick+"!"+u.user+"@"+u.host)
	}
	return matchGlob(mask, u.nick) || matchGlob(mask, u.host) || matchGlob(mask, u.realname) ||
		(u.account != "" && matchGlob(mask, u.account))
}

// safeParam makes client input fit as a middle parameter of a reply.
func safeParam(s string) string {
	if s == "" || s[0] == ':' || strings.ContainsRune(s, ' ') {
		return "*"
	}
	return s
}

// joinLines joins items with sep into strings of at most max bytes (an
// item longer than that stands alone).
func joinLines(items []string, sep string, max int) []string {
	var out []string
	cur := ""
	for _, it := range items {
		if cur != "" && len(cur)+len(sep)+len(it) > max {
			out = append(out, cur)
			cur = ""
		}
		if cur != "" {
			cur += sep
		}
		cur += it
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

// truncateUTF8 cuts s to at most n bytes at a character boundary.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// --- WHO ---

// whoxOrder is the order WHOX fields take in RPL_WHOSPCRPL, whatever
// order they were asked in.
const whoxOrder = "tcuihsnfdlaor"

// whoQuery is WHO's second parameter: "o" (operators only) and the WHOX
// "%fields,token".
type whoQuery struct {
	fields    string // in whoxOrder; "cuhsnf" for a plain WHO
	whox      bool
	token     string
	opersOnly bool
}

func parseWhoQuery(arg string) whoQuery {
	q := whoQuery{fields: "cuhsnf"}
	filter, spec, isWhox := strings.Cut(arg, "%")
	q.opersOnly = strings.ContainsRune(filter, 'o')
	if !isWhox {
		return q
	}
	q.whox = true
	asked, token, _ := strings.Cut(spec, ",")
	asked = strings.ToLower(asked)
	q.fields = ""
	for _, f := range whoxOrder {
		if strings.ContainsRune(asked, f) {
			q.fields += string(f)
		}
	}
	if q.fields == "" {
		q.fields = "n" // no field this server knows: the nick, at least
	}
	q.token = "0"
	if validWhoxToken(token) {
		q.token = token
	}
	return q
}

// validWhoxToken: a WHOX query type is one to three digits.
func validWhoxToken(t string) bool {
	if t == "" || len(t) > 3 {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] < '0' || t[i] > '9' {
			return false
		}
	}
	return true
}

func handleWho(r *request) {
	mask := "*"
	if len(r.msg.Params) > 0 && r.msg.Params[0] != "" && r.msg.Params[0] != "0" {
		mask = r.msg.Params[0]
	}
	arg := ""
	if len(r.msg.Params) > 1 {
		arg = r.msg.Params[1]
	}
	q := parseWhoQuery(arg)
	f := newFinder(r.c)
	if strings.HasPrefix(mask, "#") {
		whoChannel(r, f, q, mask)
	} else {
		whoMask(r, f, q, mask)
	}
	end := mask
	if len(r.msg.Params) > 0 && r.msg.Params[0] != "" {
		end = r.msg.Params[0]
	}
	r.numeric(RPL_ENDOFWHO, safeParam(end), "End of WHO list")
}

// whoChannel lists a channel's occupants, once per account; a hidden
// (+s) channel only to its members, invisible users only to members and
// operators.
func whoChannel(r *request, f *finder, q whoQuery, channel string) {
	c := r.c
	room := roomOf(channel)
	if chat.ValidName(room) != nil {
		return
	}
	info, occ, err := c.srv.core.RoomInfo(f.ctx, room)
	if err != nil {
		return
	}
	_, in := f.myRooms()[room]
	if info.Settings.Hidden && !in {
		return
	}
	type member struct {
		account, modes, door string
	}
	var members []*member
	byAcct := map[string]*member{}
	for _, o := range occ {
		if m := byAcct[o.Account]; m != nil {
			m.modes = mergeModes(m.modes, memberModes(o))
			continue
		}
		m := &member{account: o.Account, modes: memberModes(o)}
		if len(o.Sessions) > 0 {
			m.door = o.Sessions[0].Door
		}
		byAcct[o.Account] = m
		members = append(members, m)
	}
	multi := c.hasCap("multi-prefix")
	f.loadAll()
	for _, m := range members {
		a, ok := f.account(m.account)
		if !ok {
			continue
		}
		u := f.fromAccount(a, f.sessionsOf(m.account))
		u.host = c.hostOf(m.door) // as NAMES and JOIN show it
		if u.invisible && !in && !f.admin && !f.isSelf(u) {
			continue
		}
		if q.opersOnly && !u.admin {
			continue
		}
		r.whoReply(f, u, channelOf(room), prefixes(m.modes, multi), q)
	}
}

// whoMask lists the people a nick or nick!user@host mask matches.
// Invisible (+i) users show only to those sharing a channel with them,
// to operators and to an exact nick.
func whoMask(r *request, f *finder, q whoQuery, mask string) {
	if !hasWildcard(mask) && !strings.ContainsAny(mask, "!@") {
		if u, ok := f.byNick(mask); ok && (!q.opersOnly || u.admin) {
			r.whoReply(f, u, "*", "", q)
		}
		return
	}
	for _, u := range f.online() {
		if !whoMatches(mask, u) || (q.opersOnly && !u.admin) {
			continue
		}
		if u.invisible && !f.admin && !f.isSelf(u) && !f.shares(u) {
			continue
		}
		r.whoReply(f, u, "*", "", q)
	}
}

// whoReply adds one RPL_WHOREPLY (or RPL_WHOSPCRPL with the WHOX fields).
func (r *request) whoReply(f *finder, u *ircUser, channel, prefix string, q whoQuery) {
	server := r.c.srv.cfg.ServerName
	var params []string
	for _, field := range q.fields {
		switch field {
		case 't':
			params = append(params, q.token)
		case 'c':
			params = append(params, channel)
		case 'u':
			params = append(params, u.user)
		case 'i':
			ip := hiddenIP
			if (f.admin || f.isSelf(u)) && u.ip() != "" {
				ip = u.ip()
			}
			params = append(params, ip)
		case 'h':
			params = append(params, u.host)
		case 's':
			params = append(params, server)
		case 'n':
			params = append(params, u.nick)
		case 'f':
			flags := "H"
			if u.away {
				flags = "G"
			}
			if u.admin {
				flags += "*"
			}
			flags += prefix
			if u.bot {
				flags += "B"
			}
			params = append(params, flags)
		case 'd':
			params = append(params, "0")
		case 'l':
			idle, _, _ := u.idle(r.c.srv.cfg.Now())
			params = append(params, strconv.FormatInt(int64(idle/time.Second), 10))
		case 'a':
			acct := "0"
			if u.account != "" {
				acct = u.account
			}
			params = append(params, acct)
		case 'o':
			params = append(params, "0")
		case 'r':
			params = append(params, u.realname)
		}
	}
	if !q.whox {
		r.numeric(RPL_WHOREPLY, append(params, "0 "+u.realname)...)
		return
	}
	if len(params) == 0 {
		return
	}
	// Every field but the real name is one word: a middle parameter.
	r.numeric(RPL_WHOSPCRPL, params...)
}

// --- WHOIS ---

func handleWhois(r *request) {
	p := r.msg.Params
	if len(p) == 0 || p[len(p)-1] == "" {
		r.numeric(ERR_NONICKNAMEGIVEN, "No nickname given")
		return
	}
	// WHOIS [server] nick[,nick]: the box is one server.
	list := p[len(p)-1]
	nicks := strings.Split(list, ",")
	if len(nicks) > maxTargets {
		nicks = nicks[:maxTargets]
	}
	f := newFinder(r.c)
	for _, nick := range nicks {
		if nick == "" {
			continue
		}
		u, ok := f.byNick(nick)
		if !ok {
			r.numeric(ERR_NOSUCHNICK, safeParam(nick), "No such nick/channel")
			continue
		}
		r.whois(f, u)
	}
	r.numeric(RPL_ENDOFWHOIS, safeParam(list), "End of /WHOIS list")
}

func (r *request) whois(f *finder, u *ircUser) {
	c := r.c
	server := c.srv.cfg.ServerName
	r.numeric(RPL_WHOISUSER, u.nick, u.user, u.host, "*", u.realname)
	if u.service {
		r.numeric(RPL_WHOISSERVER, u.nick, server, c.srv.cfg.Network+" account services")
		return
	}
	if chans := r.whoisChannels(f, u); len(chans) > 0 {
		for _, line := range joinLines(chans, " ", listLineMax) {
			r.numeric(RPL_WHOISCHANNELS, u.nick, line)
		}
	}
	info := c.srv.cfg.Network
	if len(u.doors) > 0 {
		info += ", connected by " + strings.Join(u.doors, " and ")
	}
	r.numeric(RPL_WHOISSERVER, u.nick, server, info)
	if u.admin {
		r.numeric(RPL_WHOISOPERATOR, u.nick, "is an IRC operator (an admin of this box)")
	}
	if u.account != "" {
		r.numeric(RPL_WHOISACCOUNT, u.nick, u.account, "is logged in as")
	}
	if u.bot {
		r.numeric(RPL_WHOISBOT, u.nick, "is a bot")
	}
	if u.secure() {
		r.numeric(RPL_WHOISSECURE, u.nick, "is using a secure connection")
	}
	if (f.admin || f.isSelf(u)) && len(u.irc) > 0 {
		r.numeric(RPL_WHOISHOST, u.nick, "is connecting from *@"+u.ip()+" "+u.ip())
		r.numeric(RPL_WHOISMODES, u.nick, "is using modes "+u.irc[0].umodes)
	}
	if u.away {
		r.numeric(RPL_AWAY, u.nick, u.awayMsg)
	}
	if idle, signon, ok := u.idle(c.srv.cfg.Now()); ok {
		r.numeric(RPL_WHOISIDLE, u.nick, strconv.FormatInt(int64(idle/time.Second), 10),
			strconv.FormatInt(signon.Unix(), 10), "seconds idle, signon time")
	}
}

// whoisChannels lists the channels u is in, with her highest (or, with
// multi-prefix, every) prefix; hidden (+s) channels only to their
// members, to u herself and to operators.
func (r *request) whoisChannels(f *finder, u *ircUser) []string {
	if u.account == "" {
		return nil
	}
	c := r.c
	// The rooms: from the sessions when they are all this door's,
	// otherwise by looking through every room.
	var rooms []string
	ircSessions := map[uint64]*chat.Session{}
	for _, ci := range u.irc {
		if ci.sess != nil {
			ircSessions[ci.sess.ID()] = ci.sess
		}
	}
	all := true
	for _, ref := range u.sessions {
		if ircSessions[ref.ID] == nil {
			all = false
		}
	}
	if all {
		seen := map[string]bool{}
		for _, s := range ircSessions {
			for room := range s.RoomsOf() {
				if !seen[room] {
					seen[room] = true
					rooms = append(rooms, room)
				}
			}
		}
	} else {
		list, err := c.srv.core.Rooms(f.ctx)
		if err != nil {
			c.srv.log.Warn("list rooms", "err", err)
		}
		for _, room := range list {
			rooms = append(rooms, room.Name)
		}
	}
	sort.Strings(rooms)
	mine := f.myRooms()
	multi := c.hasCap("multi-prefix")
	var out []string
	for _, room := range rooms {
		info, occ, err := c.srv.core.RoomInfo(f.ctx, room)
		if err != nil {
			continue
		}
		modes, in := "", false
		for _, o := range occ {
			if o.Account == u.account {
				modes, in = mergeModes(modes, memberModes(o)), true
			}
		}
		if !in {
			continue
		}
		if _, member := mine[room]; info.Settings.Hidden && !member && !f.admin && !f.isSelf(u) {
			continue
		}
		out = append(out, prefixes(modes, multi)+channelOf(room))
	}
	return out
}

// --- WHOWAS ---

func handleWhowas(r *request) {
	c := r.c
	p := r.msg.Params
	if len(p) == 0 || p[0] == "" {
		r.numeric(ERR_NONICKNAMEGIVEN, "No nickname given")
		return
	}
	count := 0
	if len(p) > 1 {
		if n, err := strconv.Atoi(p[1]); err == nil && n > 0 {
			count = n
		}
	}
	c.srv.mu.Lock()
	entries := slices.Clone(c.srv.whowas)
	c.srv.mu.Unlock()
	server := c.srv.cfg.ServerName
	nicks := strings.Split(p[0], ",")
	if len(nicks) > maxTargets {
		nicks = nicks[:maxTargets]
	}
	for _, nick := range nicks {
		if nick == "" {
			continue
		}
		found := 0
		for i := len(entries) - 1; i >= 0; i-- {
			e := entries[i]
			if fold(e.nick) != fold(nick) {
				continue
			}
			user := e.account
			if user == "" {
				user = "~" + orDefault(e.user, "u")
			}
			r.numeric(RPL_WHOWASUSER, e.nick, user, e.host, "*", e.realname)
			r.numeric(RPL_WHOISSERVER, e.nick, server, "left "+e.when.UTC().Format(time.RFC1123))
			if found++; count > 0 && found >= count {
				break
			}
		}
		if found == 0 {
			r.numeric(ERR_WASNOSUCHNICK, safeParam(nick), "There was no such nickname")
		}
		r.numeric(RPL_ENDOFWHOWAS, safeParam(nick), "End of WHOWAS")
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// --- LIST ---

// listFilter holds a LIST request's conditions (ELIST=CMNTU); a room is
// listed when it meets every one. Bounds are -1 when not given.
type listFilter struct {
	masks, notMasks            []string // M, N: globs over "#room"; a plain name is an exact mask
	usersAbove, usersBelow     int      // U: ">n", "<n" users
	createdAbove, createdBelow int      // C: "C>n", "C<n" minutes since creation
	topicAbove, topicBelow     int      // T: "T>n", "T<n" minutes since the topic was set
}

// listRoom is what a LIST filter looks at.
type listRoom struct {
	name     string
	users    int
	created  time.Time
	topicAt  time.Time
	hasTopic bool
}

// parseListFilter reads LIST's first parameter: comma-separated channel
// names, masks and ELIST conditions.
func parseListFilter(arg string) (listFilter, error) {
	f := listFilter{usersAbove: -1, usersBelow: -1, createdAbove: -1, createdBelow: -1, topicAbove: -1, topicBelow: -1}
	for _, item := range strings.Split(arg, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var err error
		switch {
		case item[0] == '>':
			f.usersAbove, err = listNumber(item, item[1:])
		case item[0] == '<':
			f.usersBelow, err = listNumber(item, item[1:])
		case len(item) >= 2 && (item[0] == 'C' || item[0] == 'c') && (item[1] == '>' || item[1] == '<'):
			if item[1] == '>' {
				f.createdAbove, err = listNumber(item, item[2:])
			} else {
				f.createdBelow, err = listNumber(item, item[2:])
			}
		case len(item) >= 2 && (item[0] == 'T' || item[0] == 't') && (item[1] == '>' || item[1] == '<'):
			if item[1] == '>' {
				f.topicAbove, err = listNumber(item, item[2:])
			} else {
				f.topicBelow, err = listNumber(item, item[2:])
			}
		case item[0] == '!':
			if item[1:] == "" {
				return f, fmt.Errorf("%q: a negative mask needs a pattern after '!', like !*test*", item)
			}
			f.notMasks = append(f.notMasks, listMask(item[1:]))
		default:
			f.masks = append(f.masks, listMask(item))
		}
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

func listNumber(item, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 1<<30 {
		return 0, fmt.Errorf("%q: expected a whole number after the comparison, like >5, C<60 or T>1440", item)
	}
	return n, nil
}

// listMask makes a LIST mask match against "#room": "foo*" means "#foo*".
func listMask(m string) string {
	m = fold(m)
	if m[0] != '#' && m[0] != '*' && m[0] != '?' {
		m = "#" + m
	}
	return m
}

// match reports whether a room meets the filter at now.
func (f *listFilter) match(room listRoom, now time.Time) bool {
	channel := channelOf(room.name)
	if len(f.masks) > 0 && !slices.ContainsFunc(f.masks, func(m string) bool { return matchGlob(m, channel) }) {
		return false
	}
	if slices.ContainsFunc(f.notMasks, func(m string) bool { return matchGlob(m, channel) }) {
		return false
	}
	if f.usersAbove >= 0 && room.users <= f.usersAbove {
		return false
	}
	if f.usersBelow >= 0 && room.users >= f.usersBelow {
		return false
	}
	age := func(t time.Time) time.Duration { return now.Sub(t) }
	bound := func(n int) time.Duration { return time.Duration(n) * time.Minute }
	if f.createdAbove >= 0 && age(room.created) <= bound(f.createdAbove) {
		return false
	}
	if f.createdBelow >= 0 && age(room.created) >= bound(f.createdBelow) {
		return false
	}
	if f.topicAbove >= 0 || f.topicBelow >= 0 {
		if !room.hasTopic {
			return false
		}
		if f.topicAbove >= 0 && age(room.topicAt) <= bound(f.topicAbove) {
			return false
		}
		if f.topicBelow >= 0 && age(room.topicAt) >= bound(f.topicBelow) {
			return false
		}
	}
	return true
}

// handleList lists rooms: hidden (+s) ones only to their members;
// private (+p) ones to others without their topic.
func handleList(r *request) {
	c := r.c
	arg := ""
	if len(r.msg.Params) > 0 {
		arg = r.msg.Params[0]
	}
	filter, err := parseListFilter(arg)
	r.numeric(RPL_LISTSTART, "Channel", "Users  Name")
	if err != nil {
		r.fail("INVALID_PARAMS", "Cannot read the LIST filter "+err.Error(), safeParam(arg))
		r.numeric(RPL_LISTEND, "End of /LIST")
		return
	}
	ctx := context.Background()
	rooms, err := c.srv.core.Rooms(ctx)
	if err != nil {
		c.srv.log.Error("list rooms", "err", err)
		r.fail("LIST_ERROR", "The room list could not be read; try again", "*")
		r.numeric(RPL_LISTEND, "End of /LIST")
		return
	}
	mine := newFinder(c).myRooms()
	now := c.srv.cfg.Now()
	for _, stored := range rooms {
		info, occ, err := c.srv.core.RoomInfo(ctx, stored.Name)
		if err != nil {
			continue // destroyed meanwhile
		}
		_, member := mine[info.Name]
		if info.Settings.Hidden && !member {
			continue
		}
		accounts := map[string]bool{}
		for _, o := range occ {
			accounts[o.Account] = true
		}
		lr := listRoom{name: info.Name, users: len(accounts), created: info.Created, topicAt: info.TopicAt, hasTopic: info.Topic != ""}
		if !filter.match(lr, now) {
			continue
		}
		topic := info.Topic
		if info.Settings.Private && !member {
			topic = ""
		}
		r.numeric(RPL_LIST, channelOf(info.Name), strconv.Itoa(lr.users), topic)
	}
	r.numeric(RPL_LISTEND, "End of /LIST")
}

// --- USERHOST, ISON ---

func handleUserhost(r *request) {
	var nicks []string
	for _, p := range r.msg.Params {
		nicks = append(nicks, strings.Fields(p)...)
	}
	if len(nicks) > userhostMax {
		nicks = nicks[:userhostMax]
	}
	f := newFinder(r.c)
	var replies []string
	for _, nick := range nicks {
		u, ok := f.byNick(nick)
		if !ok {
			continue
		}
		s := u.nick
		if u.admin {
			s += "*"
		}
		if u.away {
			s += "=-"
		} else {
			s += "=+"
		}
		replies = append(replies, s+u.user+"@"+u.host)
	}
	r.numeric(RPL_USERHOST, strings.Join(replies, " "))
}

func handleIson(r *request) {
	c := r.c
	var online []string
	seen := map[string]bool{}
	size := 0
	for _, p := range r.msg.Params {
		for _, nick := range strings.Fields(p) {
			key := fold(nick)
			if seen[key] {
				continue
			}
			seen[key] = true
			name, ok := nickOnline(c, nick)
			if !ok {
				continue
			}
			if size+len(name)+1 > isonReplyMax {
				break
			}
			size += len(name) + 1
			online = append(online, name)
		}
	}
	r.numeric(RPL_ISON, strings.Join(online, " "))
}

// nickOnline reports whether someone uses nick now, and her nick as the
// server spells it.
func nickOnline(c *conn, nick string) (string, bool) {
	key := fold(nick)
	if key == "nickserv" {
		return "NickServ", true
	}
	if chat.ValidName(key) == nil && len(c.srv.core.Sessions(key)) > 0 {
		return key, true
	}
	for _, h := range c.srv.nickHolders(nick) {
		if ci := h.info(); ci.registered && ci.nick != "" {
			return ci.nick, true
		}
	}
	return "", false
}

// --- MONITOR ---

// handleMonitor implements IRCv3 monitor over the core's presence
// watching: only accounts can be watched; any valid name may be (an
// account made later is seen when it logs in), others are reported
// offline and not kept.
func handleMonitor(r *request) {
	sub := strings.ToUpper(r.msg.Params[0])
	arg := ""
	if len(r.msg.Params) > 1 {
		arg = r.msg.Params[1]
	}
	switch sub {
	case "+":
		if arg == "" {
			r.numeric(ERR_NEEDMOREPARAMS, "MONITOR", "Not enough parameters: MONITOR + nick[,nick]")
			return
		}
		monitorAdd(r, arg)
	case "-":
		if arg == "" {
			r.numeric(ERR_NEEDMOREPARAMS, "MONITOR", "Not enough parameters: MONITOR - nick[,nick]")
			return
		}
		monitorRemove(r, arg)
	case "C":
		monitorClear(r)
	case "L":
		monitorList(r)
	case "S":
		monitorStatus(r)
	default:
		r.fail("INVALID_PARAMS", "Unknown MONITOR subcommand: use +, -, C, L or S", safeParam(r.msg.Params[0]))
	}
}

func monitorAdd(r *request, arg string) {
	c := r.c
	var add, invalid, full []string
	c.mu.Lock()
	for _, t := range strings.Split(arg, ",") {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		acct := fold(t)
		if chat.ValidName(acct) != nil {
			invalid = append(invalid, t)
			continue
		}
		if _, dup := c.monitor[acct]; dup || slices.Contains(add, acct) {
			continue
		}
		if len(c.monitor)+len(add) >= monitorLimit {
			full = append(full, t)
			continue
		}
		add = append(add, acct)
	}
	c.mu.Unlock()
	s := c.session()
	if s == nil {
		r.fail("INTERNAL_ERROR", "Your session is not open; reconnect", "+")
		return
	}
	var now map[string]chat.Presence
	if len(add) > 0 {
		now = s.Watch(add...)
	}
	told := map[string]bool{}
	c.mu.Lock()
	for _, acct := range add {
		told[acct] = now[acct].Show != chat.ShowOffline
		c.monitor[acct] = told[acct]
	}
	c.mu.Unlock()
	f := newFinder(c)
	var on, off []string
	for _, acct := range add {
		if told[acct] {
			on = append(on, c.source(acct, f.firstDoor(acct)))
		} else {
			off = append(off, acct)
		}
	}
	off = append(off, invalid...)
	monitorReplies(r, on, off)
	if len(full) > 0 {
		r.numeric(ERR_MONLISTFULL, strconv.Itoa(monitorLimit), strings.Join(full, ","), "Monitor list is full")
	}
	r.finish()
	// The answer above is the presence when Watch looked. A change right
	// after it may have reached the writer before the client was told
	// the first state: tell the client again if it differs now.
	for _, acct := range add {
		online := c.srv.core.AccountPresence(acct).Show != chat.ShowOffline
		if online == told[acct] {
			continue
		}
		c.mu.Lock()
		_, still := c.monitor[acct]
		if still {
			c.monitor[acct] = online
		}
		me := c.nick
		c.mu.Unlock()
		if !still {
			continue
		}
		server := c.srv.cfg.ServerName
		if online {
			c.sendLine(makeMsg(server, RPL_MONONLINE, me, c.source(acct, f.firstDoor(acct))))
		} else {
			c.sendLine(makeMsg(server, RPL_MONOFFLINE, me, acct))
		}
	}
}

// firstDoor is the door of an account's oldest session ("" if none).
func (f *finder) firstDoor(account string) string {
	if refs := f.sessionsOf(account); len(refs) > 0 {
		return refs[0].Door
	}
	return ""
}

// monitorReplies adds RPL_MONONLINE and RPL_MONOFFLINE replies, as many
// targets per line as fit.
func monitorReplies(r *request, on, off []string) {
	for _, line := range joinLines(on, ",", listLineMax) {
		r.numeric(RPL_MONONLINE, line)
	}
	for _, line := range joinLines(off, ",", listLineMax) {
		r.numeric(RPL_MONOFFLINE, line)
	}
}

func monitorRemove(r *request, arg string) {
	c := r.c
	var drop []string
	c.mu.Lock()
	for _, t := range strings.Split(arg, ",") {
		acct := fold(strings.TrimSpace(t))
		if _, ok := c.monitor[acct]; ok {
			delete(c.monitor, acct)
			drop = append(drop, acct)
		}
	}
	c.mu.Unlock()
	if s := c.session(); s != nil && len(drop) > 0 {
		s.Unwatch(drop...)
	}
}

func monitorClear(r *request) {
	c := r.c
	c.mu.Lock()
	drop := make([]string, 0, len(c.monitor))
	for acct := range c.monitor {
		drop = append(drop, acct)
	}
	clear(c.monitor)
	c.mu.Unlock()
	if s := c.session(); s != nil && len(drop) > 0 {
		s.Unwatch(drop...)
	}
}

func (c *conn) monitored() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := make([]string, 0, len(c.monitor))
	for acct := range c.monitor {
		list = append(list, acct)
	}
	sort.Strings(list)
	return list
}

func monitorList(r *request) {
	for _, line := range joinLines(r.c.monitored(), ",", listLineMax) {
		r.numeric(RPL_MONLIST, line)
	}
	r.numeric(RPL_ENDOFMONLIST, "End of MONITOR list")
}

func monitorStatus(r *request) {
	c := r.c
	f := newFinder(c)
	var on, off []string
	state := map[string]bool{}
	for _, acct := range c.monitored() {
		online := c.srv.core.AccountPresence(acct).Show != chat.ShowOffline
		state[acct] = online
		if online {
			on = append(on, c.source(acct, f.firstDoor(acct)))
		} else {
			off = append(off, acct)
		}
	}
	c.mu.Lock()
	for acct, online := range state {
		if _, ok := c.monitor[acct]; ok {
			c.monitor[acct] = online
		}
	}
	c.mu.Unlock()
	monitorReplies(r, on, off)
}

// --- AWAY, SETNAME ---

// handleAway sets the session's presence: away with the message, or
// available again. Others learn it from the core's presence delivery
// (away-notify, XMPP presence).
func handleAway(r *request) {
	c := r.c
	msg := ""
	if len(r.msg.Params) > 0 {
		msg = truncateUTF8(r.msg.Params[0], awayLen)
	}
	s := c.session()
	if s == nil {
		r.fail("INTERNAL_ERROR", "Your session is not open; reconnect")
		return
	}
	p := chat.Presence{Show: chat.ShowAvailable}
	if msg != "" {
		p = chat.Presence{Show: chat.ShowAway, Status: msg}
	}
	if err := s.SetPresence(p); err != nil {
		r.fail("CANNOT_CHANGE_AWAY", "Your away state could not be changed: "+err.Error())
		return
	}
	c.mu.Lock()
	c.away = msg
	c.mu.Unlock()
	if msg == "" {
		r.numeric(RPL_UNAWAY, "You are no longer marked as being away")
	} else {
		r.numeric(RPL_NOWAWAY, "You have been marked as being away")
	}
}

// handleSetname changes the real name (IRCv3 setname). The reply goes to
// the sender, with or without the capability (as Ergo does).
func handleSetname(r *request) {
	c := r.c
	name := r.msg.Params[0]
	switch {
	case strings.TrimSpace(name) == "":
		r.fail("INVALID_REALNAME", "The real name cannot be empty")
		return
	case len(name) > realnameLen:
		r.fail("INVALID_REALNAME", fmt.Sprintf("The real name is too long: at most %d bytes", realnameLen))
		return
	}
	c.mu.Lock()
	c.realname = name
	c.mu.Unlock()
	src := c.prefix()
	r.send(makeMsg(src, "SETNAME", name))
	// IRC clients with the setname cap that share a channel with this
	// one hear of it (real names are an IRC notion: other doors don't).
	mine := c.session().RoomsOf()
	c.srv.mu.Lock()
	others := make([]*conn, 0, len(c.srv.conns))
	for o := range c.srv.conns {
		if o != c {
			others = append(others, o)
		}
	}
	c.srv.mu.Unlock()
	for _, o := range others {
		os := o.session()
		if os == nil || !o.hasCap("setname") {
			continue
		}
		for room := range os.RoomsOf() {
			if _, shared := mine[room]; shared {
				o.sendLine(makeMsg(src, "SETNAME", name))
				break
			}
		}
	}
}

// --- VERSION, TIME, INFO ---

// forThisServer checks an optional server parameter: the box is the only
// server.
func forThisServer(r *request, idx int) bool {
	if len(r.msg.Params) <= idx || r.msg.Params[idx] == "" {
		return true
	}
	target := r.msg.Params[idx]
	server := r.c.srv.cfg.ServerName
	if matchGlob(target, server) || fold(target) == fold(r.c.currentNick()) {
		return true
	}
	r.numeric(ERR_NOSUCHSERVER, safeParam(target), "No such server: this box is "+server)
	return false
}

func handleVersion(r *request) {
	if !forThisServer(r, 0) {
		return
	}
	s := r.c.srv
	r.numeric(RPL_VERSION, "chatbox-"+s.cfg.Version, s.cfg.ServerName, "chatbox IRC door: one chat shared with XMPP")
	tokens := s.isupport()
	for len(tokens) > 0 {
		n := min(len(tokens), 12)
		r.numeric(RPL_ISUPPORT, append(tokens[:n:n], "are supported by this server")...)
		tokens = tokens[n:]
	}
}

func handleTime(r *request) {
	if !forThisServer(r, 0) {
		return
	}
	s := r.c.srv
	r.numeric(RPL_TIME, s.cfg.ServerName, s.cfg.Now().Format("Monday January 2 2006 -- 15:04:05 -07:00"))
}

func handleInfo(r *request) {
	if !forThisServer(r, 0) {
		return
	}
	s := r.c.srv
	for _, line := range []string{
		"chatbox " + s.cfg.Version + " on " + s.cfg.ServerName,
		"A private chat server in a box: one set of accounts, rooms and",
		"history, shared by its IRC and XMPP doors.",
		"Your nick is your account name; #room is the same room whichever",
		"door people use, and XMPP users show as nick!nick@xmpp." + s.cfg.ServerName + ".",
		"Running since " + s.created.UTC().Format(time.RFC1123) + ".",
	} {
		r.numeric(RPL_INFO, line)
	}
	r.numeric(RPL_ENDOFINFO, "End of /INFO list")
}
