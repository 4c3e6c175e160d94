package xmpp

import (
	"context"
	"errors"
	"strings"
	"time"

	"chatbox/services/chat"
)

// XEP-0077 In-Band Registration.
//
// Before authentication, while the box's registration is open (its
// policy says open, or its pairing window is open: asked at each
// request), the stream features offer <register/> and a client gets the
// form (username, password) and creates an account with it (§3.1); a
// stream that presented a valid invitation (XEP-0401, xep0401_invites.go)
// may too, whatever the policy, and its registration redeems it. Names
// follow chat.ValidName and passwords chat.MinPasswordLength:
// not-acceptable says what is wrong; a taken name is a conflict; closed
// registration is not-allowed. A connection may try a few times and
// create one account; taken names count as failed logins of its address
// (core.LoginFailed), and an address over that bound is refused with
// resource-constraint until it cools down.
//
// After authentication an account changes its password (§3.3: username
// and password, to the server) and removes itself (§3.2: <remove/>; the
// result is sent, then the account is deleted and every stream of it
// ends with not-authorized). Registration with data forms (XEP-0004),
// CAPTCHAs (XEP-0158) and the unauthenticated password change are left
// out.

const (
	nsRegister        = "jabber:iq:register"
	nsRegisterFeature = "http://jabber.org/features/iq-register"
	// maxRegisterTries bounds registration attempts on one connection.
	maxRegisterTries = 3
)

const registerInstructions = "Choose a username and a password for your account on this server. " +
	"The username is 1 to 30 characters: a letter a-z first, then letters, digits, '_' or '-'. " +
	"The password needs at least 8 characters."

func registerRegister(f *features, s *Server) {
	f.preAuthFeatures = append(f.preAuthFeatures, func(c *conn) *Element {
		if !s.cfg.RegistrationOpen() && c.invite == "" {
			return nil
		}
		return El(nsRegisterFeature, "register")
	})
	f.preAuthIQs[nsRegister] = s.registerPreAuth
	f.serverIQ[nsRegister] = s.registerAccountIQ
	f.serverFeatures = append(f.serverFeatures, nsRegister)
}

// preAuthReply answers a pre-authentication IQ (no addresses: the
// client has none yet).
func preAuthReply(c *conn, iq *Element, payload *Element) {
	c.sendEl(El(nsClient, "iq", "type", "result", "id", iq.Get("id")).Add(payload))
}

func preAuthError(c *conn, iq *Element, cond, text string) {
	c.sendEl(El(nsClient, "iq", "type", "error", "id", iq.Get("id")).Add(errorEl("", cond, text)))
}

