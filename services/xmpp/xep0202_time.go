package xmpp

import "time"

// XEP-0202 Entity Time: the server answers urn:xmpp:time queries to its
// domain with its UTC time and the offset of its local time zone. Queries
// to a full JID are routed to that client.

const nsTime = "urn:xmpp:time"

func registerTime(f *features, s *Server) {
	f.serverIQ[nsTime] = func(ss *session, iq *Element) {
		if iq.Get("type") != "get" {
			ss.replyErr(iq, "bad-request", "the time is asked with an IQ get")
			return
		}
		tzo, utc := entityTime(s.cfg.Now())
		ss.result(iq, El(nsTime, "time").Add(
			El(nsTime, "tzo").Add(tzo),
			El(nsTime, "utc").Add(utc)))
	}
	f.serverFeatures = append(f.serverFeatures, nsTime)
}

// entityTime formats t as XEP-0202 wants: the zone offset as XEP-0082's
// TZD, always numeric ("+00:00" rather than "Z", which some clients do
// not parse), and the UTC time with milliseconds.
func entityTime(t time.Time) (tzo, utc string) {
	tzo = t.Format("-07:00")
	utc = t.UTC().Format("2006-01-02T15:04:05.000Z")
	return tzo, utc
}
