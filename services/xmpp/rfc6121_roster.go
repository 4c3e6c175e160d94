package xmpp

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"

	"chatbox/services/chat"
)

// RFC 6121 §2 Managing the Roster, with XEP-0237 Roster Versioning
// (advertised as the stream feature urn:xmpp:features:rosterver) and the
// pre-approval stream feature of RFC 6121 §3.4.
//
// Each account's roster items are documents of the core's data store
// (collection "roster", keyed by the contact's JID), so every session of
// the account (and both sides of a subscription between two accounts of
// the box) works on the same truth; the roster version is a counter in
// collection "rosterver". A roster get answers the whole roster, or an
// empty result when the client's version is the current one (the
// simplest form XEP-0237 allows: no diff of pushes); a roster set adds,
// updates or removes one item (removal cancels the subscriptions both
// ways, §2.5.2); every change is pushed, with the new version, to the
// account's interested resources (those that asked for the roster).
//
// An item also keeps the subscription state of RFC 6121 Appendix A (the
// subscription attribute, ask="subscribe" for a pending outbound request,
// approved="true" for a pre-approval) and a pending inbound request with
// its <status/>; a request from someone who is not in the roster is kept
// as a hidden item that roster gets and pushes leave out (§3.1.3). The
// subscription state machine is in rfc6121_subscriptions.go.
//
// Left out: roster item delegation and XEP-0321 (remote roster
// management), XEP-0083 nested groups (they are plain group names here),
// and roster pushes for contacts on other servers (federation is the s2s
// service's).

const (
	nsRoster      = "jabber:iq:roster"
	nsRosterVer   = "urn:xmpp:features:rosterver"
	nsPreApproval = "urn:xmpp:features:pre-approval"
)

// Bounds of a roster (RFC 6121 §2.3.3 lets the server configure them).
const (
	maxRosterItems = 1000 // items per account, pending requests included
	maxRosterName  = 1023 // bytes of an item's name
	maxGroupName   = 1023 // bytes of a group name
	maxItemGroups  = 100  // groups per item
)

