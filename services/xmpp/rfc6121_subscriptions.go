package xmpp

import (
	"context"
	"strings"
)

// RFC 6121 §3 Managing Presence Subscriptions and §4.3 Presence Probes,
// between the accounts of this box.
//
// A subscription stanza a client sends (subscribe, subscribed,
// unsubscribe, unsubscribed) goes out from the user's bare JID (§3.1.2)
// and, when the contact is an account here, is processed at once on the
// contact's side too: the user's server and the contact's server are the
// same one, so both rows of RFC 6121 Appendix A apply (A.2 for the
// outbound stanza on the sender's roster, A.3 for the inbound one on the
// receiver's), each with its roster pushes. A request nobody answered
// waits on the contact's roster and is delivered again at each initial
// presence of the contact (§3.1.3); a pre-approval (§3.4) answers it
// without asking. On approval the contact's available resources send
// their presence to the user; when a subscription ends they send
// unavailable. A request to an account that does not exist is answered
// with unsubscribed (§3.1.3).
//
// Initial presence probes (§4.3) are answered inside the server: the new
// resource gets the last presence of each available resource (XMPP
// sessions, and IRC sessions through the core, as resources irc-<n>) of
// every contact it is subscribed to (to/both), and the session watches
// those accounts in the core so that IRC presence changes reach it
// (presenceVisible). A probe a client sends itself is answered the same
// way when it is subscribed; otherwise nothing is revealed (§4.3.2; a
// roster that still says to/both is then corrected as if the contact had
// sent unsubscribed).
//
// Contacts on other domains get the stanzas through federation
// (s2s_route.go; without it they keep their roster item and ask state and
// nothing is sent), and their server's stanzas enter here too; hosted
// domains (components) get the stanza. XEP-0191 blocks stand between
// accounts: a request from a blocked JID changes nothing and is dropped.

// Appendix A transitions. Each takes one side's record (nil when there is
// no item), returns the record after (nil stays nil where the RFC keeps
// no item) and says what the server does with the stanza.

// outSubscribe is an outbound subscribe (A.2.1): the item is created if
// needed and marked Pending Out unless the user already has To.
func outSubscribe(it *rosterItem, jid string) *rosterItem {
	after := it.clone()
	if after == nil {
		after = &rosterItem{JID: jid, Sub: "none"}
	}
	after.Hidden = false
	if !after.hasTo() {
		after.Ask = true
	}
	return after
}

// inAction says what the contact's server does with an inbound subscribe.
type inAction int

const (
	inIgnore      inAction = iota // already pending: nothing
	inDeliver                     // now pending: deliver to the contact
	inAutoReply                   // the user already has From: answer subscribed
	inPreApproved                 // pre-approved: From now, answer subscribed
)

// inSubscribe is an inbound subscribe at the contact (A.3.1, §3.1.3, §3.4).
func inSubscribe(it *rosterItem, jid string) (*rosterItem, inAction) {
	switch {
	case it.hasFrom():
		return it.clone(), inAutoReply
	case it != nil && it.Approved:
		after := it.clone()
		after.Sub, after.Approved, after.PendingIn, after.PendingX = withFrom(after.Sub), false, false, ""
		return after, inPreApproved
	case it != nil && it.PendingIn:
		return it.clone(), inIgnore
	}
	after := it.clone()
	if after == nil {
		after = &rosterItem{JID: jid, Sub: "none", Hidden: true}
	}
	after.PendingIn = true
	return after, inDeliver
}

// outAction says what the server does with an outbound subscribed or
// unsubscribed.
type outAction int

const (
	outIgnore     outAction = iota // nothing changes, nothing is routed
	outPreApprove                  // subscribed with nothing pending: pre-approval (§3.4)
	outCancelPre                   // unsubscribed cancels a pre-approval only
	outRoute                       // the state changed: route the stanza
)

