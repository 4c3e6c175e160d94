package xmpp

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"strings"
	"time"

	"chatbox/services/chat"
)

// This file carries one-to-one messages (RFC 6121 §5, §8.5). A message
// with a body is stored by the core, so it reaches the recipient's IRC
// sessions too, waits in the offline queue and is in the archive
// (XEP-0313); what the body does not carry (type, ids, thread, and every
// extension element: OMEMO payloads, receipts, markers, ...) travels in
// the stored message's Extra. A message without a body (chat states,
// receipts, Jingle signalling) is relayed to the addressee's XMPP
// sessions and not stored; chat states also reach IRC as typing
// notifications.

// storedExtra is what a stored message keeps of its XMPP stanza.
type storedExtra struct {
	Type    string `json:"t,omitempty"`
	ID      string `json:"id,omitempty"` // the sender's stanza id
	FromRes string `json:"fr,omitempty"` // the sender's resource
	ToRes   string `json:"tr,omitempty"` // the resource it was addressed to
	X       string `json:"x,omitempty"`  // the other children, serialized
	Lang    string `json:"l,omitempty"`
}

func decodeExtra(s string) storedExtra {
	var x storedExtra
	if strings.HasPrefix(s, "{") {
		json.Unmarshal([]byte(s), &x)
	}
	return x
}

// parseFragment parses serialized children (storedExtra.X).
func parseFragment(s string) []*Element {
	if s == "" {
		return nil
	}
	r := newStreamReader(strings.NewReader("<x xmlns='"+nsClient+"'>"+s+"</x>"), 1<<22, 64, nil)
	r.header = true
	el, err := r.Next()
	if err != nil {
		return nil
	}
	return el.Kids()
}

func xmlLang(lang string) xml.Attr {
	return xml.Attr{Name: xml.Name{Space: nsXML, Local: "lang"}, Value: lang}
}

// chatStateTags maps XEP-0085 chat states to the core's typing signal.
var chatStateTags = map[string]string{
	"composing": "active", "paused": "paused", "active": "done", "inactive": "done", "gone": "done",
}

const nsChatStates = "http://jabber.org/protocol/chatstates"

