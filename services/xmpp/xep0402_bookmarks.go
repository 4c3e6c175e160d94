package xmpp

import "context"

// XEP-0402 PEP Native Bookmarks (urn:xmpp:bookmarks:1), with the
// compatibility of its §3 with XEP-0048 Bookmarks in both its forms:
// private XML storage (XEP-0049, storage:bookmarks) and the legacy PEP
// node storage:bookmarks (one item, "current", holding every bookmark).
//
// Bookmarks 2 are ordinary PEP items (xep0163_pep.go): one item per room,
// its id the room's JID, on a node the client creates with whitelist
// access and max_items max. What this file adds is the mirroring,
// advertised as urn:xmpp:bookmarks:1#compat (private XML) and
// urn:xmpp:bookmarks:1#compat-pep (legacy PEP node):
//   - a change of the urn:xmpp:bookmarks:1 node (publish, retract, purge,
//     delete) rewrites the storage:bookmarks document, in private XML and
//     as the legacy node's item (notified to the owner's resources that
//     want it); the document's <url/> bookmarks, which XEP-0402 does not
//     have, are kept;
//   - a storage:bookmarks document stored by a client, in private XML or
//     on the legacy node, is compared with the urn:xmpp:bookmarks:1
//     items: new and changed rooms are published, missing ones retracted
//     (with notifications), unchanged ones left alone; the other form
//     of the document is rewritten too.
//
// Mirrored writes do not mirror back. Nodes the mirroring creates get
// XEP-0402's configuration (persistent, whitelist, max items, never sent
// on presence) and XEP-0048's (persistent, whitelist). Conference
// children other than nick and password travel as XEP-0402 extensions.
// Left out: retracting or deleting the legacy node does not remove
// bookmarks (clients replace the document instead).

const (
	nsBookmarks2 = "urn:xmpp:bookmarks:1"
	nsBookmarks1 = "storage:bookmarks"
)

// bookmarkNodeOptions are XEP-0402's node options (§5); legacyBookmarkOptions
// XEP-0048's (§3.3 of XEP-0223: private PEP data).
var (
	bookmarkNodeOptions = map[string][]string{
		"pubsub#persist_items": {"true"}, "pubsub#max_items": {"max"},
		"pubsub#send_last_published_item": {"never"}, "pubsub#access_model": {"whitelist"},
	}
	legacyBookmarkOptions = map[string][]string{
		"pubsub#persist_items": {"true"}, "pubsub#access_model": {"whitelist"},
	}
)

func (p *pepService) registerBookmarks(f *features) {
	f.accountFeatures = append(f.accountFeatures, nsBookmarks2+"#compat", nsBookmarks2+"#compat-pep")
	p.watchers[nsBookmarks2] = func(ss *session, _ pepChange) { p.bookmarksToLegacy(ss.account) }
	p.watchers[nsBookmarks1] = func(ss *session, ch pepChange) {
		if ch.kind == "publish" && ch.payload.Is(nsBookmarks1, "storage") {
			p.legacyToBookmarks(ss.account, ch.payload, true)
		}
	}
	f.privateSetHooks = append(f.privateSetHooks, func(ss *session, el *Element) {
		if el.Is(nsBookmarks1, "storage") {
			p.legacyToBookmarks(ss.account, el, false)
		}
	})
}

// bookmarkToLegacy is a Bookmarks 2 item as an XEP-0048 conference.
func bookmarkToLegacy(room string, c *Element) *Element {
	autojoin, _ := pepBool(c.Get("autojoin"))
	out := El(nsBookmarks1, "conference", "jid", room, "name", c.Get("name"), "autojoin", "false")
	if autojoin {
		out.Set("autojoin", "true")
	}
	if nick := c.ChildText(nsBookmarks2, "nick"); nick != "" {
		out.Add(El(nsBookmarks1, "nick").Add(nick))
	}
	if pw := c.ChildText(nsBookmarks2, "password"); pw != "" {
		out.Add(El(nsBookmarks1, "password").Add(pw))
	}
	for _, ext := range c.Child(nsBookmarks2, "extensions").Kids() {
		out.Add(ext.Clone())
	}
	return out
}

