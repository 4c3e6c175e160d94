package xmpp

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"

	"chatbox/services/chat"
)

// XEP-0313 Message Archive Management (urn:xmpp:mam:2 and
// urn:xmpp:mam:2#extended) on an account's archive of direct messages,
// with XEP-0059 Result Set Management for paging.
//
// The archive is the core's shared history, not a copy: every direct
// message the account sent or received, from either door (a line written
// on IRC to bob is in bob's archive and in the sender's), in store order.
// Each result is the stored message rebuilt as a stanza (messageStanza,
// with the XMPP extras it was sent with), forwarded (XEP-0297) with an
// XEP-0203 delay of the time the server stored it; the archive id is the
// message's stable id, which is also its XEP-0359 stanza-id.
//
// Implemented: the query form (with: a bare JID, one's own for notes to
// self; start and end; and, #extended, before-id, after-id, ids and
// <flip-page/>), RSM max, after, before and an empty before (the last
// page), with first (with its index), last and count in the <fin/> and
// complete='true' when the page reached the end in its direction; the
// form fields request; the archive metadata (first and last message);
// preferences: get answers default='always', set accepts only
// default='always' without JIDs to never archive.
//
// Left out: room messages in the account archive (include-groupchat;
// rooms have their own archive on the MUC service); with as a full JID
// (messages are kept per account, not per resource); RSM index paging;
// archiving preferences other than always (the archive is the shared
// history the IRC door reads as well, so it cannot skip messages for
// one account); XEP-0441's roster/never lists.

const (
	mamNS      = "urn:xmpp:mam:2"
	mamRSM     = "http://jabber.org/protocol/rsm"
	mamForward = "urn:xmpp:forward:0"

	// mamDefaultMax and mamMaxPage bound a page.
	mamDefaultMax = 50
	mamMaxPage    = 250
)

func registerMAM(f *features, s *Server) {
	f.accountIQ[mamNS] = s.mamIQ
	f.roomIQ[mamNS] = s.mamRoomIQ
	f.accountFeatures = append(f.accountFeatures, mamNS, mamNS+"#extended", mamRSM)
}

func (s *Server) mamIQ(ss *session, iq *Element) {
	if to := iq.Get("to"); to != "" && to != ss.bare {
		ss.replyErr(iq, "forbidden", "an account's message archive is its own to read")
		return
	}
	q := iq.First()
	typ := iq.Get("type")
	switch {
	case q.Local == "query" && typ == "get":
		ss.result(iq, El(mamNS, "query").Add(mamForm()))
	case q.Local == "query" && typ == "set":
		s.mamQuery(ss, iq, q)
	case q.Local == "metadata" && typ == "get":
		s.mamMetadata(ss, iq)
	case q.Local == "prefs":
		mamPrefs(ss, iq, q)
	default:
		ss.replyErr(iq, "bad-request", "this archive answers <query/> (get: the form; set: a query), <metadata/> and <prefs/>")
	}
}

// mamForm lists the query fields (XEP-0313 §4.1.5).
func mamForm() *Element {
	return El(pepXData, "x", "type", "form").Add(
		El(pepXData, "field", "type", "hidden", "var", "FORM_TYPE").Add(El(pepXData, "value").Add(mamNS)),
		El(pepXData, "field", "type", "jid-single", "var", "with"),
		El(pepXData, "field", "type", "text-single", "var", "start"),
		El(pepXData, "field", "type", "text-single", "var", "end"),
		El(pepXData, "field", "type", "text-single", "var", "before-id"),
		El(pepXData, "field", "type", "text-single", "var", "after-id"),
		El(pepXData, "field", "type", "list-multi", "var", "ids").Add(
			El("http://jabber.org/protocol/xdata-validate", "validate", "datatype", "xs:string").Add(
				El("http://jabber.org/protocol/xdata-validate", "open"))),
	)
}

// mamFail is a query error: a condition and what to do.
type mamFail struct{ cond, text string }

func (e *mamFail) Error() string { return e.text }

