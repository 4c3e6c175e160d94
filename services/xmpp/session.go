package xmpp

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"chatbox/services/chat"
)

// session is a bound resource (RFC 6120 §7): one chat.Session of the
// account, attached to a connection, or, after the connection dropped
// with stream management on, waiting to be resumed (XEP-0198).
type session struct {
	srv      *Server
	account  string
	resource string
	bare     string // account@domain
	full     string // account@domain/resource
	core     *chat.Session
	// remote marks a federated user's room session (xep0045_s2s_muc.go):
	// what it is sent goes to its server.
	remote bool

	// sends counts the room messages sent and not yet stored
	// (mucMessage): the client's other stanzas wait for them, and an
	// XEP-0198 h counts a message only once it is stored.
	sends chat.InFlight

	wmu       sync.Mutex // orders writes, so that XEP-0198 numbers them as sent
	toEscaped []byte     // full, escaped for a to attribute (sendBurst; wmu)

	mu        sync.Mutex
	c         *conn // nil while detached
	closed    bool
	available bool                       // sent available presence (RFC 6121 §4.2)
	priority  int                        // of its last available presence
	presence  *Element                   // its last broadcast presence, without to/from
	directed  []string                   // JIDs sent directed available presence (presence.go); usually a room or two
	handled   uint32                     // stanzas received (XEP-0198 h)
	ext       atomic.Pointer[[]extState] // feature state, by feature name (state)

	inbox inbox          // the core's deliveries, see Deliver
	shard int            // its drain rounds' shard (delivery.go)
	shown map[int64]bool // direct messages shown (see firstDelivery)
}

