package xmpp

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"chatbox/services/chat"
)

// XEP-0163 Personal Eventing Protocol, on the subset of XEP-0060
// Publish-Subscribe it needs, with XEP-0222 and XEP-0223 persistent
// nodes: every account's bare JID is a pubsub service holding its nodes.
//
// Implemented:
//   - publish, auto-creating the node, with publish-options (XEP-0060
//     §7.1.5): a missing node is created with them, an existing one must
//     already have them (else conflict + precondition-not-met); item ids
//     are generated when absent; max_items is enforced by dropping the
//     oldest items;
//   - node configuration (owner: get, set, the default form): persist_items
//     (a node that does not persist keeps only its last item, so that it
//     can still be sent on presence), max_items (a number or "max", which
//     is pepMaxItems), access_model (presence, the default; open;
//     whitelist, which here means the owner alone; roster is taken as
//     presence), send_last_published_item, notify_retract, title, type;
//     deliver_payloads, deliver_notifications and publish_model exist
//     with their only possible values;
//   - create (with a configure form), retrieve items (all, max_items, by
//     id), retract (notifying unless notify='false'), purge, delete;
//   - notifications as <message type='headline'> with a pubsub#event
//     payload, to the owner's available resources and to the available
//     resources of contacts with a from or both subscription (not for
//     whitelist nodes), filtered by entity capabilities (§4): only the
//     sessions whose caps list node+notify get them. Each session's caps
//     come from the <c/> of its presence (XEP-0115); the first time a
//     verification string is seen the server asks the client's disco#info
//     for it, checks the hash (sha-1, sha-256, sha-512, with XEP-0128
//     forms) and remembers the features server-wide; caps that do not
//     verify are remembered for that session only;
//   - the last published item of each node (send_last_published_item
//     on_sub_and_presence, the default) to a session that becomes
//     available (§4.3.2), its own account's nodes and those of the
//     accounts it is subscribed to, with an XEP-0203 delay;
//   - disco: identity pubsub/pep on the account, the pubsub features,
//     and the nodes as disco#items of the account (those the asker may
//     read).
//
// Left out: explicit subscriptions, affiliations and subscription
// options (PEP subscriptions are implicit, from presence and caps);
// collection nodes; item expiry; the roster access model's groups.
// Contacts on other servers are served by s2s_pep.go. Limits: pepMaxNodes nodes
// per account, pepMaxItems items per node.
//
// Bookmarks (XEP-0402 with XEP-0048 compatibility) and avatar conversion
// (XEP-0398) are built on this service, in their own files.

const (
	nsPubSub        = "http://jabber.org/protocol/pubsub"
	nsPubSubOwner   = "http://jabber.org/protocol/pubsub#owner"
	nsPubSubEvent   = "http://jabber.org/protocol/pubsub#event"
	nsPubSubErrors  = "http://jabber.org/protocol/pubsub#errors"
	nsPubSubConfig  = "http://jabber.org/protocol/pubsub#node_config"
	nsPubSubPubOpts = "http://jabber.org/protocol/pubsub#publish-options"
	pepXData        = "jabber:x:data"

	// pepMaxItems is what max_items "max" means, and the most items a
	// node keeps whatever it asks.
	pepMaxItems = 1000
	// pepMaxNodes bounds the nodes of one account.
	pepMaxNodes = 256
	// pepMaxCaps bounds the verification strings remembered server-wide.
	pepMaxCaps = 1000

	pepNodesCollection = "pep-nodes"
	pepItemsPrefix     = "pep:"
)

// pepNodeConfig is a node's configuration, stored as JSON in the
// account's pep-nodes collection under the node name.
type pepNodeConfig struct {
	Persist       bool   `json:"persist"`
	MaxItems      int    `json:"max_items"` // -1: "max"
	Access        string `json:"access"`    // presence, open, whitelist
	SendLast      string `json:"send_last"` // never, on_sub, on_sub_and_presence
	NotifyRetract bool   `json:"notify_retract"`
	Title         string `json:"title,omitempty"`
	Type          string `json:"type,omitempty"`
}

func defaultPEPConfig() pepNodeConfig {
	return pepNodeConfig{Persist: true, MaxItems: 1, Access: "presence", SendLast: "on_sub_and_presence", NotifyRetract: true}
}

// limit is how many items the node keeps.
func (c pepNodeConfig) limit() int {
	switch {
	case !c.Persist:
		return 1
	case c.MaxItems < 0 || c.MaxItems > pepMaxItems:
		return pepMaxItems
	case c.MaxItems == 0:
		return 1
	}
	return c.MaxItems
}

// pepBool parses an XML Schema boolean.
func pepBool(v string) (bool, bool) {
	switch strings.TrimSpace(v) {
	case "1", "true":
		return true, true
	case "0", "false":
		return false, true
	}
	return false, false
}

