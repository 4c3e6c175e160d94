package xmpp

import (
	"strings"
)

// This file routes what a bound client sends (RFC 6120 §8, §10; RFC 6121
// §8): the server stamps the from address, answers what is addressed to
// itself or to an account's bare JID on its behalf, hands messages with a
// body to the core (stored, cross-door), and relays the rest to the
// addressee's sessions. Other domains are federation's (s2s_route.go):
// when it is off they get remote-server-not-found.

// handle takes one top-level element from the client.
func (ss *session) handle(el *Element) {
	if el.Space != nsClient || el.Local != "message" || el.Get("type") != "groupchat" {
		// Only room messages go on while those before are stored
		// (mucMessage); anything else, an XEP-0198 <r/> included, waits.
		ss.sends.Wait()
	}
	if el.Space != nsClient {
		if h := ss.srv.features.nonzas[el.Space]; h != nil {
			if c := ss.conn(); c != nil {
				h(c, el)
			}
			return
		}
		ss.kick(streamErr("unsupported-stanza-type", "<%s xmlns='%s'> is not understood here", el.Local, el.Space))
		return
	}
	ss.mu.Lock()
	ss.handled++
	ss.mu.Unlock()
	switch el.Local {
	case "iq", "message", "presence":
	default:
		ss.kick(streamErr("unsupported-stanza-type", "<%s/> is not a stanza", el.Local))
		return
	}
	el.Set("from", ss.full)
	if to := el.Get("to"); to != "" {
		a, err := parseJID(to)
		if err != nil {
			if el.Get("type") != "error" {
				ss.replyErr(el, "jid-malformed", "the to address is not a valid JID")
			}
			return
		}
		el.Set("to", a.String())
	}
	if ss.sessionRequest(el) {
		return
	}
	if ss.guest() && !ss.guestMay(el) {
		return
	}
	switch el.Local {
	case "iq":
		ss.routeIQ(el)
	case "message":
		ss.routeMessage(el)
	case "presence":
		ss.routePresence(el)
	}
}

// target classifies a stanza's to address.
type target int

const (
	toServer  target = iota // the domain itself
	toAccount               // an account here (bare or full)
	toHosted                // a service domain here (components, MUC)
	toRemote                // another server
)

func (ss *session) classify(to string) (target, address) {
	if to == "" {
		return toAccount, address{Local: ss.account, Domain: ss.srv.cfg.Domain}
	}
	a, _ := parseJID(to)
	switch {
	case a.Domain == ss.srv.cfg.Domain && a.Local == "":
		return toServer, a
	case a.Domain == ss.srv.cfg.Domain:
		return toAccount, a
	case ss.srv.hosted(a.Domain):
		return toHosted, a
	}
	return toRemote, a
}

// hosted says whether domain is served here besides the main one
// (components, later the MUC and upload services).
func (s *Server) hosted(domain string) bool {
	s.mu.Lock()
	_, ok := s.components[domain]
	s.mu.Unlock()
	return ok || s.features.domains[domain] != nil
}

// toHostedDomain hands a stanza to a component or a built-in service.
func (ss *session) toHostedDomain(el *Element, a address) {
	if h := ss.srv.features.domains[a.Domain]; h != nil {
		h(ss, el)
		return
	}
	ss.srv.mu.Lock()
	comp := ss.srv.components[a.Domain]
	ss.srv.mu.Unlock()
	if comp == nil {
		if el.Get("type") != "error" && el.Get("type") != "result" {
			ss.replyErr(el, "service-unavailable", "")
		}
		return
	}
	ss.sends.Wait()
	comp.sendEl(renamespace(el.Clone(), nsClient, nsComponent))
}

// routeIQ routes an IQ (RFC 6120 §8.2.3, §10).
func (ss *session) routeIQ(iq *Element) {
	typ := iq.Get("type")
	switch typ {
	case "get", "set":
		if iq.Get("id") == "" || len(iq.Kids()) != 1 {
			ss.replyErr(iq, "bad-request", "an IQ get or set needs an id and exactly one child")
			return
		}
	case "result", "error":
		if iq.Get("id") == "" {
			return
		}
	default:
		ss.replyErr(iq, "bad-request", "unknown IQ type")
		return
	}
	kind, a := ss.classify(iq.Get("to"))
	switch kind {
	case toServer:
		if typ == "result" || typ == "error" {
			for _, h := range ss.srv.features.iqResults {
				if h(ss, iq) {
					return
				}
			}
			return // answers to the server's own pings
		}
		if h := ss.srv.features.serverIQ[iq.First().Space]; h != nil {
			h(ss, iq)
			return
		}
		ss.replyErr(iq, "service-unavailable", "")
	case toHosted:
		ss.toHostedDomain(iq, a)
	case toRemote:
		ss.toRemoteDomain(iq) // s2s_route.go
	case toAccount:
		if a.Resource == "" {
			if typ == "result" || typ == "error" {
				return
			}
			// Handled by the server on behalf of the account (RFC 6120
			// §10.5.4 for other accounts, §10.3.3 for one's own).
			if h := ss.srv.features.accountIQ[iq.First().Space]; h != nil {
				h(ss, iq)
				return
			}
			if a.Local == ss.account && iq.Get("to") == "" {
				if h := ss.srv.features.serverIQ[iq.First().Space]; h != nil {
					h(ss, iq)
					return
				}
			}
			ss.replyErr(iq, "service-unavailable", "")
			return
		}
		if peer := ss.srv.sessionAt(a.Local, a.Resource); peer != nil && ss.mayReach(peer, iq) {
			peer.send(iq)
			return
		}
		if typ == "get" || typ == "set" {
			ss.replyErr(iq, "service-unavailable", "")
		}
	}
}

// mayReach says whether a stanza from ss may go to peer's session: the
// peer has not blocked the sender (XEP-0191) and sees the sender's
// presence or is the same account.
func (ss *session) mayReach(peer *session, el *Element) bool {
	for _, f := range ss.srv.features.reachFilters {
		if !f(ss, peer, el) {
			return false
		}
	}
	return true
}

// bodyOf is a message's body without a language tag, or the first one.
func bodyOf(msg *Element) (string, bool) {
	var first *Element
	for _, k := range msg.Kids() {
		if k.Is(nsClient, "body") {
			if k.Lang() == "" {
				return k.Text(), true
			}
			if first == nil {
				first = k
			}
		}
	}
	if first != nil {
		return first.Text(), true
	}
	return "", false
}

// isMe says whether a body is a /me action (XEP-0245).
func isMe(body string) (string, bool) {
	if strings.HasPrefix(body, "/me ") {
		return body[4:], true
	}
	return body, false
}