// outSubscribed is an outbound subscribed at the contact (A.2.3, §3.1.5,
// §3.4).
func outSubscribed(it *rosterItem, jid string) (*rosterItem, outAction) {
	switch {
	case it.hasFrom():
		return it.clone(), outIgnore
	case it == nil || !it.PendingIn:
		if it != nil && it.Approved {
			return it.clone(), outIgnore
		}
		after := it.clone()
		if after == nil {
			after = &rosterItem{JID: jid, Sub: "none"}
		}
		after.Approved, after.Hidden = true, false
		return after, outPreApprove
	}
	after := it.clone()
	after.Sub, after.PendingIn, after.PendingX, after.Approved, after.Hidden = withFrom(after.Sub), false, "", false, false
	return after, outRoute
}

// inSubscribed is an inbound subscribed at the user (A.3.2): only an
// item Pending Out changes (to To or Both); otherwise it is ignored.
func inSubscribed(it *rosterItem) (*rosterItem, bool) {
	if it == nil || !it.Ask {
		return it.clone(), false
	}
	after := it.clone()
	after.Ask, after.Sub = false, withTo(after.Sub)
	return after, true
}

// outUnsubscribe is an outbound unsubscribe at the user (A.2.2): no more
// To, no more Pending Out. It is routed whatever the state.
func outUnsubscribe(it *rosterItem) *rosterItem {
	if it == nil {
		return nil
	}
	after := it.clone()
	after.Ask, after.Sub = false, withoutTo(after.Sub)
	return after
}

// inUnsubscribe is an inbound unsubscribe at the contact (A.3.3): no
// more From, no more Pending In; delivered if that changed anything.
func inUnsubscribe(it *rosterItem) (*rosterItem, bool) {
	if it == nil || !it.hasFrom() && !it.PendingIn {
		return it.clone(), false
	}
	after := it.clone()
	after.Sub, after.PendingIn, after.PendingX = withoutFrom(after.Sub), false, ""
	return after, true
}

// outUnsubscribed is an outbound unsubscribed at the contact (A.2.4,
// §3.2.2): it denies a pending request or cancels From, and always ends
// a pre-approval.
func outUnsubscribed(it *rosterItem) (*rosterItem, outAction) {
	if it == nil {
		return nil, outIgnore
	}
	if !it.hasFrom() && !it.PendingIn {
		if it.Approved {
			after := it.clone()
			after.Approved = false
			return after, outCancelPre
		}
		return it.clone(), outIgnore
	}
	after := it.clone()
	after.Sub, after.PendingIn, after.PendingX, after.Approved = withoutFrom(after.Sub), false, "", false
	return after, outRoute
}

// inUnsubscribed is an inbound unsubscribed at the user (A.3.4): no more
// To, no more Pending Out; delivered if that changed anything.
func inUnsubscribed(it *rosterItem) (*rosterItem, bool) {
	if it == nil || !it.hasTo() && !it.Ask {
		return it.clone(), false
	}
	after := it.clone()
	after.Ask, after.Sub = false, withoutTo(after.Sub)
	return after, true
}

// subscriptionIn hands a subscription stanza of type typ from user
// (local or remote) to the local account's roster.
func (r *rosters) subscriptionIn(ctx context.Context, account string, user address, typ string, el *Element) {
	switch typ {
	case "subscribe":
		r.subscribeIn(ctx, account, user, el)
	case "subscribed":
		r.subscribedIn(ctx, account, user, el)
	case "unsubscribe":
		r.unsubscribeIn(ctx, account, user, el)
	case "unsubscribed":
		r.unsubscribedIn(ctx, account, user, el)
	}
}

func withTo(sub string) string {
	if sub == "from" || sub == "both" {
		return "both"
	}
	return "to"
}

func withFrom(sub string) string {
	if sub == "to" || sub == "both" {
		return "both"
	}
	return "from"
}

func withoutTo(sub string) string {
	if sub == "from" || sub == "both" {
		return "from"
	}
	return "none"
}

func withoutFrom(sub string) string {
	if sub == "to" || sub == "both" {
		return "to"
	}
	return "none"
}

