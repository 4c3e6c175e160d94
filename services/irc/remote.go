package irc

import (
	"strings"

	"chatbox/services/chat"
)

// Users of other XMPP servers (federation) on IRC. A remote user who
// sends an account here a direct message is shown by the nick rule: its
// bare JID with the '@' replaced by '/', "alice/other.example", and the
// source alice/other.example!alice@other.example. No account or IRC nick
// here holds a '/' or a '.' (validNick), and a JID's local part holds no
// '/' (RFC 7622 §3.3.1), so the nick names exactly one remote user and
// never a local one. PRIVMSG and NOTICE to such a nick (or to the JID
// itself, alice@other.example) go to that user through the core
// (chat.Core.SendRemote, stored like every direct message), and
// CHATHISTORY takes it as a target; KICK and MODE +o/+v take it as a
// member's nick. Remote occupants of rooms are
// guests of the room and keep the nick they joined with (the XMPP door's
// xep0045_s2s_muc.go). Left out: WHOIS, MONITOR and away for remote users
// (their presence is not in the core).

// ircName is how a name in a stored message shows on IRC: an account's
// as it is, a remote user's by the nick rule.
func ircName(name string) string {
	if chat.IsRemote(name) {
		return strings.Replace(name, "@", "/", 1)
	}
	return name
}

// remoteSource is the nick!user@host of a remote user (a bare JID).
func remoteSource(jid string) string { return ircName(jid) + "!" + jid }

// remoteTarget says whether a message target names a remote user (by the
// nick rule or as a bare JID) and returns its bare JID.
func remoteTarget(target string) (string, bool) {
	if strings.HasPrefix(target, "#") || !strings.ContainsAny(target, "/@") {
		return "", false
	}
	jid := target
	if !strings.Contains(jid, "@") {
		jid = strings.Replace(jid, "/", "@", 1)
	}
	jid, err := chat.RemoteJID(jid)
	return jid, err == nil
}

// nickAccount is the account (or remote bare JID) an IRC nick names.
func nickAccount(nick string) string {
	if jid, ok := remoteTarget(nick); ok {
		return jid
	}
	return fold(nick)
}
