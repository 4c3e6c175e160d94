package xmpp

import (
	"context"
	"errors"
	"time"

	"chatbox/services/chat"
)

// XEP-0401 Easy User Onboarding, with the pre-authenticated registration
// of XEP-0445 and the preauth token of XEP-0379.
//
// Invitations are the core's (chat.AccountInvite: a random token, an
// expiry, a number of uses, the inviter as the new account's contact);
// `chatbox invite` makes them from the command line, and accounts make
// them here with two XEP-0050 commands on the domain
// (xep0050_commands.go):
//
//   - urn:xmpp:invite#invite: an invitation for one new account, which
//     becomes a mutual contact of the inviter (subscription both). Any
//     account may, when the box's registration policy is "invite" or
//     "open" (Config.InvitesOpen); box admins always.
//   - urn:xmpp:invite#create-account (box admins): a form with an
//     optional name for the new account and whether it becomes the
//     admin's contact.
//
// Both complete with a result form: uri (xmpp:<domain>?register;preauth=
// <token>, with the reserved name as localpart if there is one) and
// expire (XEP-0082). landing-url is left out: the box has no web
// address for invitations yet.
//
// Before authentication the stream features announce
// <register xmlns='urn:xmpp:invite'/> (and XEP-0445's
// urn:xmpp:ibr-token:0); a client presents the token with
// <iq type='set'><preauth xmlns='urn:xmpp:pars:0' token='…'/></iq>. A
// valid token is acknowledged and marks the connection (conn.invite):
// XEP-0077 registration (xep0077_register.go) is then allowed on it,
// whatever the registration policy, and redeems the invitation
// (chat.Core.RedeemAccountInvite: one use and the account in one
// transaction). An unknown, used-up or expired token is item-not-found
// and counts as a failed login of the address. After the registration
// the new account and the invitation's contact are in each other's
// rosters with subscription both (RFC 6121 roster documents, pushed to
// the contact's resources).
//
// Left out: XEP-0379 roster invitations between existing accounts
// (xmpp:user@domain?roster;preauth=…, a preauth in a subscription
// request), password-reset invitations, and a limit on how many
// invitations one account makes.

const (
	nsInvite            = "urn:xmpp:invite"
	nsInviteInvite      = nsInvite + "#invite"
	nsInviteCreate      = nsInvite + "#create-account"
	nsPARS              = "urn:xmpp:pars:0"
	nsIBRToken          = "urn:xmpp:ibr-token:0"
	maxInviteTokenBytes = 64
)

func registerInvites(f *features, s *Server) {
	f.preAuthIQs[nsPARS] = s.preauthIQ
	f.preAuthFeatures = append(f.preAuthFeatures,
		func(*conn) *Element { return El(nsInvite, "register") },
		func(*conn) *Element { return El(nsIBRToken, "register") })
	f.serverFeatures = append(f.serverFeatures, nsInvite)
}

