package xmpp

import (
	"sync"

	"chatbox/internal/chunkq"
	"chatbox/services/chat"
)

// maxInbox bounds the deliveries waiting to be turned into stanzas for
// one session; a session that falls that far behind is ended.
const maxInbox = 10000

// inbox holds the core's deliveries to a session until they are turned
// into stanzas: the core calls Deliver under its lock, and the conversion
// may consult the core and the store (rosters, blocklists), which must
// not happen under that lock. A drain goroutine (one at a time, started
// on demand) converts them, in order.
//
// Deliveries nobody waits for (lazyDelivery: another occupant joined a
// room) do not start one: they wait for the server's next lazy round
// (lazyCoalesce), which converts what waited on its own goroutine. Under
// a storm of joins into a big room that is one conversion per member a
// round, not one goroutine per member per join. Anything else delivered
// meanwhile starts the drain goroutine, which takes what waited along,
// in order.
type inbox struct {
	mu         sync.Mutex
	queue      chunkq.Queue[*chat.Delivery] // in chunks lent by inboxPool
	draining   bool                         // a drain goroutine, or the lazy round, converts
	lazyQueued bool                         // in the next lazy round
	overflow   bool
}

// inboxStart says what put wants started.
type inboxStart int

const (
	startNothing inboxStart = iota
	startDrain              // a drain goroutine
	startLazy               // the session's turn in the next lazy round
)

// put queues d (lazy: it may wait for a lazy round) and says what to
// start; in.mu held.
func (in *inbox) put(d *chat.Delivery, lazy bool) inboxStart {
	in.queue.Push(&inboxPool, d)
	switch {
	case in.draining:
		return startNothing
	case !lazy:
		in.draining = true
		return startDrain
	case in.lazyQueued:
		return startNothing
	}
	in.lazyQueued = true
	return startLazy
}

// take returns the queued deliveries for the drain goroutine; none
// (and the goroutine ends: draining is cleared) when there are none.
func (in *inbox) take() chunkq.Queue[*chat.Delivery] {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.queue.Len() == 0 {
		in.draining = false
	}
	return in.queue.Take()
}

// takeLazy returns what waited for the lazy round, nil when a drain
// goroutine has it (or nothing waits). What it returns is all lazy: any
// other delivery would have started a drain goroutine.
func (in *inbox) takeLazy() chunkq.Queue[*chat.Delivery] {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.lazyQueued = false
	if in.draining || in.queue.Len() == 0 {
		return chunkq.Queue[*chat.Delivery]{}
	}
	in.draining = true
	return in.queue.Take()
}

// lazyDone ends the lazy round's conversion: true when more came
// meanwhile, for a drain goroutine to take (draining stays set).
func (in *inbox) lazyDone() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.queue.Len() > 0 {
		return true
	}
	in.draining = false
	return false
}

// lazyDelivery says whether d may wait for a lazy round: another
// occupant's arrival in a room (its presence to the members).
func lazyDelivery(d *chat.Delivery) bool {
	return d.Kind == chat.DelJoin && !d.Echo && d.Room != ""
}

// Deliver implements chat.Sink. It never blocks.
func (ss *session) Deliver(d chat.Delivery) {
	in := &ss.inbox
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.overflow {
		return
	}
	if in.queue.Len() >= maxInbox {
		in.overflow = true
		go ss.kick(&streamError{Condition: "policy-violation", Text: "too far behind: reconnect"})
		return
	}
	lazy := ss.srv.lazyRounds != nil && lazyDelivery(&d)
	switch in.put(ss.srv.shared(&d), lazy) {
	case startDrain:
		go ss.drainInbox()
	case startLazy:
		ss.srv.lazyRounds.Add(0, (*lazyInbox)(ss))
	}
}

func (ss *session) drainInbox() {
	for {
		batch := ss.inbox.take()
		if batch.Len() == 0 {
			return
		}
		ss.deliverBatch(&batch, true)
	}
}

// lazyInbox is a session's turn in a lazy round: it converts the
// deliveries that waited for it, on the round's goroutine.
type lazyInbox session

func (t *lazyInbox) Flush() {
	ss := (*session)(t)
	batch := ss.inbox.takeLazy()
	if batch.Len() == 0 {
		return
	}
	// The presences waited already: they go to the next write round.
	ss.deliverBatch(&batch, false)
	if ss.inbox.lazyDone() {
		go ss.drainInbox()
	}
}

