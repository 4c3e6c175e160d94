package irc

import (
	"strings"

	"chatbox/services/chat"
)

// Guests on IRC (issue 11). A guest's pseudo-account is chat.GuestPrefix
// + its name: an IRC guest's name is its nick, an XMPP guest's is the
// nickname the web chat binds as its resource (services/xmpp,
// xep0175_anonymous.go), so IRC shows every guest as name!guest@door.
// The core keeps names unique among guests and apart from accounts, so
// that nick clashes with no one. This file lets channel operators name a
// guest by that nick: KICK, MODE +v/-v/+o and INVITE find the occupant
// whose shown nick it is. Bans by mask (MODE +b name!*@*) reach guests of
// both doors through the core's mask matching.

// occupantIs says whether an occupant is the one IRC shows as nick (the
// folded nick, or an account given as such).
func occupantIs(o chat.Occupant, nick string) bool {
	if o.Account == nick {
		return true
	}
	return chat.IsGuest(o.Account) && !chat.IsGuest(nick) && strings.TrimPrefix(o.Account, chat.GuestPrefix) == nick
}