// bind binds a resource (RFC 6120 §7) and opens the core session.
func (c *conn) bind(iq *Element) {
	if iq.Get("type") != "set" {
		c.sendEl(stanzaErrorReply(iq, "modify", "bad-request", "bind is a set"))
		return
	}
	res := iq.Child(nsBind, "bind").ChildText(nsBind, "resource")
	if res == "" {
		res = "chatbox-" + randomID()
	}
	host := c.srv.cfg.Domain
	if c.guest {
		host, c.account = c.srv.guestDomain(), c.guestLocal(res) // xep0175_anonymous.go
	}
	a, err := parseJID(c.account + "@" + host + "/" + res)
	if err != nil || a.Resource == "" {
		c.sendEl(stanzaErrorReply(iq, "modify", "bad-request", "that resource is not valid"))
		return
	}
	ss := &session{srv: c.srv, account: c.account, resource: a.Resource, bare: a.Bare(), full: a.String(),
		c: c, shard: c.srv.drainShard()}
	// A resource already bound is taken over by the new one (RFC 6120
	// §7.7.2.2, the override policy): the old stream ends with <conflict/>.
	if old := c.srv.sessionAt(c.account, a.Resource); old != nil {
		old.kick(&streamError{Condition: "conflict", Text: "replaced by a new connection with the same resource"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info := chat.SessionInfo{Account: c.account, Door: "xmpp", Resource: a.Resource, Mask: ss.full, Addr: c.ip}
	var cs *chat.Session
	if c.guest {
		cs, err = c.srv.core.OpenGuest(ctx, c.account, info, ss)
	} else {
		cs, err = c.srv.core.Open(ctx, info, ss)
	}
	if err != nil {
		if errors.Is(err, chat.ErrGuestsClosed) {
			c.sendEl(stanzaErrorReply(iq, "cancel", "forbidden", err.Error()))
		} else if errors.Is(err, chat.ErrTooManySessions) {
			c.sendEl(stanzaErrorReply(iq, "wait", "resource-constraint", err.Error()))
		} else {
			c.sendEl(stanzaErrorReply(iq, "wait", "internal-server-error", err.Error()))
		}
		return
	}
	ss.core = cs
	ss.account = cs.Account() // a guest's is its pseudo-account (chat.GuestPrefix)
	c.srv.mu.Lock()
	c.srv.bindLocked(ss)
	c.srv.mu.Unlock()
	c.mu.Lock()
	c.sess = ss
	c.mu.Unlock()
	c.state = stateReady
	c.setReadDeadline(time.Now().Add(c.srv.cfg.PingInterval))
	c.sendEl(El(nsClient, "iq", "type", "result", "id", iq.Get("id")).Add(
		El(nsBind, "bind").Add(El(nsBind, "jid").Add(ss.full))))
	if ss.guest() {
		return // a guest has no roster, blocklist or vCard to load
	}
	for _, h := range c.srv.features.onBound {
		h(ss)
	}
}

// conn returns the attached connection, or nil.
func (ss *session) conn() *conn {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.c
}

// send delivers a stanza to the client through the session's output
// filters (blocking, CSI, stream management).
func (ss *session) send(el *Element) {
	for _, f := range ss.srv.features.outFilters {
		if !f(ss, el) {
			return
		}
	}
	ss.write(el)
}

// write puts a stanza on the wire (or the resumption queue) as is.
func (ss *session) write(el *Element) {
	if ss.remote {
		ss.srv.fedSend(el.Clone())
		return
	}
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	ss.mu.Lock()
	c := ss.c
	closed := ss.closed
	ss.mu.Unlock()
	if closed {
		return
	}
	for _, f := range ss.srv.features.onWrite {
		f(ss, el)
	}
	if c != nil {
		c.sendEl(el)
	}
}

// result answers an IQ with type result and an optional payload.
func (ss *session) result(iq *Element, payload *Element) {
	r := El(nsClient, "iq", "type", "result", "id", iq.Get("id"), "to", ss.full, "from", iq.Get("to"))
	ss.send(r.Add(payload))
}

// replyErr answers a stanza with an error.
func (ss *session) replyErr(st *Element, cond, text string) {
	r := stanzaErrorReply(st, "", cond, text)
	r.Set("to", ss.full)
	ss.send(r)
}

// kick ends the session's stream with a stream error.
func (ss *session) kick(e *streamError) {
	if c := ss.conn(); c != nil {
		c.final.Store(true)
		c.fail(e)
		return
	}
	ss.end(e.Text)
}

// connLost is called when the session's connection ends: without
// stream management the session ends.
func (ss *session) connLost(c *conn) {
	ss.mu.Lock()
	if ss.c != c {
		ss.mu.Unlock()
		return
	}
	ss.c = nil
	ss.mu.Unlock()
	for _, hold := range ss.srv.features.onConnLost {
		if !c.final.Load() && hold(ss) {
			return // a feature (XEP-0198) keeps the session for resumption
		}
	}
	ss.end("disconnected")
}

// end closes the session: unavailable presence goes out, the core session
// closes, and the resource is free again.
func (ss *session) end(reason string) {
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return
	}
	ss.mu.Unlock()
	for _, h := range ss.srv.features.onClosed {
		h(ss)
	}
	ss.mu.Lock()
	ss.closed = true
	ss.mu.Unlock()
	ss.srv.mu.Lock()
	ss.srv.unbindLocked(ss)
	ss.srv.mu.Unlock()
	if ss.core != nil {
		ss.core.Close(reason)
	}
}

// state returns the feature state stored under key, making it with mk
// the first time.
func (ss *session) state(key string, mk func() any) any {
	if v, ok := ss.findState(key); ok || mk == nil {
		return v
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if v, ok := ss.findState(key); ok {
		return v
	}
	var old []extState
	if p := ss.ext.Load(); p != nil {
		old = *p
	}
	v := mk()
	next := append(slices.Clip(old), extState{key, v}) // a new array: readers keep theirs
	ss.ext.Store(&next)
	return v
}

// extState is one feature's state in a session. A session has a few
// (muc, csi, sm, carbons…), read for every delivery and added once: a
// list replaced whole on an addition is read without a lock, and is
// smaller than a map.
type extState struct {
	key string
	v   any
}

func (ss *session) findState(key string) (any, bool) {
	if p := ss.ext.Load(); p != nil {
		for _, e := range *p {
			if e.key == key {
				return e.v, true
			}
		}
	}
	return nil, false
}

// isAvailable reports the session's availability and priority.
func (ss *session) isAvailable() (bool, int) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.available, ss.priority
}

// ctx is a context for one store or core call made for the session.
func (ss *session) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 15*time.Second)
}
