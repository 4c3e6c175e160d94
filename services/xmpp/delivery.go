package xmpp

import (
	"slices"
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
// not happen under that lock. Who converts depends on what is queued
// (classify):
//
//   - a room message is converted in a drain round (drainRounds: a few
//     goroutines that convert one session after another, running only
//     while there is work), as the write rounds write: a room's fan-out
//     is one conversion per member, and a goroutine started for each
//     (one per member per message under load) cost more than the
//     conversion;
//   - another occupant's arrival in a room, or departure (a leave, an
//     IRC member's quit), waits for the next lazy round (lazyCoalesce):
//     under a storm of joins, or of leaves (a dropped Wi-Fi), one
//     conversion per member a round;
//   - anything else (it may read the store) starts a drain goroutine of
//     the session's own.
//
// One converter at a time has the inbox (draining), and takes what
// waited along, in order. A round hands the inbox to a drain goroutine
// when something that needs one came meanwhile (unsafe).
type inbox struct {
	mu         sync.Mutex
	queue      chunkq.Queue[*chat.Delivery] // in chunks lent by inboxPool
	draining   bool                         // a converter has the inbox
	lazyQueued bool                         // in the next lazy round
	unsafe     int                          // queued deliveries that need a drain goroutine
	overflow   bool
}

// deliveryClass says who may convert a delivery.
type deliveryClass int

const (
	classDrain deliveryClass = iota // a drain goroutine (may read the store)
	classRound                      // a drain round: a room message
	classLazy                       // the lazy round: another occupant's arrival or departure
)

// classify says who converts d for a session (remote: a federated room
// session, whose stanzas go to its server).
func classify(d *chat.Delivery, remote bool) deliveryClass {
	switch {
	case remote:
		return classDrain
	case (d.Kind == chat.DelJoin || d.Kind == chat.DelLeave) && !d.Echo && d.Room != "":
		return classLazy
	case d.Kind == chat.DelQuit && len(d.Rooms) > 0:
		return classLazy
	case d.Kind == chat.DelMessage && d.Message != nil && d.Message.Room != "":
		return classRound
	}
	return classDrain
}

// inboxStart says what to start for the inbox.
type inboxStart int

const (
	startNothing inboxStart = iota
	startDrain              // a drain goroutine
	startRound              // the session's turn in a drain round
	startLazy               // the session's turn in the next lazy round
)

// put queues d and says what to start; in.mu held.
func (in *inbox) put(d *chat.Delivery, class deliveryClass) inboxStart {
	in.queue.Push(&inboxPool, d)
	if class == classDrain {
		in.unsafe++
	}
	switch {
	case in.draining:
		return startNothing
	case class == classDrain:
		in.draining = true
		return startDrain
	case class == classRound:
		in.draining = true
		return startRound
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
	in.unsafe = 0
	return in.queue.Take()
}

// takeRound returns what a drain round converts; handoff when something
// queued needs a drain goroutine, which the caller starts (draining
// stays set).
func (in *inbox) takeRound() (batch chunkq.Queue[*chat.Delivery], handoff bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.unsafe > 0 {
		return batch, true
	}
	return in.queue.Take(), false
}

// takeLazy returns what waited for the lazy round, nothing when a
// converter has the inbox (or nothing waits). What it returns is all
// lazy: anything else would have started a converter.
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

// done ends a round's conversion (a drain round's or the lazy round's):
// what came meanwhile goes to a drain goroutine if any of it needs one,
// else to a drain round (draining stays set); nothing left clears
// draining.
func (in *inbox) done() inboxStart {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch {
	case in.queue.Len() == 0:
		in.draining = false
		return startNothing
	case in.unsafe > 0:
		return startDrain
	}
	return startRound
}

// Deliver implements chat.Sink. It never blocks.
func (ss *session) Deliver(d chat.Delivery) {
	in := &ss.inbox
	in.mu.Lock()
	defer in.mu.Unlock()
	if ss.admitLocked() {
		ss.start(ss.putLocked(&d))
	}
}

// admitLocked says whether the inbox takes one more delivery: past
// maxInbox the session is ended (once) and takes no more; in.mu held.
func (ss *session) admitLocked() bool {
	in := &ss.inbox
	if in.overflow {
		return false
	}
	if in.queue.Len() >= maxInbox {
		in.overflow = true
		go ss.kick(&streamError{Condition: "policy-violation", Text: "too far behind: reconnect"})
		return false
	}
	return true
}

// DeliverBatch is the core's BatchSink: a run of room messages, queued
// under one lock.
func (ss *session) DeliverBatch(ds []chat.Delivery) {
	in := &ss.inbox
	in.mu.Lock()
	defer in.mu.Unlock()
	start := startNothing
	for i := 0; i < len(ds) && ss.admitLocked(); i++ {
		if s := ss.putLocked(&ds[i]); s != startNothing {
			start = s // the first put's: a converter has the inbox after it
		}
	}
	ss.start(start)
}

// putLocked queues (a copy of) d and says what to start; in.mu held.
func (ss *session) putLocked(d *chat.Delivery) inboxStart {
	class := classify(d, ss.remote)
	if (class == classRound && ss.srv.drainRounds == nil) || (class == classLazy && ss.srv.lazyRounds == nil) {
		class = classDrain // a Server made without rounds (tests)
	}
	return ss.inbox.put(ss.srv.shared(d), class)
}

// drainShard picks a new session's drain rounds shard.
func (s *Server) drainShard() int {
	if s.drainRounds == nil {
		return 0
	}
	return s.drainRounds.Shard()
}

// start starts what the inbox asks for.
func (ss *session) start(what inboxStart) {
	switch what {
	case startDrain:
		go ss.drainInbox()
	case startRound:
		ss.srv.drainRounds.Add(ss.shard, (*roundInbox)(ss))
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

// roundInbox is a session's turn in a drain round: it converts what is
// queued on the round's goroutine.
type roundInbox session

func (t *roundInbox) Flush() {
	ss := (*session)(t)
	batch, handoff := ss.inbox.takeRound()
	if handoff {
		go ss.drainInbox()
		return
	}
	if batch.Len() > 0 {
		ss.deliverBatch(&batch, true)
	}
	ss.start(ss.inbox.done())
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
	ss.start(ss.inbox.done())
}

// deliverBatch converts batch in order and gives its chunks back to
// the pool; lazy lets other occupants' presence wait for a lazy round
// of the output queue.
func (ss *session) deliverBatch(batch *chunkq.Queue[*chat.Delivery], lazy bool) {
	t := ss.srv.core.Tally() // the latency histogram (chat/latency.go)
	// Room messages in a row go out as one burst: the output filters
	// asked, the session's and the queue's locks taken, once for all.
	var room [16]*prepared
	burst := room[:0]
	flush := func() {
		if len(burst) > 0 {
			ss.sendBurst(burst...)
			clear(burst)
			burst = burst[:0]
		}
	}
	for d := range batch.All() {
		if d.Kind == chat.DelMessage && d.Message != nil && d.Message.Room != "" {
			if p := ss.roomMessagePrepared(d); p != nil {
				if len(burst) == cap(burst) {
					flush()
				}
				burst = append(burst, p)
			}
			t.Add(d.Message)
			continue
		}
		flush()
		if !lazy && classify(d, false) == classLazy {
			ss.mucOccupantMoved(d, false)
			continue
		}
		ss.deliverNow(d)
		if d.Kind == chat.DelMessage {
			t.Add(d.Message)
		}
	}
	flush()
	ss.srv.core.Record(&t)
	batch.Release(&inboxPool)
}

// inboxPool lends the inboxes their queues (of pointers): a delivery is
// appended under the core's lock, where growing a queue of one's own for
// every fan-out was most of a room's garbage; an idle session holds none.
var inboxPool chunkq.Pool[*chat.Delivery]

// shared returns d's copy for the inbox: a room message's or a join's
// receivers (but the sender or joiner, whose copy is an Echo) share one,
// kept in the fan-out's chat.Rendered (the core gives them all the same
// delivery); other deliveries go through interned, which compares.
func (s *Server) shared(d *chat.Delivery) *chat.Delivery {
	m := d.Message
	roomMessage := d.Kind == chat.DelMessage && m != nil && m.Room != ""
	if (roomMessage || d.Kind == chat.DelJoin) && d.Shared != nil && !d.Echo && !d.Carbon {
		return d.Shared.Value("xmpp-delivery", func() any {
			c := new(chat.Delivery)
			*c = *d
			return c
		}).(*chat.Delivery)
	}
	return s.interned.of(d)
}

// deliveryIntern keeps one copy of a fan-out's delivery (a chat.Delivery
// is over 500 bytes) for all its receivers, where shared does not find
// it in the fan-out's Rendered: the core makes a leave's or a quit's
// deliveries (and a room message's echoes) one after the other, alike
// but for Echo (the sender's own) and, for a quit, the rooms each
// receiver shares with the quitter.
type deliveryIntern struct {
	mu          sync.Mutex
	plain, echo *chat.Delivery
}

// of returns d, or the kept copy of an identical delivery of the same
// fan-out.
func (in *deliveryIntern) of(d *chat.Delivery) *chat.Delivery {
	if d.Shared == nil || (d.Kind != chat.DelMessage && d.Kind != chat.DelLeave && d.Kind != chat.DelQuit) {
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
		k.Room == d.Room && k.From == d.From && k.Occupant.Nick == d.Occupant.Nick && k.Occupant.Account == d.Occupant.Account &&
		// A quit names the rooms each receiver shares with the quitter.
		k.SharesRoom == d.SharesRoom && slices.Equal(k.Rooms, d.Rooms) && slices.Equal(k.GoneRooms, d.GoneRooms) {
		return k
	}
	c := new(chat.Delivery)
	*c = *d
	*slot = c
	return c
}

// deliverNow turns one delivery into stanzas.
func (ss *session) deliverNow(d *chat.Delivery) {
	switch d.Kind {
	case chat.DelMessage:
		switch {
		case d.Message == nil:
		case d.Message.Room != "":
			ss.mucRoomMessage(d)
		default:
			ss.deliverMessage(*d)
		}
	case chat.DelPresence:
		ss.mucPresenceChange(*d)
		ss.deliverPresence(*d)
	case chat.DelSignal:
		if d.Room != "" {
			ss.mucSignal(*d)
		} else {
			ss.deliverSignal(*d)
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
