// Package irc is chatbox's IRC door: an IRC server (RFC 1459, RFC 2812 as
// the Modern IRC client protocol documents them, and IRCv3) over the
// shared chat core. #name is the room name; every account holder appears
// as her account name, whichever door she came in by; XMPP room
// nicknames are shown to XMPP clients only.
//
// One file per feature: server.go (listeners, limits), conn.go (a
// connection's read and write loops, sendq, flood limit), caps.go (CAP),
// registration.go (NICK, USER, PASS, welcome), sasl.go (AUTHENTICATE),
// nickserv.go, messages.go (PRIVMSG, NOTICE, TAGMSG), deliver.go (what the
// core routes, as IRC lines), channels.go (JOIN, PART, TOPIC, NAMES), and
// the rest named for what they hold.
//
// Casemapping is "ascii": nicks and channels compare after ASCII
// lower-casing, which is exactly the core's rule for account and room
// names (chat.Fold), so Alice and alice are one nick, one account, one
// XMPP localpart.
//
// Left out: server linking (the box is one server), DCC (offers pass
// through untouched as CTCP), services other than the built-in NickServ.
package irc