func (r *rosters) registerSubscriptions(f *features) {
	f.presenceHandlers = append(f.presenceHandlers, r.handlePresence)
	f.presenceTargets = append(f.presenceTargets, r.targets)
	f.presenceVisible = append(f.presenceVisible, r.visible)
	f.onInitialPresence = append(f.onInitialPresence, r.initialPresence)
}

// addr is the bare JID of a local account.
func (r *rosters) addr(account string) address {
	return address{Local: account, Domain: r.srv.cfg.Domain}
}

// sessAddr is a session's full JID.
func sessAddr(ss *session) address {
	return address{Local: ss.account, Domain: ss.srv.cfg.Domain, Resource: ss.resource}
}

// available returns account's available sessions.
func (s *Server) availableSessions(account string) []*session {
	if account == "" {
		return nil
	}
	var out []*session
	for _, ss := range s.sessionsOf(account) {
		if av, _ := ss.isAvailable(); av {
			out = append(out, ss)
		}
	}
	return out
}

// handlePresence takes a client's presence with a to address: the
// subscription types, probes and errors (true); available and
// unavailable presence is directed presence (false).
func (r *rosters) handlePresence(ss *session, p *Element) bool {
	typ := p.Get("type")
	switch typ {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed", "probe":
	case "error":
		r.relayError(ss, p)
		return true
	default:
		return false
	}
	kind, a := ss.classify(p.Get("to"))
	// Subscriptions are between bare JIDs (§3.1.1); the domain and the
	// user's own JID have nothing to subscribe to.
	c := address{Local: a.Local, Domain: a.Domain}
	if kind == toServer || c.Bare() == ss.bare {
		return true
	}
	if ss.srv.blockedBy(ss.account, a) {
		ss.replyBlocked(p)
		return true
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	if typ == "probe" {
		r.probe(ctx, ss, c, kind, p)
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var err error
	switch typ {
	case "subscribe":
		err = r.subscribeOut(ctx, ss, c, p)
	case "subscribed":
		err = r.subscribedOut(ctx, ss, c, p)
	case "unsubscribe":
		err = r.unsubscribeOut(ctx, ss, c, p)
	case "unsubscribed":
		err = r.unsubscribedOut(ctx, ss, c, p)
	}
	if err != nil {
		r.srv.log.Error("presence subscription", "account", ss.account, "type", typ, "contact", c.Bare(), "err", err)
		ss.replyErr(p, "internal-server-error", "the roster could not be changed; send it again")
	}
	return true
}

// route sends a subscription stanza from the user's bare JID to a
// contact (§3.1.2: the server stamps the bare JID) and, for an account
// here, applies it on the contact's side. p is the client's stanza (its
// id and children go along), or nil for one the server makes (§2.5.2).
// r.mu is held.
func (r *rosters) route(ctx context.Context, ss *session, c address, typ string, p *Element) {
	el := El(nsClient, "presence", "from", ss.bare, "to", c.Bare(), "type", typ)
	if p != nil {
		el.Set("id", p.Get("id"))
		for _, k := range p.Kids() {
			el.Add(k.Clone())
		}
	}
	user := r.addr(ss.account)
	if account := r.localAccount(c); account != "" {
		r.subscriptionIn(ctx, account, user, typ, el)
		return
	}
	if c.Domain != r.srv.cfg.Domain && r.srv.hosted(c.Domain) {
		ss.toHostedDomain(el, c)
	}
	if r.srv.isRemote(c.Domain) {
		// Another server (s2s_route.go); without federation the item
		// keeps its state and nothing is sent.
		r.srv.fedSend(el)
	}
}

// subscribeOut: the user asks for the contact's presence (§3.1.2).
func (r *rosters) subscribeOut(ctx context.Context, ss *session, c address, p *Element) error {
	before, err := r.item(ctx, ss.account, c.Bare())
	if err == nil && before == nil {
		err = r.roomFor(ctx, ss.account)
	}
	if err == errRosterFull {
		ss.replyErr(p, "not-allowed", err.Error())
		return nil
	}
	if err != nil {
		return err
	}
	if err := r.save(ctx, ss.account, before, outSubscribe(before, c.Bare())); err != nil {
		return err
	}
	r.route(ctx, ss, c, "subscribe", p)
	return nil
}

// subscribedOut: the user approves a request, or pre-approves one
// (§3.1.5, §3.4).
func (r *rosters) subscribedOut(ctx context.Context, ss *session, c address, p *Element) error {
	before, err := r.item(ctx, ss.account, c.Bare())
	if err != nil {
		return err
	}
	after, act := outSubscribed(before, c.Bare())
	switch act {
	case outIgnore:
		return nil
	case outPreApprove:
		if before == nil {
			if err := r.roomFor(ctx, ss.account); err == errRosterFull {
				ss.replyErr(p, "not-allowed", err.Error())
				return nil
			} else if err != nil {
				return err
			}
		}
		return r.save(ctx, ss.account, before, after)
	}
	if err := r.save(ctx, ss.account, before, after); err != nil {
		return err
	}
	r.route(ctx, ss, c, "subscribed", p)
	// The contact's server then sends the user its current presence.
	r.srv.presenceOf(ss.account, r.srv.availableSessions(r.localAccount(c)), false)
	if r.srv.isRemote(c.Domain) {
		r.srv.presenceToRemote(ss.account, c.Bare(), false)
	}
	return nil
}

// unsubscribeOut: the user stops watching the contact (§3.3.2).
func (r *rosters) unsubscribeOut(ctx context.Context, ss *session, c address, p *Element) error {
	before, err := r.item(ctx, ss.account, c.Bare())
	if err != nil {
		return err
	}
	if err := r.save(ctx, ss.account, before, outUnsubscribe(before)); err != nil {
		return err
	}
	if before.hasTo() {
		r.lostTo(ss.account, c)
	}
	r.route(ctx, ss, c, "unsubscribe", p)
	return nil
}

// unsubscribedOut: the user denies a request, cancels the contact's
// subscription or a pre-approval (§3.2.2).
func (r *rosters) unsubscribedOut(ctx context.Context, ss *session, c address, p *Element) error {
	before, err := r.item(ctx, ss.account, c.Bare())
	if err != nil {
		return err
	}
	after, act := outUnsubscribed(before)
	switch act {
	case outIgnore:
		return nil
	case outCancelPre:
		return r.save(ctx, ss.account, before, after)
	}
	if err := r.save(ctx, ss.account, before, after); err != nil {
		return err
	}
	if before.hasFrom() {
		// While the contact is still subscribed: unavailable from every
		// available resource of the user (§3.2.2).
		r.srv.presenceOf(ss.account, r.srv.availableSessions(r.localAccount(c)), true)
		if r.srv.isRemote(c.Domain) {
			r.srv.presenceToRemote(ss.account, c.Bare(), true)
		}
	}
	r.route(ctx, ss, c, "unsubscribed", p)
	return nil
}

// accountExists says whether account is an account of the box.
func (r *rosters) accountExists(ctx context.Context, account string) bool {
	_, err := r.srv.core.Account(ctx, account)
	return err == nil
}

// subscribeIn: a request from user u reaches account, the contact
// (§3.1.3). r.mu is held.
func (r *rosters) subscribeIn(ctx context.Context, account string, u address, el *Element) {
	if !r.accountExists(ctx, account) {
		// No such contact: unsubscribed on its behalf (§3.1.3).
		r.unsubscribedIn(ctx, u.Local, r.addr(account), nil)
		return
	}
	if r.srv.blockedBy(account, u) {
		return
	}
	before, err := r.item(ctx, account, u.Bare())
	if err != nil {
		r.srv.log.Error("inbound subscribe", "account", account, "from", u.Bare(), "err", err)
		return
	}
	after, act := inSubscribe(before, u.Bare())
	switch act {
	case inIgnore:
	case inAutoReply:
		if r.srv.isRemote(u.Domain) {
			r.subscribedRemote(account, u)
		} else if r.subscribedIn(ctx, u.Local, r.addr(account), nil) {
			r.srv.presenceOf(account, r.srv.availableSessions(u.Local), false)
		}
	case inPreApproved:
		if err := r.save(ctx, account, before, after); err != nil {
			r.srv.log.Error("inbound subscribe", "account", account, "from", u.Bare(), "err", err)
			return
		}
		if r.srv.isRemote(u.Domain) {
			r.subscribedRemote(account, u)
		} else if r.subscribedIn(ctx, u.Local, r.addr(account), nil) {
			r.srv.presenceOf(account, r.srv.availableSessions(u.Local), false)
		}
	case inDeliver:
		if before == nil {
			if err := r.roomFor(ctx, account); err != nil {
				r.srv.log.Info("subscription request dropped", "account", account, "from", u.Bare(), "err", err)
				return
			}
		}
		var x strings.Builder
		for _, k := range el.Kids() {
			k.write(&x, nsClient)
		}
		after.PendingX = x.String()
		if err := r.save(ctx, account, before, after); err != nil {
			r.srv.log.Error("inbound subscribe", "account", account, "from", u.Bare(), "err", err)
			return
		}
		r.toAvailable(account, el, u)
	}
}

// subscribedIn: contact c's approval reaches account, the user (§3.1.6).
// It says whether the user's subscription began. el is the stanza to
// deliver, or nil to make it. r.mu is held.
func (r *rosters) subscribedIn(ctx context.Context, account string, c address, el *Element) bool {
	if r.srv.blockedBy(account, c) {
		return false
	}
	before, err := r.item(ctx, account, c.Bare())
	if err != nil {
		r.srv.log.Error("inbound subscribed", "account", account, "from", c.Bare(), "err", err)
		return false
	}
	after, changed := inSubscribed(before)
	if !changed {
		return false
	}
	if err := r.save(ctx, account, before, after); err != nil {
		r.srv.log.Error("inbound subscribed", "account", account, "from", c.Bare(), "err", err)
		return false
	}
	r.gainedTo(account, c)
	if el == nil {
		el = El(nsClient, "presence", "from", c.Bare(), "to", r.addr(account).Bare(), "type", "subscribed")
	}
	r.toAvailable(account, el, c)
	return true
}

// unsubscribeIn: user u stops watching account, the contact (§3.3.3).
// r.mu is held.
func (r *rosters) unsubscribeIn(ctx context.Context, account string, u address, el *Element) {
	before, err := r.item(ctx, account, u.Bare())
	if err != nil {
		r.srv.log.Error("inbound unsubscribe", "account", account, "from", u.Bare(), "err", err)
		return
	}
	after, changed := inUnsubscribe(before)
	if !changed {
		return
	}
	if before.hasFrom() {
		if r.srv.isRemote(u.Domain) {
			r.srv.presenceToRemote(account, u.Bare(), true)
		} else {
			r.srv.presenceOf(account, r.srv.availableSessions(u.Local), true)
		}
	}
	if err := r.save(ctx, account, before, after); err != nil {
		r.srv.log.Error("inbound unsubscribe", "account", account, "from", u.Bare(), "err", err)
		return
	}
	r.toAvailable(account, el, u)
}

// unsubscribedIn: contact c denies or cancels account's subscription
// (§3.2.3). el is the stanza to deliver, or nil to make it. r.mu is held.
func (r *rosters) unsubscribedIn(ctx context.Context, account string, c address, el *Element) {
	before, err := r.item(ctx, account, c.Bare())
	if err != nil {
		r.srv.log.Error("inbound unsubscribed", "account", account, "from", c.Bare(), "err", err)
		return
	}
	after, changed := inUnsubscribed(before)
	if !changed {
		return
	}
	if err := r.save(ctx, account, before, after); err != nil {
		r.srv.log.Error("inbound unsubscribed", "account", account, "from", c.Bare(), "err", err)
		return
	}
	if before.hasTo() {
		r.lostTo(account, c)
	}
	if el == nil {
		el = El(nsClient, "presence", "from", c.Bare(), "to", r.addr(account).Bare(), "type", "unsubscribed")
	}
	r.toAvailable(account, el, c)
}

// toAvailable delivers a subscription stanza from a bare JID to
// account's available resources, unless a block stands between them.
func (r *rosters) toAvailable(account string, el *Element, from address) {
	if r.srv.blockedBy(account, from) {
		return
	}
	if fa := r.localAccount(address{Local: from.Local, Domain: from.Domain}); fa != "" && r.srv.blockedBy(fa, r.addr(account)) {
		return
	}
	for _, t := range r.srv.availableSessions(account) {
		if el.Get("type") == "subscribe" {
			st := imState(t)
			st.mu.Lock()
			if st.asked == nil {
				st.asked = map[string]bool{}
			}
			st.asked[from.Bare()] = true
			st.mu.Unlock()
		}
		t.send(el.Clone())
	}
}

// presenceOf sends each target session the presence of account's
// available resources (XMPP and IRC), or unavailable from each.
func (s *Server) presenceOf(account string, targets []*session, unavailable bool) {
	for _, t := range targets {
		if t.account == account {
			continue
		}
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
			p.Set("to", t.full)
			if cs.mayReach(t, p) {
				t.send(p)
			}
		}
		if s.blockedBy(account, sessAddr(t)) {
			continue
		}
		for _, p := range s.ircPresences(account, t.full, unavailable) {
			t.send(p)
		}
	}
}

// gainedTo: account is now subscribed to contact c: its sessions may see
// c's presence and watch c's IRC sessions in the core.
func (r *rosters) gainedTo(account string, c address) {
	ca := r.localAccount(c)
	if ca == "" {
		return
	}
	for _, ss := range r.srv.sessionsOf(account) {
		st := imState(ss)
		st.mu.Lock()
		st.to[ca] = true
		st.mu.Unlock()
		ss.core.Watch(ca)
	}
}

// lostTo: account is no longer subscribed to contact c.
func (r *rosters) lostTo(account string, c address) {
	ca := r.localAccount(c)
	if ca == "" {
		return
	}
	for _, ss := range r.srv.sessionsOf(account) {
		st := imState(ss)
		st.mu.Lock()
		delete(st.to, ca)
		st.mu.Unlock()
		ss.core.Unwatch(ca)
	}
}

// targets are the contacts a session's broadcast presence goes to: those
// with a subscription from the user (§4.2.2, §4.4.2).
func (r *rosters) targets(ss *session) []string {
	ctx, cancel := ss.ctx()
	defer cancel()
	items, err := r.items(ctx, ss.account)
	if err != nil {
		r.srv.log.Error("presence broadcast", "account", ss.account, "err", err)
		return nil
	}
	var out []string
	for _, it := range items {
		if !it.Hidden && it.hasFrom() {
			out = append(out, it.JID)
		}
	}
	return out
}

// visible says whether ss sees the presence of account's IRC sessions:
// it is subscribed to account and not blocked by it.
func (r *rosters) visible(ss *session, account string) bool {
	st := imState(ss)
	st.mu.Lock()
	ok := st.to[account]
	st.mu.Unlock()
	return ok && !ss.srv.blockedBy(account, sessAddr(ss))
}

// initialPresence runs when a session becomes available: it watches the
// contacts it is subscribed to, gets their presence (the probes of
// §4.3, answered here) and the subscription requests still waiting
// (§3.1.3).
func (r *rosters) initialPresence(ss *session) {
	ctx, cancel := ss.ctx()
	defer cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	items, err := r.items(ctx, ss.account)
	if err != nil {
		r.srv.log.Error("initial presence", "account", ss.account, "err", err)
		return
	}
	to := map[string]bool{}
	var contacts []string
	for _, it := range items {
		if it.PendingIn {
			st := imState(ss)
			st.mu.Lock()
			seen := st.asked[it.JID]
			st.mu.Unlock()
			if a, err := parseJID(it.JID); err == nil && !seen && !ss.srv.blockedBy(ss.account, a) {
				ss.send(El(nsClient, "presence", "from", it.JID, "to", ss.bare, "type", "subscribe").Add(anySlice(parseFragment(it.PendingX))...))
			}
		}
		if it.Hidden || !it.hasTo() {
			continue
		}
		a, err := parseJID(it.JID)
		if err != nil {
			continue
		}
		if ca := r.localAccount(a); ca != "" {
			to[ca] = true
			contacts = append(contacts, ca)
		} else if r.srv.isRemote(a.Domain) {
			// A remote contact's server answers the probe (§4.3.1).
			r.srv.fedSend(El(nsClient, "presence", "from", ss.bare, "to", a.Bare(), "type", "probe"))
		}
	}
	st := imState(ss)
	st.mu.Lock()
	st.to = to
	st.mu.Unlock()
	if len(contacts) > 0 {
		ss.core.Watch(contacts...)
	}
	for _, ca := range contacts {
		cit, err := r.item(ctx, ca, ss.bare)
		if err != nil {
			r.srv.log.Error("presence probe", "account", ss.account, "contact", ca, "err", err)
			continue
		}
		if cit.hasFrom() {
			r.srv.presenceOf(ca, []*session{ss}, false)
			continue
		}
		// The contact's roster does not let the user see it (§4.3.2):
		// the user's side follows, as after an unsubscribed.
		r.unsubscribedIn(ctx, ss.account, r.addr(ca), nil)
	}
}

func anySlice(els []*Element) []any {
	out := make([]any, len(els))
	for i, e := range els {
		out[i] = e
	}
	return out
}

// probe answers a probe a client sent (§4.3.2): the contact's presence
// if the user is subscribed to it, else nothing.
func (r *rosters) probe(ctx context.Context, ss *session, c address, kind target, p *Element) {
	ca := r.localAccount(c)
	if ca == "" {
		if kind == toRemote {
			r.srv.fedSend(El(nsClient, "presence", "from", ss.bare, "to", c.Bare(), "type", "probe"))
		}
		if kind == toHosted {
			el := p.Clone()
			el.Set("from", ss.bare)
			ss.toHostedDomain(el, c)
		}
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cit, err := r.item(ctx, ca, ss.bare)
	if err != nil {
		r.srv.log.Error("presence probe", "account", ss.account, "contact", ca, "err", err)
		return
	}
	if cit.hasFrom() {
		r.srv.presenceOf(ca, []*session{ss}, false)
		return
	}
	if uit, err := r.item(ctx, ss.account, c.Bare()); err == nil && uit.hasTo() {
		r.unsubscribedIn(ctx, ss.account, c, nil)
	}
}

// relayError passes a presence error to its addressee (RFC 6121 §4.3 and
// RFC 6120 §8.3: errors are delivered, never answered).
func (r *rosters) relayError(ss *session, p *Element) {
	kind, a := ss.classify(p.Get("to"))
	switch kind {
	case toHosted:
		ss.toHostedDomain(p, a)
	case toRemote:
		r.srv.fedSend(p)
	case toAccount:
		var peers []*session
		if a.Resource != "" {
			if peer := r.srv.sessionAt(a.Local, a.Resource); peer != nil {
				peers = append(peers, peer)
			}
		} else {
			peers = r.srv.availableSessions(a.Local)
		}
		for _, peer := range peers {
			if peer != ss && ss.mayReach(peer, p) {
				peer.send(p.Clone())
			}
		}
	}
}

// subscribedRemote approves a remote user's request on account's behalf
// (auto-reply or pre-approval): subscribed and the account's presence go
// to the user's server (s2s_route.go).
func (r *rosters) subscribedRemote(account string, u address) {
	r.srv.fedSend(El(nsClient, "presence", "from", r.addr(account).Bare(), "to", u.Bare(), "type", "subscribed"))
	r.srv.presenceToRemote(account, u.Bare(), false)
}