// set applies one field of a configuration or publish-options form. The
// error says what is wrong with it; errPEPUnknownField marks a field this
// service does not have.
func (c *pepNodeConfig) set(field string, values []string) error {
	v := ""
	if len(values) > 0 {
		v = strings.TrimSpace(values[0])
	}
	boolean := func(dst *bool) error {
		b, ok := pepBool(v)
		if !ok {
			return errors.New(field + " is a boolean (true or false)")
		}
		*dst = b
		return nil
	}
	fixed := func(want ...string) error {
		if slices.Contains(want, v) {
			return nil
		}
		return errors.New(field + " can only be " + want[0] + " here")
	}
	switch field {
	case "FORM_TYPE":
		return nil
	case "pubsub#persist_items":
		return boolean(&c.Persist)
	case "pubsub#max_items":
		if v == "max" {
			c.MaxItems = -1
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return errors.New("pubsub#max_items is a positive number or max")
		}
		if n == pepMaxItems {
			n = -1
		}
		c.MaxItems = n
		return nil
	case "pubsub#access_model":
		switch v {
		case "presence", "roster":
			c.Access = "presence"
		case "open", "whitelist":
			c.Access = v
		default:
			return errors.New("pubsub#access_model is presence, open or whitelist here")
		}
		return nil
	case "pubsub#send_last_published_item":
		switch v {
		case "never", "on_sub", "on_sub_and_presence":
			c.SendLast = v
			return nil
		}
		return errors.New("pubsub#send_last_published_item is never, on_sub or on_sub_and_presence")
	case "pubsub#notify_retract":
		return boolean(&c.NotifyRetract)
	case "pubsub#title":
		c.Title = v
		return nil
	case "pubsub#type":
		c.Type = v
		return nil
	case "pubsub#deliver_payloads", "pubsub#deliver_notifications":
		return fixed("true", "1")
	case "pubsub#publish_model":
		return fixed("publishers")
	}
	return errPEPUnknownField
}

var errPEPUnknownField = errors.New("unknown field")

// has says whether the node already has a publish-option's value.
func (c pepNodeConfig) has(field string, values []string) (bool, error) {
	d := c
	if err := d.set(field, values); err != nil {
		return false, err
	}
	return d == c, nil
}

// form is the node configuration as a data form (XEP-0060 §8.2).
func (c pepNodeConfig) form(typ string) *Element {
	maxItems := strconv.Itoa(c.MaxItems)
	if c.MaxItems < 0 {
		maxItems = "max"
	}
	access := El(pepXData, "field", "var", "pubsub#access_model", "type", "list-single", "label", "Who may subscribe and retrieve items")
	for _, o := range []string{"open", "presence", "roster", "whitelist"} {
		access.Add(El(pepXData, "option").Add(El(pepXData, "value").Add(o)))
	}
	access.Add(pepValue(c.Access))
	sendLast := El(pepXData, "field", "var", "pubsub#send_last_published_item", "type", "list-single", "label", "When to send the last published item")
	for _, o := range []string{"never", "on_sub", "on_sub_and_presence"} {
		sendLast.Add(El(pepXData, "option").Add(El(pepXData, "value").Add(o)))
	}
	sendLast.Add(pepValue(c.SendLast))
	return El(pepXData, "x", "type", typ).Add(
		El(pepXData, "field", "var", "FORM_TYPE", "type", "hidden").Add(pepValue(nsPubSubConfig)),
		El(pepXData, "field", "var", "pubsub#title", "type", "text-single", "label", "A friendly name for the node").Add(pepValue(c.Title)),
		El(pepXData, "field", "var", "pubsub#persist_items", "type", "boolean", "label", "Persist items to storage").Add(pepValue(strconv.FormatBool(c.Persist))),
		El(pepXData, "field", "var", "pubsub#max_items", "type", "text-single", "label", "Max # of items to persist (max: "+strconv.Itoa(pepMaxItems)+")").Add(pepValue(maxItems)),
		access, sendLast,
		El(pepXData, "field", "var", "pubsub#notify_retract", "type", "boolean", "label", "Notify subscribers when items are removed from the node").Add(pepValue(strconv.FormatBool(c.NotifyRetract))),
		El(pepXData, "field", "var", "pubsub#deliver_payloads", "type", "boolean", "label", "Deliver payloads with event notifications").Add(pepValue("true")),
		El(pepXData, "field", "var", "pubsub#deliver_notifications", "type", "boolean", "label", "Deliver event notifications").Add(pepValue("true")),
		El(pepXData, "field", "var", "pubsub#publish_model", "type", "list-single", "label", "Who may publish").Add(pepValue("publishers")),
		El(pepXData, "field", "var", "pubsub#type", "type", "text-single", "label", "The namespace of the payload").Add(pepValue(c.Type)),
	)
}

func pepValue(v string) *Element {
	if v == "" {
		return nil
	}
	return El(pepXData, "value").Add(v)
}

// pepFormFields reads a submitted data form: each field's values, by var,
// in order; its FORM_TYPE is fields["FORM_TYPE"].
func pepFormFields(x *Element) ([]string, map[string][]string) {
	var order []string
	fields := map[string][]string{}
	for _, f := range x.Kids() {
		if !f.Is(pepXData, "field") || f.Get("var") == "" {
			continue
		}
		v := f.Get("var")
		if _, dup := fields[v]; !dup {
			order = append(order, v)
		}
		var vals []string
		for _, k := range f.Kids() {
			if k.Is(pepXData, "value") {
				vals = append(vals, k.Text())
			}
		}
		fields[v] = vals
	}
	return order, fields
}

// pepError is a pubsub error: a stanza error condition, an optional
// pubsub#errors condition, and a text.
type pepError struct {
	cond, app, text string
	feature         string // for app "unsupported"
}

func (e *pepError) Error() string { return e.cond + ": " + e.text }

func pepErr(cond, app, text string) *pepError { return &pepError{cond: cond, app: app, text: text} }

var pepInternal = pepErr("internal-server-error", "", "the node could not be read or written; try again")

// reply answers iq with the error.
func (e *pepError) reply(ss *session, iq *Element) {
	var extra []*Element
	if e.app != "" {
		extra = append(extra, El(nsPubSubErrors, e.app, "feature", e.feature))
	}
	r := stanzaErrorReply(iq, "", e.cond, e.text, extra...)
	r.Set("to", ss.full)
	ss.send(r)
}

// pepItem is one stored item.
type pepItem struct {
	id      string
	payload *Element // nil if it has none
	item    chat.DataItem
}

// pepChange tells a node's watchers (bookmarks, avatars) what a client
// did to it.
type pepChange struct {
	kind    string // publish, retract, purge, delete
	ids     []string
	payload *Element // the published payload
	notify  func()   // sends the notifications, after the IQ's answer
}

