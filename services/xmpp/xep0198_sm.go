package xmpp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"sync"
	"time"
)

// XEP-0198 Stream Management (urn:xmpp:sm:3): stanza acknowledgements
// and stream resumption.
//
// Implemented: the <sm/> stream feature after authentication; <enable/>
// (with resume) after binding, answered by <enabled/> with an
// unguessable id and the resumption time (max); <r/> answered by <a h/>
// counting the stanzas the client sent since <enable/>; the stanzas the
// door writes are kept, numbered, until the client acknowledges them,
// and the door asks for acknowledgements (<r/>) every few stanzas and
// when the stream goes quiet; the unacknowledged queue is bounded (a
// client that never acknowledges is disconnected). When the connection
// drops, a resumable session stays open for the resumption time (the
// client's max if shorter than Config.ResumeTimeout) and goes on
// receiving; <resume previd h/> on a new authenticated stream of the same
// account attaches it to the new connection (an older connection still
// attached is closed with conflict), answers <resumed/> and sends again
// what the client did not acknowledge. A session that ends with stored
// direct messages unacknowledged (resumption timed out, the client closed
// the stream, the door ended it) puts them back in the account's offline
// queue unless the account has another session, so that no message is
// lost; they are in the archive in any case.
//
// Left out: the location attribute (one box, no clustering), and
// stream management on server-to-server streams.

const nsSM = "urn:xmpp:sm:3"

const (
	// smMaxUnacked bounds the stanzas a session keeps unacknowledged;
	// past it the session ends (Config.SendQ bounds their bytes).
	smMaxUnacked = 1000
	// smAckEvery is how many stanzas go out before the door asks for an
	// acknowledgement; smIdleAsk how long a quiet stream with stanzas
	// unacknowledged waits before it asks.
	smAckEvery = 5
	smIdleAsk  = 2 * time.Second
)

// smServer is the door's stream management: the resumable sessions by id.
type smServer struct {
	srv  *Server
	mu   sync.Mutex
	byID map[string]*session
}

// smState is one session's stream management.
type smState struct {
	id      string // resumption id; "" when not resumable
	timeout time.Duration

	mu       sync.Mutex
	inBase   uint32   // ss.handled when enabled: h counts from there
	out      uint32   // stanzas written since enabled (wraps at 2^32)
	acked    uint32   // the last h the client acknowledged
	queue    []smItem // written, not acknowledged, oldest first
	qbytes   int
	sinceAsk int // stanzas written since the last <r/>
	idle     *time.Timer
	expiry   *time.Timer // while detached
	detached bool
	gen      int  // bumped on each detach and resume
	gone     bool // the session ended: not resumable any more
	overflow bool
}

// smItem is a stanza written and not yet acknowledged.
type smItem struct {
	n      uint32
	b      []byte
	stored string // the message ID of a stored direct message
}

func registerSM(f *features, s *Server) {
	sm := &smServer{srv: s, byID: map[string]*session{}}
	f.boundFeatures = append(f.boundFeatures, func(*conn) *Element { return El(nsSM, "sm") })
	f.nonzas[nsSM] = sm.nonza
	f.onWrite = append(f.onWrite, sm.written)
	f.passRoom = append(f.passRoom, func(ss *session) bool { return smOf(ss) == nil })
	f.onConnLost = append(f.onConnLost, sm.connLost)
	f.onClosed = append(f.onClosed, sm.closed)
}

func smOf(ss *session) *smState {
	st, _ := ss.state("sm", nil).(*smState)
	return st
}

// smFailed sends <failed/> with a stanza error condition (and h if >= 0).
func smFailed(c *conn, cond, text string, h int64) {
	f := El(nsSM, "failed")
	if h >= 0 {
		f.Set("h", strconv.FormatInt(h, 10))
	}
	f.Add(El(nsStanzaErr, cond))
	if text != "" {
		f.Add(El(nsStanzaErr, "text").Add(text))
	}
	c.send([]byte(f.String()))
}

