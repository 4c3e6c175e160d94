package chat

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Limits bound what one account or address may do.
type Limits struct {
	MessagesPerSecond     float64 // per account, sustained
	MessageBurst          int
	FailedLoginsPerMinute int // per remote address
	MaxMessageBytes       int
	SessionsPerAccount    int
}

// Options configure a Core.
type Options struct {
	Store  Store
	Log    *slog.Logger
	Now    func() time.Time // default time.Now
	Limits Limits
	// UsersMayCreateRooms lets a join of a missing room create it, the
	// joiner becoming its owner.
	UsersMayCreateRooms bool
	// DefaultHistory is how many lines a join replays when the room sets
	// no MaxHistory (Delivery.HistoryLimit).
	DefaultHistory int
	// MaxRoomsPerSession bounds the rooms one session is in (default 50).
	MaxRoomsPerSession int
	// Iterations is the PBKDF2 count for new credentials (default 4096).
	Iterations int
	// Event is event mode (event.go).
	Event EventOptions
}

// Core is the chat: sessions, rooms, routing. It is safe for concurrent
// use by every door.
type Core struct {
	store  Store
	log    *slog.Logger
	now    func() time.Time
	opts   Options
	events *Events

	sendLimit  *limiter
	loginLimit *limiter
	guestLimit *limiter         // event mode's guest rate limit; nil: none
	latency    latencyHistogram // delivery latency (latency.go)

	mu       sync.Mutex
	nextID   uint64
	sessions map[uint64]*Session
	byAcct   map[string][]*Session // account -> its sessions (a few: a slice; replaced, not changed, when one goes)
	rooms    map[string]*roomState
	watchers map[string]map[uint64]*Session // account -> sessions watching its presence
	closed   bool
	event    eventState
	remote   RemoteRouter // remote.go; nil: no federation

	fanq fanoutQueue // committed room messages to route (pipeline.go)
}

// New makes a core over a store.
func New(o Options) (*Core, error) {
	if o.Store == nil {
		return nil, errors.New("chat: no store")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &o.Limits
	if l.MessagesPerSecond <= 0 {
		l.MessagesPerSecond = 5
	}
	if l.MessageBurst <= 0 {
		l.MessageBurst = 20
	}
	if l.FailedLoginsPerMinute <= 0 {
		l.FailedLoginsPerMinute = 10
	}
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = 64 << 10
	}
	if l.SessionsPerAccount <= 0 {
		l.SessionsPerAccount = 10
	}
	if o.MaxRoomsPerSession <= 0 {
		o.MaxRoomsPerSession = 50
	}
	if o.DefaultHistory < 0 {
		o.DefaultHistory = 0
	}
	o.Event = normalizeEvent(o.Event)
	var guestLimit *limiter
	if n := o.Event.GuestMessagesPerMinute; o.Event.Enabled && n > 0 {
		guestLimit = newLimiter(float64(n)/60, float64(max(1, n/4)), o.Now)
	}
	return &Core{
		guestLimit: guestLimit,
		event:      loadEventState(o),
		store:      o.Store,
		log:        o.Log,
		now:        o.Now,
		opts:       o,
		events:     newEvents(),
		sendLimit:  newLimiter(l.MessagesPerSecond, float64(l.MessageBurst), o.Now),
		loginLimit: newLimiter(float64(l.FailedLoginsPerMinute)/60, float64(l.FailedLoginsPerMinute), o.Now),
		sessions:   map[uint64]*Session{},
		byAcct:     map[string][]*Session{},
		rooms:      map[string]*roomState{},
		watchers:   map[string]map[uint64]*Session{},
	}, nil
}

// Events is the core's event stream.
func (c *Core) Events() *Events { return c.events }

func (c *Core) publish(ev Event) {
	ev.Time = c.now()
	c.events.publish(ev)
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns a random id (128 bits, 26 characters), for secrets such
// as invitation tokens.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return idEncoding.EncodeToString(b[:])
}

// msgIDEncoding is base32 with its alphabet in ASCII order, so that ids
// sort as their bytes do.
var msgIDEncoding = base32.NewEncoding("234567abcdefghijklmnopqrstuvwxyz").WithPadding(base32.NoPadding)

// newMessageID returns a message id (26 characters): 48 bits of the
// time in milliseconds, then 80 random bits. Ids made later sort after
// (to the millisecond), so the store's index of message ids grows at its
// end instead of touching a random page per message (SD-card wear: the
// store's BenchmarkAppend). The id says when the message was sent, which
// the message says anyway; it is not a secret.
func newMessageID(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[6:])
	return msgIDEncoding.EncodeToString(b[:])
}

// --- accounts ---

