package irc

// Operator commands (Modern IRC: OPER, KILL, WALLOPS; KLINE and UNKLINE
// as Ergo and other servers spell them) for the box's admin accounts.
//
// A box admin (chat.Account.Admin) is an IRC operator as soon as she
// logs in: the server gives her +o, and there is no OPER password. She
// may drop it with MODE nick -o and take it back with OPER. In rooms box
// admins already act as owners (the core's rule), so there is no separate
// "channel override".
//
// K-lines ban an IP address or a CIDR range (with or without a leading
// "*@"): new connections from it are refused (server.go) and the ones
// already open are closed.
//
// Left out: K-lines are kept in memory only (lost when the server
// restarts) and have no duration; KILL and KLINE reach IRC connections
// only, not the XMPP door's sessions; user@host K-lines (every user here
// is an account: lock an account out with the CLI instead); server
// notices (snomasks), REHASH, DIE.

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Numerics used here that numerics.go does not list.
const errNoOperHost = "491"

// maxOperReason bounds KILL and KLINE reasons (as KICKLEN).
const maxOperReason = 390

var operCommands = map[string]command{
	"OPER":    {fn: handleOper},
	"KILL":    {fn: handleKill, minParams: 1},
	"KLINE":   {fn: handleKline},
	"UNKLINE": {fn: handleUnkline, minParams: 1},
	"WALLOPS": {fn: handleWallops, minParams: 1},
}

// isOperator reports whether the client is an IRC operator now: a box
// admin who has not dropped +o.
func (c *conn) isOperator() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.admin && c.modes['o']
}