// nonza handles the elements of urn:xmpp:sm:3 the client sends.
func (sm *smServer) nonza(c *conn, el *Element) {
	switch el.Local {
	case "enable":
		sm.enable(c, el)
		return
	case "resume":
		sm.resume(c, el)
		return
	case "r", "a":
	default:
		c.fail(streamErr("unsupported-stanza-type", "<%s xmlns='%s'/> is not a stream management element", el.Local, nsSM))
		return
	}
	c.mu.Lock()
	ss := c.sess
	c.mu.Unlock()
	var st *smState
	if ss != nil {
		st = smOf(ss)
	}
	if st == nil {
		c.fail(streamErr("unsupported-stanza-type", "<%s/> before stream management was enabled: send <enable xmlns='%s'/> first", el.Local, nsSM))
		return
	}
	if el.Local == "r" {
		ss.mu.Lock()
		h := ss.handled - st.inBase
		ss.mu.Unlock()
		c.send([]byte(El(nsSM, "a", "h", strconv.FormatUint(uint64(h), 10)).String()))
		return
	}
	h, err := strconv.ParseUint(el.Get("h"), 10, 32)
	if err != nil {
		c.fail(streamErr("bad-format", "<a/> needs h, a number from 0 to 4294967295"))
		return
	}
	if e := st.ack(uint32(h)); e != nil {
		c.fail(e)
	}
}

// ack drops what the client acknowledged (h counts every stanza since
// enable); a count ahead of what was sent is a stream error.
func (st *smState) ack(h uint32) *streamError {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := h - st.acked
	if n > st.out-st.acked {
		if st.acked-h < 1<<31 {
			return nil // an older acknowledgement arriving late
		}
		return streamErr("undefined-condition", "handled-count-too-high: h is %d but only %d stanzas were sent", h, st.out)
	}
	for i := 0; i < int(n) && len(st.queue) > 0; i++ {
		st.qbytes -= len(st.queue[0].b)
		st.queue[0] = smItem{}
		st.queue = st.queue[1:]
	}
	if len(st.queue) == 0 {
		st.queue = nil // let the backing array go
	}
	st.acked = h
	return nil
}

// enable turns stream management on for the bound session.
func (sm *smServer) enable(c *conn, el *Element) {
	c.mu.Lock()
	ss := c.sess
	c.mu.Unlock()
	if c.state != stateReady || ss == nil {
		smFailed(c, "unexpected-request", "bind a resource before enabling stream management", -1)
		return
	}
	// Under the write lock: stanzas written from now on come after
	// <enabled/> and are counted.
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	if smOf(ss) != nil {
		smFailed(c, "unexpected-request", "stream management is already enabled on this stream", -1)
		return
	}
	st := &smState{timeout: sm.srv.cfg.ResumeTimeout}
	ss.mu.Lock()
	st.inBase = ss.handled
	ss.mu.Unlock()
	reply := El(nsSM, "enabled")
	// A guest cannot resume (a new login is a new guest): its session
	// ends with its connection, freeing its room nicknames.
	if r := el.Get("resume"); (r == "true" || r == "1") && !ss.guest() {
		if m, err := strconv.ParseUint(el.Get("max"), 10, 32); err == nil && m > 0 && time.Duration(m)*time.Second < st.timeout {
			st.timeout = time.Duration(m) * time.Second
		}
		st.id = sm.newID(ss)
		sm.mu.Lock()
		sm.byID[st.id] = ss
		sm.mu.Unlock()
		secs := int64(st.timeout / time.Second)
		if secs < 1 {
			secs = 1
		}
		reply.Set("id", st.id).Set("resume", "true").Set("max", strconv.FormatInt(secs, 10))
	}
	ss.state("sm", func() any { return st })
	c.send([]byte(reply.String()))
}

// newID makes a resumption id nobody can guess: a MAC, under the door's
// secret, of the session and fresh random bytes.
func (sm *smServer) newID(ss *session) string {
	nonce := make([]byte, 16)
	randRead(nonce)
	m := hmac.New(sha256.New, sm.srv.secret)
	m.Write([]byte("xep0198\x00" + ss.full + "\x00"))
	m.Write(nonce)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:24])
}

