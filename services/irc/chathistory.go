package irc

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"chatbox/services/chat"
)

// IRCv3 draft/chathistory (https://ircv3.net/specs/extensions/chathistory):
// CHATHISTORY LATEST, BEFORE, AFTER, AROUND, BETWEEN and TARGETS, with
// msgid= and timestamp= references (MSGREFTYPES=msgid,timestamp) and "*"
// (LATEST only), at most CHATHISTORY=100 messages a request. #room reads
// the room's history, a nick the direct conversation with that account,
// both under the core's access rules. Replies come in a "chathistory"
// batch (draft/chathistory-targets for TARGETS) when the client has
// batch; multi-line messages nest a draft/multiline batch in it for
// clients with draft/multiline (multiline.go).
//
// Left out: draft/event-playback (the store keeps messages only: no
// JOIN/PART/TOPIC lines to replay), the "*" target (all direct messages
// at once: the store has no query over every conversation of an account),
// and the sender's door in history lines (the store does not keep it: the
// host shows as chat.<domain>). TARGETS finds direct conversations by
// asking the store about each account in turn (see historyTargets).

// historyCommands are CHATHISTORY and the client BATCH of draft/multiline.
var historyCommands = map[string]command{
	"CHATHISTORY": {fn: handleChathistory, minParams: 1},
	"BATCH":       {fn: handleBatch, minParams: 1},
}

const (
	// chathistoryMax is the most messages one request returns; welcome.go
	// advertises it as CHATHISTORY=100.
	chathistoryMax = 100
	// targetsMaxAccounts bounds the accounts TARGETS asks the store about.
	targetsMaxAccounts = 1000
	historyTimeout     = 10 * time.Second
)

// msgRef is a CHATHISTORY message reference.
type msgRef struct {
	star  bool      // "*": no bound (LATEST only)
	msgid string    // msgid=<id>
	ts    time.Time // timestamp=<RFC 3339 time>
}

// parseMsgRef parses "*", "msgid=<id>" or "timestamp=<time>"; starOK says
// whether "*" is allowed.
func parseMsgRef(s string, starOK bool) (msgRef, bool) {
	switch key, val, _ := strings.Cut(s, "="); {
	case s == "*":
		return msgRef{star: true}, starOK
	case key == "msgid" && val != "":
		return msgRef{msgid: val}, true
	case key == "timestamp":
		t, ok := parseHistoryTime(val)
		return msgRef{ts: t}, ok
	}
	return msgRef{}, false
}

// parseHistoryTime parses a timestamp (YYYY-MM-DDThh:mm:ss.sssZ; any RFC
// 3339 time is taken) and keeps it within what the store can compare.
func parseHistoryTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	lo := time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC)
	hi := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	switch {
	case t.Before(lo):
		t = lo
	case t.After(hi):
		t = hi
	}
	return t.UTC(), true
}

// parseHistoryLimit parses a limit: a number; 0 or above chathistoryMax
// means chathistoryMax.
func parseHistoryLimit(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, false
	}
	if n == 0 || n > chathistoryMax {
		n = chathistoryMax
	}
	return n, true
}

// position is a resolved reference: a stored message (seq > 0) or a time.
// Timestamps are compared by the millisecond, the precision of the time
// tags clients get: "after 12:00:00.123" leaves out all of that
// millisecond, so a client passing a message's own time does not get that
// message again.
type position struct {
	seq int64
	t   time.Time
}

func (p position) ms() time.Time { return p.t.Truncate(time.Millisecond) }

// after narrows q to messages after p.
func (p position) after(q *chat.HistoryQuery) {
	if p.seq > 0 {
		q.AfterSeq = p.seq
	} else {
		q.Start = p.ms().Add(time.Millisecond)
	}
}

// before narrows q to messages before p.
func (p position) before(q *chat.HistoryQuery) {
	if p.seq > 0 {
		q.BeforeSeq = p.seq
	} else {
		q.End = p.ms().Add(-time.Nanosecond)
	}
}

// from narrows q to p and the messages after it.
func (p position) from(q *chat.HistoryQuery) {
	if p.seq > 0 {
		q.AfterSeq = p.seq - 1
	} else {
		q.Start = p.ms()
	}
}

// earlier reports whether p comes before o: by store order when both are
// messages, else by time.
func (p position) earlier(o position) bool {
	if p.seq > 0 && o.seq > 0 {
		return p.seq < o.seq
	}
	return p.ms().Before(o.ms())
}

// historyPlan is the store queries one request needs. With around, the
// second query's limit is what the first left of the request's limit.
type historyPlan struct {
	first    chat.HistoryQuery
	around   bool
	second   chat.HistoryQuery
	empty    bool // nothing can match
	backward bool // anchored at the newest end: trim the oldest first
}