// pepService is the PEP state of one server: the caps cache and the
// queries in flight, and the writes' lock.
type pepService struct {
	s *Server

	// writeMu serializes writes of PEP nodes (a publish reads, writes
	// and trims); syncMu the bookmark and avatar mirroring, which
	// publishes (so it is taken first).
	writeMu sync.Mutex
	syncMu  sync.Mutex

	mu      sync.Mutex
	caps    map[string]map[string]bool // "hash ver" → features (verified)
	queries map[string]*pepCapsQuery   // by IQ id

	// watchers run after a client changed a node, outside writeMu.
	watchers map[string]func(ss *session, ch pepChange)
}

// pepCapsQuery is a disco#info query the server sent a client about its
// caps.
type pepCapsQuery struct {
	ss              *session
	hash, node, ver string
}

// pepSessionCaps are caps that hold for one session only (not verified).
type pepSessionCaps struct {
	key   string
	feats map[string]bool
	asked string // key asked about, pending
}

func registerPEP(f *features, s *Server) {
	p := &pepService{s: s, caps: map[string]map[string]bool{}, queries: map[string]*pepCapsQuery{},
		watchers: map[string]func(*session, pepChange){}}
	f.accountIQ[nsPubSub] = p.handle
	f.accountIQ[nsPubSubOwner] = p.handle
	for _, v := range []string{"publish", "auto-create", "publish-options", "persistent-items",
		"retrieve-items", "retract-items", "delete-items", "delete-nodes", "purge-nodes", "config-node",
		"create-nodes", "retrieve-default", "last-published", "access-presence", "access-open",
		"access-whitelist", "auto-subscribe", "filtered-notifications"} {
		f.accountFeatures = append(f.accountFeatures, nsPubSub+"#"+v)
	}
	f.accountFeatures = append(f.accountFeatures, nsPubSub)
	f.accountIdentities = append(f.accountIdentities, discoIdentity{Category: "pubsub", Type: "pep"})
	f.discoItems = append(f.discoItems, p.discoItems)
	f.iqResults = append(f.iqResults, p.capsResult)
	f.onInitialPresence = append(f.onInitialPresence, p.cameOnline)
	f.onClosed = append(f.onClosed, p.forgetSession)
	p.registerBookmarks(f)
	p.registerAvatarConversion(f)
	p.registerRemote(f) // s2s_pep.go
}

// owner resolves whose PEP service an IQ addresses; "" (after answering
// the error) if no account.
func (p *pepService) owner(ss *session, iq *Element) string {
	to := iq.Get("to")
	if to == "" {
		return ss.account
	}
	a, err := parseJID(to)
	if err != nil || a.Domain != p.s.cfg.Domain || a.Local == "" {
		ss.replyErr(iq, "item-not-found", "no such PEP service")
		return ""
	}
	if a.Local != ss.account && !p.s.accountOnBox(ss, a.Local) {
		ss.replyErr(iq, "service-unavailable", "")
		return ""
	}
	return a.Local
}

func (p *pepService) bare(account string) string { return p.s.accountJID(account) }