// mamSeq turns an archive id into its message's seq, for the account.
func (s *Server) mamSeq(ss *session, id, room string) (int64, error) {
	ctx, cancel := ss.ctx()
	defer cancel()
	m, err := s.core.MessageByID(ctx, ss.core, id)
	if err != nil || m.Room != room {
		if err == nil || errors.Is(err, chat.ErrNotFound) {
			return 0, &mamFail{"item-not-found", "the archive has no message " + id}
		}
		return 0, err
	}
	return m.Seq, nil
}

// mamTime parses an XEP-0082 DateTime.
func mamTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
	if err != nil {
		return t, &mamFail{"bad-request", field + " is an XEP-0082 DateTime such as 2025-01-02T15:04:05Z"}
	}
	return t, nil
}

// errMAMNobody marks a with that is no account here: nothing matches.
var errMAMNobody = errors.New("with names nobody on this server")

// mamFilter builds the history query of a submitted form, and the ids
// asked for by the ids field.
func (s *Server) mamFilter(ss *session, x *Element, room string) (chat.HistoryQuery, []string, error) {
	hq := chat.HistoryQuery{Account: ss.account}
	if room != "" {
		hq = chat.HistoryQuery{Room: room}
	}
	if x == nil {
		return hq, nil, nil
	}
	nobody := false
	_, fields := pepFormFields(x)
	first := func(k string) string {
		if v := fields[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	var ids []string
	for k, vals := range fields {
		v := first(k)
		switch k {
		case "FORM_TYPE":
			if v != mamNS {
				return hq, nil, &mamFail{"bad-request", "the query form's FORM_TYPE is " + mamNS}
			}
		case "with":
			if v == "" {
				continue
			}
			if room != "" {
				return hq, nil, &mamFail{"feature-not-implemented", "a room's archive is not filtered by with"}
			}
			a, err := parseJID(v)
			if err != nil {
				return hq, nil, &mamFail{"bad-request", "with is not a valid JID"}
			}
			if a.Resource != "" {
				return hq, nil, &mamFail{"feature-not-implemented", "with takes a bare JID here: the archive is kept per account"}
			}
			if s.isRemote(a.Domain) && a.Local != "" {
				hq.Peer = strings.ToLower(a.Bare()) // a remote user (s2s_direct.go)
				continue
			}
			if a.Domain != s.cfg.Domain || a.Local == "" || chat.ValidName(chat.Fold(a.Local)) != nil {
				nobody = true
				continue
			}
			hq.Peer = a.Local
		case "start", "end":
			if v == "" {
				continue
			}
			t, err := mamTime(k, v)
			if err != nil {
				return hq, nil, err
			}
			if k == "start" {
				hq.Start = t
			} else {
				hq.End = t
			}
		case "before-id", "after-id":
			if v == "" {
				continue
			}
			seq, err := s.mamSeq(ss, v, room)
			if err != nil {
				return hq, nil, err
			}
			if k == "before-id" {
				hq.BeforeSeq = seq
			} else {
				hq.AfterSeq = seq
			}
		case "ids":
			for _, id := range vals {
				if id = strings.TrimSpace(id); id != "" {
					ids = append(ids, id)
				}
			}
		case "include-groupchat":
			if b, ok := pepBool(v); !ok || b {
				return hq, nil, &mamFail{"feature-not-implemented", "room messages are not in the account's archive: query the room"}
			}
		default:
			return hq, nil, &mamFail{"feature-not-implemented", "this archive has no query field " + k}
		}
	}
	if nobody {
		return hq, nil, errMAMNobody
	}
	return hq, ids, nil
}

// mamQuery answers an archive query (XEP-0313 §4): result messages, then
// the <fin/>.
func (s *Server) mamQuery(ss *session, iq, q *Element) { s.mamQueryIn(ss, iq, q, "") }

// mamQueryIn answers a query on an account's archive (room "") or on a
// room's.
func (s *Server) mamQueryIn(ss *session, iq, q *Element, room string) {
	fail := func(err error) {
		var mf *mamFail
		if errors.As(err, &mf) {
			ss.replyErr(iq, mf.cond, mf.text)
			return
		}
		s.log.Error("archive query", "account", ss.account, "err", err)
		ss.replyErr(iq, "internal-server-error", "the archive could not be read; try again")
	}
	hq, ids, err := s.mamFilter(ss, q.Child(pepXData, "x"), room)
	if errors.Is(err, errMAMNobody) {
		s.mamSend(ss, iq, q, nil, true, -1, 0, room)
		return
	}
	if err != nil {
		fail(err)
		return
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	if len(ids) > 0 {
		if len(ids) > mamMaxPage {
			fail(&mamFail{"policy-violation", "ask for at most " + strconv.Itoa(mamMaxPage) + " ids at a time"})
			return
		}
		var msgs []chat.Message
		for _, id := range ids {
			m, err := s.core.MessageByID(ctx, ss.core, id)
			if err != nil || m.Room != room {
				if err == nil || errors.Is(err, chat.ErrNotFound) {
					err = &mamFail{"item-not-found", "the archive has no message " + id}
				}
				fail(err)
				return
			}
			msgs = append(msgs, m)
		}
		slices.SortFunc(msgs, func(a, b chat.Message) int { return int(a.Seq - b.Seq) })
		msgs = slices.CompactFunc(msgs, func(a, b chat.Message) bool { return a.Seq == b.Seq })
		s.mamSend(ss, iq, q, msgs, true, -1, len(msgs), room)
		return
	}
	set := q.Child(mamRSM, "set")
	max := mamDefaultMax
	if ms := set.Child(mamRSM, "max"); ms != nil {
		n, err := strconv.Atoi(strings.TrimSpace(ms.Text()))
		if err != nil || n < 0 {
			fail(&mamFail{"bad-request", "RSM max is a number, 0 or more"})
			return
		}
		max = min(n, mamMaxPage)
	}
	if set.Child(mamRSM, "index") != nil {
		fail(&mamFail{"feature-not-implemented", "page with after and before, not index"})
		return
	}
	before := set.Child(mamRSM, "before")
	after := set.Child(mamRSM, "after")
	if before != nil && after != nil {
		fail(&mamFail{"bad-request", "use after or before, not both (before-id and after-id bound a range)"})
		return
	}
	page := hq
	if after != nil {
		seq, err := s.mamSeq(ss, strings.TrimSpace(after.Text()), room)
		if err != nil {
			fail(err)
			return
		}
		page.AfterSeq = max64(page.AfterSeq, seq)
	}
	if before != nil {
		page.Last = true
		if id := strings.TrimSpace(before.Text()); id != "" {
			seq, err := s.mamSeq(ss, id, room)
			if err != nil {
				fail(err)
				return
			}
			if page.BeforeSeq == 0 || seq < page.BeforeSeq {
				page.BeforeSeq = seq
			}
		}
	}
	count, err := s.core.CountHistory(ctx, ss.core, hq)
	if err != nil {
		fail(err)
		return
	}
	if max == 0 {
		s.mamSend(ss, iq, q, nil, false, -1, count, room)
		return
	}
	page.Limit = max + 1 // one more tells whether the page is the last
	msgs, err := s.core.History(ctx, ss.core, page)
	if err != nil {
		fail(err)
		return
	}
	complete := len(msgs) <= max
	if !complete {
		if page.Last {
			msgs = msgs[1:]
		} else {
			msgs = msgs[:max]
		}
	}
	index := -1
	if len(msgs) > 0 {
		before := hq
		before.BeforeSeq = msgs[0].Seq
		if hq.BeforeSeq != 0 && hq.BeforeSeq < before.BeforeSeq {
			before.BeforeSeq = hq.BeforeSeq
		}
		if n, err := s.core.CountHistory(ctx, ss.core, before); err == nil {
			index = n
		}
	}
	s.mamSend(ss, iq, q, msgs, complete, index, count, room)
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// mamSend sends a page of results and the <fin/>.
func (s *Server) mamSend(ss *session, iq, q *Element, msgs []chat.Message, complete bool, index, count int, room string) {
	queryID := q.Get("queryid")
	order := msgs
	if q.Child(mamNS, "flip-page") != nil {
		order = slices.Clone(msgs)
		slices.Reverse(order)
	}
	for i := range order {
		m := &order[i]
		stanza, from := ss.messageStanza(m, chat.SessionRef{}), ss.bare
		if room != "" {
			stanza, from = ss.roomMessage(m), s.roomJID(room)
		}
		fwd := El(mamForward, "forwarded").Add(delayEl("", m.Time), stanza)
		ss.send(El(nsClient, "message", "to", ss.full, "from", from, "id", randomID()).Add(
			El(mamNS, "result", "queryid", queryID, "id", m.ID).Add(fwd)))
	}
	rsm := El(mamRSM, "set")
	if len(msgs) > 0 {
		first := El(mamRSM, "first").Add(msgs[0].ID)
		if index >= 0 {
			first.Set("index", strconv.Itoa(index))
		}
		rsm.Add(first, El(mamRSM, "last").Add(msgs[len(msgs)-1].ID))
	}
	rsm.Add(El(mamRSM, "count").Add(strconv.Itoa(count)))
	fin := El(mamNS, "fin", "complete", strconv.FormatBool(complete)).Add(rsm)
	ss.result(iq, fin)
}

// mamMetadata answers the archive's first and last message (§6).
func (s *Server) mamMetadata(ss *session, iq *Element) {
	ctx, cancel := ss.ctx()
	defer cancel()
	md := El(mamNS, "metadata")
	first, err := s.core.History(ctx, ss.core, chat.HistoryQuery{Account: ss.account, Limit: 1})
	if err == nil && len(first) > 0 {
		var last []chat.Message
		last, err = s.core.History(ctx, ss.core, chat.HistoryQuery{Account: ss.account, Limit: 1, Last: true})
		if err == nil && len(last) > 0 {
			md.Add(El(mamNS, "start", "id", first[0].ID, "timestamp", mamStamp(first[0].Time)),
				El(mamNS, "end", "id", last[0].ID, "timestamp", mamStamp(last[0].Time)))
		}
	}
	if err != nil {
		s.log.Error("archive metadata", "account", ss.account, "err", err)
		ss.replyErr(iq, "internal-server-error", "the archive could not be read; try again")
		return
	}
	ss.result(iq, md)
}

func mamStamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// mamPrefs answers archiving preferences (§7): everything is archived.
func mamPrefs(ss *session, iq, q *Element) {
	always := El(mamNS, "prefs", "default", "always").Add(El(mamNS, "always"), El(mamNS, "never"))
	switch iq.Get("type") {
	case "get":
		ss.result(iq, always)
	case "set":
		never := q.Child(mamNS, "never")
		if q.Get("default") != "always" || never != nil && len(never.Kids()) > 0 {
			ss.replyErr(iq, "feature-not-implemented",
				"this archive keeps every direct message (it is the history both doors share): only default='always' without never JIDs is accepted")
			return
		}
		if a := q.Child(mamNS, "always"); a != nil {
			always.Child(mamNS, "always").Add(discoKids(a.Kids())...)
		}
		ss.result(iq, always)
	default:
		ss.replyErr(iq, "bad-request", "")
	}
}

// mamRoomIQ answers archive queries on a room (XEP-0313 §5): its shared
// history, lines written on IRC included, for whoever may see the room.
func (s *Server) mamRoomIQ(ss *session, iq *Element, room string) {
	q := iq.First()
	switch typ := iq.Get("type"); {
	case q.Local == "query" && typ == "get":
		ss.result(iq, El(mamNS, "query").Add(mamForm()))
	case q.Local == "query" && typ == "set":
		s.mamQueryIn(ss, iq, q, room)
	default:
		ss.replyErr(iq, "bad-request", "a room's archive answers <query/>")
	}
}