// CreateAccount makes an account. The name is folded to lower case.
func (c *Core) CreateAccount(ctx context.Context, name, password string, admin bool) error {
	name = Fold(name)
	if err := ValidName(name); err != nil {
		return err
	}
	cred, err := NewCredentials(password, c.opts.Iterations)
	if err != nil {
		return err
	}
	if err := c.store.CreateAccount(ctx, Account{Name: name, Created: c.now().UTC(), Admin: admin}, cred); err != nil {
		return err
	}
	c.publish(Event{Type: EventAccountCreated, Account: name})
	return nil
}

// SetPassword replaces an account's password.
func (c *Core) SetPassword(ctx context.Context, name, password string) error {
	cred, err := NewCredentials(password, c.opts.Iterations)
	if err != nil {
		return err
	}
	return c.store.SetCredentials(ctx, Fold(name), cred)
}

// SetAdmin makes an account an admin of the box (operator on IRC, owner
// of every room) or takes that away. It takes effect at its next login.
func (c *Core) SetAdmin(ctx context.Context, name string, admin bool) error {
	return c.store.SetAdmin(ctx, Fold(name), admin)
}

// DeleteAccount removes an account: its sessions are ended, its
// credentials, vCard, offline queue, room affiliations and one-to-one
// history are deleted; what it wrote in rooms stays in the rooms' history.
func (c *Core) DeleteAccount(ctx context.Context, name string) error {
	name = Fold(name)
	if err := c.store.DeleteAccount(ctx, name); err != nil {
		return err
	}
	c.mu.Lock()
	for _, s := range c.byAcct[name] {
		s.sink.Deliver(Delivery{Kind: DelDisconnect, Reason: "account deleted"})
	}
	for _, r := range c.rooms {
		delete(r.room.Affiliations, name)
	}
	c.mu.Unlock()
	c.publish(Event{Type: EventAccountDeleted, Account: name})
	return nil
}

// Accounts lists the accounts.
func (c *Core) Accounts(ctx context.Context) ([]Account, error) { return c.store.Accounts(ctx) }

// Admins lists the box admins' account names, ordered.
func (c *Core) Admins(ctx context.Context) ([]string, error) { return c.store.Admins(ctx) }

// Account returns one account.
func (c *Core) Account(ctx context.Context, name string) (Account, error) {
	a, _, err := c.store.Account(ctx, Fold(name))
	return a, err
}

// LoginAllowed says whether addr may try to log in now (ErrTooManyAttempts
// once it failed FailedLoginsPerMinute times within about a minute).
func (c *Core) LoginAllowed(addr string) error {
	if c.loginLimit.Blocked(addr) {
		return ErrTooManyAttempts
	}
	return nil
}

// LoginFailed records a failed login from addr (doors doing SCRAM call it).
func (c *Core) LoginFailed(addr, account, door string) {
	c.loginLimit.Take(addr)
	c.publish(Event{Type: EventLoginFailed, Addr: addr, Account: account, Door: door})
	c.log.Info("login failed", "addr", addr, "account", account, "door", door)
}

// Credentials returns an account's stored SCRAM keys, for doors running a
// SCRAM exchange. ErrBadPassword hides whether the account exists.
func (c *Core) Credentials(ctx context.Context, name, addr string) (Credentials, error) {
	if err := c.LoginAllowed(addr); err != nil {
		return Credentials{}, err
	}
	_, cred, err := c.store.Account(ctx, Fold(name))
	if errors.Is(err, ErrNotFound) {
		return Credentials{}, ErrBadPassword
	}
	return cred, err
}

// Authenticate checks a name and plain-text password (SASL PLAIN, IRC
// PASS) from addr, with the failed-login bound per address.
func (c *Core) Authenticate(ctx context.Context, name, password, addr, door string) (Account, error) {
	if err := c.LoginAllowed(addr); err != nil {
		return Account{}, err
	}
	name = Fold(name)
	a, cred, err := c.store.Account(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Account{}, err
	}
	if err != nil || !VerifyPassword(cred, password) {
		c.LoginFailed(addr, name, door)
		return Account{}, ErrBadPassword
	}
	return a, nil
}

// --- sessions ---

// SessionInfo describes a new session.
type SessionInfo struct {
	Account  string // authenticated account
	Door     string // "irc", "xmpp", …
	Resource string // XMPP resource or IRC nick; informational
	Mask     string // door's full mask, matched by room masks
	Addr     string // remote address
	// Guest marks a session of someone without an account (see
	// OpenGuest): Account is then GuestPrefix + the guest's nick.
	Guest bool
}

// GuestPrefix starts the pseudo-account of a guest session; no account
// name can start with it, so guests and accounts never collide.
const GuestPrefix = "~"

// IsGuest reports whether an account name is a guest's pseudo-account.
func IsGuest(account string) bool { return strings.HasPrefix(account, GuestPrefix) }

