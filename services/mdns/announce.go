package mdns

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// DNS-SD service types the box announces.
const (
	ServiceIRCTLS     = "_ircs-u._tcp"       // IRC over TLS, RFC 7194
	ServiceIRC        = "_irc._tcp"          // plain IRC
	ServiceXMPPClient = "_xmpp-client._tcp"  // c2s with STARTTLS (5222)
	ServiceXMPPSTLS   = "_xmpps-client._tcp" // c2s direct TLS, XEP-0368 (5223)
	ServiceXMPPServer = "_xmpp-server._tcp"  // s2s, only with federation on
	ServiceHTTP       = "_http._tcp"         // web admin
	ServiceHTTPS      = "_https._tcp"        // web admin over TLS
)

// Announcement is one service to advertise: a DNS-SD type and the port it
// listens on.
type Announcement struct {
	Service string
	Port    int
}

// Listeners are the box's listen addresses, as the settings name them;
// Build turns them into the announcements.
type Listeners struct {
	IRCTLS            []string // irc.tls_listen
	IRCPlain          []string // irc.plain_listen
	XMPP              []string // xmpp.listen
	XMPPTLS           []string // xmpp.tls_listen
	Federation        []string // federation.listen
	FederationEnabled bool     // federation.enabled
	Web               string   // web.listen
	WebHTTPS          bool     // web.https
}

// Build lists what to announce: for each service the first listen address
// reachable from beyond this machine (Reachable); loopback-only listeners
// and listeners that are off are left out. One port per service type:
// DNS-SD names one instance per type, and a client needs only one.
func Build(l Listeners) []Announcement {
	var out []Announcement
	add := func(service string, addrs []string) {
		for _, a := range addrs {
			if port, ok := Reachable(a); ok {
				out = append(out, Announcement{Service: service, Port: port})
				return
			}
		}
	}
	add(ServiceIRCTLS, l.IRCTLS)
	add(ServiceIRC, l.IRCPlain)
	add(ServiceXMPPClient, l.XMPP)
	add(ServiceXMPPSTLS, l.XMPPTLS)
	if l.FederationEnabled {
		add(ServiceXMPPServer, l.Federation)
	}
	if l.Web != "" {
		if l.WebHTTPS {
			add(ServiceHTTPS, []string{l.Web})
		} else {
			add(ServiceHTTP, []string{l.Web})
		}
	}
	return out
}

// Reachable says whether a listener on listenAddr (host:port) can be
// reached from the LAN, and on which port: an empty host, an unspecified
// address (0.0.0.0, ::) or any non-loopback IP is; a loopback address
// (127.0.0.0/8, ::1) or "localhost" is not. A host name other than
// localhost is taken as reachable (the owner named it to be reached; no
// lookup is made). A malformed address or port 0 is not reachable.
func Reachable(listenAddr string) (port int, ok bool) {
	host, p, err := net.SplitHostPort(strings.TrimSpace(listenAddr))
	if err != nil {
		return 0, false
	}
	port, err = strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return 0, false
	}
	if host == "" {
		return port, true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 { // fe80::1%eth0
		host = host[:i]
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Unmap().IsLoopback() {
			return 0, false
		}
		return port, true
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return 0, false
	}
	return port, true
}

// txtFor is the TXT record of one announced service.
func txtFor(service, domain, version string, registrationOpen bool) []string {
	reg := "closed"
	if registrationOpen {
		reg = "open"
	}
	txt := []string{"domain=" + domain, "version=" + version, "registration=" + reg}
	if service == ServiceHTTP || service == ServiceHTTPS {
		txt = append(txt, "path=/admin/")
	}
	return txt
}