// written numbers and keeps each stanza the session writes (onWrite; the
// session's write lock is held, so the numbers follow the wire order).
func (sm *smServer) written(ss *session, el *Element) {
	st := smOf(ss)
	if st == nil || el.Space != nsClient {
		return
	}
	switch el.Local {
	case "message", "presence", "iq":
	default:
		return
	}
	b := el.Bytes(nsClient)
	st.mu.Lock()
	if st.gone {
		st.mu.Unlock()
		// The session is ending: a stored message that still comes
		// will not be acknowledged.
		if id := storedMessageID(ss, el); id != "" {
			go sm.requeue(ss, []string{id})
		}
		return
	}
	st.out++
	st.queue = append(st.queue, smItem{n: st.out, b: b, stored: storedMessageID(ss, el)})
	st.qbytes += len(b)
	st.sinceAsk++
	ask := false
	if st.sinceAsk >= smAckEvery && !st.detached {
		st.sinceAsk, ask = 0, true
	}
	over := !st.overflow && (len(st.queue) > smMaxUnacked || st.qbytes > sm.srv.cfg.SendQ)
	if over {
		st.overflow = true
	}
	if !st.detached {
		if st.idle == nil {
			st.idle = time.AfterFunc(smIdleAsk, func() { sm.idleAsk(ss, st) })
		} else {
			st.idle.Reset(smIdleAsk)
		}
	}
	st.mu.Unlock()
	if ask {
		if c := ss.conn(); c != nil {
			c.send([]byte(El(nsSM, "r").String()))
		}
	}
	if over {
		sm.srv.log.Info("client does not acknowledge stanzas: ending its session", "account", ss.account, "resource", ss.resource)
		go ss.kick(streamErr("resource-constraint", "more than %d stanzas unacknowledged (XEP-0198): acknowledge what you receive", smMaxUnacked))
	}
}

// idleAsk asks for an acknowledgement when the stream went quiet with
// stanzas unacknowledged.
func (sm *smServer) idleAsk(ss *session, st *smState) {
	st.mu.Lock()
	ask := len(st.queue) > 0 && st.sinceAsk > 0 && !st.detached && !st.gone
	if ask {
		st.sinceAsk = 0
	}
	st.mu.Unlock()
	if ask {
		if c := ss.conn(); c != nil {
			c.send([]byte(El(nsSM, "r").String()))
		}
	}
}

// storedMessageID returns the ID of the stored direct message el carries
// to this session (its stanza-id by the account), or "".
func storedMessageID(ss *session, el *Element) string {
	if el.Local != "message" {
		return ""
	}
	for _, k := range el.Kids() {
		if k.Is("urn:xmpp:sid:0", "stanza-id") && k.Get("by") == ss.bare {
			return k.Get("id")
		}
	}
	return ""
}

// connLost keeps a resumable session open when its connection dropped.
func (sm *smServer) connLost(ss *session) bool {
	st := smOf(ss)
	if st == nil || st.id == "" {
		return false
	}
	st.mu.Lock()
	if st.gone {
		st.mu.Unlock()
		return false
	}
	st.detached = true
	st.gen++
	gen := st.gen
	if st.idle != nil {
		st.idle.Stop()
	}
	st.expiry = time.AfterFunc(st.timeout, func() { sm.expire(ss, st, gen) })
	pending := len(st.queue)
	sm.srv.mu.Lock()
	sm.srv.detached[st.id] = ss
	sm.srv.mu.Unlock()
	st.mu.Unlock()
	sm.srv.log.Debug("connection lost: session waits for resumption", "account", ss.account, "resource", ss.resource,
		"timeout", st.timeout, "unacked", pending)
	return true
}

// expire ends a session its client did not resume in time.
func (sm *smServer) expire(ss *session, st *smState, gen int) {
	st.mu.Lock()
	if !st.detached || st.gen != gen || st.gone {
		st.mu.Unlock()
		return
	}
	st.mu.Unlock()
	sm.srv.log.Debug("session not resumed in time", "account", ss.account, "resource", ss.resource)
	sm.release(ss, st) // before anyone sees the session end
	ss.end("not resumed within " + st.timeout.String())
}

// closed forgets an ending session (onClosed).
func (sm *smServer) closed(ss *session) {
	if st := smOf(ss); st != nil {
		sm.release(ss, st)
	}
}

// release makes the session unresumable, forgets it, and puts its
// unacknowledged stored messages back in the offline queue.
func (sm *smServer) release(ss *session, st *smState) {
	st.mu.Lock()
	if st.gone {
		st.mu.Unlock()
		return
	}
	st.gone = true
	if st.idle != nil {
		st.idle.Stop()
	}
	if st.expiry != nil {
		st.expiry.Stop()
	}
	var ids []string
	for _, it := range st.queue {
		if it.stored != "" {
			ids = append(ids, it.stored)
		}
	}
	st.queue, st.qbytes = nil, 0
	st.mu.Unlock()
	if st.id != "" {
		sm.mu.Lock()
		if sm.byID[st.id] == ss {
			delete(sm.byID, st.id)
		}
		sm.mu.Unlock()
		sm.srv.mu.Lock()
		if sm.srv.detached[st.id] == ss {
			delete(sm.srv.detached, st.id)
		}
		sm.srv.mu.Unlock()
	}
	sm.requeue(ss, ids)
}

