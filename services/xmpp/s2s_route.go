package xmpp

import (
	"context"
	"errors"
	"strings"
	"time"

	"chatbox/services/chat"
)

// Routing across federation (RFC 6120 §10.4, RFC 6121 §8 for stanzas
// between servers). Outbound, a client's stanza to another domain goes
// to that domain's queue (s2s_out.go), and the server's own stanzas for
// remote contacts (presence broadcast to subscribers, subscription
// stanzas, probes) follow it. Inbound, a stanza from an authenticated
// peer domain is delivered as RFC 6121 §8.5 says: a full JID to that
// resource; a chat or normal message with a body is stored by the core
// like a local one (s2s_direct.go: history, offline queue, IRC, carbons);
// other messages to a bare JID go to the highest-priority available
// resources and are dropped when none is connected; presence to the
// available resources; subscription
// stanzas through the RFC 6121 roster state machine
// (rfc6121_subscriptions.go) with remote contacts in rosters; probes
// answered from the account's presence when the contact is subscribed;
// IQs to a full JID relayed, IQs to the domain answered for ping and
// disco#info, IQs to a bare JID answered for ping (XEP-0199), vCard
// (XEP-0054), PEP items and disco#info (s2s_pep.go) and refused otherwise
// (service-unavailable). XEP-0191 blocks apply to remote senders.
// Rooms of this box with remote occupants are xep0045_s2s_muc.go's.
// Left out: carbons of unstored messages (no body) from remote users.

const s2sOfflineCollection = "s2s-offline"

func registerFederation(f *features, s *Server) {
	f.onInitialPresence = append(f.onInitialPresence, s.remoteOffline)
}

// toRemoteDomain sends a client's stanza to another server, or answers
// it with an error when the box does not federate with that domain.
func (ss *session) toRemoteDomain(el *Element) {
	cond, text := "remote-server-not-found", "this server does not talk to other servers"
	if f := ss.srv.fed; f != nil {
		if cond = f.send(el.Clone()); cond == "" {
			return
		}
		text = "this server does not federate with that domain"
		if cond == "resource-constraint" {
			text = "too many stanzas are waiting for that server: try again later"
		}
	}
	if t := el.Get("type"); t != "error" && t != "result" {
		ss.replyErr(el, cond, text)
	}
}

// fedSend sends a stanza the server makes (presence, subscriptions) to
// another domain; it is dropped when the box does not federate.
func (s *Server) fedSend(el *Element) {
	if s.fed != nil {
		s.fed.send(el)
	}
}

// isRemote says whether a domain is another server's.
func (s *Server) isRemote(domain string) bool {
	return domain != s.cfg.Domain && !s.hosted(domain)
}

