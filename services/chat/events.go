package chat

import (
	"sync"
	"sync/atomic"
	"time"
)

// EventType names what happened in the core, for observers outside the
// chat (the appliance, the LEDs, the web admin's dashboard).
type EventType string

// Event types.
const (
	EventSessionOpened  EventType = "session.opened"
	EventSessionClosed  EventType = "session.closed"
	EventMessage        EventType = "message.delivered" // stored and routed
	EventAccountCreated EventType = "account.created"
	EventAccountDeleted EventType = "account.deleted"
	EventRoomCreated    EventType = "room.created"
	EventLoginFailed    EventType = "login.failed"
	EventGuestsClosed   EventType = "guests.closed" // event mode: CloseGuests
	EventGuestsOpened   EventType = "guests.opened" // event mode: OpenGuests
)

// Event is one thing that happened, as observers see it. It never carries
// message bodies or passwords.
type Event struct {
	Time       time.Time
	Type       EventType
	Account    string
	Room       string
	Door       string
	Addr       string
	Recipients int // for EventMessage: sessions it was routed to
}

// Events fans core events out to observers. A slow observer misses events
// (counted in Dropped) instead of slowing the chat down.
type Events struct {
	mu      sync.Mutex
	subs    map[chan Event]struct{}
	dropped atomic.Uint64
}

func newEvents() *Events { return &Events{subs: map[chan Event]struct{}{}} }

// Subscribe returns a channel of events (buffered; size at least 1) and a
// function that ends the subscription and closes the channel.
func (e *Events) Subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, max(buffer, 1))
	e.mu.Lock()
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			e.mu.Lock()
			delete(e.subs, ch)
			e.mu.Unlock()
			close(ch)
		})
	}
}

// Dropped counts events that observers were too slow to take.
func (e *Events) Dropped() uint64 { return e.dropped.Load() }

func (e *Events) publish(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.subs {
		select {
		case ch <- ev:
		default:
			e.dropped.Add(1)
		}
	}
}
