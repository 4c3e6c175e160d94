package xmpp

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"chatbox/services/chat"
)

// XEP-0191 Blocking Command (urn:xmpp:blocking), advertised in the
// domain's disco#info.
//
// An account's blocklist is a collection of the core's data store
// ("blocklist", keyed by the blocked JID), cached in memory for the
// checks stanzas go through. The blocklist get, block, unblock and
// unblock-all requests are answered, and each change is pushed to the
// account's resources that asked for the blocklist (§3.2-§3.5). Items
// match as privacy list items do (XEP-0016 §2.1, XEP-0191 §6): a full
// JID, a bare JID (any resource), a domain/resource, or a whole domain.
//
// Enforcement (§3.3): nothing from a blocked JID reaches the user's XMPP
// sessions (outFilters: messages stored by the core from an IRC session
// of a blocked account included, and carbons of them); a message from
// the blocked JID is answered with <service-unavailable/>, an IQ get or
// set with <service-unavailable/> (routing.go's reach check), a presence
// (subscriptions and probes included) with nothing at all. What the user
// sends to a blocked JID is not routed: a message (or subscription
// presence) is answered with <not-acceptable/> and the
// urn:xmpp:blocking:errors <blocked/> condition; broadcast presence
// simply skips the blocked contact. Blocking sends the contact
// unavailable presence from the user's available resources if it could
// see them; unblocking sends it their presence again (and the user the
// contact's, when subscribed).
//
// Left out: blocking applies to the XMPP door only: an IRC client of the
// same account still receives what IRC delivers, and an IRC sender whose
// message is dropped gets no error (IRC has no such reply); an IQ the
// user sends to a blocked full JID is answered <service-unavailable/>
// rather than <not-acceptable/> (routing has one reach check for both
// directions); archives (XEP-0313) still hold what was said before.

const (
	nsBlocking       = "urn:xmpp:blocking"
	nsBlockingErrors = "urn:xmpp:blocking:errors"
)

const (
	maxBlocklist  = 1000 // JIDs one account may block
	maxBlockCache = 4096 // accounts whose blocklist is cached at once
)

// blocklists is the blocking service: the store access and the cache.
type blocklists struct {
	srv *Server
	wmu sync.Mutex // orders changes and loads (store, then cache)
	// lists caches blocklists by account (map[string]bool; each set is
	// replaced, never changed, so that readers may keep it). Every
	// delivery to a room member asks whether its account blocks anyone
	// (passRoom): a sync.Map reads without a lock, where one mutex for
	// all sessions was taken by every converting goroutine in turn.
	lists sync.Map
	mu    sync.Mutex // guards n, and orders installs
	n     int        // accounts in lists
}

// cached returns account's cached blocklist (nil: blocks nobody) and
// whether there is one.
func (b *blocklists) cached(account string) (map[string]bool, bool) {
	v, ok := b.lists.Load(account)
	if !ok {
		return nil, false
	}
	set, _ := v.(map[string]bool)
	return set, true
}

func registerBlocking(f *features, s *Server) {
	b := &blocklists{srv: s}
	f.accountIQ[nsBlocking] = b.handleIQ
	f.serverFeatures = append(f.serverFeatures, nsBlocking)
	f.blocks = b.blocks
	// A login reads the list afresh (the store is the truth).
	f.onBound = append(f.onBound, func(ss *session) { b.load(ss.account) })
	f.messageFilters = append(f.messageFilters, b.filterMessage)
	f.reachFilters = append(f.reachFilters, b.reach)
	f.outFilters = append(f.outFilters, b.out)
	f.passRoom = append(f.passRoom, func(ss *session) bool {
		set, ok := b.cached(ss.account)
		return ok && len(set) == 0
	})
}

// blockedBy says whether account has blocked stanzas from a JID
// (XEP-0191); false when blocking is not registered.
func (s *Server) blockedBy(account string, from address) bool {
	return s.features.blocks != nil && s.features.blocks(account, from)
}

// load reads account's blocklist from the store into the cache.
func (b *blocklists) load(account string) (map[string]bool, error) {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	return b.loadLocked(account)
}