// bookmarkFromLegacy is an XEP-0048 conference as a Bookmarks 2 payload.
func bookmarkFromLegacy(c *Element) *Element {
	out := El(nsBookmarks2, "conference", "name", c.Get("name"))
	if autojoin, _ := pepBool(c.Get("autojoin")); autojoin {
		out.Set("autojoin", "true")
	}
	if nick := c.ChildText(nsBookmarks1, "nick"); nick != "" {
		out.Add(El(nsBookmarks2, "nick").Add(nick))
	}
	if pw := c.ChildText(nsBookmarks1, "password"); pw != "" {
		out.Add(El(nsBookmarks2, "password").Add(pw))
	}
	var ext []any
	for _, k := range c.Kids() {
		if k.Space != nsBookmarks1 {
			ext = append(ext, k.Clone())
		}
	}
	if len(ext) > 0 {
		out.Add(El(nsBookmarks2, "extensions").Add(ext...))
	}
	return out
}

// bookmarksToLegacy rewrites account's storage:bookmarks document (private
// XML and the legacy PEP node) from its Bookmarks 2 items.
func (p *pepService) bookmarksToLegacy(account string) {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeoutStore)
	defer cancel()
	items, err := p.items(ctx, account, nsBookmarks2)
	if err != nil {
		p.s.log.Error("read bookmarks", "account", account, "err", err)
		return
	}
	storage := El(nsBookmarks1, "storage")
	for _, it := range items {
		if it.payload.Is(nsBookmarks2, "conference") {
			storage.Add(bookmarkToLegacy(it.id, it.payload))
		}
	}
	// XEP-0048 URL bookmarks have no XEP-0402 form: keep them.
	if old, err := p.s.privateGet(ctx, account, nsBookmarks1); err == nil {
		for _, u := range old.Kids() {
			if u.Is(nsBookmarks1, "url") {
				storage.Add(u.Clone())
			}
		}
	}
	p.writeLegacy(ctx, account, storage, true, true)
}

// writeLegacy stores a storage:bookmarks document in private XML and/or
// on the legacy PEP node.
func (p *pepService) writeLegacy(ctx context.Context, account string, storage *Element, private, pep bool) {
	if private {
		if err := p.s.privateSet(ctx, account, storage); err != nil {
			p.s.log.Error("mirror bookmarks to private XML", "account", account, "err", err)
		}
	}
	if pep {
		if _, err := p.publish(ctx, account, nsBookmarks1, "current", storage, legacyBookmarkOptions, false); err != nil {
			p.s.log.Error("mirror bookmarks to the legacy PEP node", "account", account, "err", err)
		}
	}
}

// legacyToBookmarks brings account's Bookmarks 2 items in line with a
// storage:bookmarks document a client stored (on the legacy PEP node if
// fromPEP, else in private XML), and mirrors the document to the other
// legacy place.
func (p *pepService) legacyToBookmarks(account string, storage *Element, fromPEP bool) {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeoutStore)
	defer cancel()
	p.writeLegacy(ctx, account, storage, fromPEP, !fromPEP)
	items, err := p.items(ctx, account, nsBookmarks2)
	if err != nil {
		p.s.log.Error("read bookmarks", "account", account, "err", err)
		return
	}
	have := map[string]string{} // room → canonical payload
	for _, it := range items {
		payload := it.payload
		if payload == nil {
			payload = El(nsBookmarks2, "conference")
		}
		have[it.id] = bookmarkFromLegacy(bookmarkToLegacy(it.id, payload)).String()
	}
	want := map[string]*Element{}
	var order []string
	for _, c := range storage.Kids() {
		if !c.Is(nsBookmarks1, "conference") {
			continue
		}
		a, err := parseJID(c.Get("jid"))
		if err != nil || a.Local == "" || a.Resource != "" {
			continue // XEP-0402 items are rooms' bare JIDs
		}
		room := a.Bare()
		if _, dup := want[room]; !dup {
			order = append(order, room)
		}
		want[room] = bookmarkFromLegacy(c)
	}
	for _, room := range order {
		if have[room] == want[room].String() {
			continue
		}
		if _, perr := p.publish(ctx, account, nsBookmarks2, room, want[room], bookmarkNodeOptions, false); perr != nil {
			p.s.log.Error("mirror a bookmark", "account", account, "room", room, "err", perr)
		}
	}
	var gone []string
	for room := range have {
		if want[room] == nil {
			gone = append(gone, room)
		}
	}
	for _, room := range gone {
		if perr := p.retract(ctx, account, nsBookmarks2, []string{room}, true, true); perr != nil && perr.cond != "item-not-found" {
			p.s.log.Error("mirror a bookmark removal", "account", account, "room", room, "err", perr)
		}
	}
}
