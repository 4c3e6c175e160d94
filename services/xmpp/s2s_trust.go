package xmpp

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Trust on first contact for LAN peers (the design's answer to RFC 6120
// §13.7.2 on a network without public names): a peer under .local
// (RFC 6762) cannot be vouched for by DNS, so XEP-0220 dialback proves
// nothing there, and its certificate comes from the other box's own CA.
// Such a peer is accepted only when its certificate is pinned
// (federation.pinned: the SHA-256 of the certificate or of a CA in its
// chain) or when the settings' allowlist (federation.allow) names it;
// otherwise the first contact, either way, holds it as pending: its
// certificate's SHA-256, domain, address and time are kept (at most
// maxPendingPeers, the oldest dropped) for the owner to approve or
// reject in the web admin. Meanwhile stanzas to it wait in its queue
// (bounded, bounced at QueueTimeout as for any unreachable peer; tried
// again every approvalRetry at most, also while the other box's owner
// has not approved this one) and its dialback requests are refused
// (forbidden). Approval pins the
// certificate and retries the queue at once; rejection blocks the domain
// and bounces what waits for it. Domains outside .local are unchanged:
// public CA or pin (SASL EXTERNAL), else dialback.

// FederationPeer is a peer server as the owner sees it.
type FederationPeer struct {
	Domain      string    `json:"domain"`
	State       string    `json:"state"`                 // PeerPending, PeerApproved or PeerBlocked
	Fingerprint string    `json:"fingerprint,omitempty"` // "sha256:<hex>" of its certificate (pending, approved)
	Addr        string    `json:"addr,omitempty"`        // where it was met (pending)
	Since       time.Time `json:"since,omitzero"`        // first contact (pending)
}

// Peer states.
const (
	PeerPending  = "pending"
	PeerApproved = "approved"
	PeerBlocked  = "blocked"
)

// maxPendingPeers bounds the peers held for approval: a LAN full of
// strangers cannot grow the list.
const maxPendingPeers = 64

// errAwaitingApproval is an outgoing attempt to a peer not approved yet;
// errPeerAwaitsApproval is a LAN peer refusing us (its owner has not
// approved this box yet). Either is retried every approvalRetry at most.
var (
	errAwaitingApproval   = errors.New("awaiting the owner's approval in the web admin (Federation page)")
	errPeerAwaitsApproval = errors.New("the other box refused us: its owner must approve this box on its Federation page")
)

// approvalRetry caps the back-off while a person approves a LAN peer.
const approvalRetry = 5 * time.Second

// trust holds the pins, the blocked domains and the pending peers; the
// web admin changes them while the box runs.
type trust struct {
	mu      sync.Mutex
	pins    map[string]string // domain -> "sha256:hex" (normalised)
	block   []string
	allow   []string
	pending map[string]FederationPeer
}

func newTrust(cfg Federation) *trust {
	t := &trust{pins: map[string]string{}, pending: map[string]FederationPeer{},
		block: slices.Clone(cfg.Block), allow: slices.Clone(cfg.Allow)}
	for d, p := range cfg.Pinned {
		t.pins[strings.ToLower(d)] = normalizePin(p)
	}
	return t
}

// normalizePin is a fingerprint as "sha256:<lower-case hex>".
func normalizePin(p string) string {
	p = strings.ToLower(strings.TrimSpace(p))
	p = strings.TrimPrefix(p, "sha256:")
	return "sha256:" + strings.ReplaceAll(p, ":", "")
}

// certFingerprint is a certificate's pin.
func certFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pin is the pin that applies to domain: its own or its parent's
// (rooms.b.local is served by b.local's certificate).
func (t *trust) pin(domain string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := strings.ToLower(domain)
	if p := t.pins[d]; p != "" {
		return p
	}
	if _, parent, ok := strings.Cut(d, "."); ok && strings.Contains(parent, ".") {
		return t.pins[parent]
	}
	return ""
}

func (t *trust) blocked(domain string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.ContainsFunc(t.block, func(b string) bool { return strings.EqualFold(b, domain) })
}

// listed says whether the allowlist names domain (or its parent), and
// whether there is an allowlist at all.
func (t *trust) listed(domain string) (named, any bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := strings.ToLower(domain)
	_, parent, _ := strings.Cut(d, ".")
	for _, a := range t.allow {
		if strings.EqualFold(a, d) || strings.EqualFold(a, parent) && strings.Contains(parent, ".") {
			return true, true
		}
	}
	return false, len(t.allow) > 0
}

// needsApproval says whether a peer must be pinned or listed before the
// box talks to it: LAN (.local) peers not on the allowlist.
func (f *federation) needsApproval(domain string) bool {
	if !isLocalDomain(domain) {
		return false
	}
	named, _ := f.trust.listed(domain)
	return !named
}

// trusted says whether a peer's TLS certificate lets the box talk to
// domain; when it does not and the peer needs approval, the peer is
// recorded as pending (met at addr).
func (f *federation) trusted(cs tls.ConnectionState, domain, addr string) bool {
	if !f.needsApproval(domain) || f.peerVerified(cs, domain) {
		return true
	}
	fp := ""
	if len(cs.PeerCertificates) > 0 {
		fp = certFingerprint(cs.PeerCertificates[0].Raw)
	}
	f.holdPending(domain, fp, addr)
	return false
}

// holdPending records a peer awaiting approval (the latest certificate
// and address; the first contact's time).
func (f *federation) holdPending(domain, fp, addr string) {
	if fp == "" {
		f.srv.log.Info("federation: LAN peer without a certificate refused (it cannot be pinned)", "peer", domain, "addr", addr)
		return
	}
	t := f.trust
	domain = strings.ToLower(domain)
	t.mu.Lock()
	p, seen := t.pending[domain]
	if !seen {
		if len(t.pending) >= maxPendingPeers {
			var oldest string
			for d, q := range t.pending {
				if oldest == "" || q.Since.Before(t.pending[oldest].Since) {
					oldest = d
				}
			}
			delete(t.pending, oldest)
		}
		p = FederationPeer{Domain: domain, State: PeerPending, Since: time.Now().UTC()}
	}
	changed := p.Fingerprint != fp
	p.Fingerprint, p.Addr = fp, addr
	t.pending[domain] = p
	t.mu.Unlock()
	if !seen || changed {
		f.srv.log.Warn("federation: LAN peer awaits approval in the web admin (Federation page) or federation.pinned",
			"peer", domain, "fingerprint", fp, "addr", addr)
	}
}

// FederationPeers lists the peers awaiting approval, the approved
// (pinned) and the blocked ones, by domain; nil without federation.
func (s *Server) FederationPeers() []FederationPeer {
	f := s.fed
	if f == nil {
		return nil
	}
	t := f.trust
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []FederationPeer
	for _, p := range t.pending {
		out = append(out, p)
	}
	for d, pin := range t.pins {
		out = append(out, FederationPeer{Domain: d, State: PeerApproved, Fingerprint: pin})
	}
	for _, d := range t.block {
		out = append(out, FederationPeer{Domain: strings.ToLower(d), State: PeerBlocked})
	}
	slices.SortFunc(out, func(a, b FederationPeer) int {
		return strings.Compare(a.State+" "+a.Domain, b.State+" "+b.Domain)
	})
	return out
}

// ApproveFederationPeer pins fingerprint for domain ("" means the one
// the pending peer showed) and retries what waits for it at once. It
// refuses a fingerprint other than the pending peer's (the peer changed
// its certificate since the owner looked: look again).
func (s *Server) ApproveFederationPeer(domain, fingerprint string) (string, error) {
	f := s.fed
	if f == nil {
		return "", errors.New("federation is off: set federation.enabled")
	}
	domain = strings.ToLower(strings.TrimSpace(domain))
	t := f.trust
	t.mu.Lock()
	p, pending := t.pending[domain]
	switch {
	case fingerprint == "" && !pending:
		t.mu.Unlock()
		return "", fmt.Errorf("%s is not awaiting approval: give its certificate's fingerprint to pin it", domain)
	case fingerprint == "":
		fingerprint = p.Fingerprint
	case pending && normalizePin(fingerprint) != p.Fingerprint:
		t.mu.Unlock()
		return "", fmt.Errorf("%s now shows the certificate %s, not %s: check it again before approving", domain, p.Fingerprint, normalizePin(fingerprint))
	}
	pin := normalizePin(fingerprint)
	if len(pin) != len("sha256:")+64 || strings.Trim(pin[len("sha256:"):], "0123456789abcdef") != "" {
		t.mu.Unlock()
		return "", fmt.Errorf("%q is not a SHA-256 fingerprint (64 hex digits)", fingerprint)
	}
	t.pins[domain] = pin
	for d := range t.pending { // its subdomains are served by the same certificate
		if d == domain || strings.HasSuffix(d, "."+domain) {
			delete(t.pending, d)
		}
	}
	t.block = slices.DeleteFunc(t.block, func(b string) bool { return strings.EqualFold(b, domain) })
	t.mu.Unlock()
	f.srv.log.Info("federation: peer approved", "peer", domain, "fingerprint", pin)
	for _, p := range f.peersTo(domain) {
		p.retryNow()
	}
	return pin, nil
}

// RejectFederationPeer blocks domain: it is forgotten as pending, its
// pin is dropped, its streams are closed and what waits for it is
// bounced.
func (s *Server) RejectFederationPeer(domain string) error {
	f := s.fed
	if f == nil {
		return errors.New("federation is off: set federation.enabled")
	}
	domain = strings.ToLower(strings.TrimSpace(domain))
	if domain == "" {
		return errors.New("name the domain to block")
	}
	t := f.trust
	t.mu.Lock()
	delete(t.pending, domain)
	delete(t.pins, domain)
	if !slices.ContainsFunc(t.block, func(b string) bool { return strings.EqualFold(b, domain) }) {
		t.block = append(t.block, domain)
	}
	t.mu.Unlock()
	f.srv.log.Info("federation: peer blocked", "peer", domain)
	for _, p := range f.peersTo(domain) {
		p.retireNow()
		p.bounceAll("remote-server-not-found", domain+" is blocked by this server's owner")
	}
	f.mu.Lock()
	var ins []*s2sIn
	for c := range f.in {
		if c.isAuthed(domain) || strings.EqualFold(c.from, domain) {
			ins = append(ins, c)
		}
	}
	f.mu.Unlock()
	for _, c := range ins {
		c.fail(streamErr("policy-violation", "this server does not federate with %s", domain))
	}
	return nil
}

// peersTo are the outgoing peers for domain and its subdomains.
func (f *federation) peersTo(domain string) []*peerOut {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*peerOut
	for _, p := range f.out {
		if strings.EqualFold(p.remote, domain) || strings.HasSuffix(strings.ToLower(p.remote), "."+domain) {
			out = append(out, p)
		}
	}
	return out
}
