package xmpp

// XEP-0280 Message Carbons (urn:xmpp:carbons:2): a client that enabled
// carbons gets a copy of the one-to-one messages its account sends and
// receives on its other sessions (XMPP or IRC: a line alice writes on IRC
// reaches her phone as a sent carbon). Messages marked <private/> are not
// copied. Carbons of groupchat messages are not made (rooms are shared
// through the MUC service).

const nsCarbons = "urn:xmpp:carbons:2"

func registerCarbons(f *features, _ *Server) {
	toggle := func(ss *session, iq *Element) {
		if iq.Get("type") != "set" {
			ss.replyErr(iq, "bad-request", "carbons are enabled or disabled with a set")
			return
		}
		on := iq.First().Local == "enable"
		if !on && iq.First().Local != "disable" {
			ss.replyErr(iq, "bad-request", "")
			return
		}
		v := ss.state("carbons", func() any { return new(bool) }).(*bool)
		ss.mu.Lock()
		*v = on
		ss.mu.Unlock()
		ss.result(iq, nil)
	}
	f.accountIQ[nsCarbons] = toggle
	f.serverIQ[nsCarbons] = toggle
	f.serverFeatures = append(f.serverFeatures, nsCarbons)
	// <private/> messages are not copied: strip the hint before routing
	// happens and remember it on the element.
}

func (ss *session) carbonsOn() bool {
	v, _ := ss.state("carbons", nil).(*bool)
	if v == nil {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return *v
}

// eligible says whether a message may be copied (XEP-0280 §6).
func eligible(msg *Element) bool {
	if msg.Child(nsCarbons, "private") != nil || msg.Child("urn:xmpp:hints", "no-copy") != nil {
		return false
	}
	switch msg.Get("type") {
	case "chat", "":
		return true
	case "normal":
		_, body := bodyOf(msg)
		return body
	}
	return false
}

// carbon sends the session a sent or received copy of msg, if it enabled
// carbons and msg is eligible.
func (ss *session) carbon(kind string, msg *Element) {
	if !ss.carbonsOn() || !eligible(msg) {
		return
	}
	fwd := El("urn:xmpp:forward:0", "forwarded").Add(msg.Clone())
	ss.send(El(nsClient, "message", "from", ss.bare, "to", ss.full, "type", msg.Get("type")).Add(
		El(nsCarbons, kind).Add(fwd)))
}