// routeMessage routes a message from the client (RFC 6121 §8.5).
func (ss *session) routeMessage(msg *Element) {
	typ := msg.Get("type")
	if typ == "" {
		typ = "normal"
	}
	for _, f := range ss.srv.features.messageFilters {
		if f(ss, msg) {
			return
		}
	}
	kind, a := ss.classify(msg.Get("to"))
	if kind != toHosted {
		ss.sends.Wait() // a groupchat message elsewhere: after the room's
	}
	if msg.Get("to") == "" {
		msg.Set("to", ss.bare)
	}
	switch kind {
	case toServer:
		if typ != "error" {
			ss.replyErr(msg, "service-unavailable", "")
		}
		return
	case toHosted:
		ss.toHostedDomain(msg, a)
		return
	case toRemote:
		if body, ok := storable(msg, typ); ok && a.Local != "" {
			ss.sendRemoteStored(msg, a, typ, body) // s2s_direct.go
			return
		}
		ss.toRemoteDomain(msg) // s2s_route.go
		ss.carbonSent(msg)
		return
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	if _, err := ss.srv.core.Account(ctx, a.Local); err != nil {
		if typ != "error" {
			ss.replyErr(msg, "service-unavailable", "")
		}
		return
	}
	if typ == "groupchat" {
		ss.replyErr(msg, "service-unavailable", "groupchat messages go to rooms")
		return
	}
	body, hasBody := bodyOf(msg)
	if hasBody && strings.TrimSpace(body) != "" && (typ == "chat" || typ == "normal") {
		ss.storeMessage(msg, a, typ, body)
		return
	}
	if typ == "chat" {
		if cs := msg.ChildrenNS(nsChatStates); len(cs) > 0 {
			if tag := chatStateTags[cs[0].Local]; tag != "" {
				ss.srv.core.Signal(ctx, ss.core, "", a.Local, map[string]string{"typing": tag})
			}
		}
	}
	ss.relay(msg, a, typ)
}

// storeMessage hands a message with a body to the core, which stores it
// and delivers it to every session of the recipient (Deliver below).
func (ss *session) storeMessage(msg *Element, a address, typ, body string) {
	x := storedExtra{ID: msg.Get("id"), FromRes: ss.resource, ToRes: a.Resource, Lang: msg.Lang()}
	if typ != "chat" {
		x.Type = typ
	}
	x.X = extensionsOf(msg)
	extra, _ := json.Marshal(x)
	kindOf := chat.KindNormal
	if b, me := isMe(body); me {
		body, kindOf = b, chat.KindAction
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	if _, err := ss.srv.core.SendDirect(ctx, ss.core, a.Local, kindOf, body, string(extra)); err != nil {
		switch {
		case errors.Is(err, chat.ErrRateLimited):
			ss.replyErr(msg, "resource-constraint", err.Error())
		case errors.Is(err, chat.ErrTooLong), errors.Is(err, chat.ErrInvalidUTF8):
			ss.replyErr(msg, "not-acceptable", err.Error())
		case errors.Is(err, chat.ErrNotFound):
			ss.replyErr(msg, "service-unavailable", "")
		case errors.Is(err, chat.ErrForbidden):
			ss.replyErr(msg, "forbidden", err.Error())
		default:
			ss.srv.log.Error("store message", "account", ss.account, "err", err)
			ss.replyErr(msg, "internal-server-error", "the message could not be stored; send it again")
		}
	}
}

// extensionsOf serializes what a message carries besides its body (and
// ids the server stamps), to be kept with the stored message.
func extensionsOf(msg *Element) string {
	var rest strings.Builder
	for _, k := range msg.Kids() {
		if k.Is(nsClient, "body") || k.Is("urn:xmpp:sid:0", "stanza-id") || k.Space == nsOccupantID {
			continue
		}
		k.write(&rest, nsClient)
	}
	return rest.String()
}

// relay delivers an unstored message to the addressee's XMPP sessions
// by the rules of RFC 6121 §8.5 (and copies it per XEP-0280).
func (ss *session) relay(msg *Element, a address, typ string) {
	if typ == "error" {
		if peer := ss.srv.sessionAt(a.Local, a.Resource); peer != nil {
			peer.send(msg)
		}
		return
	}
	if a.Resource != "" {
		if peer := ss.srv.sessionAt(a.Local, a.Resource); peer != nil {
			if ss.mayReach(peer, msg) {
				peer.send(msg)
				ss.copyToOthers(msg, a.Local, peer)
			}
			return
		}
	}
	chosen := ss.srv.chosen(a.Local, typ)
	for _, peer := range chosen {
		if ss.mayReach(peer, msg) {
			peer.send(msg)
		}
	}
	if len(chosen) > 0 {
		ss.copyToOthers(msg, a.Local, chosen...)
	}
	ss.carbonSent(msg)
}

// copyToOthers sends received carbons to the recipient's sessions that
// did not get the message itself.
func (ss *session) copyToOthers(msg *Element, account string, got ...*session) {
	for _, peer := range ss.srv.sessionsOf(account) {
		skip := false
		for _, g := range got {
			skip = skip || g == peer
		}
		if !skip && ss.mayReach(peer, msg) {
			peer.carbon("received", msg)
		}
	}
}

// carbonSent copies a message this session sent to its account's other
// sessions (XEP-0280 sent carbons).
func (ss *session) carbonSent(msg *Element) {
	for _, other := range ss.srv.sessionsOf(ss.account) {
		if other != ss {
			other.carbon("sent", msg)
		}
	}
}

// chosen returns the sessions a message to account's bare JID goes to
// (RFC 6121 §8.5.2.1.1): the available resources with the highest
// non-negative priority; for headlines every available non-negative one.
// When none is available (a client that bound but has not sent presence
// yet), every bound session, so that nothing is lost.
func (s *Server) chosen(account, typ string) []*session {
	all := s.sessionsOf(account)
	var out []*session
	best := -1
	for _, ss := range all {
		av, prio := ss.isAvailable()
		if !av || prio < 0 {
			continue
		}
		switch {
		case typ == "headline":
			out = append(out, ss)
		case prio > best:
			best, out = prio, []*session{ss}
		case prio == best:
			out = append(out, ss)
		}
	}
	if len(out) == 0 {
		return all
	}
	return out
}

// messageStanza rebuilds the stanza of a stored message for a session.
func (ss *session) messageStanza(m *chat.Message, from chat.SessionRef) *Element {
	x := decodeExtra(m.Extra)
	typ := x.Type
	if typ == "" {
		typ = "chat"
	}
	fromJID := ss.srv.accountJID(m.From) // s2s_direct.go: a remote user's is its bare JID
	if x.FromRes != "" {
		fromJID += "/" + x.FromRes
	} else if from.Door == "xmpp" && from.Resource != "" {
		fromJID += "/" + from.Resource
	}
	to := ss.srv.accountJID(m.To)
	if x.ToRes != "" {
		to += "/" + x.ToRes
	}
	el := storedStanza(m, x, fromJID, to, typ)
	el.Add(El("urn:xmpp:sid:0", "stanza-id", "id", m.ID, "by", ss.bare))
	return el
}

// storedStanza rebuilds the message stanza of a stored message: its
// sender's id, language, body (a /me action as XEP-0245 writes it) and
// the other children it was sent with.
func storedStanza(m *chat.Message, x storedExtra, from, to, typ string) *Element {
	id := x.ID
	if id == "" {
		id = m.ID
	}
	el := El(nsClient, "message", "from", from, "to", to, "type", typ, "id", id)
	if x.Lang != "" {
		el.Attr = append(el.Attr, xmlLang(x.Lang))
	}
	body := m.Body
	if m.Kind == chat.KindAction {
		body = "/me " + body
	}
	el.Add(El(nsClient, "body").Add(body))
	for _, k := range parseFragment(x.X) {
		el.Add(k)
	}
	return el
}

// deliverMessage shows a stored direct message to this session.
func (ss *session) deliverMessage(d chat.Delivery) {
	m := d.Message
	if m.Room != "" || d.Echo {
		return // rooms are the MUC service's; XMPP has no echo
	}
	el := ss.messageStanza(m, d.From)
	if d.Carbon {
		ss.carbon("sent", el)
		return
	}
	if !ss.firstDelivery(m.Seq) {
		return // already shown from the offline queue
	}
	x := decodeExtra(m.Extra)
	if x.ToRes != "" {
		if target := ss.srv.sessionAt(ss.account, x.ToRes); target != nil {
			if target == ss {
				ss.send(el)
			} else {
				ss.carbon("received", el)
			}
			return
		}
	}
	for _, c := range ss.srv.chosen(ss.account, "chat") {
		if c == ss {
			el.Set("to", ss.full)
			ss.send(el)
			return
		}
	}
	ss.carbon("received", el)
}

// delayEl is an XEP-0203 delay element.
func delayEl(from string, t time.Time) *Element {
	return El("urn:xmpp:delay", "delay", "from", from, "stamp", t.UTC().Format("2006-01-02T15:04:05.000Z"))
}
