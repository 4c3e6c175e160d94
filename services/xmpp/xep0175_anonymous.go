package xmpp

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"chatbox/services/chat"
)

// This file is guest access: SASL ANONYMOUS (RFC 4505, XEP-0175) on the
// guest host guest.<domain>, when the box admits guests
// (registration.guests). A stream to the guest host offers ANONYMOUS
// only (no registration, no invitations); the guest gets a random JID
// guest-xxxxxxxx@guest.<domain>/resource and a core guest session
// (chat.Core.OpenGuest) named after that localpart, which is how IRC
// shows it. A guest may only use rooms (rooms.<domain>: join under a
// nickname the core checks against account names, speak, leave) and
// ping or disco the box; every other stanza gets <forbidden/> (IQs and
// messages) or is dropped (presence), so a guest has no roster, cannot
// message accounts directly, and keeps no data: its session and
// pseudo-account end when it leaves (what it said in rooms stays in their
// history, as for accounts). Left out: the ANONYMOUS trace token (not
// used), stream management resumption for guests (a guest that drops
// comes back as a new guest).
//
// The guest's name (its JID's localpart and the core's pseudo-account,
// which IRC shows as its nick) is the resource it asks to bind when that
// is a valid name (chat.ValidName after folding: the web chat binds the
// nickname the guest typed) that no account and no other guest online
// has; otherwise it is the random guest-xxxxxxxx. So the nick IRC shows
// never clashes: accounts' nicks are their names, IRC guests' and XMPP
// guests' share the one ~name namespace the core keeps unique.
//
// In event mode guests may also ask upload.<domain> for slots (XEP-0363)
// to share pictures; outside it, files are for accounts. Web clients look
// for the upload service in their own host's disco#items (XEP-0030), so
// guest.<domain> answers disco: a server identity, and as items the rooms
// and, in event mode, the upload service. A room moderator
// bans a guest with the XEP-0045 outcast affiliation on
// name@guest.<domain> (the name IRC shows): the core bans the
// pseudo-account (chat.Core.BanGuest), which both doors honour.

// guestDomain is the host guests log in to.
func (s *Server) guestDomain() string { return "guest." + s.cfg.Domain }

// saslAnonymous logs a guest in (RFC 4505): only offered on the guest
// host, so c.guest is set.
func (c *conn) saslAnonymous() {
	if !c.guest {
		c.saslFailure("invalid-mechanism", "ANONYMOUS is for guest."+c.srv.cfg.Domain)
		return
	}
	if c.srv.core.GuestsClosed() { // event mode: the owner closed guest access
		c.saslFailure("not-authorized", "guest access is closed: ask the box's owner, or log in with an account")
		return
	}
	c.succeed("guest-"+randomID()[:8], nil)
}

// guest says whether the session is a guest's.
func (ss *session) guest() bool { return chat.IsGuest(ss.account) }

// guestMay lets through what a guest may send, and answers or drops the
// rest.
func (ss *session) guestMay(el *Element) bool {
	to := el.Get("to")
	a, _ := parseJID(to)
	switch {
	case to != "" && strings.EqualFold(a.Domain, ss.srv.mucDomain()):
		return true // rooms
	case el.Local == "iq" && to != "" && strings.EqualFold(a.Domain, ss.srv.uploadDomain()) && ss.srv.guestMayUpload():
		return true // event mode: upload slots
	case el.Local == "iq" && a.Local == "" && a.Resource == "" && strings.EqualFold(a.Domain, ss.srv.guestDomain()) && guestIQ(el):
		ss.guestHostIQ(el)
		return false // answered here
	case el.Local == "iq" && to != "" && a.Local == "" && a.Resource == "" &&
		strings.EqualFold(a.Domain, ss.srv.cfg.Domain) && guestIQ(el):
		return true // ping, disco of the box
	case el.Get("type") == "error", el.Local == "presence":
		return false // nobody to tell: a guest has no contacts
	}
	ss.replyErr(el, "forbidden", "guests may only use rooms: log in with an account for the rest")
	return false
}

// guestIQ is an IQ a guest may send to the box.
func guestIQ(el *Element) bool {
	for _, k := range el.Kids() {
		switch k.Space {
		case "urn:xmpp:ping", nsDiscoInfo, nsDiscoItems:
			return true
		}
	}
	return false
}

// guestLocal is the localpart a guest binding resource res gets: res
// folded when it is a free valid name, else the random one it logged in
// with.
func (c *conn) guestLocal(res string) string {
	name := chat.Fold(res)
	if chat.ValidName(name) != nil || len(c.srv.core.Sessions(chat.GuestPrefix+name)) > 0 {
		return c.account
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.srv.core.Account(ctx, name); !errors.Is(err, chat.ErrNotFound) {
		return c.account // an account's name (or the store cannot say)
	}
	return name
}

// guestMayUpload says whether guests may share files: in event mode,
// when the box shares files at all.
func (s *Server) guestMayUpload() bool {
	return s.cfg.Uploads != nil && s.core.Event().Enabled
}

// mucGuestAffiliation handles a muc#admin item setting the affiliation of
// a guest's JID (name@guest.<domain>): outcast bans the guest, none lifts
// the ban; a guest can have no other affiliation.
func (s *Server) mucGuestAffiliation(ctx context.Context, ss *session, room string, a address, aff chat.Affiliation, reason string) error {
	switch aff {
	case chat.AffOutcast, chat.AffNone:
		return s.core.BanGuest(ctx, ss.core, room, chat.GuestPrefix+a.Local, reason, aff == chat.AffOutcast)
	}
	return fmt.Errorf("%w: a guest can only be banned (outcast) or unbanned (none)", chat.ErrForbidden)
}

// guestHostIQ answers a guest's ping or disco of guest.<domain>.
func (ss *session) guestHostIQ(iq *Element) {
	if iq.Get("type") != "get" {
		ss.replyErr(iq, "bad-request", "ask with an IQ get")
		return
	}
	q := iq.First()
	switch {
	case q != nil && q.Is(nsDiscoInfo, "query") && q.Get("node") == "":
		ss.result(iq, El(nsDiscoInfo, "query").Add(
			El(nsDiscoInfo, "identity", "category", "server", "type", "im", "name", "guests of "+ss.srv.cfg.Domain),
			El(nsDiscoInfo, "feature", "var", nsDiscoInfo),
			El(nsDiscoInfo, "feature", "var", nsDiscoItems),
			El(nsDiscoInfo, "feature", "var", "urn:xmpp:ping")))
	case q != nil && q.Is(nsDiscoItems, "query") && q.Get("node") == "":
		items := El(nsDiscoItems, "query").Add(El(nsDiscoItems, "item", "jid", ss.srv.mucDomain()))
		if ss.srv.guestMayUpload() {
			items.Add(El(nsDiscoItems, "item", "jid", ss.srv.uploadDomain()))
		}
		ss.result(iq, items)
	case q != nil && q.Is("urn:xmpp:ping", "ping"):
		ss.result(iq, nil)
	default:
		ss.replyErr(iq, "item-not-found", "guest."+ss.srv.cfg.Domain+" has no such node")
	}
}
