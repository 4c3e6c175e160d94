package xmpp

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"chatbox/services/chat"
)

// XEP-0012 Last Activity: a query to the domain answers the server's
// uptime (§5); a query to an account's bare JID answers, on the
// account's behalf (§4), 0 seconds while the account is online and
// otherwise the seconds since it last went offline, with the status of
// its last unavailable presence. Only the account itself and those with a
// presence subscription to it (from or both, RFC 6121) may ask; others get
// forbidden. Queries to a full JID (idle time) are routed to that client.
//
// The time an account goes offline is recorded when an XMPP session that
// had been available ends and no other session of the account is
// available (an IRC session counts as available): it is the "last"
// document of the account, kept through the core. Sessions on the other
// doors do not record it.

const nsLast = "jabber:iq:last"

// lastLogout is the stored "last"/"logout" document.
type lastLogout struct {
	At     time.Time `json:"at"`
	Status string    `json:"status,omitempty"`
}

func registerLast(f *features, s *Server) {
	f.serverIQ[nsLast] = func(ss *session, iq *Element) {
		if iq.Get("type") != "get" {
			ss.replyErr(iq, "bad-request", "last activity is asked with an IQ get")
			return
		}
		ss.result(iq, lastQuery(s.cfg.Now().Sub(s.started), ""))
	}
	f.accountIQ[nsLast] = s.lastActivity
	f.serverFeatures = append(f.serverFeatures, nsLast)
	f.accountFeatures = append(f.accountFeatures, nsLast)
	f.onClosed = append(f.onClosed, s.recordLogout)
}

func lastQuery(d time.Duration, status string) *Element {
	if d < 0 {
		d = 0
	}
	return El(nsLast, "query", "seconds", strconv.FormatInt(int64(d/time.Second), 10)).Add(status)
}

// lastActivity answers a query to an account's bare JID.
func (s *Server) lastActivity(ss *session, iq *Element) {
	if iq.Get("type") != "get" {
		ss.replyErr(iq, "bad-request", "last activity is asked with an IQ get")
		return
	}
	account := ss.account
	if to := iq.Get("to"); to != "" {
		a, err := parseJID(to)
		if err != nil {
			ss.replyErr(iq, "jid-malformed", "")
			return
		}
		account = a.Local
	}
	if account != ss.account {
		if !s.accountOnBox(ss, account) {
			ss.replyErr(iq, "service-unavailable", "")
			return
		}
		if !s.lastVisible(ss, account) {
			ss.replyErr(iq, "forbidden", "only contacts subscribed to "+account+"'s presence may see when it was last online")
			return
		}
	}
	if s.core.AccountPresence(account).Show != chat.ShowOffline {
		ss.result(iq, lastQuery(0, ""))
		return
	}
	ctx, cancel := ss.ctx()
	defer cancel()
	item, err := s.core.Data(ctx, account, "last", "logout")
	var rec lastLogout
	if err == nil {
		err = json.Unmarshal(item.Value, &rec)
	}
	switch {
	case errors.Is(err, chat.ErrNotFound):
		ss.replyErr(iq, "item-not-found", account+" has not been online since this server started keeping track")
		return
	case err != nil:
		s.log.Error("read last activity", "account", account, "err", err)
		ss.replyErr(iq, "internal-server-error", "the last activity could not be read; try again")
		return
	}
	ss.result(iq, lastQuery(s.cfg.Now().Sub(rec.At), rec.Status))
}

// lastVisible says whether ss may see account's last activity: account's
// roster holds ss's bare JID with a from or both subscription.
func (s *Server) lastVisible(ss *session, account string) bool {
	ctx, cancel := ss.ctx()
	defer cancel()
	item, err := s.core.Data(ctx, account, "roster", ss.bare)
	if err != nil {
		if !errors.Is(err, chat.ErrNotFound) {
			s.log.Error("read roster", "account", account, "err", err)
		}
		return false
	}
	var ri struct {
		Subscription string `json:"subscription"`
	}
	if json.Unmarshal(item.Value, &ri) != nil {
		return false
	}
	return ri.Subscription == "from" || ri.Subscription == "both"
}

// recordLogout keeps the time (and the status of the unavailable
// presence) when the account's last available session ends.
func (s *Server) recordLogout(ss *session) {
	if ss.core == nil || ss.guest() {
		return // a guest keeps nothing (and has no account data)
	}
	p := ss.core.Presence()
	if avail, _ := ss.isAvailable(); !avail && p.Show != chat.ShowOffline {
		return // it was never online: nothing changes for the others
	}
	for _, ref := range s.core.Sessions(ss.account) {
		if ref.ID == ss.core.ID() {
			continue
		}
		if ref.Door != "xmpp" {
			return // still online on another door
		}
		if other := s.sessionAt(ss.account, ref.Resource); other != nil && other != ss {
			if avail, _ := other.isAvailable(); avail {
				return
			}
		}
	}
	rec := lastLogout{At: s.cfg.Now().UTC()}
	if p.Show == chat.ShowOffline {
		rec.Status = p.Status
	}
	b, _ := json.Marshal(rec)
	ctx, cancel := ss.ctx()
	defer cancel()
	if err := s.core.PutData(ctx, ss.account, "last", "logout", b); err != nil && !errors.Is(err, chat.ErrNotFound) {
		s.log.Error("record last activity", "account", ss.account, "err", err)
	}
}
