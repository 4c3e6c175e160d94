package xmpp

import (
	"context"
	"net"
	"strconv"
	"strings"
	"time"
)

// Finding a peer server (RFC 6120 §3.2 with XEP-0368): first the static
// host map of the settings (domain = "host:port", STARTTLS), then DNS SRV
// records _xmpps-server._tcp (direct TLS) and _xmpp-server._tcp
// (STARTTLS), merged by priority; a domain not in the map whose parent
// domain is (rooms.other.example under other.example) goes where its
// parent goes, then the domain itself on 5269. An IP
// literal domain is its own address. Left out: DNSSEC/DANE (RFC 7673)
// and mDNS discovery of LAN peers.

// peerAddr is one address to try for a domain.
type peerAddr struct {
	addr   string // host:port
	direct bool   // TLS from the first byte (XEP-0368)
}

// resolve lists the addresses to try for domain, best first.
func (f *federation) resolve(ctx context.Context, domain string) []peerAddr {
	// The host map covers a domain's subdomains too (rooms.<domain>).
	for d := strings.ToLower(domain); d != ""; {
		if a := f.cfg.Hosts[d]; a != "" {
			return []peerAddr{{addr: a}}
		}
		_, parent, ok := strings.Cut(d, ".")
		if !ok || !strings.Contains(parent, ".") && f.cfg.Hosts[parent] == "" {
			break
		}
		d = parent
	}
	if isLocalDomain(domain) {
		return f.resolveLocal(ctx, domain)
	}
	if ip := net.ParseIP(strings.Trim(domain, "[]")); ip != nil {
		return []peerAddr{{addr: net.JoinHostPort(ip.String(), "5269")}}
	}
	type srv struct {
		peerAddr
		prio uint16
	}
	var all []srv
	for _, s := range []struct {
		service string
		direct  bool
	}{{"xmpps-server", true}, {"xmpp-server", false}} {
		_, recs, err := f.cfg.Resolver.LookupSRV(ctx, s.service, "tcp", domain)
		if err != nil {
			continue
		}
		for _, r := range recs {
			if r.Target == "." || r.Target == "" {
				continue
			}
			all = append(all, srv{peerAddr{net.JoinHostPort(strings.TrimSuffix(r.Target, "."), strconv.Itoa(int(r.Port))), s.direct}, r.Priority})
		}
	}
	// A stable merge by priority; within one, direct TLS first (XEP-0368
	// §3 lets either go first).
	var out []peerAddr
	for len(all) > 0 {
		best := 0
		for i, s := range all {
			if s.prio < all[best].prio {
				best = i
			}
		}
		out = append(out, all[best].peerAddr)
		all = append(all[:best], all[best+1:]...)
	}
	if len(out) == 0 {
		out = append(out, peerAddr{addr: net.JoinHostPort(domain, "5269")})
	}
	return out
}

// localLookupTimeout bounds one mDNS lookup: a box on the LAN answers
// within a second; nothing answering means the peer is off.
const localLookupTimeout = 5 * time.Second

// isLocalDomain says whether domain is a link-local name (RFC 6762 §3).
func isLocalDomain(domain string) bool {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	return strings.HasSuffix(d, ".local") && d != ".local"
}

// resolveLocal finds a .local domain's server on the LAN; nothing found
// is no address (the attempt fails and is retried with back-off).
func (f *federation) resolveLocal(ctx context.Context, domain string) []peerAddr {
	if f.cfg.LookupLocal == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, localLookupTimeout)
	defer cancel()
	addrs, err := f.cfg.LookupLocal(ctx, strings.ToLower(strings.TrimSuffix(domain, ".")))
	if err != nil {
		f.srv.log.Info("federation: LAN peer not found by mDNS", "peer", domain, "err", err)
		return nil
	}
	f.srv.log.Info("federation: LAN peer found by mDNS", "peer", domain, "addrs", strings.Join(addrs, ","))
	out := make([]peerAddr, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, peerAddr{addr: a})
	}
	return out
}