// needOperator answers ERR_NOPRIVILEGES to a client that is not an
// operator and reports whether it is one.
func needOperator(r *request) bool {
	if r.c.isOperator() {
		return true
	}
	r.numeric(ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator (only the box's admin accounts are)")
	return false
}

// operDisconnect ends a connection with an ERROR line and, once that is
// written, closes the socket, so that the connection's reader stops (and
// its session leaves its rooms) even if the client keeps the connection
// open.
func (c *conn) operDisconnect(reason string) {
	c.quit(reason)
	go func() {
		<-c.done
		c.nc.Close()
	}()
}

// snapshotConns returns the server's connections now.
func (s *Server) snapshotConns() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	return cs
}

func handleOper(r *request) {
	c := r.c
	c.mu.Lock()
	admin, had := c.admin, c.modes['o']
	if admin {
		c.modes['o'] = true
	}
	nick := c.nick
	c.mu.Unlock()
	if !admin {
		r.numeric(errNoOperHost, "No operator access: only the box's admin accounts are IRC operators, and they are as soon as they log in (there is no OPER password)")
		return
	}
	if !had {
		r.send(makeMsg(c.prefix(), "MODE", nick, "+o"))
	}
	r.numeric(RPL_YOUREOPER, "You are an operator of this box (box admins are operators as soon as they log in; OPER needs no password)")
}

// handleKill disconnects every IRC connection using a nick.
func handleKill(r *request) {
	if !needOperator(r) {
		return
	}
	c := r.c
	nick := r.msg.Params[0]
	reason := "No reason given"
	if len(r.msg.Params) > 1 && strings.TrimSpace(r.msg.Params[1]) != "" {
		reason = truncateAtRune(r.msg.Params[1], maxOperReason)
	}
	others := 0
	for _, ref := range c.srv.core.Sessions(nick) {
		if ref.Door != "irc" {
			others++
		}
	}
	victims := c.srv.nickHolders(nick)
	if len(victims) == 0 {
		if others > 0 {
			r.fail("CANNOT_KILL", fmt.Sprintf("%s has no IRC connection, only %d session(s) through another door (XMPP), which KILL cannot close", nick, others), nick)
			return
		}
		r.numeric(ERR_NOSUCHNICK, nick, "No such nick/channel")
		return
	}
	me := c.currentNick()
	src := c.prefix()
	quitReason := "Killed (" + me + " (" + reason + "))"
	for _, v := range victims {
		v.sendLine(makeMsg(src, "KILL", v.currentNick(), quitReason))
		v.operDisconnect(quitReason)
	}
	c.srv.log.Info("kill", "oper", c.accountName(), "nick", nick, "connections", len(victims), "reason", reason)
	msg := fmt.Sprintf("Killed %d IRC connection(s) of %s", len(victims), nick)
	if others > 0 {
		msg += fmt.Sprintf("; %d session(s) through another door (XMPP) stay connected", others)
	}
	r.notice(msg)
}

// parseKlineMask turns "1.2.3.4", "*@1.2.3.4", "10.0.0.0/8" or an IPv6
// address or range into the canonical key of Server.klines.
func parseKlineMask(m string) (string, error) {
	m = strings.TrimPrefix(strings.TrimPrefix(m, "*!"), "*@")
	if strings.Contains(m, "/") {
		p, err := netip.ParsePrefix(m)
		if err != nil {
			return "", fmt.Errorf("%q is not an address range: give one like 192.168.1.0/24 or 2001:db8::/48", m)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		if p.IsSingleIP() {
			return p.Addr().String(), nil
		}
		return p.String(), nil
	}
	a, err := netip.ParseAddr(m)
	if err != nil {
		return "", fmt.Errorf("%q is not an IP address: give one like 192.168.1.20, or a range like 192.168.1.0/24 (user@host masks do not apply: users here are accounts)", m)
	}
	return a.Unmap().WithZone("").String(), nil
}

// klineCovers reports whether a K-line key (address or range) covers ip.
func klineCovers(mask, ip string) bool {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return mask == ip
	}
	a = a.Unmap().WithZone("")
	if strings.Contains(mask, "/") {
		p, err := netip.ParsePrefix(mask)
		return err == nil && p.Contains(a)
	}
	m, err := netip.ParseAddr(mask)
	return err == nil && m == a
}

// klinedLocked returns the reason ip is banned, if it is; s.mu held.
// (The accept loop calls it for every new connection.)
func (s *Server) klinedLocked(ip string) (string, bool) {
	if reason, ok := s.klines[ip]; ok {
		return reason, true
	}
	for mask, reason := range s.klines {
		if klineCovers(mask, ip) {
			return reason, true
		}
	}
	return "", false
}

// handleKline bans an address or range, or lists the bans (KLINE LIST, or
// KLINE alone). "KLINE MYSELF <mask>" is needed to ban one's own address.
func handleKline(r *request) {
	if !needOperator(r) {
		return
	}
	c := r.c
	params := r.msg.Params
	if len(params) == 0 || strings.EqualFold(params[0], "LIST") {
		listKlines(r)
		return
	}
	myself := strings.EqualFold(params[0], "MYSELF")
	if myself {
		params = params[1:]
		if len(params) == 0 {
			r.numeric(ERR_NEEDMOREPARAMS, "KLINE", "Not enough parameters: KLINE [MYSELF] <address or range> [:reason]")
			return
		}
	}
	mask, err := parseKlineMask(params[0])
	if err != nil {
		r.fail("INVALID_MASK", err.Error(), params[0])
		return
	}
	reason := "No reason given"
	if len(params) > 1 && strings.TrimSpace(params[1]) != "" {
		reason = truncateAtRune(params[1], maxOperReason)
	}
	if klineCovers(mask, c.ip) && !myself {
		r.fail("WOULD_BAN_YOURSELF", fmt.Sprintf("%s covers your own address %s; to ban it anyway, use KLINE MYSELF %s", mask, c.ip, mask), mask)
		return
	}
	s := c.srv
	s.mu.Lock()
	s.klines[mask] = reason
	var victims []*conn
	for other := range s.conns {
		if klineCovers(mask, other.ip) {
			victims = append(victims, other)
		}
	}
	s.mu.Unlock()
	for _, v := range victims {
		v.numeric(ERR_YOUREBANNEDCREEP, "You are banned from this server: "+reason)
		v.operDisconnect("K-lined: " + reason)
	}
	s.log.Info("kline", "oper", c.accountName(), "mask", mask, "disconnected", len(victims), "reason", reason)
	r.notice(fmt.Sprintf("K-line added for %s (%s); %d connection(s) closed. It lasts until the server restarts; UNKLINE %s removes it",
		mask, reason, len(victims), mask))
}

func listKlines(r *request) {
	s := r.c.srv
	s.mu.Lock()
	masks := make([]string, 0, len(s.klines))
	reasons := make(map[string]string, len(s.klines))
	for m, why := range s.klines {
		masks = append(masks, m)
		reasons[m] = why
	}
	s.mu.Unlock()
	sort.Strings(masks)
	for _, m := range masks {
		r.notice("K-line " + m + ": " + reasons[m])
	}
	r.notice(fmt.Sprintf("End of K-lines (%d)", len(masks)))
}

func handleUnkline(r *request) {
	if !needOperator(r) {
		return
	}
	c := r.c
	mask, err := parseKlineMask(r.msg.Params[0])
	if err != nil {
		r.fail("INVALID_MASK", err.Error(), r.msg.Params[0])
		return
	}
	s := c.srv
	s.mu.Lock()
	_, ok := s.klines[mask]
	delete(s.klines, mask)
	s.mu.Unlock()
	if !ok {
		r.fail("NO_SUCH_KLINE", "There is no K-line for "+mask+" (KLINE LIST shows them)", mask)
		return
	}
	s.log.Info("unkline", "oper", c.accountName(), "mask", mask)
	r.notice("K-line removed for " + mask)
}

// handleWallops sends a message to every client with user mode +w.
func handleWallops(r *request) {
	if !needOperator(r) {
		return
	}
	c := r.c
	line := makeMsg(c.prefix(), "WALLOPS", r.msg.Params[0])
	for _, other := range c.srv.snapshotConns() {
		other.mu.Lock()
		wants := other.state >= stateRegistered && other.modes['w']
		other.mu.Unlock()
		if wants {
			other.sendLine(line)
		}
	}
}