// rosterItem is one stored roster item.
type rosterItem struct {
	JID    string   `json:"jid"`
	Name   string   `json:"name,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// Sub is the subscription: none, to, from or both.
	Sub string `json:"subscription"`
	// Ask is a pending outbound request (None + Pending Out...).
	Ask bool `json:"ask,omitempty"`
	// PendingIn is an inbound request waiting for the user's answer;
	// PendingX its children as they came (<status/>, a nick...).
	PendingIn bool   `json:"pendingIn,omitempty"`
	PendingX  string `json:"pendingX,omitempty"`
	// Approved is a pre-approval (§3.4).
	Approved bool `json:"approved,omitempty"`
	// Hidden marks a record that is not (yet) in the user's roster: an
	// inbound request from someone the user did not add.
	Hidden bool `json:"hidden,omitempty"`
}

func (it *rosterItem) hasTo() bool   { return it != nil && (it.Sub == "to" || it.Sub == "both") }
func (it *rosterItem) hasFrom() bool { return it != nil && (it.Sub == "from" || it.Sub == "both") }

func (it *rosterItem) clone() *rosterItem {
	if it == nil {
		return nil
	}
	c := *it
	c.Groups = append([]string(nil), it.Groups...)
	return &c
}

// element is the item as roster results and pushes show it.
func (it *rosterItem) element() *Element {
	sub := it.Sub
	if sub == "" {
		sub = "none"
	}
	el := El(nsRoster, "item", "jid", it.JID, "name", it.Name, "subscription", sub)
	if it.Ask {
		el.Set("ask", "subscribe")
	}
	if it.Approved {
		el.Set("approved", "true")
	}
	for _, g := range it.Groups {
		el.Add(El(nsRoster, "group").Add(g))
	}
	return el
}

// visibleEqual says whether two records look the same in the roster.
func visibleEqual(a, b *rosterItem) bool {
	va, vb := a != nil && !a.Hidden, b != nil && !b.Hidden
	if va != vb {
		return false
	}
	if !va {
		return true
	}
	return a.element().String() == b.element().String()
}

// rosters is the roster service: the store access and the lock under
// which both sides of a subscription change (the user's and the
// contact's, on this one server) are applied.
type rosters struct {
	srv *Server
	mu  sync.Mutex
}

// imSession is a session's roster and presence state.
type imSession struct {
	mu         sync.Mutex
	interested bool            // asked for the roster: gets pushes
	to         map[string]bool // accounts whose presence it may see (to/both)
	// asked holds the JIDs whose subscription request reached this
	// session live, so that its initial presence does not repeat them.
	asked map[string]bool
}

func imState(ss *session) *imSession {
	return ss.state("rfc6121", func() any { return &imSession{to: map[string]bool{}} }).(*imSession)
}

func registerRoster(f *features, s *Server) {
	r := &rosters{srv: s}
	f.rosters = r
	f.accountIQ[nsRoster] = r.handleIQ
	f.boundFeatures = append(f.boundFeatures,
		func(*conn) *Element { return El(nsRosterVer, "ver") },
		func(*conn) *Element { return El(nsPreApproval, "sub") })
	r.registerSubscriptions(f)
}

// item loads account's item for jid, or nil.
func (r *rosters) item(ctx context.Context, account, jid string) (*rosterItem, error) {
	d, err := r.srv.core.Data(ctx, account, "roster", jid)
	if errors.Is(err, chat.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var it rosterItem
	if err := json.Unmarshal(d.Value, &it); err != nil {
		return nil, err
	}
	it.JID = jid
	return &it, nil
}

// items loads account's whole roster, hidden records included.
func (r *rosters) items(ctx context.Context, account string) ([]*rosterItem, error) {
	list, err := r.srv.core.ListData(ctx, account, "roster")
	if err != nil {
		return nil, err
	}
	out := make([]*rosterItem, 0, len(list))
	for _, d := range list {
		var it rosterItem
		if json.Unmarshal(d.Value, &it) == nil {
			it.JID = d.Key
			out = append(out, &it)
		}
	}
	return out, nil
}

// version is account's roster version.
func (r *rosters) version(ctx context.Context, account string) (string, error) {
	d, err := r.srv.core.Data(ctx, account, "rosterver", "ver")
	if errors.Is(err, chat.ErrNotFound) {
		return "0", nil
	}
	if err != nil {
		return "", err
	}
	return string(d.Value), nil
}

// save stores after in place of before (after nil, or a hidden record
// with nothing pending, deletes it) and, if the roster looks different,
// moves the version on and pushes the item to the interested resources.
// r.mu is held.
func (r *rosters) save(ctx context.Context, account string, before, after *rosterItem) error {
	if after != nil && after.Hidden && !after.PendingIn {
		after = nil
	}
	var jid string
	switch {
	case after != nil:
		jid = after.JID
		b, _ := json.Marshal(after)
		if err := r.srv.core.PutData(ctx, account, "roster", jid, b); err != nil {
			return err
		}
	case before != nil:
		jid = before.JID
		if err := r.srv.core.DeleteData(ctx, account, "roster", jid); err != nil && !errors.Is(err, chat.ErrNotFound) {
			return err
		}
	default:
		return nil
	}
	if visibleEqual(before, after) {
		return nil
	}
	ver, err := r.bump(ctx, account)
	if err != nil {
		return err
	}
	push := El(nsRoster, "item", "jid", jid, "subscription", "remove")
	if after != nil && !after.Hidden {
		push = after.element()
	}
	r.push(account, push, ver)
	return nil
}

// bump moves account's roster version on.
func (r *rosters) bump(ctx context.Context, account string) (string, error) {
	cur, err := r.version(ctx, account)
	if err != nil {
		return "", err
	}
	n, _ := strconv.ParseUint(cur, 10, 64)
	ver := strconv.FormatUint(n+1, 10)
	return ver, r.srv.core.PutData(ctx, account, "rosterver", "ver", []byte(ver))
}

// push sends a roster push (§2.1.6) to account's interested resources.
func (r *rosters) push(account string, item *Element, ver string) {
	for _, ss := range r.srv.sessionsOf(account) {
		st := imState(ss)
		st.mu.Lock()
		interested := st.interested
		st.mu.Unlock()
		if !interested {
			continue
		}
		ss.send(El(nsClient, "iq", "type", "set", "id", "push-"+randomID(), "to", ss.full).Add(
			El(nsRoster, "query", "ver", ver).Add(item.Clone())))
	}
}

// handleIQ answers a roster get or set (§2.1.3, §2.3-§2.5).
func (r *rosters) handleIQ(ss *session, iq *Element) {
	if to := iq.Get("to"); to != "" && to != ss.bare {
		ss.replyErr(iq, "forbidden", "a roster belongs to its account alone")
		return
	}
	q := iq.First()
	if !q.Is(nsRoster, "query") {
		ss.replyErr(iq, "bad-request", "a roster request is a <query xmlns='jabber:iq:roster'/>")
		return
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	if iq.Get("type") == "get" {
		r.get(ctx, ss, iq, q)
		return
	}
	r.set(ctx, ss, iq, q)
}

// hasAttr says whether el carries attribute name (even empty).
func hasAttr(el *Element, name string) bool {
	for _, a := range el.Attr {
		if a.Name.Space == "" && a.Name.Local == name {
			return true
		}
	}
	return false
}

// get answers a roster get: the roster with its version, or an empty
// result when the client's version is current (XEP-0237 §3).
func (r *rosters) get(ctx context.Context, ss *session, iq, q *Element) {
	if len(q.Kids()) > 0 {
		ss.replyErr(iq, "bad-request", "a roster get carries no items")
		return
	}
	st := imState(ss)
	st.mu.Lock()
	st.interested = true
	st.mu.Unlock()
	r.mu.Lock()
	ver, err := r.version(ctx, ss.account)
	var items []*rosterItem
	if err == nil && !(hasAttr(q, "ver") && q.Get("ver") == ver) {
		items, err = r.items(ctx, ss.account)
	}
	r.mu.Unlock()
	if err != nil {
		r.srv.log.Error("roster get", "account", ss.account, "err", err)
		ss.replyErr(iq, "internal-server-error", "the roster could not be read; try again")
		return
	}
	if hasAttr(q, "ver") && q.Get("ver") == ver {
		ss.result(iq, nil) // the client's copy is current; pushes follow
		return
	}
	res := El(nsRoster, "query", "ver", ver)
	for _, it := range items {
		if !it.Hidden {
			res.Add(it.element())
		}
	}
	ss.result(iq, res)
}

// set handles a roster set: add or update an item, or remove it.
func (r *rosters) set(ctx context.Context, ss *session, iq, q *Element) {
	var items []*Element
	for _, k := range q.Kids() {
		if k.Is(nsRoster, "item") {
			items = append(items, k)
		}
	}
	if len(items) != 1 {
		ss.replyErr(iq, "bad-request", "a roster set carries exactly one item")
		return
	}
	el := items[0]
	if el.Get("jid") == "" {
		ss.replyErr(iq, "bad-request", "a roster item needs a jid")
		return
	}
	a, err := parseJID(el.Get("jid"))
	if err != nil {
		ss.replyErr(iq, "jid-malformed", "the item's jid is not a valid JID")
		return
	}
	if a.Bare() == ss.bare {
		ss.replyErr(iq, "not-allowed", "your own JID cannot be a contact of your roster")
		return
	}
	if el.Get("subscription") == "remove" {
		r.remove(ctx, ss, iq, a)
		return
	}
	name := el.Get("name")
	if len(name) > maxRosterName {
		ss.replyErr(iq, "not-acceptable", "the name is longer than "+strconv.Itoa(maxRosterName)+" bytes")
		return
	}
	var groups []string
	seen := map[string]bool{}
	for _, g := range el.Kids() {
		if !g.Is(nsRoster, "group") {
			continue
		}
		t := g.Text()
		switch {
		case t == "":
			ss.replyErr(iq, "not-acceptable", "a group needs a name (leave <group/> out to put the item in none)")
			return
		case len(t) > maxGroupName:
			ss.replyErr(iq, "not-acceptable", "a group name is longer than "+strconv.Itoa(maxGroupName)+" bytes")
			return
		case seen[t]:
			ss.replyErr(iq, "bad-request", "the group "+strconv.Quote(t)+" is given twice")
			return
		}
		seen[t] = true
		groups = append(groups, t)
	}
	if len(groups) > maxItemGroups {
		ss.replyErr(iq, "not-acceptable", "an item may be in at most "+strconv.Itoa(maxItemGroups)+" groups")
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	before, err := r.item(ctx, ss.account, a.String())
	if err == nil && before == nil {
		err = r.roomFor(ctx, ss.account)
	}
	if errors.Is(err, errRosterFull) {
		ss.replyErr(iq, "not-allowed", err.Error())
		return
	}
	if err != nil {
		r.srv.log.Error("roster set", "account", ss.account, "err", err)
		ss.replyErr(iq, "internal-server-error", "the roster could not be changed; try again")
		return
	}
	after := before.clone()
	if after == nil {
		after = &rosterItem{JID: a.String(), Sub: "none"}
	}
	// 'subscription' other than remove, 'ask' and 'approved' are the
	// server's to set (§2.1.2): they are ignored here.
	after.Hidden, after.Name, after.Groups = false, name, groups
	ss.result(iq, nil)
	if err := r.save(ctx, ss.account, before, after); err != nil {
		r.srv.log.Error("roster set", "account", ss.account, "err", err)
	}
}

var errRosterFull = errors.New("the roster is full (" + strconv.Itoa(maxRosterItems) + " items): remove a contact first")

// roomFor fails with errRosterFull when account's roster has no room for
// one more record. r.mu is held.
func (r *rosters) roomFor(ctx context.Context, account string) error {
	list, err := r.srv.core.ListData(ctx, account, "roster")
	if err != nil {
		return err
	}
	if len(list) >= maxRosterItems {
		return errRosterFull
	}
	return nil
}

// remove deletes an item (§2.5): the subscriptions both ways end as if
// the user had sent unsubscribe and unsubscribed (§2.5.2).
func (r *rosters) remove(ctx context.Context, ss *session, iq *Element, a address) {
	r.mu.Lock()
	defer r.mu.Unlock()
	it, err := r.item(ctx, ss.account, a.String())
	if err != nil {
		r.srv.log.Error("roster remove", "account", ss.account, "err", err)
		ss.replyErr(iq, "internal-server-error", "the roster could not be changed; try again")
		return
	}
	if it == nil || it.Hidden {
		ss.replyErr(iq, "item-not-found", a.String()+" is not in your roster")
		return
	}
	ss.result(iq, nil)
	if err := r.save(ctx, ss.account, it, nil); err != nil {
		r.srv.log.Error("roster remove", "account", ss.account, "err", err)
		return
	}
	if a.Resource != "" {
		return // subscriptions are between bare JIDs
	}
	if it.hasTo() {
		r.lostTo(ss.account, a)
	}
	if it.hasFrom() {
		r.srv.presenceOf(ss.account, r.srv.availableSessions(r.localAccount(a)), true)
	}
	if it.hasTo() || it.Ask {
		r.route(ctx, ss, a, "unsubscribe", nil)
	}
	if it.hasFrom() || it.PendingIn {
		r.route(ctx, ss, a, "unsubscribed", nil)
	}
}

// localAccount returns the account name of a bare JID of this domain, or
// "".
func (r *rosters) localAccount(a address) string {
	if a.Domain != r.srv.cfg.Domain || a.Local == "" || a.Resource != "" {
		return ""
	}
	return strings.ToLower(a.Local)
}
