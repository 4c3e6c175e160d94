package xmpp

import (
	"sort"
	"sync"
)

// XEP-0352 Client State Indication (urn:xmpp:csi:0): a client tells the
// door when its user is not looking (<inactive/>) and when it is again
// (<active/>), and the door holds back what is not urgent meanwhile.
//
// Implemented: the <csi/> stream feature after authentication; while a
// session is inactive, presence updates (available and unavailable) wait,
// only the latest per sender's full JID kept; messages that carry nothing
// but a chat state (XEP-0085, also inside a carbon) are dropped; PEP
// notifications of nodes that are only decoration (tune, mood, activity,
// geolocation, nickname, avatar) wait, the latest per sender and node
// kept. Everything else goes at once: messages with a body, IQs,
// subscription requests, errors, and a room's presence about the
// session's own occupant (status 110), which a client waits for while
// joining. On <active/> the held stanzas go out in the order they came.
// More than csiMaxHeld held stanzas are flushed early. A stream always
// starts active, a resumed one too (XEP-0352 §5.2). Held stanzas are not
// written yet, so they are not in the XEP-0198 queue either.
//
// Left out: bundling of several important stanzas into one write, and
// holding back MUC group chat messages (they have a body: they go).

const nsCSI = "urn:xmpp:csi:0"

// csiMaxHeld bounds the stanzas an inactive session holds back.
const csiMaxHeld = 1000

// csiState is one session's client state.
type csiState struct {
	mu       sync.Mutex
	inactive bool
	flushing bool // held stanzas are being written; new ones queue behind
	seq      int
	held     map[string]csiHeld
	cs       *csiServer
}

type csiHeld struct {
	seq int
	el  *Element
}

// csiDecorativeNodes are PEP nodes whose notifications may wait.
var csiDecorativeNodes = map[string]bool{
	"http://jabber.org/protocol/tune":     true,
	"http://jabber.org/protocol/mood":     true,
	"http://jabber.org/protocol/activity": true,
	"http://jabber.org/protocol/geoloc":   true,
	"http://jabber.org/protocol/nick":     true,
	"urn:xmpp:avatar:metadata":            true,
}

// csiServer is the door's CSI: where its output filter sits among the
// others (a flushed stanza still has to pass those after it).
type csiServer struct {
	f   *features
	idx int // CSI's position in f.outFilters
}

