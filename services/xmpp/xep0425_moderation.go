package xmpp

import (
	"chatbox/services/chat"
)

// This file is XEP-0425 (Moderated Message Retraction) as far as the box
// needs it: when the web admin wipes a guest's messages (chat.WipeGuest),
// each occupant of the rooms concerned is told which message went, by its
// stanza-id, in the current form (urn:xmpp:message-moderate:1 inside a
// XEP-0424 urn:xmpp:message-retract:1 retract) and the earlier one
// (urn:xmpp:fasten:0 apply-to, message-moderate:0) that older clients
// read, as Prosody sends both. The moderator is the room itself (the
// box's admin is no occupant). Clients that know neither keep showing
// what they were shown; the message is gone from MAM and every other
// history. Left out: moderation requests from clients (the IQ of §4), so
// rooms do not advertise urn:xmpp:message-moderate:*; tombstones in MAM
// (a wiped message is deleted, not replaced).

const (
	nsRetract1  = "urn:xmpp:message-retract:1"
	nsModerate1 = "urn:xmpp:message-moderate:1"
	nsModerate0 = "urn:xmpp:message-moderate:0"
	nsRetract0  = "urn:xmpp:message-retract:0"
	nsFasten0   = "urn:xmpp:fasten:0"
)

func registerModeration(f *features, s *Server) {
	f.deliveries[chat.DelRetract] = append(f.deliveries[chat.DelRetract], (*session).mucRetraction)
}

// mucRetraction tells an occupant that a room message was wiped.
func (ss *session) mucRetraction(d *chat.Delivery) {
	if d.Message == nil || d.Room == "" {
		return
	}
	st := ss.muc()
	st.mu.Lock()
	joined := st.room(d.Room) != nil
	st.mu.Unlock()
	if !joined {
		return
	}
	ss.send(retractionStanza(ss.srv.roomJID(d.Room), ss.full, d.Message.ID, d.Reason))
}

// retractionStanza is the room's notice that the message with stanza-id
// id was moderated away.
func retractionStanza(room, to, id, reason string) *Element {
	mod1 := El(nsModerate1, "moderated", "by", room)
	retract1 := El(nsRetract1, "retract", "id", id).Add(mod1)
	mod0 := El(nsModerate0, "moderated", "by", room).Add(El(nsRetract0, "retract"))
	if reason != "" {
		retract1.Add(El(nsRetract1, "reason").Add(reason))
		mod0.Add(El(nsModerate0, "reason").Add(reason))
	}
	return El(nsClient, "message", "from", room, "to", to, "type", "groupchat", "id", randomID()).Add(
		retract1,
		El(nsFasten0, "apply-to", "id", id).Add(mod0))
}
