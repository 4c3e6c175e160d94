package chat

import (
	"context"
	"errors"
	"time"
)

// Errors a Store returns. Implementations wrap them (fmt.Errorf("…: %w", ErrNotFound))
// so that callers can test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// Store is everything the core needs to keep. services/store implements it
// over SQLite; the core never sees SQL.
//
// Every method that writes returns only once the write is durable (committed
// and synced): the core acknowledges a message to its sender only after
// AppendMessage returned nil.
type Store interface {
	AccountStore
	RoomStore
	MessageStore
	VCardStore
	DataStore
	InviteStore
	Close() error
}

// AccountStore keeps accounts and their credentials.
type AccountStore interface {
	// CreateAccount fails with ErrExists if the name is taken.
	CreateAccount(ctx context.Context, a Account, c Credentials) error
	// Account returns the account and its credentials, or ErrNotFound.
	Account(ctx context.Context, name string) (Account, Credentials, error)
	// Accounts lists every account, ordered by name.
	Accounts(ctx context.Context) ([]Account, error)
	// Admins lists the box admins' names, ordered.
	Admins(ctx context.Context) ([]string, error)
	// SetCredentials replaces an account's credentials, or ErrNotFound.
	SetCredentials(ctx context.Context, name string, c Credentials) error
	// SetAdmin makes an account a box admin or not, or ErrNotFound.
	SetAdmin(ctx context.Context, name string, admin bool) error
	// AddCert lets a client certificate (its SHA-256 fingerprint, hex)
	// log account in: ErrExists if it is already someone's, ErrNotFound
	// if the account is missing.
	AddCert(ctx context.Context, account, fingerprint string, added time.Time) error
	// RemoveCert forgets one of account's certificates, or ErrNotFound.
	RemoveCert(ctx context.Context, account, fingerprint string) error
	// Certs lists account's certificate fingerprints.
	Certs(ctx context.Context, account string) ([]string, error)
	// AccountByCert finds the account a fingerprint logs in, or ErrNotFound.
	AccountByCert(ctx context.Context, fingerprint string) (string, error)
	// DeleteAccount removes the account, its offline queue, its vCard, its
	// room affiliations and its one-to-one history; room messages it wrote
	// stay (they are part of the room's record). ErrNotFound if absent.
	DeleteAccount(ctx context.Context, name string) error
}

// RoomStore keeps rooms, their settings, affiliations and mask lists.
type RoomStore interface {
	// CreateRoom fails with ErrExists if the name is taken.
	CreateRoom(ctx context.Context, r Room) error
	// Room returns the room (with affiliations and lists), or ErrNotFound.
	Room(ctx context.Context, name string) (Room, error)
	// Rooms lists every room, ordered by name.
	Rooms(ctx context.Context) ([]Room, error)
	// UpdateRoom replaces the room's topic and settings, or ErrNotFound.
	UpdateRoom(ctx context.Context, r Room) error
	// DeleteRoom removes the room, its affiliations, lists and history, or
	// ErrNotFound.
	DeleteRoom(ctx context.Context, name string) error
	// SetAffiliation records account's affiliation in room; AffNone removes
	// it. The account need not exist (XEP-0045 affiliations may name
	// future accounts); a missing room is ErrNotFound.
	SetAffiliation(ctx context.Context, room, account string, aff Affiliation) error
	// AddMask adds an entry to one of the room's mask lists; ErrExists if the
	// same mask is already on that list.
	AddMask(ctx context.Context, room string, e MaskEntry) error
	// RemoveMask removes an entry; ErrNotFound if it is not on the list.
	RemoveMask(ctx context.Context, room string, list MaskList, mask string) error
}

// MessageStore keeps history and the offline queue.
type MessageStore interface {
	// AppendMessage stores m, filling in m.Seq, and queues it for offline
	// delivery to each account in offlineFor (names that are not accounts
	// are skipped), all in one transaction. An ID already stored fails with
	// ErrExists. If ctx ends first the message may or may not be stored:
	// retrying with the same ID tells which.
	AppendMessage(ctx context.Context, m *Message, offlineFor []string) error
	// History returns messages matching q in store order (Seq), oldest
	// first.
	History(ctx context.Context, q HistoryQuery) ([]Message, error)
	// CountHistory says how many messages match q, ignoring its Limit
	// and Last (XEP-0059 result set counts).
	CountHistory(ctx context.Context, q HistoryQuery) (int, error)
	// MessageByID looks a message up by its stable ID, or ErrNotFound.
	MessageByID(ctx context.Context, id string) (Message, error)
	// Offline returns up to limit messages queued for account, oldest first.
	Offline(ctx context.Context, account string, limit int) ([]Message, error)
	// QueueOffline adds a stored message to account's offline queue (a
	// message whose recipient left between storing and delivery).
	QueueOffline(ctx context.Context, account string, seq int64) error
	// AckOffline removes account's queued messages with Seq <= upTo.
	AckOffline(ctx context.Context, account string, upTo int64) error
	// PruneHistory deletes messages older than before, except those still
	// queued for offline delivery, and says how many it deleted.
	PruneHistory(ctx context.Context, before time.Time) (int64, error)
}

// VCardStore keeps one opaque profile document (an XMPP vCard, avatar
// included) per account.
type VCardStore interface {
	VCard(ctx context.Context, account string) ([]byte, error) // ErrNotFound if none
	SetVCard(ctx context.Context, account string, data []byte) error
}

// HistoryQuery selects messages of one room, of one conversation, or of
// all of an account's direct conversations.
//
// Exactly one of Room or Account is set: Room for a room's history,
// Account and Peer for the direct conversation between the two, Account
// alone for every direct message the account sent or received (its
// archive, XEP-0313). Paging works both ways:
// AfterSeq/BeforeSeq exclude the given message, Start/End bound server time
// (inclusive; zero means unbounded). With Last set, the newest Limit
// matching messages are returned (still oldest first), which is how
// "page backwards" is asked.
type HistoryQuery struct {
	Room    string // room history
	Account string // with Peer: the direct conversation between the two; alone: all of its direct messages
	Peer    string

	AfterSeq  int64
	BeforeSeq int64
	Start     time.Time
	End       time.Time
	Limit     int // at most; 0 means the store's default (100)
	Last      bool
}