// deliverBatch converts batch in order and gives its chunks back to
// the pool; lazy lets other occupants' presence wait for a lazy round
// of the output queue.
func (ss *session) deliverBatch(batch *chunkq.Queue[*chat.Delivery], lazy bool) {
	t := ss.srv.core.Tally() // the latency histogram (chat/latency.go)
	for d := range batch.All() {
		if !lazy && lazyDelivery(d) {
			ss.mucOccupantJoined(*d, false)
			continue
		}
		ss.deliverNow(*d)
		if d.Kind == chat.DelMessage {
			t.Add(d.Message)
		}
	}
	ss.srv.core.Record(&t)
	batch.Release(&inboxPool)
}

// inboxPool lends the inboxes their queues (of pointers): a delivery is
// appended under the core's lock, where growing a queue of one's own for
// every fan-out was most of a room's garbage; an idle session holds none.
var inboxPool chunkq.Pool[*chat.Delivery]

// shared returns d's copy for the inbox: a room message's receivers
// (but its sender, whose copy is an Echo) share one, kept in the
// fan-out's chat.Rendered; other deliveries go through interned.
func (s *Server) shared(d *chat.Delivery) *chat.Delivery {
	if m := d.Message; d.Kind == chat.DelMessage && d.Shared != nil && m != nil && m.Room != "" && !d.Echo && !d.Carbon {
		return d.Shared.Value("xmpp-delivery", func() any {
			c := new(chat.Delivery)
			*c = *d
			return c
		}).(*chat.Delivery)
	}
	return s.interned.of(d)
}

// deliveryIntern keeps one copy of a fan-out's delivery (a chat.Delivery
// is over 500 bytes) for all its receivers: the core makes a room
// message's or a join's deliveries one after the other, alike but for
// Echo (the sender's own).
type deliveryIntern struct {
	mu          sync.Mutex
	plain, echo *chat.Delivery
}

// of returns d, or the kept copy of an identical delivery of the same
// fan-out.
func (in *deliveryIntern) of(d *chat.Delivery) *chat.Delivery {
	if d.Shared == nil || (d.Kind != chat.DelMessage && d.Kind != chat.DelJoin) {
		c := new(chat.Delivery)
		*c = *d
		return c
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	slot := &in.plain
	if d.Echo {
		slot = &in.echo
	}
	if k := *slot; k != nil && k.Shared == d.Shared && k.Kind == d.Kind && k.Message == d.Message &&
		k.Room == d.Room && k.From == d.From && k.Occupant.Nick == d.Occupant.Nick && k.Occupant.Account == d.Occupant.Account {
		return k
	}
	c := new(chat.Delivery)
	*c = *d
	*slot = c
	return c
}

// deliverNow turns one delivery into stanzas.
func (ss *session) deliverNow(d chat.Delivery) {
	switch d.Kind {
	case chat.DelMessage:
		switch {
		case d.Message == nil:
		case d.Message.Room != "":
			ss.mucRoomMessage(d)
		default:
			ss.deliverMessage(d)
		}
	case chat.DelPresence:
		ss.mucPresenceChange(d)
		ss.deliverPresence(d)
	case chat.DelSignal:
		if d.Room != "" {
			ss.mucSignal(d)
		} else {
			ss.deliverSignal(d)
		}
	case chat.DelDisconnect:
		ss.kick(&streamError{Condition: disconnectCondition(d.Reason), Text: d.Reason})
	default:
		for _, h := range ss.srv.features.deliveries[d.Kind] {
			h(ss, d)
		}
	}
}

func disconnectCondition(reason string) string {
	switch reason {
	case "account deleted":
		return "not-authorized"
	}
	return "system-shutdown"
}

// deliverSignal shows an IRC client's typing notification as a chat
// state (XEP-0085). Signals from XMPP sessions were relayed directly.
func (ss *session) deliverSignal(d chat.Delivery) {
	if d.From.Door == "xmpp" || d.Room != "" {
		return
	}
	state := map[string]string{"active": "composing", "paused": "paused", "done": "active"}[d.Tags["typing"]]
	if state == "" {
		return
	}
	ss.send(El(nsClient, "message", "from", d.From.Account+"@"+ss.srv.cfg.Domain, "to", ss.full, "type", "chat").Add(
		El(nsChatStates, state)))
}
