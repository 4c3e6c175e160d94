package xmpp

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"chatbox/services/chat"
)

// One-to-one messages with users of other servers go through the core
// (RFC 6121 §5 and §8.5 across RFC 6120 §10 routing), as local ones do
// (messages.go): a message with a body, of type chat or normal, is stored
// by the core (chat.Core.DeliverRemote inbound, chat.Core.SendRemote
// outbound), so it is in both accounts' archives (XEP-0313, MAM with a
// remote `with`), waits in the offline queue of a local account with no
// session (it survives a restart like every stored message), reaches
// the local account's IRC sessions (by the nick rule of services/irc
// remote.go) and gives XEP-0280 carbons to the sender's other sessions.
// The stanza that crosses is rebuilt from the stored message
// (storedStanza: the sender's id, language and every extension element,
// OMEMO payloads included), as for a local recipient. Messages without a
// body (chat states, receipts, markers), headlines, groupchat and errors
// are relayed as before (s2s_route.go) and not stored.
//
// Left out: a message the peer's queue bounces later
// (remote-server-timeout) stays in the sender's archive; carbons of
// unstored relayed messages from remote senders.

// fedRouter is the core's chat.RemoteRouter: the federation's queues.
type fedRouter struct{ s *Server }

// RemoteAllowed implements chat.RemoteRouter.
func (r fedRouter) RemoteAllowed(domain string) bool {
	return r.s.fed != nil && r.s.isRemote(domain) && r.s.fed.allowed(domain)
}

// routeError carries the stanza error condition of a message federation
// could not take.
type routeError struct{ cond string }

func (e *routeError) Error() string {
	if e.cond == "resource-constraint" {
		return "too many stanzas are waiting for that server: try again later"
	}
	return "that server cannot be reached from here (" + e.cond + ")"
}

// RouteRemote implements chat.RemoteRouter: it rebuilds the stanza of a
// stored message and queues it for the recipient's server.
func (r fedRouter) RouteRemote(m *chat.Message, from chat.SessionRef) error {
	s := r.s
	if s.fed == nil {
		return &routeError{"remote-server-not-found"}
	}
	x := decodeExtra(m.Extra)
	typ := x.Type
	if typ == "" {
		typ = "chat"
	}
	fromJID := m.From + "@" + s.cfg.Domain
	if x.FromRes != "" {
		fromJID += "/" + x.FromRes
	}
	to := m.To
	if x.ToRes != "" {
		to += "/" + x.ToRes
	}
	if cond := s.fed.send(storedStanza(m, x, fromJID, to, typ)); cond != "" {
		return &routeError{cond}
	}
	return nil
}

// storable says whether a message is one the core keeps: chat or normal
// with a non-blank body.
func storable(msg *Element, typ string) (string, bool) {
	body, ok := bodyOf(msg)
	return body, ok && strings.TrimSpace(body) != "" && (typ == "chat" || typ == "normal")
}

// sendRemoteStored hands a client's message with a body for a remote user
// to the core, which stores it and routes it (RouteRemote) and the
// carbons. It answers the client with an error when that fails.
func (ss *session) sendRemoteStored(msg *Element, a address, typ, body string) {
	x := storedExtra{ID: msg.Get("id"), FromRes: ss.resource, ToRes: a.Resource, Lang: msg.Lang(), X: extensionsOf(msg)}
	if typ != "chat" {
		x.Type = typ
	}
	extra, _ := json.Marshal(x)
	kind := chat.KindNormal
	if b, me := isMe(body); me {
		body, kind = b, chat.KindAction
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	_, err := ss.srv.core.SendRemote(ctx, ss.core, address{Local: a.Local, Domain: a.Domain}.Bare(), kind, body, string(extra))
	var re *routeError
	switch {
	case err == nil:
	case errors.As(err, &re):
		ss.replyErr(msg, re.cond, re.Error())
	case errors.Is(err, chat.ErrNotFound):
		ss.replyErr(msg, "remote-server-not-found", "this server does not federate with that domain")
	case errors.Is(err, chat.ErrBadName):
		ss.replyErr(msg, "jid-malformed", err.Error())
	case errors.Is(err, chat.ErrRateLimited):
		ss.replyErr(msg, "resource-constraint", err.Error())
	case errors.Is(err, chat.ErrTooLong), errors.Is(err, chat.ErrInvalidUTF8):
		ss.replyErr(msg, "not-acceptable", err.Error())
	case errors.Is(err, chat.ErrForbidden):
		ss.replyErr(msg, "forbidden", err.Error())
	default:
		ss.srv.log.Error("federation: store a message to a remote user", "account", ss.account, "to", a.Bare(), "err", err)
		ss.replyErr(msg, "internal-server-error", "the message could not be stored; send it again")
	}
}

// deliverRemoteStored hands a remote user's message with a body to the
// core, which stores it, queues it for an account with no session and
// delivers it to every session of the account (deliverMessage picks the
// XMPP resources by RFC 6121 §8.5). It says the stanza error to answer
// with, or "".
func (s *Server) deliverRemoteStored(ctx context.Context, el *Element, account string, from, to address, typ, body string) string {
	x := storedExtra{ID: el.Get("id"), FromRes: from.Resource, ToRes: to.Resource, Lang: el.Lang(), X: extensionsOf(el)}
	if typ != "chat" {
		x.Type = typ
	}
	extra, _ := json.Marshal(x)
	kind := chat.KindNormal
	if b, me := isMe(body); me {
		body, kind = b, chat.KindAction
	}
	m, err := s.core.DeliverRemote(ctx, from.Bare(), from.Resource, account, kind, body, string(extra))
	switch {
	case err == nil:
		s.log.Debug("federation: message stored", "account", account, "from", from.Bare(), "id", el.Get("id"), "msgid", m.ID)
		return ""
	case errors.Is(err, chat.ErrRateLimited):
		return "resource-constraint"
	case errors.Is(err, chat.ErrTooLong), errors.Is(err, chat.ErrInvalidUTF8), errors.Is(err, chat.ErrBadName):
		return "not-acceptable"
	case errors.Is(err, chat.ErrNotFound):
		return "service-unavailable"
	}
	s.log.Error("federation: store a remote message", "account", account, "from", from.Bare(), "err", err)
	return "internal-server-error"
}

// accountJID is the bare JID of a name in a stored message: an account's
// on this domain, a remote user's as it is.
func (s *Server) accountJID(name string) string {
	if chat.IsRemote(name) {
		return name
	}
	return name + "@" + s.cfg.Domain
}