// Session is one connection of an account, through one door.
type Session struct {
	c    *Core
	id   uint64
	info SessionInfo
	sink Sink
	// admin: the account was a box admin when the session opened (SetAdmin
	// takes effect at the next login).
	admin bool

	// guarded by c.mu
	presence Presence
	rooms    roomNicks       // the rooms it is in, with its nick in each
	watching map[string]bool // made by the first Watch
	closed   bool
}

// ID is the session's number, unique for the core's life.
func (s *Session) ID() uint64 { return s.id }

// Account is the session's account name.
func (s *Session) Account() string { return s.info.Account }

// Info returns what the session was opened with.
func (s *Session) Info() SessionInfo { return s.info }

func (s *Session) ref() SessionRef {
	return SessionRef{ID: s.id, Account: s.info.Account, Door: s.info.Door, Resource: s.info.Resource}
}

// Open starts a session for an authenticated account. Its presence is
// unavailable until SetPresence.
func (c *Core) Open(ctx context.Context, info SessionInfo, sink Sink) (*Session, error) {
	info.Account = Fold(info.Account)
	info.Guest = false
	if sink == nil {
		return nil, errors.New("chat: session needs a sink")
	}
	a, _, err := c.store.Account(ctx, info.Account)
	if err != nil {
		return nil, fmt.Errorf("open session for %q: %w", info.Account, err)
	}
	return c.open(info, sink, a.Admin)
}

// OpenGuest starts a session for someone without an account, known by
// nick (the door checks the box allows guests). A guest may join rooms
// that are not members-only and speak there; it sends and receives no
// direct messages, and its messages are stored under GuestPrefix+nick.
// The nick must not be an account's name nor a guest's already present.
func (c *Core) OpenGuest(ctx context.Context, nick string, info SessionInfo, sink Sink) (*Session, error) {
	if sink == nil {
		return nil, errors.New("chat: session needs a sink")
	}
	if nick == "" || len(nick) > 30 || strings.ContainsAny(nick, " \t\r\n\x00") {
		return nil, fmt.Errorf("%w: a guest nickname has 1 to 30 characters and no spaces", ErrBadName)
	}
	folded := foldNick(nick)
	if _, _, err := c.store.Account(ctx, folded); err == nil {
		return nil, fmt.Errorf("%w: %q", ErrNickReserved, nick)
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	info.Account = GuestPrefix + folded
	info.Guest = true
	if info.Resource == "" {
		info.Resource = nick
	}
	c.mu.Lock()
	taken := len(c.byAcct[info.Account]) > 0
	c.mu.Unlock()
	if taken {
		return nil, fmt.Errorf("%w: %q", ErrNickInUse, nick)
	}
	return c.open(info, sink, false)
}

func (c *Core) open(info SessionInfo, sink Sink, admin bool) (*Session, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrSessionClosed
	}
	if info.Guest && c.event.closed {
		c.mu.Unlock()
		return nil, ErrGuestsClosed
	}
	if info.Guest && len(c.byAcct[info.Account]) > 0 {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", ErrNickInUse, strings.TrimPrefix(info.Account, GuestPrefix))
	}
	if len(c.byAcct[info.Account]) >= c.opts.Limits.SessionsPerAccount {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w (%d)", ErrTooManySessions, c.opts.Limits.SessionsPerAccount)
	}
	c.nextID++
	s := &Session{c: c, id: c.nextID, info: info, sink: sink, admin: admin,
		presence: Presence{Show: ShowOffline}}
	c.sessions[s.id] = s
	c.byAcct[info.Account] = append(c.byAcct[info.Account], s)
	c.mu.Unlock()
	c.publish(Event{Type: EventSessionOpened, Account: info.Account, Door: info.Door, Addr: info.Addr})
	return s, nil
}

