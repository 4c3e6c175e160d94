package irc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"chatbox/services/chat"
)

// Connection registration (Modern IRC "Connection Registration"): NICK,
// USER, PASS, PING, QUIT, and logging in to an account by PASS, SASL
// (sasl.go) or NickServ (nickserv.go).
//
// A nick that is an account's name is that account's for ever: a client
// that takes it without proving the account gets AuthTimeout to log in,
// then is renamed to a guest nick (not disconnected). Until it logs in a
// client may only register, log in, PING and QUIT.

var registrationCommands = map[string]command{
	"CAP":          {fn: handleCap, minParams: 1, preReg: true, unidentified: true},
	"NICK":         {fn: handleNick, preReg: true, unidentified: true},
	"USER":         {fn: handleUser, minParams: 4, preReg: true, unidentified: true},
	"PASS":         {fn: handlePass, minParams: 1, preReg: true, unidentified: true},
	"PING":         {fn: handlePing, preReg: true, unidentified: true},
	"PONG":         {fn: func(*request) {}, preReg: true, unidentified: true},
	"QUIT":         {fn: handleQuit, preReg: true, unidentified: true},
	"AUTHENTICATE": {fn: handleAuthenticate, minParams: 1, preReg: true, unidentified: true},
}

func handleNick(r *request) {
	c := r.c
	if len(r.msg.Params) == 0 || r.msg.Params[0] == "" {
		r.numeric(ERR_NONICKNAMEGIVEN, "No nickname given")
		return
	}
	nick := r.msg.Params[0]
	if !validNick(nick) {
		r.numeric(ERR_ERRONEUSNICKNAME, nick, "Erroneous nickname: 1-30 characters, no spaces or ,*?!@#&:$+%~. and not starting with a digit or '-'")
		return
	}
	c.mu.Lock()
	old, acct, registered := c.nick, c.account, c.state >= stateRegistered
	c.mu.Unlock()
	if acct != "" {
		if fold(nick) != acct {
			r.numeric(ERR_ERRONEUSNICKNAME, nick, "Your nick is your account name, "+acct)
		}
		return
	}
	if c.session() != nil {
		r.numeric(ERR_ERRONEUSNICKNAME, nick, "Guests keep their nick while connected: reconnect to change it, or log in")
		return
	}
	if old == nick {
		return
	}
	if !c.srv.claimNick(nick, c) {
		// Another connection of the same account holds it: a PASS login
		// pending on this one may prove it is the account (then it shares
		// the nick); tryRegister decides.
		c.mu.Lock()
		pending := c.pass != "" && !registered && c.account == ""
		if pending {
			c.passNick = nick
		}
		c.mu.Unlock()
		if !pending {
			r.numeric(ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
			return
		}
		r.finish()
		c.tryRegister()
		return
	}
	sameNick := fold(old) == fold(nick) // only its case changes
	if old != "" && !sameNick {
		c.srv.unclaimNick(old, c)
	}
	prefix := c.prefix()
	c.mu.Lock()
	c.nick = nick
	if !sameNick {
		c.authBy = time.Time{} // a case change does not restart the countdown
	}
	c.mu.Unlock()
	if registered {
		r.send(ircmsg.MakeMessage(nil, prefix, "NICK", nick))
		if !sameNick {
			c.guardAccountNick(r, nick)
		}
		return
	}
	r.finish()
	c.tryRegister()
}

// guardAccountNick starts the login countdown when an unidentified
// client uses an account's name as its nick.
func (c *conn) guardAccountNick(r *request, nick string) bool {
	if _, err := c.srv.core.Account(context.Background(), fold(nick)); err != nil {
		return false
	}
	c.mu.Lock()
	c.authBy = time.Now().Add(c.srv.cfg.AuthTimeout)
	c.mu.Unlock()
	r.notice(fmt.Sprintf("%s is a registered account. Log in within %s (/msg NickServ IDENTIFY password) or you will be renamed.",
		nick, c.srv.cfg.AuthTimeout))
	return true
}

// startGuest opens a guest session for a client that did not log in,
// when the box admits guests: it may then join rooms and speak there.
func (c *conn) startGuest() {
	if !c.srv.cfg.Guests {
		return
	}
	c.mu.Lock()
	if c.sess != nil || c.account != "" {
		c.mu.Unlock()
		return
	}
	nick := c.nick
	info := chat.SessionInfo{Door: "irc", Resource: nick, Addr: c.ip, Mask: nick + "!" + c.userLocked() + "@" + c.host()}
	c.mu.Unlock()
	s, err := c.srv.core.OpenGuest(context.Background(), nick, info, c)
	if err != nil {
		c.sendLine(makeMsg(c.srv.cfg.ServerName, "NOTICE", nick, "You cannot join as a guest: "+err.Error()))
		return
	}
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	s.SetPresence(chat.Presence{Show: chat.ShowAvailable})
	c.sendLine(makeMsg(c.srv.cfg.ServerName, "NOTICE", nick, "You are a guest: you may join rooms and speak there. Log in to send direct messages."))
}

// authTimedOut renames a client that did not prove its account's nick.
func (c *conn) authTimedOut() {
	c.mu.Lock()
	if c.account != "" || c.authBy.IsZero() {
		c.authBy = time.Time{}
		c.mu.Unlock()
		return
	}
	c.authBy = time.Time{}
	c.mu.Unlock()
	c.renameToGuest("You did not log in in time")
}

// renameToGuest moves an unidentified client off an account's nick.
func (c *conn) renameToGuest(why string) {
	prefix := c.prefix()
	var guest string
	for {
		guest = c.srv.nextGuestNick()
		if c.srv.claimNick(guest, c) {
			break
		}
	}
	c.mu.Lock()
	old := c.nick
	c.nick = guest
	registered := c.state >= stateRegistered
	c.mu.Unlock()
	c.srv.unclaimNick(old, c)
	if registered {
		c.sendLine(ircmsg.MakeMessage(nil, c.srv.cfg.ServerName, "NOTICE", guest, why+": you are now "+guest))
		c.sendLine(ircmsg.MakeMessage(nil, prefix, "NICK", guest))
		c.startGuest()
	}
}

func handleUser(r *request) {
	c := r.c
	c.mu.Lock()
	if c.gotUser || c.state >= stateRegistered {
		c.mu.Unlock()
		r.numeric(ERR_ALREADYREGISTERED, "You may not reregister")
		return
	}
	user := r.msg.Params[0]
	if len(user) > 30 {
		user = user[:30]
	}
	user = strings.Map(func(ch rune) rune {
		if ch <= ' ' || ch == '@' || ch == '!' || ch > 0x7e {
			return -1
		}
		return ch
	}, user)
	if user == "" {
		user = "u"
	}
	c.user = user
	c.realname = r.msg.Params[3]
	c.gotUser = true
	c.mu.Unlock()
	r.finish()
	c.tryRegister()
}

func handlePass(r *request) {
	c := r.c
	c.mu.Lock()
	registered := c.state >= stateRegistered
	if !registered {
		c.pass = r.msg.Params[0]
	}
	c.mu.Unlock()
	if registered {
		r.numeric(ERR_ALREADYREGISTERED, "You may not reregister")
	}
}

func handlePing(r *request) {
	token := ""
	if len(r.msg.Params) > 0 {
		token = r.msg.Params[0]
	} else {
		r.numeric(ERR_NOORIGIN, "No origin specified")
		return
	}
	server := r.c.srv.cfg.ServerName
	r.send(ircmsg.MakeMessage(nil, server, "PONG", server, token))
}

func handleQuit(r *request) {
	reason := "Quit"
	if len(r.msg.Params) > 0 && r.msg.Params[0] != "" {
		reason = "Quit: " + r.msg.Params[0]
	}
	r.finish()
	r.c.kill(reason)
}

// tryRegister completes registration once NICK and USER are in and
// capability negotiation (if any) has ended.
func (c *conn) tryRegister() {
	c.mu.Lock()
	// A client that logged in with SASL needs no nick of its own: its
	// account's is taken below (its NICK may have been refused because
	// another connection of the account holds it).
	if c.state >= stateRegistered || (c.nick == "" && c.account == "" && c.passNick == "") || !c.gotUser || c.capBlocking {
		c.mu.Unlock()
		return
	}
	pass, acct, nick := c.pass, c.account, c.nick
	held := nick == "" && acct == ""
	if held {
		nick = c.passNick // held by another connection: PASS must prove it
	}
	c.pass, c.passNick = "", ""
	c.mu.Unlock()
	ctx := context.Background()
	passLogin := false
	if acct == "" && pass != "" {
		name, pw := nick, pass
		if a, p, ok := strings.Cut(pass, ":"); ok && chat.ValidName(chat.Fold(a)) == nil {
			name, pw = a, p
		}
		a, err := c.srv.core.Authenticate(ctx, name, pw, c.ip, "irc")
		if err != nil {
			c.numeric(ERR_PASSWDMISMATCH, "Password incorrect")
			if errors.Is(err, chat.ErrTooManyAttempts) {
				c.kill("Too many failed logins; wait a minute")
			} else {
				c.kill("Password incorrect")
			}
			return
		}
		acct = a.Name
		c.mu.Lock()
		c.account, c.admin = a.Name, a.Admin
		c.mu.Unlock()
		passLogin = true
	}
	if acct != "" && (fold(nick) != acct || held) {
		// The account's nick: take it, renaming an unidentified holder.
		if !c.takeAccountNick(acct) {
			return
		}
	}
	if passLogin {
		c.numeric(RPL_LOGGEDIN, c.prefix(), acct, "You are now logged in as "+acct)
	}
	c.mu.Lock()
	c.state = stateRegistered
	c.mu.Unlock()
	c.sendWelcome()
	if acct != "" {
		c.startSession()
	} else {
		r := &request{c: c}
		guarded := c.guardAccountNick(r, nick)
		if !c.srv.cfg.Guests {
			r.notice("This server is for account holders: log in with /msg NickServ IDENTIFY account password")
		}
		r.finish()
		if !guarded {
			c.startGuest()
		}
	}
}

// takeAccountNick gives c its account's nick, renaming any client that
// holds it without being logged in to that account.
func (c *conn) takeAccountNick(acct string) bool {
	for _, other := range c.srv.nickHolders(acct) {
		if other != c && other.accountName() != acct {
			other.renameToGuest("That nick belongs to an account that just logged in")
		}
	}
	c.mu.Lock()
	old := c.nick
	registered := c.state >= stateRegistered
	c.mu.Unlock()
	prefix := c.prefix()
	if !c.srv.claimNick(acct, c) {
		c.numeric(ERR_NICKNAMEINUSE, acct, "Nickname is already in use")
		c.kill("Could not take the account's nick")
		return false
	}
	if old != "" && fold(old) != acct {
		c.srv.unclaimNick(old, c)
	}
	c.mu.Lock()
	c.nick = acct
	c.authBy = time.Time{}
	c.mu.Unlock()
	if registered && old != acct {
		c.sendLine(ircmsg.MakeMessage(nil, prefix, "NICK", acct))
	}
	return true
}

// login makes an identified connection of account a (after SASL during
// registration, or NickServ IDENTIFY after it).
//
// r, if not nil, is the request that logged in (SASL during registration):
// RPL_LOGGEDIN goes in its reply, under its label.
func (c *conn) login(a chat.Account, r *request) {
	c.mu.Lock()
	if guest := c.sess; guest != nil {
		// A guest who logs in leaves its guest session (and its rooms).
		c.sess = nil
		c.mu.Unlock()
		guest.Close("Logged in")
		c.mu.Lock()
	}
	c.account = a.Name
	c.admin = a.Admin
	registered := c.state >= stateRegistered
	nick := c.nick
	c.mu.Unlock()
	if registered {
		if !c.takeAccountNick(a.Name) {
			return
		}
		c.sendLine(ircmsg.MakeMessage(nil, c.srv.cfg.ServerName, RPL_LOGGEDIN, a.Name, c.prefix(), a.Name,
			"You are now logged in as "+a.Name))
		c.startSession()
		return
	}
	if nick == "" {
		nick = "*"
	}
	line := ircmsg.MakeMessage(nil, c.srv.cfg.ServerName, RPL_LOGGEDIN, nick, nick+"!"+a.Name+"@"+c.host(), a.Name,
		"You are now logged in as "+a.Name)
	if r != nil {
		r.send(line)
		return
	}
	c.sendLine(line)
}

// startSession opens the connection's session in the core, marks it
// present and hands it the direct messages that waited for it.
func (c *conn) startSession() {
	ctx := context.Background()
	c.mu.Lock()
	info := chat.SessionInfo{Account: c.account, Door: "irc", Resource: c.nick, Addr: c.ip,
		Mask: c.nick + "!" + c.userLocked() + "@" + c.host()}
	admin := c.admin
	c.mu.Unlock()
	c.dmu.Lock()
	c.directSeen, c.directRecord = map[int64]struct{}{}, true
	c.dmu.Unlock()
	defer func() {
		// The set stays: a live copy of a waiting message may still come.
		c.dmu.Lock()
		c.directRecord = false
		c.dmu.Unlock()
	}()
	s, err := c.srv.core.Open(ctx, info, c)
	if err != nil {
		c.numeric(ERR_YOUREBANNEDCREEP, "Cannot start your session: "+err.Error())
		c.kill(err.Error())
		return
	}
	c.mu.Lock()
	c.sess = s
	if admin {
		c.modes['o'] = true
	}
	c.mu.Unlock()
	if admin {
		c.numeric(RPL_YOUREOPER, "You are an operator of this box")
		c.sendLine(makeMsg(c.prefix(), "MODE", c.currentNick(), "+o"))
	}
	s.SetPresence(chat.Presence{Show: chat.ShowAvailable})
	c.deliverMemos(ctx, s)
}

// deliverMemos sends the direct messages that waited while the account
// had no session, with their original time, and acknowledges them.
func (c *conn) deliverMemos(ctx context.Context, s *chat.Session) {
	for {
		msgs, err := c.srv.core.Offline(ctx, s, 100)
		if err != nil {
			c.srv.log.Warn("offline messages", "account", s.Account(), "err", err)
			return
		}
		if len(msgs) == 0 {
			return
		}
		for i := range msgs {
			c.Deliver(chat.Delivery{Kind: chat.DelMessage, Message: &msgs[i], From: chat.SessionRef{Account: msgs[i].From}})
		}
		if c.isDead() {
			return // not delivered: the messages stay queued for next time
		}
		if err := c.srv.core.AckOffline(ctx, s, msgs[len(msgs)-1].Seq); err != nil {
			c.srv.log.Warn("acknowledge offline messages", "account", s.Account(), "err", err)
			return
		}
	}
}