func (b *blocklists) loadLocked(account string) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	items, err := b.srv.core.ListData(ctx, account, "blocklist")
	if err != nil {
		b.srv.log.Error("blocklist", "account", account, "err", err)
		return nil, err
	}
	var set map[string]bool // nil when empty: most lists are
	if len(items) > 0 {
		set = make(map[string]bool, len(items))
	}
	for _, it := range items {
		set[it.Key] = true
	}
	b.install(account, set)
	return set, nil
}

func (b *blocklists) install(account string, set map[string]bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.lists.Load(account); !ok {
		if b.n >= maxBlockCache {
			b.lists.Clear()
			b.n = 0
		}
		b.n++
	}
	b.lists.Store(account, set)
}

// list returns account's blocklist (do not change it).
func (b *blocklists) list(account string) (map[string]bool, error) {
	set, ok := b.cached(account)
	if ok {
		return set, nil
	}
	return b.load(account)
}

// blockKeys are the blocklist items that match a JID, most specific
// first (XEP-0016 §2.1).
func blockKeys(a address) []string {
	keys := make([]string, 0, 4)
	if a.Resource != "" && a.Local != "" {
		keys = append(keys, a.String())
	}
	if a.Local != "" {
		keys = append(keys, a.Bare())
	}
	if a.Resource != "" {
		keys = append(keys, a.Domain+"/"+a.Resource)
	}
	return append(keys, a.Domain)
}

// blocks says whether account blocked from. An account never blocks
// itself, and the box's own domain always reaches it.
func (b *blocklists) blocks(account string, from address) bool {
	if account == "" || chat.IsGuest(account) || from.Domain == "" {
		return false
	}
	if from.Domain == b.srv.cfg.Domain && (from.Local == account || from.Local == "" && from.Resource == "") {
		return false
	}
	set, _ := b.list(account)
	if len(set) == 0 {
		return false
	}
	for _, k := range blockKeys(from) {
		if set[k] {
			return true
		}
	}
	return false
}

// interested marks the sessions that asked for the blocklist: they get
// the pushes.
func blockingInterest(ss *session) *atomic.Bool {
	return ss.state("xep0191", func() any { return new(atomic.Bool) }).(*atomic.Bool)
}