// handle answers pubsub and pubsub#owner IQs.
func (p *pepService) handle(ss *session, iq *Element) {
	owner := p.owner(ss, iq)
	if owner == "" {
		return
	}
	ps := iq.First()
	typ := iq.Get("type")
	op := ps.First() // publish-options and configure follow it
	if op == nil {
		ss.replyErr(iq, "bad-request", "the pubsub request is empty")
		return
	}
	if owner != ss.account && !(ps.Space == nsPubSub && op.Local == "items" && typ == "get") {
		pepErr("forbidden", "", "only the owner may change its PEP nodes; others may only retrieve items").reply(ss, iq)
		return
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	var (
		res    *Element
		err    *pepError
		node   = op.Get("node")
		change *pepChange
	)
	if node == "" && op.Local != "default" && op.Local != "subscriptions" && op.Local != "affiliations" {
		pepErr("not-acceptable", "nodeid-required", "name the node (PEP has no instant nodes)").reply(ss, iq)
		return
	}
	switch {
	case ps.Space == nsPubSub && typ == "set" && op.Local == "publish":
		res, change, err = p.publishIQ(ctx, ss, node, op, ps.Child(nsPubSub, "publish-options"))
	case ps.Space == nsPubSub && typ == "get" && op.Local == "items":
		res, err = p.itemsIQ(ctx, ss, owner, node, op)
	case ps.Space == nsPubSub && typ == "set" && op.Local == "retract":
		change, err = p.retractIQ(ctx, ss, node, op)
	case ps.Space == nsPubSub && typ == "set" && op.Local == "create":
		err = p.createIQ(ctx, ss, node, ps.Child(nsPubSub, "configure"))
	case ps.Space == nsPubSubOwner && op.Local == "configure":
		res, err = p.configureIQ(ctx, ss, node, typ, op)
	case ps.Space == nsPubSubOwner && typ == "get" && op.Local == "default":
		res = El(nsPubSubOwner, "pubsub").Add(El(nsPubSubOwner, "default").Add(defaultPEPConfig().form("form")))
	case ps.Space == nsPubSubOwner && typ == "set" && op.Local == "delete":
		change, err = p.deleteIQ(ctx, ss, node)
	case ps.Space == nsPubSubOwner && typ == "set" && op.Local == "purge":
		change, err = p.purgeIQ(ctx, ss, node)
	default:
		feature := map[string]string{"subscribe": "subscribe", "unsubscribe": "subscribe", "options": "subscription-options",
			"subscriptions": "retrieve-subscriptions", "affiliations": "retrieve-affiliations"}[op.Local]
		if feature == "" {
			ss.replyErr(iq, "bad-request", "this PEP service does not know <"+op.Local+"/> in a "+typ)
			return
		}
		e := pepErr("feature-not-implemented", "unsupported", "PEP subscriptions are implicit: they follow presence subscriptions and entity capabilities")
		e.feature = feature
		err = e
	}
	if err != nil {
		err.reply(ss, iq)
		return
	}
	ss.result(iq, res)
	// Notifications follow the answer (XEP-0060 §7.1.2), then the
	// mirroring (bookmarks, avatars), all before the session's next
	// stanza is read.
	if change != nil {
		if change.notify != nil {
			change.notify()
		}
		if w := p.watchers[node]; w != nil {
			w(ss, *change)
		}
	}
}

// config reads a node's configuration; ok is false if it does not exist.
func (p *pepService) config(ctx context.Context, account, node string) (pepNodeConfig, bool, error) {
	it, err := p.s.core.Data(ctx, account, pepNodesCollection, node)
	if errors.Is(err, chat.ErrNotFound) {
		return pepNodeConfig{}, false, nil
	}
	if err != nil {
		return pepNodeConfig{}, false, err
	}
	c := defaultPEPConfig()
	if err := json.Unmarshal(it.Value, &c); err != nil {
		return pepNodeConfig{}, false, err
	}
	return c, true, nil
}

func (p *pepService) putConfig(ctx context.Context, account, node string, c pepNodeConfig) error {
	b, _ := json.Marshal(c)
	return p.s.core.PutData(ctx, account, pepNodesCollection, node, b)
}

// ensureNode returns a node's configuration, creating the node from the
// defaults changed by opts when it is missing. When it exists and strict
// is set, opts are preconditions it must meet (XEP-0060 §7.1.5).
func (p *pepService) ensureNode(ctx context.Context, account, node string, opts map[string][]string, strict bool) (pepNodeConfig, *pepError) {
	c, ok, err := p.config(ctx, account, node)
	if err != nil {
		p.s.log.Error("read PEP node", "account", account, "node", node, "err", err)
		return c, pepInternal
	}
	if ok {
		if !strict {
			return c, nil
		}
		for field, vals := range opts {
			same, err := c.has(field, vals)
			if err != nil || !same {
				text := "the node's " + field + " differs from the publish-options; configure the node first"
				if errors.Is(err, errPEPUnknownField) {
					text = "this service has no node option " + field
				} else if err != nil {
					text = err.Error()
				}
				return c, pepErr("conflict", "precondition-not-met", text)
			}
		}
		return c, nil
	}
	c = defaultPEPConfig()
	for field, vals := range opts {
		if err := c.set(field, vals); err != nil {
			if errors.Is(err, errPEPUnknownField) {
				return c, pepErr("conflict", "precondition-not-met", "this service has no node option "+field)
			}
			return c, pepErr("conflict", "precondition-not-met", err.Error())
		}
	}
	if nodes, err := p.s.core.ListData(ctx, account, pepNodesCollection); err != nil {
		p.s.log.Error("list PEP nodes", "account", account, "err", err)
		return c, pepInternal
	} else if len(nodes) >= pepMaxNodes {
		return c, pepErr("resource-constraint", "", "an account has at most "+strconv.Itoa(pepMaxNodes)+" PEP nodes; delete one first")
	}
	if err := p.putConfig(ctx, account, node, c); err != nil {
		p.s.log.Error("create PEP node", "account", account, "node", node, "err", err)
		return c, pepInternal
	}
	return c, nil
}

// items lists a node's items, oldest first.
func (p *pepService) items(ctx context.Context, account, node string) ([]pepItem, error) {
	list, err := p.s.core.ListData(ctx, account, pepItemsPrefix+node)
	if err != nil {
		return nil, err
	}
	out := make([]pepItem, 0, len(list))
	for _, it := range list {
		var payload *Element
		if kids := parseFragment(string(it.Value)); len(kids) > 0 {
			payload = kids[0]
		}
		out = append(out, pepItem{id: it.Key, payload: payload, item: it})
	}
	return out, nil
}

// putItem stores an item (a new id if id is "") and drops the oldest
// beyond the node's limit. The caller holds writeMu.
func (p *pepService) putItem(ctx context.Context, account, node string, c pepNodeConfig, id string, payload *Element) (string, error) {
	if id == "" {
		id = randomID()
	}
	var value []byte
	if payload != nil {
		value = []byte(payload.String())
	}
	if err := p.s.core.PutData(ctx, account, pepItemsPrefix+node, id, value); err != nil {
		return "", err
	}
	return id, p.trim(ctx, account, node, c)
}

// trim drops a node's oldest items beyond its limit.
func (p *pepService) trim(ctx context.Context, account, node string, c pepNodeConfig) error {
	list, err := p.s.core.ListData(ctx, account, pepItemsPrefix+node)
	if err != nil {
		return err
	}
	for i := 0; i < len(list)-c.limit(); i++ {
		if err := p.s.core.DeleteData(ctx, account, pepItemsPrefix+node, list[i].Key); err != nil && !errors.Is(err, chat.ErrNotFound) {
			return err
		}
	}
	return nil
}

// publish stores an item on account's node (creating the node with opts
// if missing, or, with strict, checking opts as preconditions) and
// notifies. It returns the item id.
func (p *pepService) publish(ctx context.Context, account, node, id string, payload *Element, opts map[string][]string, strict bool) (string, *pepError) {
	id, notify, err := p.publishLater(ctx, account, node, id, payload, opts, strict)
	if err == nil {
		notify()
	}
	return id, err
}

// publishLater is publish returning the notification to send.
func (p *pepService) publishLater(ctx context.Context, account, node, id string, payload *Element, opts map[string][]string, strict bool) (string, func(), *pepError) {
	p.writeMu.Lock()
	c, perr := p.ensureNode(ctx, account, node, opts, strict)
	if perr != nil {
		p.writeMu.Unlock()
		return "", nil, perr
	}
	id, err := p.putItem(ctx, account, node, c, id, payload)
	p.writeMu.Unlock()
	if err != nil {
		if errors.Is(err, chat.ErrTooLong) {
			return "", nil, pepErr("not-acceptable", "payload-too-big", "the item is too large")
		}
		p.s.log.Error("publish PEP item", "account", account, "node", node, "err", err)
		return "", nil, pepInternal
	}
	item := El(nsPubSubEvent, "item", "id", id).Add(payload.Clone())
	return id, func() {
		p.broadcast(account, node, c, El(nsPubSubEvent, "event").Add(El(nsPubSubEvent, "items", "node", node).Add(item)))
	}, nil
}

func (p *pepService) publishIQ(ctx context.Context, ss *session, node string, op, pubOpts *Element) (*Element, *pepChange, *pepError) {
	items := op.Kids()
	if len(items) > 1 {
		return nil, nil, pepErr("bad-request", "invalid-payload", "publish one item at a time")
	}
	var id string
	var payload *Element
	if len(items) == 1 {
		if !items[0].Is(nsPubSub, "item") {
			return nil, nil, pepErr("bad-request", "invalid-payload", "a publish holds one <item/>")
		}
		id = items[0].Get("id")
		kids := items[0].Kids()
		if len(kids) != 1 {
			return nil, nil, pepErr("bad-request", "invalid-payload", "an item holds exactly one payload element")
		}
		payload = kids[0].Clone()
	} else {
		return nil, nil, pepErr("bad-request", "payload-required", "PEP nodes deliver payloads: publish an <item/> with one")
	}
	var opts map[string][]string
	if x := pubOpts.Child(pepXData, "x"); x != nil {
		_, fields := pepFormFields(x)
		if ft := fields["FORM_TYPE"]; len(ft) > 0 && ft[0] != nsPubSubPubOpts {
			return nil, nil, pepErr("bad-request", "invalid-options", "the publish-options form's FORM_TYPE is "+nsPubSubPubOpts)
		}
		delete(fields, "FORM_TYPE")
		opts = fields
	}
	id, notify, err := p.publishLater(ctx, ss.account, node, id, payload, opts, true)
	if err != nil {
		return nil, nil, err
	}
	res := El(nsPubSub, "pubsub").Add(El(nsPubSub, "publish", "node", node).Add(El(nsPubSub, "item", "id", id)))
	return res, &pepChange{kind: "publish", ids: []string{id}, payload: payload, notify: notify}, nil
}

func (p *pepService) itemsIQ(ctx context.Context, ss *session, owner, node string, op *Element) (*Element, *pepError) {
	return p.itemsFor(ctx, ss.account, owner, node, op)
}

// itemsFor retrieves items of owner's node for reader: an account, or a
// remote user's bare JID (s2s_pep.go).
func (p *pepService) itemsFor(ctx context.Context, reader, owner, node string, op *Element) (*Element, *pepError) {
	c, ok, err := p.config(ctx, owner, node)
	if err != nil {
		p.s.log.Error("read PEP node", "account", owner, "node", node, "err", err)
		return nil, pepInternal
	}
	if !ok {
		return nil, pepErr("item-not-found", "", "there is no node "+node)
	}
	if perr := p.mayRead(ctx, reader, owner, c); perr != nil {
		return nil, perr
	}
	max := 0
	if s := op.Get("max_items"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return nil, pepErr("bad-request", "", "max_items is a positive number")
		}
		max = n
	}
	var want []string
	for _, k := range op.Kids() {
		if k.Is(nsPubSub, "item") && k.Get("id") != "" {
			want = append(want, k.Get("id"))
		}
	}
	items, err := p.items(ctx, owner, node)
	if err != nil {
		p.s.log.Error("read PEP items", "account", owner, "node", node, "err", err)
		return nil, pepInternal
	}
	if len(want) > 0 {
		items = slices.DeleteFunc(items, func(it pepItem) bool { return !slices.Contains(want, it.id) })
		if len(items) == 0 {
			return nil, pepErr("item-not-found", "", "the node has no such item")
		}
	}
	if max > 0 && len(items) > max {
		items = items[len(items)-max:]
	}
	out := El(nsPubSub, "items", "node", node)
	for _, it := range items {
		out.Add(El(nsPubSub, "item", "id", it.id).Add(it.payload))
	}
	return El(nsPubSub, "pubsub").Add(out), nil
}

