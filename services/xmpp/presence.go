package xmpp

import (
	"slices"
	"strconv"
	"strings"

	"chatbox/services/chat"
)

// This file is presence (RFC 6121 §4): a session's availability and
// priority, its broadcast to the account's available resources and to
// the contacts the presenceTargets hooks name, directed presence (§4.6),
// the unavailable presence of a session that ends without saying so
// (§4.5.2), and presence from the core (IRC sessions, shown as resources
// irc-<n>). Presence goes only to available resources (those that sent
// initial presence). The roster, subscriptions and probes are in
// rfc6121_roster.go and rfc6121_subscriptions.go.

// registerPresence adds the unavailable presence of a session that ends
// while available (RFC 6121 §4.5.2: the server broadcasts it for the
// client).
func registerPresence(f *features, _ *Server) {
	f.onClosed = append(f.onClosed, func(ss *session) {
		av, _ := ss.isAvailable()
		ss.mu.Lock()
		directed := len(ss.directed)
		ss.mu.Unlock()
		if av || directed > 0 {
			ss.broadcastPresence(El(nsClient, "presence", "type", "unavailable", "from", ss.full))
		}
	})
}

// presenceShow maps XMPP <show/> to the core's Show.
func presenceShow(p *Element) chat.Show {
	switch p.ChildText(nsClient, "show") {
	case "chat":
		return chat.ShowChat
	case "away":
		return chat.ShowAway
	case "xa":
		return chat.ShowXA
	case "dnd":
		return chat.ShowDND
	}
	return chat.ShowAvailable
}

// routePresence handles a presence stanza from the client.
func (ss *session) routePresence(p *Element) {
	typ := p.Get("type")
	if p.Get("to") == "" {
		switch typ {
		case "", "unavailable":
			ss.broadcastPresence(p)
		default:
			// Subscription types need an address; probes and errors
			// without one mean nothing.
			if typ != "error" {
				ss.replyErr(p, "bad-request", "a "+typ+" presence needs a to address")
			}
		}
		return
	}
	for _, h := range ss.srv.features.presenceHandlers {
		if h(ss, p) {
			return
		}
	}
	ss.directedPresence(p)
}

// broadcastPresence takes an undirected presence: the session's new
// availability, sent to its account's other sessions and to those who may
// see it (the presenceTargets hooks: roster contacts with a from
// subscription).
func (ss *session) broadcastPresence(p *Element) {
	typ := p.Get("type")
	prio := 0
	if s := strings.TrimSpace(p.ChildText(nsClient, "priority")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < -128 || n > 127 {
			ss.replyErr(p, "bad-request", "priority must be a number from -128 to 127")
			return
		}
		prio = n
	}
	stored := p.Clone()
	stored.Set("to", "")
	ss.mu.Lock()
	wasAvailable := ss.available
	initial := !ss.available && typ == ""
	if typ == "" {
		ss.available, ss.priority, ss.presence = true, prio, stored
	} else {
		ss.available, ss.presence = false, nil
	}
	ss.mu.Unlock()
	if typ == "" {
		ss.core.SetPresence(chat.Presence{Show: presenceShow(p), Status: p.ChildText(nsClient, "status")})
	} else {
		ss.core.SetPresence(chat.Presence{Show: chat.ShowOffline, Status: p.ChildText(nsClient, "status")})
	}
	// The account's available resources, including this one (RFC 6121
	// §4.2.2, §4.4.2).
	for _, other := range ss.srv.sessionsOf(ss.account) {
		if av, _ := other.isAvailable(); !av && other != ss {
			continue
		}
		out := stored.Clone()
		out.Set("from", ss.full)
		out.Set("to", other.full)
		other.send(out)
	}
	if wasAvailable || typ == "" {
		for _, targets := range ss.srv.features.presenceTargets {
			for _, jid := range targets(ss) {
				ss.presenceTo(stored, jid)
			}
		}
	}
	if typ == "unavailable" {
		ss.mu.Lock()
		directed := ss.directed
		ss.directed = nil
		ss.mu.Unlock()
		for _, jid := range directed {
			ss.presenceTo(stored, jid)
		}
	}
	if initial {
		ss.ownPresences()
		for _, h := range ss.srv.features.onInitialPresence {
			h(ss)
		}
	}
}

// ownPresences shows a newly available session the presence of its
// account's other available resources, XMPP and IRC.
func (ss *session) ownPresences() {
	for _, other := range ss.srv.sessionsOf(ss.account) {
		if other == ss {
			continue
		}
		other.mu.Lock()
		p := other.presence.Clone()
		av := other.available
		other.mu.Unlock()
		if !av || p == nil {
			continue
		}
		p.Set("from", other.full)
		p.Set("to", ss.full)
		ss.send(p)
	}
	for _, el := range ss.srv.ircPresences(ss.account, ss.full, false) {
		ss.send(el)
	}
}

// ircPresences are the presence stanzas, addressed to to, of account's
// sessions on other doors (IRC): unavailable ones if unavailable,
// otherwise those of the sessions that are online.
func (s *Server) ircPresences(account, to string, unavailable bool) []*Element {
	var out []*Element
	p := chat.Presence{Show: chat.ShowOffline}
	known := unavailable
	for _, ref := range s.core.Sessions(account) {
		if ref.Door == "xmpp" {
			continue
		}
		if !known {
			p, known = s.ircPresence(account), true
		}
		if p.Show == chat.ShowOffline && !unavailable {
			continue
		}
		out = append(out, corePresence(ref, p, s.cfg.Domain, to))
	}
	return out
}