// handleIQ answers the blocking command's requests.
func (b *blocklists) handleIQ(ss *session, iq *Element) {
	if to := iq.Get("to"); to != "" && to != ss.bare {
		ss.replyErr(iq, "forbidden", "a blocklist belongs to its account alone")
		return
	}
	p := iq.First()
	typ := iq.Get("type")
	switch {
	case p.Is(nsBlocking, "blocklist") && typ == "get":
		blockingInterest(ss).Store(true)
		set, err := b.list(ss.account)
		if err != nil {
			ss.replyErr(iq, "internal-server-error", "the blocklist could not be read; try again")
			return
		}
		res := El(nsBlocking, "blocklist")
		for _, j := range sortedKeys(set) {
			res.Add(El(nsBlocking, "item", "jid", j))
		}
		ss.result(iq, res)
	case p.Is(nsBlocking, "block") && typ == "set":
		b.block(ss, iq, p)
	case p.Is(nsBlocking, "unblock") && typ == "set":
		b.unblock(ss, iq, p)
	default:
		ss.replyErr(iq, "bad-request", "the blocklist is read with a get of <blocklist/>, changed with a set of <block/> or <unblock/>")
	}
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// itemJIDs reads the <item jid=.../> children of a block or unblock,
// prepared (RFC 7622); false if it answered an error.
func itemJIDs(ss *session, iq, p *Element) ([]address, bool) {
	var out []address
	seen := map[string]bool{}
	for _, k := range p.Kids() {
		if !k.Is(nsBlocking, "item") {
			continue
		}
		a, err := parseJID(k.Get("jid"))
		if err != nil || k.Get("jid") == "" {
			ss.replyErr(iq, "jid-malformed", "an item's jid is not a valid JID")
			return nil, false
		}
		if !seen[a.String()] {
			seen[a.String()] = true
			out = append(out, a)
		}
	}
	return out, true
}

// block adds JIDs to the blocklist (§3.3).
func (b *blocklists) block(ss *session, iq, p *Element) {
	jids, ok := itemJIDs(ss, iq, p)
	if !ok {
		return
	}
	if len(jids) == 0 {
		ss.replyErr(iq, "bad-request", "name at least one JID to block")
		return
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	b.wmu.Lock()
	cur, err := b.currentLocked(ss.account)
	var added []address
	if err == nil {
		for _, a := range jids {
			if !cur[a.String()] {
				added = append(added, a)
			}
		}
		if len(cur)+len(added) > maxBlocklist {
			b.wmu.Unlock()
			ss.replyErr(iq, "policy-violation", "a blocklist holds at most "+strconv.Itoa(maxBlocklist)+" JIDs; unblock some first")
			return
		}
		next := make(map[string]bool, len(cur)+len(added))
		for k := range cur {
			next[k] = true
		}
		for _, a := range added {
			if err = b.srv.core.PutData(ctx, ss.account, "blocklist", a.String(), []byte("{}")); err != nil {
				break
			}
			next[a.String()] = true
		}
		b.install(ss.account, next)
	}
	b.wmu.Unlock()
	if err != nil {
		b.srv.log.Error("block", "account", ss.account, "err", err)
		ss.replyErr(iq, "internal-server-error", "the blocklist could not be changed; try again")
		return
	}
	ss.result(iq, nil)
	push := El(nsBlocking, "block")
	for _, a := range jids {
		push.Add(El(nsBlocking, "item", "jid", a.String()))
	}
	b.push(ss.account, push)
	for _, a := range added {
		b.hidePresence(ss.account, a)
	}
}

// unblock removes JIDs from the blocklist, or all of them (§3.4, §3.5).
func (b *blocklists) unblock(ss *session, iq, p *Element) {
	jids, ok := itemJIDs(ss, iq, p)
	if !ok {
		return
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	b.wmu.Lock()
	cur, err := b.currentLocked(ss.account)
	var removed []address
	all := len(jids) == 0
	if err == nil && all {
		// Unblock all (§3.5).
		for _, k := range sortedKeys(cur) {
			if a, perr := parseJID(k); perr == nil {
				removed = append(removed, a)
			}
		}
		if err = b.srv.core.DeleteCollection(ctx, ss.account, "blocklist"); err == nil {
			b.install(ss.account, map[string]bool{})
		}
	} else if err == nil {
		next := make(map[string]bool, len(cur))
		for k := range cur {
			next[k] = true
		}
		for _, a := range jids {
			if !cur[a.String()] {
				continue
			}
			if err = b.srv.core.DeleteData(ctx, ss.account, "blocklist", a.String()); err != nil && !errors.Is(err, chat.ErrNotFound) {
				break
			}
			err = nil
			delete(next, a.String())
			removed = append(removed, a)
		}
		b.install(ss.account, next)
	}
	b.wmu.Unlock()
	if err != nil {
		b.srv.log.Error("unblock", "account", ss.account, "err", err)
		ss.replyErr(iq, "internal-server-error", "the blocklist could not be changed; try again")
		return
	}
	ss.result(iq, nil)
	push := El(nsBlocking, "unblock") // empty for unblock-all
	for _, a := range jids {
		push.Add(El(nsBlocking, "item", "jid", a.String()))
	}
	b.push(ss.account, push)
	for _, a := range removed {
		b.showPresence(ss.account, a)
	}
}

// currentLocked returns account's list from the cache or the store;
// b.wmu is held.
func (b *blocklists) currentLocked(account string) (map[string]bool, error) {
	set, ok := b.cached(account)
	if ok {
		return set, nil
	}
	return b.loadLocked(account)
}

// push sends a blocklist push to account's interested resources.
func (b *blocklists) push(account string, payload *Element) {
	for _, ss := range b.srv.sessionsOf(account) {
		if blockingInterest(ss).Load() {
			ss.send(El(nsClient, "iq", "type", "set", "id", "push-"+randomID(), "to", ss.full).Add(payload.Clone()))
		}
	}
}

// contactSessions are the available sessions of a local account a blocklist
// item names (one resource if it has one), with the account's name.
func (b *blocklists) contactSessions(a address) (string, []*session) {
	if a.Domain != b.srv.cfg.Domain || a.Local == "" {
		return "", nil
	}
	var out []*session
	for _, ss := range b.srv.availableSessions(a.Local) {
		if a.Resource == "" || ss.resource == a.Resource {
			out = append(out, ss)
		}
	}
	return a.Local, out
}

// rosterItemOf reads account's roster item for contact, or nil.
func (b *blocklists) rosterItemOf(account, contact string) *rosterItem {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	d, err := b.srv.core.Data(ctx, account, "roster", contact+"@"+b.srv.cfg.Domain)
	if err != nil {
		return nil
	}
	var it rosterItem
	if json.Unmarshal(d.Value, &it) != nil {
		return nil
	}
	return &it
}

// hidePresence tells a newly blocked local contact that the user went
// unavailable, if it could see the user (subscription from, or a
// directed presence).
func (b *blocklists) hidePresence(account string, a address) {
	contact, peers := b.contactSessions(a)
	if contact == "" || contact == account || len(peers) == 0 {
		return
	}
	subscribed := b.rosterItemOf(account, contact).hasFrom()
	for _, us := range b.srv.availableSessions(account) {
		us.mu.Lock()
		directed := slices.Contains(us.directed, contact+"@"+b.srv.cfg.Domain)
		for _, peer := range peers {
			directed = directed || slices.Contains(us.directed, peer.full)
		}
		us.mu.Unlock()
		if !subscribed && !directed {
			continue
		}
		for _, peer := range peers {
			peer.send(El(nsClient, "presence", "type", "unavailable", "from", us.full, "to", peer.full))
		}
	}
	if subscribed {
		for _, peer := range peers {
			for _, p := range b.srv.ircPresences(account, peer.full, true) {
				peer.send(p)
			}
		}
	}
}

// showPresence sends an unblocked local contact the user's presence
// again if it is subscribed, and the user the contact's if the user is.
func (b *blocklists) showPresence(account string, a address) {
	contact, peers := b.contactSessions(a)
	if contact == "" || contact == account {
		return
	}
	if b.rosterItemOf(account, contact).hasFrom() {
		b.srv.presenceOf(account, peers, false)
	}
	if b.rosterItemOf(account, contact).hasTo() && b.rosterItemOf(contact, account).hasFrom() {
		b.srv.presenceOf(contact, b.srv.availableSessions(account), false)
	}
}

// replyBlocked answers a stanza the user sent to a JID it blocked
// (§3.3): <not-acceptable/> with <blocked/>. It is written past the
// output filters, which would drop it (it comes from the blocked JID).
func (ss *session) replyBlocked(st *Element) {
	if st.Get("type") == "error" {
		return
	}
	r := stanzaErrorReply(st, "cancel", "not-acceptable", "you have blocked "+st.Get("to")+"; unblock it to write to it",
		El(nsBlockingErrors, "blocked"))
	r.Set("to", ss.full)
	ss.write(r)
}

// filterMessage stops a message between the user and a JID one of them
// blocked, before the core stores it.
func (b *blocklists) filterMessage(ss *session, msg *Element) bool {
	to := msg.Get("to")
	if to == "" {
		return false
	}
	a, err := parseJID(to)
	if err != nil {
		return false
	}
	if b.blocks(ss.account, a) {
		ss.replyBlocked(msg)
		return true
	}
	if a.Domain == b.srv.cfg.Domain && a.Local != "" && b.blocks(a.Local, sessAddr(ss)) {
		if msg.Get("type") != "error" {
			ss.replyErr(msg, "service-unavailable", "")
		}
		return true
	}
	return false
}

// reach stops a stanza between two sessions when either account blocked
// the other's JID.
func (b *blocklists) reach(from, to *session, _ *Element) bool {
	if from.account == to.account {
		return true
	}
	return !b.blocks(to.account, sessAddr(from)) && !b.blocks(from.account, sessAddr(to))
}

// out drops what a blocked JID sent before it reaches the client: any
// stanza from it, and received carbons of its messages.
func (b *blocklists) out(ss *session, el *Element) bool {
	switch el.Local {
	case "message", "presence", "iq":
	default:
		return true
	}
	// Most accounts block nobody: then nothing is parsed.
	set, ok := b.cached(ss.account)
	if ok && len(set) == 0 {
		return true
	}
	from := el.Get("from")
	if from == "" {
		return true
	}
	a, err := parseJID(from)
	if err != nil {
		return true
	}
	if a.Local == ss.account && a.Domain == b.srv.cfg.Domain {
		if el.Local == "message" {
			if fwd := el.Child(nsCarbons, "received").Child("urn:xmpp:forward:0", "forwarded"); fwd != nil {
				if inner := fwd.Child(nsClient, "message"); inner != nil {
					return b.out(ss, inner)
				}
			}
		}
		return true
	}
	return !b.blocks(ss.account, a)
}
