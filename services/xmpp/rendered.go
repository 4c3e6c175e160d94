package xmpp

import (
	"encoding/xml"
	"strings"

	"chatbox/services/chat"
)

// Serialising a fan-out once. A room message or an occupant's presence
// goes to every member with only the to attribute differing, so the door
// builds it once (a template Element with a placeholder to) and writes
// it once as the bytes before and after the receiver's to; each receiver
// gets a shallow Element (its own attributes, the template's children)
// carrying those bytes, which the output filters read like any stanza
// and whose Bytes is one append. Mutating such an Element through its
// methods (Add, Set of anything but to, Remove) drops the prepared form;
// its children are the template's and must not be changed in place.

// prepared is one stanza rendered for any receiver.
type prepared struct {
	tmpl   *Element
	prefix []byte // up to and including to="
	suffix []byte // from the closing quote of to on
	// mk, if set, makes the template again, which is then not kept (tmpl
	// is nil): for a stanza kept long, the rare receiver that needs it as
	// an Element has it rebuilt rather than every one held twice.
	mk func() *Element
}

const toPlaceholder = "\x00"

// prepare renders el (which it takes over) for any receiver.
func prepare(el *Element) *prepared {
	el.Set("to", toPlaceholder)
	var b strings.Builder
	el.write(&b, nsClient)
	s := b.String()
	mark := ` to="` + toPlaceholder + `"`
	i := strings.Index(s, mark)
	if i < 0 { // cannot happen: the root's attributes come first
		return &prepared{tmpl: el}
	}
	// One allocation for both halves (the placeholder between them).
	buf, cut := []byte(s), i+len(mark)-2
	return &prepared{tmpl: el, prefix: buf[:cut:cut], suffix: buf[cut+1:]}
}

// to returns the stanza addressed to to.
func (p *prepared) to(to string) *Element {
	t := p.tmpl
	if t == nil {
		t = p.mk()
	}
	attrs := make([]xml.Attr, len(t.Attr))
	copy(attrs, t.Attr)
	e := &Element{Space: t.Space, Local: t.Local, Attr: attrs, Nodes: t.Nodes[:len(t.Nodes):len(t.Nodes)]}
	e.Set("to", to)
	if p.prefix != nil {
		e.pre = p
	}
	return e
}

// wireBytes is e's serialisation in a jabber:client stream from its
// prepared form (made once per Element).
func (e *Element) wireBytes() []byte {
	if e.wire != nil {
		return e.wire
	}
	to := e.Get("to")
	b := make([]byte, 0, len(e.pre.prefix)+len(to)+len(e.pre.suffix)+8)
	b = append(b, e.pre.prefix...)
	b = appendEscaped(b, to)
	b = append(b, e.pre.suffix...)
	e.wire = b
	return b
}

// unprepare drops e's prepared form before a change, giving e its own
// list of children.
func (e *Element) unprepare() {
	if e.pre == nil {
		return
	}
	e.pre, e.wire = nil, nil
	e.Nodes = append([]any(nil), e.Nodes...)
}

func appendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		if r := xmlEscaped(s[i]); r != "" {
			b = append(b, s[last:i]...)
			b = append(b, r...)
			last = i + 1
		}
	}
	return append(b, s[last:]...)
}

// sendBurst sends ss stanzas from room occupants (a room message, a
// join's presence of everyone): when every output filter lets them
// through unchanged for ss now (passesRoom) over TCP, as their prepared
// bytes around ss's own escaped JID, queued by reference, with nothing
// made for this receiver; else one by one as stanzas.
func (ss *session) sendBurst(ps ...*prepared) { ss.sendPrepared(false, ps...) }

// sendPrepared is sendBurst; lazy: the stanzas are ones nobody waits
// for (other occupants' presence), which on the shared-bytes path may
// wait for a lazy round (outqueue.go, lazyCoalesce).
func (ss *session) sendPrepared(lazy bool, ps ...*prepared) {
	ok := ss.passesRoom()
	for _, p := range ps {
		ok = ok && p.prefix != nil
	}
	if !ok {
		for _, p := range ps {
			ss.send(p.to(ss.full))
		}
		return
	}
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	c := ss.liveConn()
	if c == nil {
		return
	}
	if c.kind != kindStartTLS && c.kind != kindDirectTLS {
		// A WebSocket carries one stanza per message (RFC 7395 §3.3.3).
		for _, p := range ps {
			c.sendEl(p.to(ss.full))
		}
		return
	}
	if ss.toEscaped == nil {
		ss.toEscaped = appendEscaped(nil, ss.full)
	}
	c.sendPrepared(lazy, ss.toEscaped, ps...)
}

// roomy is n rounded up to a power of two: the capacity of a lent slice
// that will be asked for a little more each time (a room's joins).
func roomy(n int) int {
	c := 16
	for c < n {
		c *= 2
	}
	return c
}

// passesRoom says whether every output filter lets stanzas from room
// occupants through to ss now, unchanged and uncounted (features.passRoom).
func (ss *session) passesRoom() bool {
	f := ss.srv.features
	if ss.remote || len(f.passRoom) != len(f.outFilters)+len(f.onWrite) {
		return false
	}
	for _, pass := range f.passRoom {
		if !pass(ss) {
			return false
		}
	}
	return true
}

// liveConn is ss's connection, nil when ss is closed or has none (ss.wmu
// held by the caller, who writes to it).
func (ss *session) liveConn() *conn {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		return nil
	}
	return ss.c
}

// rendered returns the fan-out's stanza of kind key (chat.Rendered: kept
// with the fan-out, for all its receivers), building it the first time;
// without a fan-out (r nil) it builds every time. Keys are "xmpp-…", apart
// from the IRC door's.
func rendered(r *chat.Rendered, key string, build func() *Element) *prepared {
	return r.Value(key, func() any { return prepare(build()) }).(*prepared)
}
