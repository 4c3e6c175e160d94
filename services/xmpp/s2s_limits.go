package xmpp

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Per-peer limits of federation (what RFC 6120 §13.12 asks of a server
// facing other servers: bounded resources per peer, rate limits):
//
//   - Rate: stanzas from one remote domain, over all its incoming
//     streams together, pass a token bucket (Federation.StanzasPerSecond,
//     burst StanzaBurst). A stanza over the limit is dropped; a message
//     or an IQ request is answered with the stanza error
//     <policy-violation/> (type wait, RFC 6120 §8.3.3.12) so its sender
//     learns it was not delivered; presence and errors are dropped
//     silently (answering a flood would double it). The stream stays up:
//     a stream error would only make the peer reconnect and resend. Each
//     stream also keeps the c2s reader's pace (it stops reading when the
//     c2s rate is exceeded), which bounds what one connection can push.
//   - Memory, outgoing: one peer's queue holds at most QueueLimit
//     stanzas and QueueBytes bytes (as they will be written); beyond,
//     the sender gets resource-constraint.
//   - Memory, incoming: a stanza is bounded by the c2s reader's size and
//     depth limits; one stream may have at most maxDialbackPending
//     dialback verifications under way and authenticate at most
//     maxStreamDomains domains (dialback errors resource-constraint and
//     policy-violation beyond); connections per address are bounded as
//     for clients.
//
// Left out: limits on a peer's share of rooms and remote occupants
// (xep0045_s2s_muc.go) and on kept offline messages (s2s_route.go).

const (
	maxDialbackPending = 16
	maxStreamDomains   = 64
	// maxRateBuckets bounds the per-domain buckets; past it the idle
	// (full) ones are dropped.
	maxRateBuckets = 4096
)

type rateBucket struct {
	tokens float64
	at     time.Time
}

// peerRates are the per-remote-domain token buckets.
type peerRates struct {
	rate  float64
	burst float64

	mu      sync.Mutex
	buckets map[string]*rateBucket
	dropped map[string]time.Time // last drop logged, per domain
}

func newPeerRates(rate float64, burst int) *peerRates {
	return &peerRates{rate: rate, burst: float64(burst), buckets: map[string]*rateBucket{}, dropped: map[string]time.Time{}}
}

// admit takes a token for domain; false means over the limit.
func (r *peerRates) admit(domain string, now time.Time) bool {
	domain = strings.ToLower(domain)
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.buckets[domain]
	if b == nil {
		if len(r.buckets) >= maxRateBuckets {
			for d, o := range r.buckets {
				if o.tokens+now.Sub(o.at).Seconds()*r.rate >= r.burst {
					delete(r.buckets, d)
				}
			}
		}
		b = &rateBucket{tokens: r.burst, at: now}
		r.buckets[domain] = b
	}
	b.tokens = min(r.burst, b.tokens+now.Sub(b.at).Seconds()*r.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// shouldLog says whether a drop for domain is worth a log line (one a
// minute per domain).
func (r *peerRates) shouldLog(domain string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.dropped[domain]) < time.Minute {
		return false
	}
	if len(r.dropped) >= maxRateBuckets {
		clear(r.dropped)
	}
	r.dropped[domain] = now
	return true
}

// overRate handles a stanza over its domain's rate: it says whether the
// stanza must be dropped, and answers it when that is useful.
func (c *s2sIn) overRate(el *Element, from string) bool { return c.f.rateDrop(el, from) }

// rateDrop is overRate for any stream from the peer (also an outgoing
// bidirectional one, xep0288_bidi.go).
func (f *federation) rateDrop(el *Element, from string) bool {
	now := time.Now()
	if f.rates.admit(from, now) {
		return false
	}
	if f.rates.shouldLog(from, now) {
		f.srv.log.Warn("federation: peer over its rate; dropping stanzas", "peer", from,
			"stanzas_per_second", f.cfg.StanzasPerSecond, "burst", f.cfg.StanzaBurst)
	}
	typ := el.Get("type")
	if el.Local == "presence" || typ == "error" || typ == "result" {
		return true
	}
	f.send(stanzaErrorReply(renamespace(el, nsServer, nsClient), "wait", "policy-violation",
		fmt.Sprintf("%s sends more than %g stanzas a second: slow down", from, f.cfg.StanzasPerSecond)))
	return true
}

// authedDomains are the domains the stream authenticated.
func (c *s2sIn) authedDomains() []string {
	c.amu.Lock()
	defer c.amu.Unlock()
	out := make([]string, 0, len(c.domains))
	for d := range c.domains {
		out = append(out, d)
	}
	return out
}