// mayRead checks the node's access model for reader.
func (p *pepService) mayRead(ctx context.Context, reader, owner string, c pepNodeConfig) *pepError {
	if reader == owner {
		return nil
	}
	switch c.Access {
	case "open":
		return nil
	case "whitelist":
		return pepErr("not-allowed", "closed-node", "only the owner may read this node")
	}
	if p.subscription(ctx, owner, reader).from() {
		return nil
	}
	return pepErr("not-authorized", "presence-subscription-required", "subscribe to the owner's presence to read this node")
}

func (p *pepService) retractIQ(ctx context.Context, ss *session, node string, op *Element) (*pepChange, *pepError) {
	var ids []string
	for _, k := range op.Kids() {
		if k.Is(nsPubSub, "item") {
			if k.Get("id") == "" {
				return nil, pepErr("bad-request", "item-required", "name the item to retract")
			}
			ids = append(ids, k.Get("id"))
		}
	}
	if len(ids) == 0 {
		return nil, pepErr("bad-request", "item-required", "name the item to retract")
	}
	notify, explicit := pepBool(op.Get("notify"))
	if op.Get("notify") == "" {
		explicit = false
	}
	send, perr := p.retractLater(ctx, ss.account, node, ids, notify, explicit)
	if perr != nil {
		return nil, perr
	}
	return &pepChange{kind: "retract", ids: ids, notify: send}, nil
}