// planHistory turns a subcommand and its resolved references into store
// queries over base (a Room or a Peer query). star is LATEST's "*".
func planHistory(sub string, base chat.HistoryQuery, a, b position, star bool, limit int) historyPlan {
	q := base
	q.Limit = limit
	p := historyPlan{}
	switch sub {
	case "LATEST":
		if !star {
			a.after(&q)
		}
		q.Last, p.backward = true, true
	case "BEFORE":
		a.before(&q)
		q.Last, p.backward = true, true
	case "AFTER":
		a.after(&q)
	case "AROUND":
		// Half before the reference, the rest from it on.
		p.around, p.backward = true, true
		q.Limit = limit / 2
		a.before(&q)
		q.Last = true
		p.second = base
		p.second.Limit = limit
		a.from(&p.second)
	case "BETWEEN":
		switch {
		case a.earlier(b):
			a.after(&q)
			b.before(&q)
		case b.earlier(a):
			b.after(&q)
			a.before(&q)
			q.Last, p.backward = true, true
		default:
			p.empty = true
		}
	}
	p.first = q
	return p
}

func handleChathistory(r *request) {
	c := r.c
	if !c.hasCap("draft/chathistory") {
		r.numeric(ERR_UNKNOWNCOMMAND, "CHATHISTORY", "Unknown command: request the draft/chathistory capability first")
		return
	}
	sub := strings.ToUpper(r.msg.Params[0])
	args := r.msg.Params[1:]
	need := map[string]int{"LATEST": 3, "BEFORE": 3, "AFTER": 3, "AROUND": 3, "BETWEEN": 4, "TARGETS": 3}[sub]
	switch {
	case need == 0:
		r.fail("INVALID_PARAMS", "Unknown subcommand: use LATEST, BEFORE, AFTER, AROUND, BETWEEN or TARGETS", r.msg.Params[0])
		return
	case len(args) < need:
		r.fail("NEED_MORE_PARAMS", "Missing parameters: CHATHISTORY "+historyUsage[sub], sub)
		return
	}
	limit, ok := parseHistoryLimit(args[need-1])
	if !ok {
		r.fail("INVALID_PARAMS", "The limit must be a number from 0 to "+strconv.Itoa(chathistoryMax), sub, args[need-1])
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), historyTimeout)
	defer cancel()
	if sub == "TARGETS" {
		handleHistoryTargets(ctx, r, args[0], args[1], limit)
		return
	}
	refs := make([]msgRef, 0, 2)
	for i, s := range args[1 : need-1] {
		ref, ok := parseMsgRef(s, sub == "LATEST" && i == 0)
		if !ok {
			r.fail("INVALID_PARAMS", "Invalid message reference: CHATHISTORY "+historyUsage[sub], sub, s)
			return
		}
		refs = append(refs, ref)
	}
	base, name, ok := c.historyTarget(ctx, r, sub, args[0])
	if !ok {
		return
	}
	s := c.session()
	var pos [2]position
	for i, ref := range refs {
		if ref.msgid == "" {
			pos[i] = position{t: ref.ts}
			continue
		}
		m, err := c.srv.core.MessageByID(ctx, s, ref.msgid)
		if err == nil && !inTarget(&m, base, s.Account()) {
			err = chat.ErrNotFound
		}
		if err != nil {
			if !errors.Is(err, chat.ErrNotFound) {
				c.historyError(r, sub, args[0], err)
				return
			}
			r.fail("INVALID_PARAMS", "No message with that msgid in "+args[0]+" (it may have been pruned)", sub, "msgid="+ref.msgid)
			return
		}
		pos[i] = position{seq: m.Seq, t: m.Time}
	}
	plan := planHistory(sub, base, pos[0], pos[1], len(refs) > 0 && refs[0].star, limit)
	var msgs []chat.Message
	if !plan.empty {
		var err error
		if !plan.around || plan.first.Limit > 0 {
			msgs, err = c.srv.core.History(ctx, s, plan.first)
		}
		if err == nil && plan.around {
			plan.second.Limit = limit - len(msgs)
			var more []chat.Message
			more, err = c.srv.core.History(ctx, s, plan.second)
			msgs = append(msgs, more...)
		}
		if err != nil {
			c.historyError(r, sub, args[0], err)
			return
		}
	}
	c.sendHistoryBatch(r, name, msgs, plan.backward)
}

var historyUsage = map[string]string{
	"LATEST":  "LATEST <target> <* | msgid=<id> | timestamp=<time>> <limit>",
	"BEFORE":  "BEFORE <target> <msgid=<id> | timestamp=<time>> <limit>",
	"AFTER":   "AFTER <target> <msgid=<id> | timestamp=<time>> <limit>",
	"AROUND":  "AROUND <target> <msgid=<id> | timestamp=<time>> <limit>",
	"BETWEEN": "BETWEEN <target> <reference> <reference> <limit>",
	"TARGETS": "TARGETS timestamp=<time> timestamp=<time> <limit>",
}

