package chat

import (
	"sync"
	"sync/atomic"
)

// DeliveryKind says what a Delivery tells a session.
type DeliveryKind string

// Delivery kinds.
const (
	DelMessage     DeliveryKind = "message"      // Message is set
	DelJoin        DeliveryKind = "join"         // Room, Occupant joined; with Echo, to the joiner: RoomInfo and Occupants too
	DelLeave       DeliveryKind = "leave"        // Room, Occupant left (Reason)
	DelQuit        DeliveryKind = "quit"         // Occupant's account left every room in Rooms (session closed)
	DelKick        DeliveryKind = "kick"         // Room, Occupant kicked by Actor (Reason)
	DelNick        DeliveryKind = "nick"         // Room, Occupant renamed from OldNick
	DelTopic       DeliveryKind = "topic"        // Room's topic changed by Actor (Topic)
	DelRole        DeliveryKind = "role"         // Room, Occupant's role or affiliation changed by Actor
	DelSettings    DeliveryKind = "settings"     // Room's settings changed by Actor (Settings)
	DelMask        DeliveryKind = "mask"         // Room's mask list changed by Actor (Mask, Removed)
	DelPresence    DeliveryKind = "presence"     // Presence of From (a session) and its account
	DelInvite      DeliveryKind = "invite"       // Actor invites this session's account to Room
	DelRoomDestroy DeliveryKind = "room-destroy" // Room was destroyed (Reason)
	DelDisconnect  DeliveryKind = "disconnect"   // the core ends this session (Reason): the door closes it
	DelSignal      DeliveryKind = "signal"       // an unstored signal (typing…) from From to Room or to this account: Tags
	DelRetract     DeliveryKind = "retract"      // Message (ID, Room, From, FromNick) was wiped from Room's history by Actor (Reason)
)

// Occupant is one nick in a room: an account, present through one or more
// sessions.
type Occupant struct {
	Nick        string
	Account     string
	Role        Role
	Affiliation Affiliation
	Voice       bool // given voice explicitly (IRC +v)
	// Sessions present under this nick (an account may join from several).
	Sessions []SessionRef
	// Slot is the occupant's own, made and dropped with it by the core
	// (nil in an Occupant the core did not take from a room): a door
	// keeps there what it made of the occupant, such as its presence
	// rendered once for every joiner shown it.
	Slot *Slot
}

// Slot holds one value a door made of an occupant. The core never
// clears it when the occupant changes (a new role, the account's
// presence): whoever reads it checks the value against what it was made
// from, and a value of another type (another door's) is no value. Safe
// for concurrent use.
type Slot struct{ v atomic.Pointer[any] }

// Load returns the value kept, or nil.
func (s *Slot) Load() any {
	if p := s.v.Load(); p != nil {
		return *p
	}
	return nil
}

// Store keeps v, replacing what was kept.
func (s *Slot) Store(v any) { s.v.Store(&v) }

// SessionRef identifies a session to other sessions.
type SessionRef struct {
	ID       uint64
	Account  string
	Door     string
	Resource string // XMPP resource, IRC nick
}

// Delivery is what the core routes to a session. Fields beyond Kind are
// set as that kind's comment says.
type Delivery struct {
	Kind     DeliveryKind
	Message  *Message
	Room     string
	Rooms    []string
	Occupant Occupant
	// With an Echo DelJoin: the room as the joiner finds it, and the
	// event's welcome for a guest (event.go), which the door shows after
	// the join burst.
	RoomInfo  *Room
	Occupants []Occupant
	Welcome   string
	// HistoryLimit (with an Echo DelJoin) is how many recent lines the
	// joiner is shown when its client does not say: the room's
	// MaxHistory, else the box's DefaultHistory. The door reads them
	// (after the join burst) itself.
	HistoryLimit int
	OldNick      string
	Actor        string // nick (or account) of whoever did it
	Reason       string
	Topic        string
	Settings     RoomSettings
	Mask         MaskEntry
	Removed      bool
	Banned       bool // with DelKick: the account is now an outcast
	From         SessionRef
	Presence     Presence
	Account      Presence // aggregated presence of From.Account
	// Tags are a DelSignal's content: IRC client-only tags without their
	// '+' ("typing" = "active", "paused", "done"), which the XMPP door maps
	// to chat states.
	Tags map[string]string
	// Echo marks a delivery to the session that caused it (IRC
	// echo-message); Carbon a direct message sent by another session of
	// the same account (XEP-0280).
	Echo   bool
	Carbon bool
	// Shared is the fan-out's render cache (see Rendered); nil when the
	// delivery goes to one session only.
	Shared *Rendered
	// Account-level facts as of this delivery (occupants.go), for doors
	// that show one member per account: AccountFirst (DelJoin) no other
	// occupant of the account was in the room; AccountGone (DelLeave,
	// DelKick) none is left in it; GoneRooms (DelQuit) those of Rooms
	// none is left in; SharesRoom (DelQuit, DelPresence) the receiving
	// session is in a room where the account (Occupant's, From's) still
	// has an occupant.
	AccountFirst bool
	AccountGone  bool
	GoneRooms    []string
	SharesRoom   bool
	// Before is, with DelRole, the occupant before the change.
	Before *Occupant
}

