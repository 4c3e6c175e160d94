package xmpp

// This file answers the session establishment request of RFC 3921 §3
// (<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>), which RFC
// 6121 dropped: the door still advertises it as <optional/>
// (draft-cridland-xmpp-session-01) for old clients, and Strophe.js (the
// library under Converse.js, the web chat) sends it once bound whatever
// the feature says and takes an error as a failed login. A session
// exists from binding on, so the request is a no-op answered with a
// result, for accounts and guests alike. Left out: nothing (the request
// has no other effect to implement).

// sessionRequest answers el if it is a session establishment request
// (an IQ set to the server, no to address) and reports whether it was.
func (ss *session) sessionRequest(el *Element) bool {
	if el.Local != "iq" || el.Get("type") != "set" || el.Get("to") != "" || el.Get("id") == "" ||
		len(el.Kids()) != 1 || el.Child(nsSession, "session") == nil {
		return false
	}
	ss.send(El(nsClient, "iq", "type", "result", "id", el.Get("id"), "to", ss.full))
	return true
}
