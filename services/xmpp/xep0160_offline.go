package xmpp

import "chatbox/services/chat"

// XEP-0160 Best Practices for Handling Offline Messages, on the core's
// offline queue (shared by both doors): direct messages that came while
// the account had no session at all wait there; when an XMPP session
// sends its initial available presence with a non-negative priority it
// gets them, oldest first, each rebuilt as it was sent (messageStanza)
// with an XEP-0203 delay stamped by the server at the time it was stored.
// The queue is acknowledged up to the last message handed to the
// connection, batch by batch, so a message is not delivered twice (the
// IRC door drains the same queue: whichever session comes first gets
// them). Advertised as msgoffline on the server.
//
// Left out: XEP-0013 flexible offline retrieval; delivery to a session
// whose initial presence had a negative priority and that raises it
// later (it reads its archive, XEP-0313, instead).

const (
	nsOffline        = "msgoffline"
	offlineBatchSize = 100
	// offlineMaxBatches bounds one delivery (the rest waits for the next
	// login or is read from the archive).
	offlineMaxBatches = 100
)

func registerOffline(f *features, s *Server) {
	f.serverFeatures = append(f.serverFeatures, nsOffline)
	f.onInitialPresence = append(f.onInitialPresence, s.deliverOffline)
}

// deliverOffline sends a session that became available the messages
// waiting for its account, then acknowledges them.
func (s *Server) deliverOffline(ss *session) {
	if av, prio := ss.isAvailable(); !av || prio < 0 {
		return
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	var last int64
	for range offlineMaxBatches {
		msgs, err := s.core.Offline(ctx, ss.core, offlineBatchSize)
		if err != nil {
			s.log.Error("read offline messages", "account", ss.account, "err", err)
			return
		}
		sent, closed := 0, false
		for i := range msgs {
			m := &msgs[i]
			if m.Seq <= last {
				continue // not acknowledged yet: the store is behind
			}
			ss.mu.Lock()
			closed = ss.closed
			ss.mu.Unlock()
			if closed {
				break // not handed to a client: the rest waits for the next one
			}
			last = m.Seq
			if !ss.firstDelivery(m.Seq) {
				continue // it also came live, just now
			}
			el := ss.messageStanza(m, chat.SessionRef{})
			el.Set("to", ss.full)
			el.Add(delayEl(s.cfg.Domain, m.Time))
			ss.send(el)
			sent++
		}
		if last == 0 {
			return
		}
		if err := s.core.AckOffline(ctx, ss.core, last); err != nil {
			s.log.Error("acknowledge offline messages", "account", ss.account, "err", err)
			return
		}
		if closed || len(msgs) < offlineBatchSize {
			return
		}
	}
}

// firstDelivery records that the direct message seq is shown to this
// session and says whether it is the first time: a message stored while
// the account had no session is queued offline, and if a session binds at
// that moment it also gets it live; whichever path comes second skips it.
func (ss *session) firstDelivery(seq int64) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.shown == nil || len(ss.shown) > 4096 {
		ss.shown = map[int64]bool{}
	}
	if ss.shown[seq] {
		return false
	}
	ss.shown[seq] = true
	return true
}