// retract deletes items of account's node and notifies (when asked, or
// by the node's notify_retract).
func (p *pepService) retract(ctx context.Context, account, node string, ids []string, notify, explicit bool) *pepError {
	send, err := p.retractLater(ctx, account, node, ids, notify, explicit)
	if err == nil {
		send()
	}
	return err
}

// retractLater is retract returning the notification to send.
func (p *pepService) retractLater(ctx context.Context, account, node string, ids []string, notify, explicit bool) (func(), *pepError) {
	p.writeMu.Lock()
	c, ok, err := p.config(ctx, account, node)
	if err == nil && !ok {
		p.writeMu.Unlock()
		return nil, pepErr("item-not-found", "", "there is no node "+node)
	}
	for _, id := range ids {
		if err != nil {
			break
		}
		_, err = p.s.core.Data(ctx, account, pepItemsPrefix+node, id)
		if errors.Is(err, chat.ErrNotFound) {
			p.writeMu.Unlock()
			return nil, pepErr("item-not-found", "", "the node has no item "+id)
		}
	}
	for _, id := range ids {
		if err != nil {
			break
		}
		err = p.s.core.DeleteData(ctx, account, pepItemsPrefix+node, id)
	}
	p.writeMu.Unlock()
	if err != nil {
		p.s.log.Error("retract PEP item", "account", account, "node", node, "err", err)
		return nil, pepInternal
	}
	if !explicit {
		notify = c.NotifyRetract
	}
	if !notify {
		return func() {}, nil
	}
	items := El(nsPubSubEvent, "items", "node", node)
	for _, id := range ids {
		items.Add(El(nsPubSubEvent, "retract", "id", id))
	}
	return func() { p.broadcast(account, node, c, El(nsPubSubEvent, "event").Add(items)) }, nil
}

