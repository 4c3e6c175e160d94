package chat

import "time"

// Account is a person with a name valid on every door (see ValidName).
type Account struct {
	Name    string
	Created time.Time
	Admin   bool // may administer rooms and the box from a chat client
}

// Credentials are what the store keeps instead of a password: salted
// SCRAM keys (RFC 5802, RFC 7677) for SHA-256 and SHA-1. SASL PLAIN and
// IRC PASS are checked by deriving the SHA-256 keys from the offered
// password (see VerifyPassword).
type Credentials struct {
	SHA256 SCRAMKeys
	SHA1   SCRAMKeys
}

// SCRAMKeys are one hash's stored SCRAM keys.
type SCRAMKeys struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// Affiliation is a long-lived standing in a room (XEP-0045 §5.2).
type Affiliation string

// Affiliations, strongest first.
const (
	AffOwner   Affiliation = "owner"
	AffAdmin   Affiliation = "admin"
	AffMember  Affiliation = "member"
	AffNone    Affiliation = "none"
	AffOutcast Affiliation = "outcast"
)

func (a Affiliation) rank() int {
	switch a {
	case AffOwner:
		return 4
	case AffAdmin:
		return 3
	case AffMember:
		return 2
	case AffOutcast:
		return 0
	}
	return 1
}

// Valid reports whether a is one of the named affiliations.
func (a Affiliation) Valid() bool {
	switch a {
	case AffOwner, AffAdmin, AffMember, AffNone, AffOutcast:
		return true
	}
	return false
}

// Role is a session's standing while present in a room (XEP-0045 §5.1).
type Role string

// Roles, strongest first.
const (
	RoleModerator   Role = "moderator"
	RoleParticipant Role = "participant"
	RoleVisitor     Role = "visitor"
	RoleNone        Role = "none"
)

// Room is a group conversation: #name on IRC, name@rooms.<domain> on XMPP.
type Room struct {
	Name     string
	Topic    string
	TopicBy  string // nick that set the topic
	TopicAt  time.Time
	Created  time.Time
	Settings RoomSettings
	// Affiliations maps account name to a non-none affiliation.
	Affiliations map[string]Affiliation
	// Masks holds the ban, ban-exception and invite-exception lists.
	Masks []MaskEntry
}

// RoomSettings are the room's configuration, common to both doors
// (IRC channel modes and XEP-0045 muc#roomconfig).
type RoomSettings struct {
	Persistent   bool   `json:"persistent"`    // kept when the last occupant leaves
	MembersOnly  bool   `json:"members_only"`  // IRC +i, muc#roomconfig_membersonly
	Moderated    bool   `json:"moderated"`     // IRC +m, muc#roomconfig_moderatedroom
	Password     string `json:"password"`      // IRC +k, muc#roomconfig_roomsecret
	MaxUsers     int    `json:"max_users"`     // IRC +l, muc#roomconfig_maxusers; 0: no limit
	Hidden       bool   `json:"hidden"`        // IRC +s, not muc#roomconfig_publicroom
	Private      bool   `json:"private"`       // IRC +p
	TopicLocked  bool   `json:"topic_locked"`  // IRC +t, not muc#roomconfig_changesubject
	NoExternal   bool   `json:"no_external"`   // IRC +n: only occupants may speak
	MaxHistory   int    `json:"max_history"`   // messages sent on join; 0: server default
	Description  string `json:"description"`   // muc#roomconfig_roomdesc
	AnyoneInvite bool   `json:"anyone_invite"` // muc#roomconfig_allowinvites

	// Locked is the box admin's lock (lock.go): no newcomers, guests silent.
	Locked bool `json:"locked,omitempty"`
}

// MaskList names one of a room's mask lists.
type MaskList string

// The mask lists: IRC +b, +e, +I; XEP-0045 outcasts are bans by account.
const (
	ListBan       MaskList = "ban"
	ListBanExcept MaskList = "except"
	ListInvite    MaskList = "invex"
)

// MaskEntry is one entry of a room's mask list. Mask is an account name or
// a glob (* and ?) matched, case-insensitively, against a session's account
// name and against its door's full mask (nick!user@host on IRC, the JID on
// XMPP).
type MaskEntry struct {
	List   MaskList
	Mask   string
	SetBy  string
	SetAt  time.Time
	Reason string
}

// MessageKind says how a message should be shown.
type MessageKind string

// Message kinds.
const (
	KindNormal MessageKind = "normal" // IRC PRIVMSG, XMPP body
	KindAction MessageKind = "action" // IRC CTCP ACTION, XMPP /me
	KindNotice MessageKind = "notice" // IRC NOTICE (never auto-answered)
)

// Message is one line of history: a room message or a direct message.
// Exactly one of Room or To is set.
type Message struct {
	Seq      int64  // store order, assigned when stored
	ID       string // stable, unique, assigned by the core
	Time     time.Time
	From     string // account
	FromNick string // nick shown in the room
	Room     string
	To       string // account, for direct messages
	Kind     MessageKind
	Body     string
	// Extra carries door-specific payload that must travel with the message
	// (for example an XMPP encrypted payload), as an opaque string.
	Extra string
}