func registerCSI(f *features, _ *Server) {
	cs := &csiServer{f: f, idx: len(f.outFilters)}
	f.outFilters = append(f.outFilters, cs.filter)
	f.passRoom = append(f.passRoom, func(ss *session) bool {
		st := csiOf(ss)
		if st == nil {
			return true
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		return !st.inactive && !st.flushing
	})
	f.boundFeatures = append(f.boundFeatures, func(*conn) *Element { return El(nsCSI, "csi") })
	f.nonzas[nsCSI] = cs.nonza
}

func csiOf(ss *session) *csiState {
	st, _ := ss.state("csi", nil).(*csiState)
	return st
}

// nonza takes <active/> and <inactive/>.
func (cs *csiServer) nonza(c *conn, el *Element) {
	c.mu.Lock()
	ss := c.sess
	c.mu.Unlock()
	switch el.Local {
	case "active", "inactive":
	default:
		c.fail(streamErr("unsupported-stanza-type", "<%s xmlns='%s'/> is not a client state", el.Local, nsCSI))
		return
	}
	if ss == nil {
		return // before binding there is nothing to hold back
	}
	st := ss.state("csi", func() any { return &csiState{held: map[string]csiHeld{}, cs: cs} }).(*csiState)
	st.mu.Lock()
	st.inactive = el.Local == "inactive"
	st.mu.Unlock()
	if el.Local == "active" {
		cs.flush(ss, st)
	}
}

// csiReset makes a resumed session active again (XEP-0352 §5.2).
func csiReset(ss *session) {
	st := csiOf(ss)
	if st == nil {
		return
	}
	st.mu.Lock()
	st.inactive = false
	st.mu.Unlock()
	st.cs.flush(ss, st)
}

// filter holds back or drops what an inactive client need not get now.
func (cs *csiServer) filter(ss *session, el *Element) bool {
	st := csiOf(ss)
	if st == nil {
		return true
	}
	st.mu.Lock()
	if !st.inactive && !st.flushing {
		st.mu.Unlock()
		return true
	}
	key, verdict := csiClassify(el)
	switch verdict {
	case csiSend:
		st.mu.Unlock()
		return true
	case csiDrop:
		active := !st.inactive // active again, still flushing: it goes
		st.mu.Unlock()
		return active
	}
	st.seq++
	st.held[key] = csiHeld{seq: st.seq, el: el.Clone()}
	full := len(st.held) > csiMaxHeld && !st.flushing
	st.mu.Unlock()
	if full {
		cs.flush(ss, st)
	}
	return false
}

type csiVerdict int

const (
	csiSend csiVerdict = iota
	csiDrop
	csiHold
)

// csiClassify says what an inactive client gets of el: now, never, or
// later under key (a later stanza with the same key replaces it).
func csiClassify(el *Element) (string, csiVerdict) {
	if el.Space != nsClient {
		return "", csiSend
	}
	switch el.Local {
	case "presence":
		switch el.Get("type") {
		case "", "unavailable":
		default:
			return "", csiSend // subscriptions, probes, errors
		}
		if x := el.Child("http://jabber.org/protocol/muc#user", "x"); x != nil {
			for _, s := range x.Kids() {
				if s.Local == "status" && s.Get("code") == "110" {
					return "", csiSend
				}
			}
		}
		return "p\x00" + el.Get("from"), csiHold
	case "message":
		if el.Get("type") == "error" {
			return "", csiSend
		}
		if chatStateOnly(el) {
			return "", csiDrop
		}
		for _, k := range el.Kids() {
			if k.Space == "urn:xmpp:carbons:2" && (k.Local == "received" || k.Local == "sent") {
				if fw := k.Child("urn:xmpp:forward:0", "forwarded"); fw != nil {
					if inner := fw.Child(nsClient, "message"); inner != nil && chatStateOnly(inner) {
						return "", csiDrop
					}
				}
			}
		}
		if ev := el.Child("http://jabber.org/protocol/pubsub#event", "event"); ev != nil {
			if items := ev.Child("http://jabber.org/protocol/pubsub#event", "items"); items != nil && csiDecorativeNodes[items.Get("node")] {
				return "e\x00" + el.Get("from") + "\x00" + items.Get("node"), csiHold
			}
		}
	}
	return "", csiSend
}

// chatStateOnly says whether a message carries a chat state (XEP-0085)
// and nothing a user reads.
func chatStateOnly(m *Element) bool {
	state := false
	for _, k := range m.Kids() {
		switch {
		case k.Space == nsChatStates:
			state = true
		case k.Is(nsClient, "thread"), k.Space == "urn:xmpp:hints", k.Space == "urn:xmpp:sid:0":
		default:
			return false
		}
	}
	return state
}

// flush writes the held stanzas in the order they came, and those that
// arrive while it does, then lets stanzas through again.
func (cs *csiServer) flush(ss *session, st *csiState) {
	st.mu.Lock()
	if st.flushing {
		st.mu.Unlock()
		return
	}
	st.flushing = true
	for len(st.held) > 0 {
		batch := make([]csiHeld, 0, len(st.held))
		for _, h := range st.held {
			batch = append(batch, h)
		}
		clear(st.held)
		st.mu.Unlock()
		sort.Slice(batch, func(i, j int) bool { return batch[i].seq < batch[j].seq })
		for _, h := range batch {
			cs.writeHeld(ss, h.el)
		}
		st.mu.Lock()
	}
	st.flushing = false
	st.mu.Unlock()
}

// writeHeld sends a held stanza through the output filters after CSI's.
func (cs *csiServer) writeHeld(ss *session, el *Element) {
	for _, f := range cs.f.outFilters[cs.idx+1:] {
		if !f(ss, el) {
			return
		}
	}
	ss.write(el)
}
