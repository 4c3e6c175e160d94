package xmpp

// XEP-0199 XMPP Ping: the server answers pings to its domain and to an
// account's bare JID on the account's behalf, and pings idle clients
// itself (conn.idle). Pings to full JIDs are routed to the client.

const nsPing = "urn:xmpp:ping"

func registerPing(f *features, _ *Server) {
	pong := func(ss *session, iq *Element) { ss.result(iq, nil) }
	f.serverIQ[nsPing] = pong
	f.accountIQ[nsPing] = pong
	f.serverFeatures = append(f.serverFeatures, nsPing)
}
