package xmpp

// Event mode's welcome (issue 11; chat/event.go): a guest joining an
// event room gets the owner's welcome as a groupchat message from the
// room itself (its bare JID, as XEP-0045 §7.2.16 service messages are),
// after the subject, so clients show it below the history. It is not
// stored and carries no stanza-id: it is not part of the room's history.
// Left out: no MUC status code marks it (none is defined for it).
func (s *Server) welcomeMessage(room, text, to string) *Element {
	return El(nsClient, "message", "from", s.roomJID(room), "to", to, "type", "groupchat", "id", randomID()).Add(
		El(nsClient, "body").Add(text))
}