// ircPresence is the presence of account's IRC sessions as far as the
// core tells it: the core gives one session's presence only to that
// session and aggregates the account's (the most available show), so
// when the aggregate is an XMPP session's, the IRC sessions are shown as
// plainly available (which they are unless marked AWAY). Their changes
// arrive as they happen (deliverPresence).
func (s *Server) ircPresence(account string) chat.Presence {
	agg := s.core.AccountPresence(account)
	if agg.Show == chat.ShowOffline {
		return agg
	}
	for _, ss := range s.sessionsOf(account) {
		if ss.core != nil && ss.core.Presence() == agg {
			return chat.Presence{Show: chat.ShowAvailable}
		}
	}
	return agg
}

// presenceTo sends a copy of the session's presence to a JID: every
// session of a local bare JID, one of a full JID.
func (ss *session) presenceTo(p *Element, to string) {
	a, err := parseJID(to)
	if err != nil {
		return
	}
	if a.Domain != ss.srv.cfg.Domain {
		if ss.srv.hosted(a.Domain) {
			out := p.Clone()
			out.Set("from", ss.full)
			out.Set("to", to)
			ss.toHostedDomain(out, a)
		}
		if ss.srv.isRemote(a.Domain) {
			out := p.Clone()
			out.Set("from", ss.full)
			out.Set("to", to)
			ss.srv.fedSend(out) // s2s_route.go
		}
		return
	}
	var peers []*session
	if a.Resource != "" {
		if peer := ss.srv.sessionAt(a.Local, a.Resource); peer != nil {
			peers = append(peers, peer)
		}
	} else {
		// A bare JID: its available resources (RFC 6121 §8.5.2.1.1).
		for _, peer := range ss.srv.sessionsOf(a.Local) {
			if av, _ := peer.isAvailable(); av {
				peers = append(peers, peer)
			}
		}
	}
	for _, peer := range peers {
		if peer.account == ss.account {
			continue // the account's own resources had theirs
		}
		out := p.Clone()
		out.Set("from", ss.full)
		out.Set("to", peer.full)
		if ss.mayReach(peer, out) {
			peer.send(out)
		}
	}
}

// directedPresence sends an available or unavailable presence to one
// address (RFC 6121 §4.6), remembering it so that going offline tells it.
// maxDirected bounds the JIDs a session's directed presence is
// remembered for (to tell them it left): rooms and a few contacts.
const maxDirected = 256

func (ss *session) directedPresence(p *Element) {
	typ := p.Get("type")
	kind, a := ss.classify(p.Get("to"))
	switch typ {
	case "", "unavailable":
	default:
		if kind == toHosted {
			ss.toHostedDomain(p, a)
		}
		return
	}
	switch kind {
	case toServer:
		return
	case toRemote:
		if ss.srv.fed == nil {
			ss.replyErr(p, "remote-server-not-found", "this server does not talk to other servers")
			return
		}
		ss.presenceTo(p.Clone(), a.String())
	case toHosted:
		ss.toHostedDomain(p, a)
	case toAccount:
		stored := p.Clone()
		ss.presenceTo(stored, a.String())
	}
	to := a.String()
	ss.mu.Lock()
	had := slices.Contains(ss.directed, to)
	switch {
	case typ == "" && !had:
		if len(ss.directed) >= maxDirected {
			// The oldest is forgotten (it gets no unavailable presence
			// at logout) rather than the list growing without bound.
			ss.directed = slices.Delete(ss.directed, 0, 1)
		}
		ss.directed = append(ss.directed, to)
	case typ != "" && had:
		ss.directed = slices.DeleteFunc(ss.directed, func(j string) bool { return j == to })
	}
	ss.mu.Unlock()
}

// deliverPresence shows a presence change the core routed: from IRC
// sessions (XMPP sessions' presence is broadcast by the door itself).
func (ss *session) deliverPresence(d chat.Delivery) {
	if d.From.Door == "xmpp" || d.From.Account == ss.account && d.From.ID == ss.core.ID() {
		return
	}
	if av, _ := ss.isAvailable(); !av {
		return // presence goes to available resources
	}
	visible := d.From.Account == ss.account
	for _, v := range ss.srv.features.presenceVisible {
		visible = visible || v(ss, d.From.Account)
	}
	if !visible {
		return
	}
	ss.send(corePresence(d.From, d.Presence, ss.srv.cfg.Domain, ss.full))
}

// ircResource is the resource an IRC session shows as on XMPP.
func ircResource(ref chat.SessionRef) string {
	return "irc-" + strconv.FormatUint(ref.ID, 10)
}

// corePresence is the presence stanza of a non-XMPP session.
func corePresence(ref chat.SessionRef, p chat.Presence, domain, to string) *Element {
	el := El(nsClient, "presence", "from", ref.Account+"@"+domain+"/"+ircResource(ref), "to", to)
	switch p.Show {
	case chat.ShowOffline:
		el.Set("type", "unavailable")
	case chat.ShowAway, chat.ShowXA, chat.ShowDND, chat.ShowChat:
		el.Add(El(nsClient, "show").Add(string(p.Show)))
	}
	if p.Status != "" {
		el.Add(El(nsClient, "status").Add(p.Status))
	}
	return el
}