// historyTarget turns a CHATHISTORY target into the base of a history
// query and the name the reply uses; it replies INVALID_TARGET itself.
func (c *conn) historyTarget(ctx context.Context, r *request, sub, target string) (chat.HistoryQuery, string, bool) {
	if room := roomOf(target); room != "" {
		if chat.ValidName(room) != nil {
			r.fail("INVALID_TARGET", "No such channel", sub, target)
			return chat.HistoryQuery{}, "", false
		}
		return chat.HistoryQuery{Room: room}, channelOf(room), true
	}
	if jid, ok := remoteTarget(target); ok { // remote.go
		return chat.HistoryQuery{Peer: jid}, ircName(jid), true
	}
	peer := fold(target)
	if chat.ValidName(peer) != nil {
		r.fail("INVALID_TARGET", "History is kept for #channels and for conversations with an account", sub, target)
		return chat.HistoryQuery{}, "", false
	}
	if _, err := c.srv.core.Account(ctx, peer); err != nil {
		if errors.Is(err, chat.ErrNotFound) {
			r.fail("INVALID_TARGET", "No such account", sub, target)
		} else {
			c.historyError(r, sub, target, err)
		}
		return chat.HistoryQuery{}, "", false
	}
	return chat.HistoryQuery{Peer: peer}, peer, true
}

// inTarget reports whether m belongs to the history base selects, for the
// session of account.
func inTarget(m *chat.Message, base chat.HistoryQuery, account string) bool {
	if base.Room != "" {
		return m.Room == base.Room
	}
	return m.Room == "" && (m.From == account && m.To == base.Peer || m.From == base.Peer && m.To == account)
}

// historyError replies to a failed history query.
func (c *conn) historyError(r *request, sub, target string, err error) {
	switch {
	case errors.Is(err, chat.ErrNoSuchRoom), errors.Is(err, chat.ErrNotFound):
		r.fail("INVALID_TARGET", "No such channel", sub, target)
	case errors.Is(err, chat.ErrForbidden):
		r.fail("INVALID_TARGET", "Messages could not be retrieved: this channel's history is for its members", sub, target)
	default:
		c.srv.log.Error("chathistory", "target", target, "err", err)
		r.fail("MESSAGE_ERROR", "Messages could not be retrieved; try again", sub, target)
	}
}

// historyLines renders one stored message for this client, as a live
// delivery would.
func (c *conn) historyLines(m *chat.Message, caps capSet, account, nick string) []ircmsg.Message {
	src := c.source(m.From, "")
	switch {
	case m.Room != "":
		return c.messageLines(m, src, channelOf(m.Room), caps)
	case m.From == account && m.To != account:
		return c.messageLines(m, src, ircName(m.To), caps)
	default:
		return c.messageLines(m, src, nick, caps)
	}
}

// sendHistoryBatch sends msgs (oldest first) in a chathistory batch named
// for target. What would not fit in half the client's sendq is left out,
// from the end away from the request's anchor (the oldest when backward),
// so that the client pages on from what it got.
func (c *conn) sendHistoryBatch(r *request, target string, msgs []chat.Message, backward bool) {
	caps := c.capsCopy()
	account, nick := c.accountName(), c.currentNick()
	rendered := make([][]ircmsg.Message, len(msgs))
	sizes := make([]int, len(msgs))
	for i := range msgs {
		rendered[i] = c.historyLines(&msgs[i], caps, account, nick)
		for _, l := range rendered[i] {
			sizes[i] += lineSize(l)
		}
	}
	lo, hi := trimToBudget(sizes, c.srv.cfg.SendQ/2, backward)
	useBatch := caps.has("batch")
	id := batchID()
	server := c.srv.cfg.ServerName
	if useBatch {
		r.send(ircmsg.MakeMessage(nil, server, "BATCH", "+"+id, "chathistory", target))
	}
	for _, lines := range rendered[lo:hi] {
		for _, l := range lines {
			if useBatch && !l.HasTag("batch") {
				l.SetTag("batch", id)
			}
			r.send(l)
		}
	}
	if useBatch {
		r.send(ircmsg.MakeMessage(nil, server, "BATCH", "-"+id))
	}
}

// lineSize is a line's size on the wire, tags and CRLF included.
func lineSize(m ircmsg.Message) int {
	b, _ := m.LineBytesStrict(false, 0)
	return len(b) + 32 // room for the batch tag added later
}