func (p *pepService) createIQ(ctx context.Context, ss *session, node string, configure *Element) *pepError {
	opts := map[string][]string{}
	if x := configure.Child(pepXData, "x"); x != nil {
		_, fields := pepFormFields(x)
		if ft := fields["FORM_TYPE"]; len(ft) > 0 && ft[0] != nsPubSubConfig {
			return pepErr("bad-request", "invalid-options", "the configure form's FORM_TYPE is "+nsPubSubConfig)
		}
		delete(fields, "FORM_TYPE")
		c := defaultPEPConfig()
		for f, v := range fields {
			if err := c.set(f, v); err != nil {
				if errors.Is(err, errPEPUnknownField) {
					return pepErr("not-acceptable", "", "this service has no node option "+f)
				}
				return pepErr("not-acceptable", "", err.Error())
			}
		}
		opts = fields
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	if _, ok, err := p.config(ctx, ss.account, node); err != nil {
		return pepInternal
	} else if ok {
		return pepErr("conflict", "", "the node "+node+" exists")
	}
	_, perr := p.ensureNode(ctx, ss.account, node, opts, false)
	return perr
}

func (p *pepService) configureIQ(ctx context.Context, ss *session, node, typ string, op *Element) (*Element, *pepError) {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	c, ok, err := p.config(ctx, ss.account, node)
	if err != nil {
		return nil, pepInternal
	}
	if !ok {
		return nil, pepErr("item-not-found", "", "there is no node "+node)
	}
	if typ == "get" {
		return El(nsPubSubOwner, "pubsub").Add(El(nsPubSubOwner, "configure", "node", node).Add(c.form("form"))), nil
	}
	x := op.Child(pepXData, "x")
	if x == nil {
		return nil, pepErr("bad-request", "", "a configure set carries the submitted form")
	}
	if x.Get("type") == "cancel" {
		return nil, nil
	}
	_, fields := pepFormFields(x)
	if ft := fields["FORM_TYPE"]; len(ft) == 0 || ft[0] != nsPubSubConfig {
		return nil, pepErr("bad-request", "invalid-options", "the configure form's FORM_TYPE is "+nsPubSubConfig)
	}
	for f, v := range fields {
		if err := c.set(f, v); err != nil {
			if errors.Is(err, errPEPUnknownField) {
				return nil, pepErr("not-acceptable", "", "this service has no node option "+f)
			}
			return nil, pepErr("not-acceptable", "", err.Error())
		}
	}
	if err := p.putConfig(ctx, ss.account, node, c); err != nil {
		return nil, pepInternal
	}
	if err := p.trim(ctx, ss.account, node, c); err != nil {
		return nil, pepInternal
	}
	return nil, nil
}

func (p *pepService) deleteIQ(ctx context.Context, ss *session, node string) (*pepChange, *pepError) {
	p.writeMu.Lock()
	c, ok, err := p.config(ctx, ss.account, node)
	if err == nil && ok {
		err = p.s.core.DeleteCollection(ctx, ss.account, pepItemsPrefix+node)
		if err == nil {
			err = p.s.core.DeleteData(ctx, ss.account, pepNodesCollection, node)
		}
	}
	p.writeMu.Unlock()
	if err != nil {
		p.s.log.Error("delete PEP node", "account", ss.account, "node", node, "err", err)
		return nil, pepInternal
	}
	if !ok {
		return nil, pepErr("item-not-found", "", "there is no node "+node)
	}
	return &pepChange{kind: "delete", notify: func() {
		p.broadcast(ss.account, node, c, El(nsPubSubEvent, "event").Add(El(nsPubSubEvent, "delete", "node", node)))
	}}, nil
}

func (p *pepService) purgeIQ(ctx context.Context, ss *session, node string) (*pepChange, *pepError) {
	p.writeMu.Lock()
	c, ok, err := p.config(ctx, ss.account, node)
	if err == nil && ok {
		err = p.s.core.DeleteCollection(ctx, ss.account, pepItemsPrefix+node)
	}
	p.writeMu.Unlock()
	if err != nil {
		p.s.log.Error("purge PEP node", "account", ss.account, "node", node, "err", err)
		return nil, pepInternal
	}
	if !ok {
		return nil, pepErr("item-not-found", "", "there is no node "+node)
	}
	return &pepChange{kind: "purge", notify: func() {
		p.broadcast(ss.account, node, c, El(nsPubSubEvent, "event").Add(El(nsPubSubEvent, "purge", "node", node)))
	}}, nil
}

// pepSub is a roster subscription state (RFC 6121 §2.1.2.5).
type pepSub string

// from says whether the contact receives the owner's presence.
func (s pepSub) from() bool { return s == "from" || s == "both" }

// to says whether the owner receives the contact's presence.
func (s pepSub) to() bool { return s == "to" || s == "both" }

// subscription is the subscription of contact in owner's roster.
func (p *pepService) subscription(ctx context.Context, owner, contact string) pepSub {
	it, err := p.s.core.Data(ctx, owner, "roster", p.bare(contact))
	if err != nil {
		return "none"
	}
	var v struct {
		Subscription string `json:"subscription"`
	}
	json.Unmarshal(it.Value, &v)
	return pepSub(v.Subscription)
}

// roster lists the local contacts of account's roster whose subscription
// matches keep.
func (p *pepService) roster(ctx context.Context, account string, keep func(pepSub) bool) []string {
	list, err := p.s.core.ListData(ctx, account, "roster")
	if err != nil {
		p.s.log.Debug("read roster for PEP", "account", account, "err", err)
		return nil
	}
	var out []string
	for _, it := range list {
		a, err := parseJID(it.Key)
		if err != nil || a.Domain != p.s.cfg.Domain || a.Local == "" || a.Local == account {
			continue
		}
		var v struct {
			Subscription string `json:"subscription"`
		}
		if json.Unmarshal(it.Value, &v) == nil && keep(pepSub(v.Subscription)) {
			out = append(out, a.Local)
		}
	}
	return out
}

// broadcast sends an event about account's node to the sessions that
// want it: the owner's and, unless the node is whitelist, those of
// contacts with a from or both subscription; only available sessions
// whose caps ask for node+notify.
func (p *pepService) broadcast(account, node string, c pepNodeConfig, event *Element) {
	targets := []string{account}
	if c.Access != "whitelist" {
		ctx, cancel := context.WithTimeout(context.Background(), timeoutStore)
		targets = append(targets, p.roster(ctx, account, pepSub.from)...)
		cancel()
	}
	for _, acct := range targets {
		for _, ss := range p.s.sessionsOf(acct) {
			if av, _ := ss.isAvailable(); !av || !p.wants(ss, node) {
				continue
			}
			ss.send(El(nsClient, "message", "from", p.bare(account), "to", ss.full, "type", "headline", "id", randomID()).Add(event.Clone()))
		}
	}
	if c.Access != "whitelist" {
		p.notifyRemote(account, event) // s2s_pep.go
	}
}

// timeoutStore bounds the store calls made outside an IQ.
const timeoutStore = 15 * time.Second

// wants says whether a session's caps ask for node's notifications.
func (p *pepService) wants(ss *session, node string) bool {
	feats, ok := p.sessionCaps(ss)
	return ok && feats[node+"+notify"]
}

// sessionCaps returns the features of a session's caps; false if they
// are not known (yet: the server then asks the client).
func (p *pepService) sessionCaps(ss *session) (map[string]bool, bool) {
	ss.mu.Lock()
	pres := ss.presence
	ss.mu.Unlock()
	c := pres.Child(nsCaps, "c")
	if c == nil || c.Get("ver") == "" || c.Get("node") == "" {
		return nil, false
	}
	hash, ver, node := c.Get("hash"), c.Get("ver"), c.Get("node")
	key := hash + " " + ver
	p.mu.Lock()
	feats, ok := p.caps[key]
	p.mu.Unlock()
	if ok {
		return feats, true
	}
	st := ss.state("pep-caps", func() any { return &pepSessionCaps{} }).(*pepSessionCaps)
	ss.mu.Lock()
	if st.key == key && st.feats != nil {
		feats = st.feats
		ss.mu.Unlock()
		return feats, true
	}
	if st.asked == key {
		ss.mu.Unlock()
		return nil, false
	}
	st.asked = key
	ss.mu.Unlock()
	id := "caps-" + randomID()
	p.mu.Lock()
	p.queries[id] = &pepCapsQuery{ss: ss, hash: hash, node: node, ver: ver}
	p.mu.Unlock()
	ss.send(El(nsClient, "iq", "type", "get", "id", id, "from", p.s.cfg.Domain, "to", ss.full).Add(
		El(nsDiscoInfo, "query", "node", node+"#"+ver)))
	return nil, false
}

// capsResult takes a client's answer to a caps query: the features are
// remembered (server-wide if the hash verifies) and the session gets the
// last published items it now asks for.
func (p *pepService) capsResult(ss *session, iq *Element) bool {
	// An error answer counts as no features, but the query stays open:
	// some client libraries answer an IQ they do not route with an error
	// before the application's real answer.
	p.mu.Lock()
	q := p.queries[iq.Get("id")]
	if q != nil && q.ss == ss && iq.Get("type") == "result" {
		delete(p.queries, iq.Get("id"))
	}
	p.mu.Unlock()
	if q == nil || q.ss != ss {
		return false
	}
	key := q.hash + " " + q.ver
	feats := map[string]bool{}
	verified := false
	if query := iq.Child(nsDiscoInfo, "query"); iq.Get("type") == "result" && query != nil {
		for _, f := range query.Kids() {
			if f.Is(nsDiscoInfo, "feature") {
				feats[f.Get("var")] = true
			}
		}
		verified = pepCapsVer(query, q.hash) == q.ver
	}
	st := ss.state("pep-caps", func() any { return &pepSessionCaps{} }).(*pepSessionCaps)
	ss.mu.Lock()
	st.key, st.feats, st.asked = key, feats, ""
	ss.mu.Unlock()
	if verified {
		p.mu.Lock()
		if len(p.caps) >= pepMaxCaps {
			clear(p.caps) // a bound, not a policy: they are asked again
		}
		p.caps[key] = feats
		p.mu.Unlock()
	}
	if av, _ := ss.isAvailable(); av {
		p.sendLast(ss)
	}
	return true
}

// pepCapsVer computes the XEP-0115 §5.1 verification string of a
// disco#info answer with the named hash ("" if the hash is unknown).
func pepCapsVer(query *Element, hashName string) string {
	var h hash.Hash
	switch hashName {
	case "sha-1":
		h = sha1.New()
	case "sha-256":
		h = sha256.New()
	case "sha-512":
		h = sha512.New()
	default:
		return ""
	}
	type ident struct{ cat, typ, lang, name string }
	var ids []ident
	var feats []string
	type form struct {
		typ    string
		fields [][]string // var, then sorted values
	}
	var forms []form
	for _, k := range query.Kids() {
		switch {
		case k.Is(nsDiscoInfo, "identity"):
			ids = append(ids, ident{k.Get("category"), k.Get("type"), k.Lang(), k.Get("name")})
		case k.Is(nsDiscoInfo, "feature"):
			feats = append(feats, k.Get("var"))
		case k.Is(pepXData, "x") && k.Get("type") == "result":
			order, fields := pepFormFields(k)
			ft := fields["FORM_TYPE"]
			if len(ft) == 0 {
				continue
			}
			f := form{typ: ft[0]}
			for _, v := range order {
				if v == "FORM_TYPE" {
					continue
				}
				vals := slices.Clone(fields[v])
				sort.Strings(vals)
				f.fields = append(f.fields, append([]string{v}, vals...))
			}
			sort.Slice(f.fields, func(i, j int) bool { return f.fields[i][0] < f.fields[j][0] })
			forms = append(forms, f)
		}
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := ids[i], ids[j]
		if a.cat != b.cat {
			return a.cat < b.cat
		}
		if a.typ != b.typ {
			return a.typ < b.typ
		}
		return a.lang < b.lang
	})
	sort.Strings(feats)
	sort.Slice(forms, func(i, j int) bool { return forms[i].typ < forms[j].typ })
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(id.cat + "/" + id.typ + "/" + id.lang + "/" + id.name + "<")
	}
	for _, f := range feats {
		b.WriteString(f + "<")
	}
	for _, f := range forms {
		b.WriteString(f.typ + "<")
		for _, fl := range f.fields {
			for _, v := range fl {
				b.WriteString(v + "<")
			}
		}
	}
	h.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// forgetSession drops the caps queries of a session that ended.
