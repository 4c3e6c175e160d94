package xmpp

import (
	"context"
	"errors"

	"chatbox/services/chat"
)

// XEP-0045 Multi-User Chat with occupants on other servers: a remote user
// who joins room@rooms.<domain> gets a core session for that room whose
// account is the user's bare JID (chat.Core.OpenRemote), so the room sees
// an occupant like any other: its messages are in the room's history
// under its bare JID and room nick (MAM on the room, IRC CHATHISTORY,
// history on join), affiliations and bans name it by its bare JID (an
// owner can make user@other.example a member of a members-only room,
// xep0045_muc_admin.go), and IRC members see it by the remote nick rule
// (services/irc remote.go: user/other.example). Everything the room
// sends that session goes back over federation to the user's full JID.
// Private messages to a remote occupant go to its real JID as direct
// messages (chat.Core.SendRemote), as they do between local occupants;
// a remote occupant's private message to a local occupant is a direct
// message from its bare JID. Rooms refuse remote users when the settings
// say so (federation.remote_occupants = false). The session ends when the
// user leaves the room (or the box stops). Left out: noticing that a
// remote server went away without sending unavailable presence (the
// occupant stays until it leaves or the box restarts); private messages
// between two remote occupants (refused: forbidden).

// remoteMUC takes a stanza from a remote user to the room service.
func (s *Server) remoteMUC(ctx context.Context, el *Element, from, to address, reply func(string)) {
	if to.Local == "" {
		reply("service-unavailable")
		return
	}
	room := chat.Fold(to.Local)
	key := room + " " + from.String()
	f := s.fed
	f.mu.Lock()
	ss := f.occupants[key]
	f.mu.Unlock()
	typ := el.Get("type")
	if ss == nil {
		if el.Local != "presence" || typ != "" || to.Resource == "" {
			if el.Local == "message" && typ != "error" {
				reply("not-acceptable") // not an occupant (XEP-0045 §7.4)
			} else if el.Local == "iq" {
				reply("service-unavailable")
			}
			return
		}
		if !f.cfg.RemoteOccupants {
			r := stanzaErrorReply(el, "", "not-allowed", "this server does not let users of other servers into its rooms")
			s.fedSend(r.Add(El(nsMUC, "x")))
			return
		}
		ss = &session{srv: s, resource: from.Resource, bare: from.Bare(), full: from.String(), remote: true}
		cs, err := s.core.OpenRemote(ctx, from.Bare(), chat.SessionInfo{Door: "xmpp", Resource: from.String(),
			Mask: from.String(), Addr: from.Domain}, ss)
		if err != nil {
			cond := "not-allowed"
			if errors.Is(err, chat.ErrTooManySessions) {
				cond = "resource-constraint"
			}
			r := stanzaErrorReply(el, "", cond, err.Error())
			r.Add(El(nsMUC, "x"))
			s.fedSend(r)
			return
		}
		ss.core, ss.account = cs, cs.Account()
		f.mu.Lock()
		if f.occupants[key] != nil { // joined twice at once
			f.mu.Unlock()
			cs.Close("joined twice")
			return
		}
		f.occupants[key] = ss
		f.mu.Unlock()
	}
	s.mucStanza(ss, el)
	if el.Local == "presence" && typ == "unavailable" {
		f.mu.Lock()
		delete(f.occupants, key)
		f.mu.Unlock()
		ss.end("left the room")
	}
}

// closeOccupants ends the remote occupants' sessions (shutdown).
func (f *federation) closeOccupants() {
	f.mu.Lock()
	var all []*session
	for k, ss := range f.occupants {
		all = append(all, ss)
		delete(f.occupants, k)
	}
	f.mu.Unlock()
	for _, ss := range all {
		ss.end("server shutting down")
	}
}
