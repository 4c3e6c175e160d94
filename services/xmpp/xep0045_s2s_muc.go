package xmpp

import (
	"context"
	"errors"

	"chatbox/services/chat"
)

// XEP-0045 Multi-User Chat with occupants on other servers: a remote user
// who joins room@rooms.<domain> gets a guest session of the core for that
// room (chat.Core.OpenGuest), so the room sees an occupant like any other
// (IRC members see the nick the user joined with, as for every XMPP
// occupant), and everything the room sends that session goes back over
// federation to the user's full JID. The remote user may speak in rooms
// that are not members-only (a guest's rights); members-only rooms refuse
// the join, as does a box whose settings keep remote users out of its
// rooms (federation.remote_occupants = false). The session ends when the user leaves the room (or the box
// stops). Left out: affiliations for remote JIDs (members-only access,
// moderation of remote users by their JID), private messages to remote
// occupants, and noticing that a remote server went away without sending
// unavailable presence (the occupant stays until it leaves or the box
// restarts).

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
		ss = &session{srv: s, resource: from.Resource, bare: from.Bare(), full: from.String(), remote: true,
			directed: map[string]bool{}, ext: map[string]any{}}
		cs, err := s.core.OpenGuest(ctx, to.Resource, chat.SessionInfo{Door: "xmpp", Resource: from.String(),
			Mask: from.String(), Addr: from.Domain, Guest: true}, ss)
		if err != nil {
			cond := "not-allowed"
			if errors.Is(err, chat.ErrNickInUse) || errors.Is(err, chat.ErrNickReserved) || errors.Is(err, chat.ErrExists) {
				cond = "conflict"
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
