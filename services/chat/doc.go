// Package chat is chatbox's protocol-neutral core: accounts, sessions,
// rooms and membership, presence, routing, history, the offline queue and
// rate limits. The doors (services/irc, services/xmpp) translate their
// protocol into calls on a *Core and receive what the core routes to them
// through a Sink; the core keeps everything through the Store interface it
// declares (implemented by services/store). It knows no protocol and no SQL.
//
// Names. Account and room names follow one rule so that each is at once an
// IRC nick or channel name (#name) and an XMPP localpart: after folding to
// lower case they match ^[a-z][a-z0-9_-]{0,29}$ (see ValidName). A leading
// letter keeps them valid IRC nicks (which may not start with a digit or
// '-'); the small alphabet needs no stringprep on XMPP and no escaping in
// URLs, file names or IRC masks; 30 characters fit every client's NICKLEN.
//
// Nicknames in rooms are per session and per room (XMPP occupants choose
// theirs); a nick that is the name of an existing account belongs to that
// account alone, and two accounts never hold the same nick in a room. Nick
// comparison is case-insensitive (Unicode lower case).
//
// Durability. A message is routed to anyone only after the store has made
// it durable, and the sender's call returns only then: a returned Message
// is an acknowledged one.
//
// Ordering. All deliveries of one room happen under the core's lock, in
// one order for every occupant.
package chat
