package xmpp

// XEP-0092 Software Version: the server answers jabber:iq:version queries
// to its domain with its name and version. The operating system is not
// told (the XEP makes it optional and it helps only attackers). Queries
// to a full JID are routed to that client.

const nsVersion = "jabber:iq:version"

func registerVersion(f *features, s *Server) {
	f.serverIQ[nsVersion] = func(ss *session, iq *Element) {
		if iq.Get("type") != "get" {
			ss.replyErr(iq, "bad-request", "the software version is asked with an IQ get")
			return
		}
		ss.result(iq, El(nsVersion, "query").Add(
			El(nsVersion, "name").Add("chatbox"),
			El(nsVersion, "version").Add(s.cfg.Version)))
	}
	f.serverFeatures = append(f.serverFeatures, nsVersion)
}
