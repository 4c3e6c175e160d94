package mdns

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/grandcat/zeroconf"
)

// Finding another box's XMPP server on the LAN (DNS-SD browsing, RFC 6763
// §4, over multicast DNS): federation asks for a .local domain and gets
// the addresses of the _xmpp-server._tcp instances that serve it. A box
// announces its domain in the TXT record (domain=, see txtFor); an
// instance serves the domain it names there, and the subdomains of that
// domain (rooms.b.local goes where b.local goes). An instance without a
// domain= key is taken to serve its host name (b.local for the SRV
// target b.local.), which is what other servers announcing
// _xmpp-server._tcp on a LAN (Prosody with mdns, avahi service files)
// mean. IPv6 link-local addresses are left out (the answer does not say
// on which interface they are valid); IPv4 ones come first.

// LookupServer browses _xmpp-server._tcp on the LAN until an instance
// serving domain answers or ctx ends, and returns its addresses as
// host:port, best first. ifaces names the interfaces to ask on (empty:
// every multicast interface). The error says why nothing was found.
func LookupServer(ctx context.Context, domain string, ifaces []string) ([]string, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	var opts []zeroconf.ClientOption
	if len(ifaces) > 0 {
		var list []net.Interface
		for _, name := range ifaces {
			if ifc, err := net.InterfaceByName(name); err == nil {
				list = append(list, *ifc)
			}
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("mdns: none of the interfaces %v exists: check mdns.interfaces", ifaces)
		}
		opts = append(opts, zeroconf.SelectIfaces(list))
	}
	r, err := zeroconf.NewResolver(opts...)
	if err != nil {
		return nil, fmt.Errorf("mdns: cannot browse the LAN for %s: %w", domain, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	entries := make(chan *zeroconf.ServiceEntry, 8)
	if err := r.Browse(ctx, ServiceXMPPServer, "local.", entries); err != nil {
		return nil, fmt.Errorf("mdns: cannot browse the LAN for %s: %w", domain, err)
	}
	var found []string
	// zeroconf closes entries once ctx ends; until then it must be read
	// (it blocks on a full channel and would leak its sockets).
	for e := range entries {
		if found != nil {
			continue
		}
		if addrs := entryAddrs(e, domain); len(addrs) > 0 {
			found = addrs
			cancel()
		}
	}
	if found == nil {
		return nil, fmt.Errorf("mdns: no server for %s answered on the LAN (is the other box on, federating, and on the same network?)", domain)
	}
	return found, nil
}

// entryAddrs are the addresses of e if it serves domain, else nil.
func entryAddrs(e *zeroconf.ServiceEntry, domain string) []string {
	if e == nil || e.Port <= 0 || e.Port > 65535 || !serves(entryDomain(e), domain) {
		return nil
	}
	port := strconv.Itoa(e.Port)
	var out []string
	for _, ip := range e.AddrIPv4 {
		if ip.IsLoopback() || ip.IsUnspecified() {
			continue
		}
		out = append(out, net.JoinHostPort(ip.String(), port))
	}
	for _, ip := range e.AddrIPv6 {
		if ip.IsLoopback() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, net.JoinHostPort(ip.String(), port))
	}
	return out
}

// entryDomain is the XMPP domain an instance says it serves: its TXT
// domain=, else its host name.
func entryDomain(e *zeroconf.ServiceEntry) string {
	for _, t := range e.Text {
		if v, ok := strings.CutPrefix(t, "domain="); ok && v != "" {
			return strings.ToLower(strings.TrimSuffix(v, "."))
		}
	}
	return strings.ToLower(strings.TrimSuffix(e.HostName, "."))
}

// serves says whether an instance serving served handles domain: the
// domain itself or one of its subdomains.
func serves(served, domain string) bool {
	return served != "" && (domain == served || strings.HasSuffix(domain, "."+served))
}
