package xmpp

import (
	"sync"

	"chatbox/services/chat"
)

// maxInbox bounds the deliveries waiting to be turned into stanzas for
// one session; a session that falls that far behind is ended.
const maxInbox = 10000

// inbox holds the core's deliveries to a session until its drain
// goroutine (one at a time, started on demand) turns them into stanzas:
// the core calls Deliver under its lock, and the conversion may consult
// the core and the store (rosters, blocklists), which must not happen
// under that lock.
type inbox struct {
	mu       sync.Mutex
	queue    []*chat.Delivery
	draining bool
	overflow bool
}

// Deliver implements chat.Sink. It never blocks.
func (ss *session) Deliver(d chat.Delivery) {
	in := &ss.inbox
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.overflow {
		return
	}
	if len(in.queue) >= maxInbox {
		in.overflow = true
		go ss.kick(&streamError{Condition: "policy-violation", Text: "too far behind: reconnect"})
		return
	}
	if in.queue == nil {
		in.queue = (*inboxPool.Get().(*[]*chat.Delivery))[:0]
	}
	in.queue = append(in.queue, ss.srv.shared(&d))
	if !in.draining {
		in.draining = true
		go ss.drainInbox()
	}
}

func (ss *session) drainInbox() {
	in := &ss.inbox
	for {
		in.mu.Lock()
		batch := in.queue
		in.queue = nil
		if len(batch) == 0 {
			in.draining = false
			in.mu.Unlock()
			return
		}
		in.mu.Unlock()
		for _, d := range batch {
			ss.deliverNow(*d)
			if d.Kind == chat.DelMessage {
				ss.srv.core.Delivered(d.Message) // the latency histogram (chat/latency.go)
			}
		}
		if cap(batch) <= inboxPoolCap {
			clear(batch)
			batch = batch[:0]
			inboxPool.Put(&batch)
		}
	}
}

// inboxPool lends the inboxes their queues (of pointers): a delivery is
// appended under the core's lock, where growing a queue of one's own for
// every fan-out was most of a room's garbage; an idle session holds none.
var inboxPool = sync.Pool{New: func() any { q := make([]*chat.Delivery, 0, 16); return &q }}

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

const inboxPoolCap = 256

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