func (p *pepService) forgetSession(ss *session) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, q := range p.queries {
		if q.ss == ss {
			delete(p.queries, id)
		}
	}
}

// cameOnline sends a session that became available the last items of
// the nodes it wants (XEP-0163 §4.3.2), once its caps are known.
func (p *pepService) cameOnline(ss *session) {
	if _, ok := p.sessionCaps(ss); ok {
		p.sendLast(ss)
	}
}

// sendLast sends ss the last published item of each node it may read
// and wants: its own account's and those of the contacts whose presence
// it receives.
func (p *pepService) sendLast(ss *session) {
	ctx, cancel := ss.ctx()
	defer cancel()
	owners := append([]string{ss.account}, p.roster(ctx, ss.account, pepSub.to)...)
	for _, owner := range owners {
		if owner != ss.account && !p.subscription(ctx, owner, ss.account).from() {
			continue
		}
		nodes, err := p.s.core.ListData(ctx, owner, pepNodesCollection)
		if err != nil {
			p.s.log.Debug("list PEP nodes", "account", owner, "err", err)
			continue
		}
		for _, n := range nodes {
			c := defaultPEPConfig()
			if json.Unmarshal(n.Value, &c) != nil || c.SendLast != "on_sub_and_presence" ||
				(owner != ss.account && c.Access == "whitelist") || !p.wants(ss, n.Key) {
				continue
			}
			items, err := p.items(ctx, owner, n.Key)
			if err != nil || len(items) == 0 {
				continue
			}
			last := items[len(items)-1]
			ss.send(El(nsClient, "message", "from", p.bare(owner), "to", ss.full, "type", "headline", "id", randomID()).Add(
				El(nsPubSubEvent, "event").Add(El(nsPubSubEvent, "items", "node", n.Key).Add(
					El(nsPubSubEvent, "item", "id", last.id).Add(last.payload))),
				delayEl(p.bare(owner), last.item.Updated)))
		}
	}
}

// discoItems lists an account's nodes the asker may read as the
// account's disco#items (XEP-0060 §5.2).
func (p *pepService) discoItems(ss *session, account, node string) ([]*Element, bool) {
	if account == "" || node != "" {
		return nil, false
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	nodes, err := p.s.core.ListData(ctx, account, pepNodesCollection)
	if err != nil {
		return nil, false
	}
	var out []*Element
	for _, n := range nodes {
		c := defaultPEPConfig()
		if json.Unmarshal(n.Value, &c) != nil || p.mayRead(ctx, ss.account, account, c) != nil {
			continue
		}
		out = append(out, El(nsDiscoItems, "item", "jid", p.bare(account), "node", n.Key, "name", c.Title))
	}
	return out, true
}
