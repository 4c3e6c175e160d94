package appliance

import (
	"sync"
	"time"
)

// State is the box's state as a whole, as the LEDs and the web admin show
// it.
type State string

// Box states.
const (
	StateBooting      State = "booting"
	StateReady        State = "ready"
	StateDegraded     State = "degraded" // a service failed and is being restarted
	StatePairing      State = "pairing"  // registration window open
	StateShuttingDown State = "shutting-down"
)

// Event is something the box tells its observers (hw, webadmin): a state
// change, a service failure, or a chat event ("message delivered").
type Event struct {
	Time   time.Time
	Kind   string // "state", "service.failed", "service.ready", or a chat event type
	State  State
	Detail string
}

// hub keeps the state and fans events out; a slow observer misses events
// rather than stalling the box.
type hub struct {
	mu    sync.Mutex
	state State
	subs  map[chan Event]struct{}
	now   func() time.Time
}

func newHub(now func() time.Time) *hub {
	return &hub{state: StateBooting, subs: map[chan Event]struct{}{}, now: now}
}

func (h *hub) State() State {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state
}

func (h *hub) setState(s State, detail string) {
	h.mu.Lock()
	if h.state == s {
		h.mu.Unlock()
		return
	}
	h.state = s
	h.mu.Unlock()
	h.publish(Event{Kind: "state", State: s, Detail: detail})
}

func (h *hub) publish(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ev.Time = h.now()
	ev.State = h.state
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// Subscribe returns a channel of events and a function that ends the
// subscription.
func (h *hub) Subscribe(buffer int) (<-chan Event, func()) {
	ch := make(chan Event, max(buffer, 1))
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			h.mu.Lock()
			delete(h.subs, ch)
			h.mu.Unlock()
			close(ch)
		})
	}
}