// trimToBudget returns the range of items to keep so that their sizes add
// up to at most budget (always at least one item): dropping the first
// items when backward, the last ones otherwise.
func trimToBudget(sizes []int, budget int, backward bool) (lo, hi int) {
	lo, hi = 0, len(sizes)
	total := 0
	for _, s := range sizes {
		total += s
	}
	for total > budget && hi-lo > 1 {
		if backward {
			total -= sizes[lo]
			lo++
		} else {
			hi--
			total -= sizes[hi]
		}
	}
	return lo, hi
}

// histTarget is one line of a TARGETS reply.
type histTarget struct {
	name   string
	latest time.Time
}

// handleHistoryTargets answers CHATHISTORY TARGETS: the channels the
// session is in and the accounts it has a direct conversation with, whose
// latest message falls between the two timestamps, oldest first.
func handleHistoryTargets(ctx context.Context, r *request, a, b string, limit int) {
	c := r.c
	ra, okA := parseMsgRef(a, false)
	rb, okB := parseMsgRef(b, false)
	for _, x := range []struct {
		s  string
		r  msgRef
		ok bool
	}{{a, ra, okA}, {b, rb, okB}} {
		if !x.ok || x.r.msgid != "" {
			r.fail("INVALID_PARAMS", "TARGETS takes two timestamps: timestamp=YYYY-MM-DDThh:mm:ss.sssZ", "TARGETS", x.s)
			return
		}
	}
	lo, hi := ra.ts, rb.ts
	newestFirst := lo.After(hi) // asked from now back: keep the most recent
	if newestFirst {
		lo, hi = hi, lo
	}
	targets, err := c.historyTargets(ctx, lo, hi)
	if err != nil {
		c.historyError(r, "TARGETS", "*", err)
		return
	}
	targets = pickTargets(targets, limit, newestFirst)
	server := c.srv.cfg.ServerName
	useBatch := c.hasCap("batch")
	id := batchID()
	if useBatch {
		r.send(ircmsg.MakeMessage(nil, server, "BATCH", "+"+id, "draft/chathistory-targets"))
	}
	for _, t := range targets {
		var tags map[string]string
		if useBatch {
			tags = map[string]string{"batch": id}
		}
		r.send(ircmsg.MakeMessage(tags, server, "CHATHISTORY", "TARGETS", t.name, serverTime(t.latest)))
	}
	if useBatch {
		r.send(ircmsg.MakeMessage(nil, server, "BATCH", "-"+id))
	}
}

// pickTargets sorts targets oldest first and keeps limit of them: the
// most recent when newestFirst, else the oldest.
func pickTargets(targets []histTarget, limit int, newestFirst bool) []histTarget {
	sort.SliceStable(targets, func(i, j int) bool {
		if !targets[i].latest.Equal(targets[j].latest) {
			return targets[i].latest.Before(targets[j].latest)
		}
		return targets[i].name < targets[j].name
	})
	if len(targets) > limit {
		if newestFirst {
			targets = targets[len(targets)-limit:]
		} else {
			targets = targets[:limit]
		}
	}
	return targets
}

// historyTargets finds the session's channels and direct conversations
// with a message between lo and hi (inclusive), each with its latest
// such message's time.
//
// The core has no query over every conversation of an account, so direct
// conversations are found by asking about each account (at most
// targetsMaxAccounts of them, one indexed query each) — fine for a box's
// few dozen accounts. A core method listing an account's conversations
// with their latest time (one GROUP BY over the messages_conv_time index)
// would replace the loop.
func (c *conn) historyTargets(ctx context.Context, lo, hi time.Time) ([]histTarget, error) {
	s := c.session()
	latest := func(q chat.HistoryQuery) (time.Time, bool, error) {
		q.Start, q.End, q.Last, q.Limit = lo, hi, true, 1
		msgs, err := c.srv.core.History(ctx, s, q)
		if err != nil || len(msgs) == 0 {
			return time.Time{}, false, err
		}
		return msgs[0].Time, true, nil
	}
	var out []histTarget
	for room := range s.RoomsOf() {
		t, ok, err := latest(chat.HistoryQuery{Room: room})
		if errors.Is(err, chat.ErrNoSuchRoom) || errors.Is(err, chat.ErrForbidden) {
			continue // destroyed or closed to us meanwhile
		}
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, histTarget{channelOf(room), t})
		}
	}
	accounts, err := c.srv.core.Accounts(ctx)
	if err != nil {
		return nil, err
	}
	if len(accounts) > targetsMaxAccounts {
		c.srv.log.Warn("chathistory targets: only the first accounts are searched for direct conversations",
			"accounts", len(accounts), "searched", targetsMaxAccounts)
		accounts = accounts[:targetsMaxAccounts]
	}
	for _, a := range accounts {
		t, ok, err := latest(chat.HistoryQuery{Peer: a.Name})
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, histTarget{a.Name, t})
		}
	}
	return out, nil
}