// fromRemote delivers a stanza from another server (or a bounce made
// here) to the box's accounts. el is in jabber:client.
func (s *Server) fromRemote(el *Element) {
	to, err := parseJID(el.Get("to"))
	if err != nil {
		return
	}
	from, err := parseJID(el.Get("from"))
	if err != nil {
		return
	}
	el.Set("to", to.String())
	typ := el.Get("type")
	reply := func(cond string) {
		if typ != "error" && typ != "result" {
			s.fedSend(stanzaErrorReply(el, "", cond, ""))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if to.Domain == s.mucDomain() && s.fed != nil {
		s.remoteMUC(ctx, el, from, to, reply) // xep0045_s2s_muc.go
		return
	}
	if to.Domain != s.cfg.Domain {
		reply("service-unavailable") // other hosted services are not federated
		return
	}
	if to.Local == "" {
		s.remoteToDomain(el, reply)
		return
	}
	account := strings.ToLower(to.Local)
	if _, err := s.core.Account(ctx, account); err != nil {
		if el.Local == "presence" && typ == "subscribe" {
			s.fedSend(El(nsClient, "presence", "from", to.Bare(), "to", from.Bare(), "type", "unsubscribed"))
			return
		}
		if el.Local != "presence" {
			reply("service-unavailable")
		}
		return
	}
	if s.blockedBy(account, from) {
		if el.Local == "iq" || (el.Local == "message" && typ != "groupchat") {
			reply("service-unavailable")
		}
		return
	}
	switch el.Local {
	case "message":
		s.remoteMessage(ctx, el, account, from, to, typ)
	case "presence":
		s.remotePresence(ctx, el, account, to, from, typ)
	case "iq":
		s.remoteIQ(ctx, el, account, from, to, typ, reply)
	}
}

// remoteToDomain answers what a remote entity sends to the domain.
func (s *Server) remoteToDomain(el *Element, reply func(string)) {
	typ := el.Get("type")
	if el.Local != "iq" || (typ != "get" && typ != "set") {
		return
	}
	res := El(nsClient, "iq", "type", "result", "id", el.Get("id"), "from", el.Get("to"), "to", el.Get("from"))
	switch p := el.First(); {
	case p.Is(nsPing, "ping"):
		s.fedSend(res)
	case p.Is(nsDiscoInfo, "query") && typ == "get" && p.Get("node") == "":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ids, feats, forms := s.serverDisco(ctx)
		s.fedSend(res.Add(discoInfoElement("", ids, feats, forms...)))
	default:
		reply("service-unavailable")
	}
}

func (s *Server) remoteMessage(ctx context.Context, el *Element, account string, from, to address, typ string) {
	if typ == "" {
		typ = "normal"
	}
	if body, ok := storable(el, typ); ok {
		if cond := s.deliverRemoteStored(ctx, el, account, from, to, typ, body); cond != "" { // s2s_direct.go
			s.fedSend(stanzaErrorReply(el, "", cond, ""))
		}
		return
	}
	if to.Resource != "" {
		if ss := s.sessionAt(account, to.Resource); ss != nil {
			ss.send(el)
			return
		}
		if typ == "error" || typ == "groupchat" || typ == "headline" {
			return
		}
	}
	switch typ {
	case "error":
		for _, ss := range s.availableSessions(account) {
			ss.send(el.Clone())
		}
		return
	case "groupchat":
		return
	}
	for _, ss := range s.chosen(account, typ) {
		ss.send(el.Clone())
	}
	// Nobody connected: a message without a body (a chat state, a
	// receipt) or a headline is not kept.
}

// remoteOffline shows a newly available session the remote messages an
// earlier version kept for its account as documents (remote messages are
// now in the core's offline queue), oldest first, and forgets them: each goes to the
// first session that takes it (it is deleted before it is sent).
func (s *Server) remoteOffline(ss *session) {
	if s.fed == nil {
		return
	}
	s.fed.offlineMu.Lock()
	defer s.fed.offlineMu.Unlock()
	ctx, cancel := ss.ctx()
	defer cancel()
	items, err := s.core.ListData(ctx, ss.account, s2sOfflineCollection)
	if err != nil || len(items) == 0 {
		return
	}
	for _, it := range items {
		if err := s.core.DeleteData(ctx, ss.account, s2sOfflineCollection, it.Key); err != nil {
			if !errors.Is(err, chat.ErrNotFound) {
				s.log.Error("federation: forget a kept message", "account", ss.account, "err", err)
			}
			continue
		}
		for _, el := range parseFragment(string(it.Value)) {
			ss.send(el)
		}
	}
}

func (s *Server) remotePresence(ctx context.Context, el *Element, account string, to, from address, typ string) {
	switch typ {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		r := s.features.rosters
		if r == nil {
			return
		}
		u := address{Local: from.Local, Domain: from.Domain}
		el.Set("from", u.Bare())
		el.Set("to", to.Bare())
		r.mu.Lock()
		defer r.mu.Unlock()
		r.subscriptionIn(ctx, account, u, typ, el)
		return
	case "probe":
		r := s.features.rosters
		if r == nil {
			return
		}
		u := address{Local: from.Local, Domain: from.Domain}
		it, err := r.item(ctx, account, u.Bare())
		if err != nil {
			return
		}
		if it.hasFrom() {
			s.presenceToRemote(account, u.Bare(), false)
		} else {
			s.fedSend(El(nsClient, "presence", "from", to.Bare(), "to", u.Bare(), "type", "unsubscribed"))
		}
		return
	}
	var targets []*session
	if to.Resource != "" {
		if ss := s.sessionAt(account, to.Resource); ss != nil {
			targets = append(targets, ss)
		}
	} else {
		targets = s.availableSessions(account)
	}
	for _, ss := range targets {
		out := el.Clone()
		if to.Resource == "" {
			out.Set("to", ss.full)
		}
		ss.send(out)
	}
}

// presenceToRemote sends a remote JID the presence of account's available
// XMPP resources (or unavailable from each).
func (s *Server) presenceToRemote(account, jid string, unavailable bool) {
	for _, cs := range s.sessionsOf(account) {
		cs.mu.Lock()
		p, av := cs.presence.Clone(), cs.available
		cs.mu.Unlock()
		if !av || p == nil {
			continue
		}
		if unavailable {
			p = El(nsClient, "presence", "type", "unavailable")
		}
		p.Set("from", cs.full)
		p.Set("to", jid)
		s.fedSend(p)
	}
}

func (s *Server) remoteIQ(ctx context.Context, el *Element, account string, from, to address, typ string, reply func(string)) {
	if to.Resource != "" {
		if ss := s.sessionAt(account, to.Resource); ss != nil {
			ss.send(el)
			return
		}
		reply("service-unavailable")
		return
	}
	if typ != "get" && typ != "set" {
		return
	}
	p := el.First()
	switch {
	case p.Is(nsPing, "ping"):
		s.fedSend(El(nsClient, "iq", "type", "result", "id", el.Get("id"), "from", el.Get("to"), "to", el.Get("from")))
	case p.Is(nsVCard, "vCard") && typ == "get":
		res := El(nsClient, "iq", "type", "result", "id", el.Get("id"), "from", el.Get("to"), "to", el.Get("from"))
		card, err := s.vcard(ctx, account)
		switch {
		case err == nil:
			res.Add(card)
		case errors.Is(err, chat.ErrNotFound):
			reply("item-not-found")
			return
		default:
			reply("internal-server-error")
			return
		}
		s.fedSend(res)
	case p != nil && s.features.remoteAccountIQ[p.Space] != nil: // s2s_pep.go
		if r := s.features.remoteAccountIQ[p.Space](ctx, el, account, from); r != nil {
			s.fedSend(r)
		}
	default:
		reply("service-unavailable")
	}
}
