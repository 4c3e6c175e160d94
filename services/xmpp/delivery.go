package xmpp

import (
	"chatbox/services/chat"
)

// Deliver implements chat.Sink: it turns what the core routes to this
// session into stanzas. It runs under the core's lock and never blocks:
// stanzas go to the connection's queue (or the resumption queue).
func (ss *session) Deliver(d chat.Delivery) {
	switch d.Kind {
	case chat.DelMessage:
		if d.Message != nil {
			ss.deliverMessage(d)
		}
	case chat.DelPresence:
		ss.deliverPresence(d)
	case chat.DelSignal:
		ss.deliverSignal(d)
	case chat.DelDisconnect:
		go ss.kick(&streamError{Condition: disconnectCondition(d.Reason), Text: d.Reason})
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