// Sink receives deliveries for one session. Deliver must not block: a door
// queues the delivery for the connection's writer and, when that queue is
// full, ends the connection (the message is in history; nothing is lost).
// Deliver is called with the core's lock held: it must not call the core.
type Sink interface {
	Deliver(Delivery)
}

// BatchSink is a Sink that also takes several deliveries at once: the
// core gives each member of a room a run of messages committed one after
// the other to that room in one call (one lock of the member's queue, not
// one per message). DeliverBatch is Deliver for each of ds in order; it
// must not keep ds (the core reuses it), and it is called with the core's
// lock held, as Deliver.
type BatchSink interface {
	Sink
	DeliverBatch(ds []Delivery)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Delivery)

// Deliver calls f(d).
func (f SinkFunc) Deliver(d Delivery) { f(d) }

// Rendered lets the doors serialise one fan-out once per wire variant
// rather than once per receiver: the core gives every Delivery of one
// fan-out (a room message, a join) the same *Rendered, and a door asks it
// for the bytes of a variant (its name plus whatever the form depends on,
// such as the receiver's capabilities), rendering them only the first
// time. A nil *Rendered renders every time. Callers must not change the
// returned bytes.
type Rendered struct {
	// made is the entries whose values are made, a list replaced (never
	// changed) as values are made: read without a lock, as every receiver
	// of a fan-out asks.
	made    atomic.Pointer[[]*renderedEntry]
	mu      sync.Mutex
	entries []*renderedEntry
}

type renderedEntry struct {
	key   string
	v     any
	ready chan struct{} // closed once v is made
}

// Bytes returns the bytes cached under key, calling render to make them
// the first time. Safe for concurrent use by the doors' writers.
func (r *Rendered) Bytes(key string, render func() []byte) []byte {
	return r.Value(key, func() any { return render() }).([]byte)
}

// Value returns the value kept under key, calling mk to make it the
// first time (without the Rendered's lock: mk may take the core's; those
// asking for the same key meanwhile wait for it): a door keeps there what it derives from the fan-out alone
// (such as one heap copy of a delivery that is the same for every
// receiver), once for all receivers. A nil *Rendered makes it every time.
// Values and Bytes share the keys' space: use distinct keys (Bytes is a
// Value holding []byte).
func (r *Rendered) Value(key string, mk func() any) any {
	if r == nil {
		return mk()
	}
	if made := r.made.Load(); made != nil {
		for _, e := range *made {
			if e.key == key {
				return e.v
			}
		}
	}
	r.mu.Lock()
	for _, e := range r.entries {
		if e.key == key {
			r.mu.Unlock()
			<-e.ready
			return e.v
		}
	}
	e := &renderedEntry{key: key, ready: make(chan struct{})}
	r.entries = append(r.entries, e)
	r.mu.Unlock()
	// mk runs without the lock: it may take the core's lock (a door
	// rendering a presence), which a fan-out holds while it asks for
	// another key. Only those asking for this key wait for it.
	defer func() {
		close(e.ready)
		r.mu.Lock()
		var list []*renderedEntry
		if made := r.made.Load(); made != nil {
			list = append(list, *made...)
		}
		list = append(list, e)
		r.made.Store(&list)
		r.mu.Unlock()
	}()
	e.v = mk()
	return e.v
}