// requeue puts stored messages the client did not acknowledge back in
// the account's offline queue (unless it has another session).
func (sm *smServer) requeue(ss *session, ids []string) {
	if len(ids) == 0 || ss.core == nil {
		return
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	n, err := sm.srv.core.RequeueOffline(ctx, ss.core, ids)
	if err != nil {
		sm.srv.log.Error("unacknowledged messages could not be put back in the offline queue; they stay in the archive",
			"account", ss.account, "messages", len(ids), "err", err)
		return
	}
	sm.srv.log.Debug("unacknowledged messages back in the offline queue", "account", ss.account, "queued", n, "unacked", len(ids))
}

// resume attaches a waiting (or still attached) session to this new
// stream.
func (sm *smServer) resume(c *conn, el *Element) {
	if c.state != stateBind {
		smFailed(c, "unexpected-request", "resume on a new stream, after authenticating and before binding a resource", -1)
		return
	}
	previd := el.Get("previd")
	h64, err := strconv.ParseUint(el.Get("h"), 10, 32)
	if previd == "" || err != nil {
		smFailed(c, "bad-request", "resume needs previd and h (a number from 0 to 4294967295)", -1)
		return
	}
	h := uint32(h64)
	sm.mu.Lock()
	ss := sm.byID[previd]
	sm.mu.Unlock()
	if ss == nil || ss.account != c.account {
		smFailed(c, "item-not-found", "there is no session to resume with that id (it ended, or timed out): bind a new resource", -1)
		return
	}
	st := smOf(ss)
	ss.wmu.Lock()
	st.mu.Lock()
	ss.mu.Lock()
	inH := ss.handled - st.inBase
	ss.mu.Unlock()
	if st.gone {
		st.mu.Unlock()
		ss.wmu.Unlock()
		smFailed(c, "item-not-found", "that session has ended: bind a new resource", int64(inH))
		return
	}
	if n := h - st.acked; n > st.out-st.acked && st.acked-h >= 1<<31 {
		out := st.out
		st.mu.Unlock()
		ss.wmu.Unlock()
		smFailed(c, "undefined-condition", "handled-count-too-high: h is "+strconv.FormatUint(uint64(h), 10)+
			" but only "+strconv.FormatUint(uint64(out), 10)+" stanzas were sent", int64(inH))
		return
	}
	st.mu.Unlock()
	st.ack(h)
	st.mu.Lock()
	st.detached = false
	st.gen++
	if st.expiry != nil {
		st.expiry.Stop()
		st.expiry = nil
	}
	ss.mu.Lock()
	old := ss.c
	ss.c = c
	ss.mu.Unlock()
	if old != nil {
		old.mu.Lock()
		if old.sess == ss {
			old.sess = nil
		}
		old.mu.Unlock()
	}
	c.mu.Lock()
	c.sess = ss
	c.mu.Unlock()
	c.state = stateReady
	c.setReadDeadline(time.Now().Add(c.srv.cfg.PingInterval))
	c.send([]byte(El(nsSM, "resumed", "previd", previd, "h", strconv.FormatUint(uint64(inH), 10)).String()))
	for _, it := range st.queue {
		c.send(it.b)
	}
	st.sinceAsk = 0
	if len(st.queue) > 0 {
		c.send([]byte(El(nsSM, "r").String()))
	}
	resent := len(st.queue)
	st.mu.Unlock()
	ss.wmu.Unlock()
	sm.srv.mu.Lock()
	if sm.srv.detached[previd] == ss {
		delete(sm.srv.detached, previd)
	}
	sm.srv.mu.Unlock()
	if old != nil {
		old.final.Store(true)
		old.fail(streamErr("conflict", "the session was resumed on another connection"))
	}
	sm.srv.log.Debug("session resumed", "account", ss.account, "resource", ss.resource, "resent", resent)
	csiReset(ss)
}