// Close ends the session: it leaves every room (occupants see a quit
// unless another session of the account holds the nick), its presence goes
// offline, and it receives nothing more.
func (s *Session) Close(reason string) {
	c := s.c
	c.mu.Lock()
	if s.closed {
		c.mu.Unlock()
		return
	}
	s.closed = true
	var gone, emptied []string
	var goneStates []*roomState // gone's rooms, while they have occupants
	for _, rn := range s.rooms {
		room := rn.room
		r := c.rooms[room]
		if r == nil {
			continue
		}
		if _, left := r.removeSession(s); !left {
			continue
		}
		gone = append(gone, room)
		if c.forgetIfEmptyLocked(r) {
			emptied = append(emptied, room)
		} else {
			goneStates = append(goneStates, r)
		}
	}
	if len(gone) > 0 {
		c.deliverQuitLocked(s, reason, gone, goneStates)
	}
	if s.presence.Show != ShowOffline {
		s.presence = Presence{Show: ShowOffline, Status: reason}
		c.broadcastPresence(s)
	}
	for acct := range s.watching {
		delete(c.watchers[acct], s.id)
		if len(c.watchers[acct]) == 0 {
			delete(c.watchers, acct)
		}
	}
	delete(c.sessions, s.id)
	// A new slice: a caller may be walking the old one.
	if rest := slices.DeleteFunc(slices.Clone(c.byAcct[s.info.Account]), func(x *Session) bool { return x == s }); len(rest) > 0 {
		c.byAcct[s.info.Account] = rest
	} else {
		delete(c.byAcct, s.info.Account)
	}
	s.rooms = nil
	c.mu.Unlock()
	if len(emptied) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c.deleteEmptyRooms(ctx, emptied...)
		cancel()
	}
	c.publish(Event{Type: EventSessionClosed, Account: s.info.Account, Door: s.info.Door, Addr: s.info.Addr})
}

// deliverQuitLocked tells everyone still in the rooms s left by closing
// (gone; goneStates those not emptied) that it quit: one DelQuit per
// receiver, naming the rooms it shares with s; c.mu held. A room's
// members are walked from its session list, and a receiver in all of
// gone (always, when s was in one room) gets slices shared by all: a
// thousand IRC clients dropping out of a room are a million deliveries,
// which had each made a map entry and two slices.
func (c *Core) deliverQuitLocked(s *Session, reason string, gone []string, goneStates []*roomState) {
	account := s.info.Account
	var accountGone []string // of gone, the rooms no session of the account is left in
	for _, room := range gone {
		if r := c.rooms[room]; r == nil || !r.hasAccount(account) {
			accountGone = append(accountGone, room)
		}
	}
	occ := Occupant{Nick: s.info.Resource, Account: account}
	occ.Nick, _ = s.rooms.nick(gone[0])
	if occ.Nick == "" {
		occ.Nick = s.info.Resource
	}
	shared := &Rendered{}
	quit := func(os *Session, rooms, accountGone []string) {
		d := Delivery{Kind: DelQuit, Rooms: rooms, Occupant: occ, Reason: reason, From: s.ref(),
			GoneRooms: accountGone, SharesRoom: c.sharesRoomLocked(os, account), Shared: shared}
		if len(rooms) > 0 && rooms[0] != gone[0] {
			d.Occupant.Nick, _ = s.rooms.nick(rooms[0])
		}
		os.sink.Deliver(d)
	}
	if len(goneStates) == 1 && len(gone) == 1 {
		goneStates[0].each(func(os *Session) { quit(os, gone, accountGone) })
		return
	}
	seen := map[uint64]bool{}
	for _, r := range goneStates {
		r.each(func(os *Session) {
			if seen[os.id] {
				return
			}
			seen[os.id] = true
			var rooms, goneHere []string
			for _, room := range gone {
				if _, in := os.rooms.nick(room); in {
					rooms = append(rooms, room)
					if slices.Contains(accountGone, room) {
						goneHere = append(goneHere, room)
					}
				}
			}
			if len(rooms) > 0 {
				quit(os, rooms, goneHere)
			}
		})
	}
}

// Sessions returns references to every open session of account.
func (c *Core) Sessions(account string) []SessionRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	var refs []SessionRef
	for _, s := range c.byAcct[Fold(account)] {
		refs = append(refs, s.ref())
	}
	return refs
}

// Population returns the open sessions plus the occupants of every room:
// what the server's memory grows with (a session's state, and each
// room membership's).
func (c *Core) Population() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.sessions)
	for _, r := range c.rooms {
		n += len(r.order)
	}
	return n
}

// SessionCount returns the number of open sessions per door.
func (c *Core) SessionCount() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := map[string]int{}
	for _, s := range c.sessions {
		n[s.info.Door]++
	}
	return n
}

// Shutdown tells every session to disconnect with reason and refuses new
// ones. The doors close their connections and call Session.Close.
func (c *Core) Shutdown(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, s := range c.sessions {
		s.sink.Deliver(Delivery{Kind: DelDisconnect, Reason: reason})
	}
}

// checkBody applies the message-size bound and the per-account rate limit.
func (c *Core) checkBody(s *Session, body string) error {
	if len(body) > c.opts.Limits.MaxMessageBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLong, len(body), c.opts.Limits.MaxMessageBytes)
	}
	if strings.TrimSpace(body) == "" {
		return ErrEmptyMessage
	}
	if !utf8.ValidString(body) {
		return ErrInvalidUTF8
	}
	if !c.sendLimit.Allow(s.info.Account) || !c.guestAllowed(s) {
		return ErrRateLimited
	}
	return nil
}