// preauthIQ takes an invitation token before authentication (XEP-0401
// §4, XEP-0445 §3).
func (s *Server) preauthIQ(c *conn, iq *Element) {
	typ := iq.Get("type")
	if typ == "result" || typ == "error" {
		return
	}
	if iq.Get("id") == "" || typ != "set" {
		preAuthError(c, iq, "bad-request", "present an invitation with an IQ set that has an id")
		return
	}
	if err := s.core.LoginAllowed(c.ip); err != nil {
		preAuthError(c, iq, "resource-constraint", err.Error())
		return
	}
	token := iq.First().Get("token")
	if token == "" || len(token) > maxInviteTokenBytes {
		s.core.LoginFailed(c.ip, "", "xmpp")
		preAuthError(c, iq, "item-not-found", "that is not an invitation of this server: ask for a new one")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.core.AccountInvite(ctx, token)
	switch {
	case errors.Is(err, chat.ErrNotFound):
		s.core.LoginFailed(c.ip, "", "xmpp")
		preAuthError(c, iq, "item-not-found", "this invitation is unknown, used up or expired: ask for a new one")
	case err != nil:
		s.log.Error("look up invitation", "err", err)
		preAuthError(c, iq, "internal-server-error", "the invitation could not be checked; try again")
	default:
		c.invite = token
		preAuthReply(c, iq, nil)
	}
}

// registerInvited creates an account with the connection's invitation
// (XEP-0077 on an invited stream) and makes it a mutual contact of the
// invitation's contact.
func (s *Server) registerInvited(ctx context.Context, c *conn, name, password string) error {
	a, inv, err := s.core.RedeemAccountInvite(ctx, c.invite, name, password)
	if err != nil {
		return err
	}
	c.invite = ""
	s.log.Info("invitation redeemed", "account", a.Name, "creator", inv.Creator, "contact", inv.Contact, "addr", c.ip)
	if inv.Contact != "" && inv.Contact != a.Name {
		if err := s.befriend(ctx, inv.Contact, a.Name); err != nil {
			s.log.Error("add invitation contacts", "account", a.Name, "contact", inv.Contact, "err", err)
		}
	}
	return nil
}

// befriend puts accounts x and y in each other's rosters with
// subscription both (XEP-0401: the inviter and the invited), pushes the
// items to their resources and lets their available resources see each
// other's presence.
//
// The roster service (rfc6121_roster.go) keeps no handle the other
// feature files can reach, so this works through its documents with a
// rosters value of its own: its lock is not the roster service's, which
// matters only for a change to the same item at the same instant (the
// account y is new).
func (s *Server) befriend(ctx context.Context, x, y string) error {
	r := &rosters{srv: s}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range [][2]string{{x, y}, {y, x}} {
		owner, contact := p[0], r.addr(p[1])
		before, err := r.item(ctx, owner, contact.Bare())
		if err != nil {
			return err
		}
		after := before.clone()
		if after == nil {
			if err := r.roomFor(ctx, owner); err != nil {
				return err
			}
			after = &rosterItem{JID: contact.Bare()}
		}
		after.Sub = "both"
		after.Ask, after.PendingIn, after.PendingX, after.Approved, after.Hidden = false, false, "", false, false
		if err := r.save(ctx, owner, before, after); err != nil {
			return err
		}
		r.gainedTo(owner, contact)
	}
	s.presenceOf(x, s.availableSessions(y), false)
	s.presenceOf(y, s.availableSessions(x), false)
	return nil
}

// isBoxAdmin says whether the session's account administers the box.
func (s *Server) isBoxAdmin(ss *session) bool {
	ctx, cancel := ss.ctx()
	defer cancel()
	a, err := s.core.Account(ctx, ss.account)
	return err == nil && a.Admin
}

// inviteCommands are XEP-0401's ad-hoc commands.
func (s *Server) inviteCommands() []adhocCommand {
	return []adhocCommand{
		{
			node: nsInviteInvite, name: "Invite someone to this server",
			may: func(ss *session) bool { return s.cfg.InvitesOpen() || s.isBoxAdmin(ss) },
			run: func(ss *session, _ *Element) adhocStep {
				return s.makeInvite(ss, chat.InviteRequest{Creator: ss.account, Contact: ss.account})
			},
		},
		{
			node: nsInviteCreate, name: "Create an account invitation",
			may: s.isBoxAdmin,
			run: s.createAccountCommand,
		},
	}
}

// createAccountCommand asks for an optional name and whether the new
// account becomes the admin's contact, then makes the invitation.
func (s *Server) createAccountCommand(ss *session, form *Element) adhocStep {
	if form == nil {
		return adhocStep{next: true, form: xdataForm("form", "", "Create an account invitation",
			El(nsXData, "instructions").Add("Leave the username empty to let the invited person choose one."),
			xdataField("username", "text-single", "Username of the new account (optional)"),
			xdataField("roster-subscription", "boolean", "Add the new account to my contacts", "0"))}
	}
	v := xdataValues(form)
	r := chat.InviteRequest{Creator: ss.account}
	if len(v["username"]) > 0 {
		r.Account = v["username"][0]
	}
	if xdataBool(v["roster-subscription"]) {
		r.Contact = ss.account
	}
	return s.makeInvite(ss, r)
}

// makeInvite creates an invitation and answers its result form.
func (s *Server) makeInvite(ss *session, r chat.InviteRequest) adhocStep {
	ctx, cancel := ss.ctx()
	defer cancel()
	inv, err := s.core.CreateAccountInvite(ctx, r)
	switch {
	case errors.Is(err, chat.ErrBadName):
		return adhocError("not-acceptable", err.Error())
	case errors.Is(err, chat.ErrExists):
		return adhocError("conflict", err.Error()+": choose another name or leave it empty")
	case err != nil:
		s.log.Error("create invitation", "account", ss.account, "err", err)
		return adhocError("internal-server-error", "the invitation could not be made; try again")
	}
	s.log.Info("invitation created", "account", ss.account, "expires", inv.Expires, "via", "XEP-0401")
	return adhocStep{form: xdataForm("result", "", "Invitation created",
		xdataField("uri", "text-single", "Invitation link (open it with an XMPP app)", s.inviteURI(inv)),
		xdataField("expire", "text-single", "Valid until", inv.Expires.UTC().Format(time.RFC3339)))}
}

// inviteURI is an invitation's XMPP URI (XEP-0401 §3, RFC 5122
// "register" query with the preauth token).
func (s *Server) inviteURI(inv chat.AccountInvite) string {
	return InviteURI(s.cfg.Domain, inv)
}

// InviteURI is the XMPP URI of an invitation to the box at domain:
// xmpp:<domain>?register;preauth=<token>, with the reserved name as
// localpart if the invitation has one (`chatbox invite` prints it).
func InviteURI(domain string, inv chat.AccountInvite) string {
	to := domain
	if inv.Account != "" {
		to = inv.Account + "@" + domain
	}
	return "xmpp:" + to + "?register;preauth=" + inv.Token
}