// registerPreAuth answers jabber:iq:register before authentication.
func (s *Server) registerPreAuth(c *conn, iq *Element) {
	typ := iq.Get("type")
	if typ == "result" || typ == "error" {
		return
	}
	if iq.Get("id") == "" || (typ != "get" && typ != "set") {
		preAuthError(c, iq, "bad-request", "an IQ get or set needs an id")
		return
	}
	if !s.cfg.RegistrationOpen() && c.invite == "" { // an invitation opens it (XEP-0401)
		preAuthError(c, iq, "not-allowed", "registration is closed on this server: ask its owner for an account or an invitation")
		return
	}
	if typ == "get" {
		preAuthReply(c, iq, El(nsRegister, "query").Add(
			El(nsRegister, "instructions").Add(registerInstructions),
			El(nsRegister, "username"),
			El(nsRegister, "password")))
		return
	}
	q := iq.First()
	if q.Child(nsRegister, "remove") != nil {
		preAuthError(c, iq, "not-authorized", "log in first to remove your account")
		return
	}
	if c.regTries >= maxRegisterTries {
		preAuthError(c, iq, "policy-violation", "no more registrations on this connection; reconnect to try again")
		return
	}
	c.regTries++
	if err := s.core.LoginAllowed(c.ip); err != nil {
		preAuthError(c, iq, "resource-constraint", err.Error())
		return
	}
	if q.Child(nsRegister, "username") == nil || q.Child(nsRegister, "password") == nil {
		preAuthError(c, iq, "not-acceptable", "both <username/> and <password/> are required")
		return
	}
	name := chat.Fold(strings.TrimSpace(q.ChildText(nsRegister, "username")))
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var err error
	if c.invite != "" {
		err = s.registerInvited(ctx, c, name, q.ChildText(nsRegister, "password")) // XEP-0401
	} else {
		err = s.core.CreateAccount(ctx, name, q.ChildText(nsRegister, "password"), false)
	}
	switch {
	case errors.Is(err, chat.ErrNotFound): // the invitation
		preAuthError(c, iq, "not-allowed", "your invitation is used up or expired: ask for a new one")
	case errors.Is(err, chat.ErrForbidden): // the invitation reserves another name
		preAuthError(c, iq, "not-acceptable", err.Error())
	case errors.Is(err, chat.ErrExists):
		s.core.LoginFailed(c.ip, name, "xmpp")
		preAuthError(c, iq, "conflict", "the name "+name+" is taken; choose another")
	case errors.Is(err, chat.ErrBadName), errors.Is(err, chat.ErrWeakPassword):
		preAuthError(c, iq, "not-acceptable", err.Error())
	case err != nil:
		s.log.Error("register account", "account", name, "err", err)
		preAuthError(c, iq, "internal-server-error", "the account could not be created; try again")
	default:
		c.regTries = maxRegisterTries // one account per connection
		s.log.Info("account registered", "account", name, "via", "XEP-0077", "addr", c.ip)
		preAuthReply(c, iq, nil)
	}
}

// registerAccountIQ answers jabber:iq:register from a logged-in account.
func (s *Server) registerAccountIQ(ss *session, iq *Element) {
	q := iq.First()
	switch iq.Get("type") {
	case "get":
		ss.result(iq, El(nsRegister, "query").Add(
			El(nsRegister, "instructions").Add("You are registered. Send a new password with your username to change it, or <remove/> to delete your account."),
			El(nsRegister, "registered"),
			El(nsRegister, "username").Add(ss.account),
			El(nsRegister, "password")))
	case "set":
		if q.Child(nsRegister, "remove") != nil {
			s.removeAccount(ss, iq)
			return
		}
		if q.Child(nsRegister, "username") == nil || q.Child(nsRegister, "password") == nil {
			ss.replyErr(iq, "bad-request", "a password change needs both <username/> and <password/>")
			return
		}
		if name := chat.Fold(strings.TrimSpace(q.ChildText(nsRegister, "username"))); name != ss.account {
			ss.replyErr(iq, "not-allowed", "you may change only your own password: the username must be "+ss.account)
			return
		}
		ctx, cancel := ss.ctx()
		defer cancel()
		err := s.core.SetPassword(ctx, ss.account, q.ChildText(nsRegister, "password"))
		switch {
		case errors.Is(err, chat.ErrWeakPassword):
			ss.replyErr(iq, "not-acceptable", err.Error())
		case err != nil:
			s.log.Error("change password", "account", ss.account, "err", err)
			ss.replyErr(iq, "internal-server-error", "the password could not be changed; try again")
		default:
			s.log.Info("password changed", "account", ss.account, "via", "XEP-0077")
			ss.result(iq, nil)
		}
	default:
		ss.replyErr(iq, "bad-request", "")
	}
}

// removeAccount deletes the session's account (§3.2): the result goes
// out first, then the deletion ends every session of the account.
func (s *Server) removeAccount(ss *session, iq *Element) {
	ss.result(iq, nil)
	ctx, cancel := ss.ctx()
	defer cancel()
	if err := s.core.DeleteAccount(ctx, ss.account); err != nil {
		s.log.Error("remove account", "account", ss.account, "err", err)
		ss.kick(&streamError{Condition: "internal-server-error", Text: "removing your account failed; log in and try again"})
		return
	}
	s.features.avatars.forget(ss.account)
	s.log.Info("account removed", "account", ss.account, "via", "XEP-0077")
}
