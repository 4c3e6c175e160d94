package chat

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Direct messages with users of other servers (federation, RFC 6120 §10
// and RFC 6121 §8 on the XMPP side). A remote user has no account here; in
// history, in the offline queue and in deliveries it is named by its bare
// JID, lower-cased ("alice@other.example"), which no account name can be
// (names hold no '@'), so the two never collide. Such a message is a
// direct message like any other: it is stored (MAM and IRC CHATHISTORY
// show both sides of the conversation), it waits in the recipient's
// offline queue when the recipient has no session, and it reaches every
// session of the local account, whichever door. The XMPP door carries the
// messages across (RemoteRouter); the IRC door shows a remote user by the
// nick rule in its remote.go.

// RemoteRouter carries direct messages to users of other servers. The
// XMPP door sets it (SetRemoteRouter) when federation runs.
type RemoteRouter interface {
	// RemoteAllowed says whether messages may go to that domain now (the
	// box federates with it).
	RemoteAllowed(domain string) bool
	// RouteRemote sends a stored message to its remote recipient (m.To is
	// a bare JID). It must not block and must not call the core; an error
	// says why the message could not be queued for the peer.
	RouteRemote(m *Message, from SessionRef) error
}

// SetRemoteRouter makes r carry messages to remote users (nil: nobody
// does, and SendRemote fails with ErrNotFound).
func (c *Core) SetRemoteRouter(r RemoteRouter) {
	c.mu.Lock()
	c.remote = r
	c.mu.Unlock()
}

// IsRemote reports whether a name in a message or delivery (From, To,
// SessionRef.Account) is a remote user's bare JID rather than an account.
func IsRemote(name string) bool { return strings.IndexByte(name, '@') >= 0 }

// maxJIDPart is RFC 7622's bound on each part of a JID, in bytes.
const maxJIDPart = 1023

// RemoteJID checks a remote user's bare JID and returns it in the form the
// core keeps (lower case). The domain must be one the box does not serve:
// that is for the caller to know.
func RemoteJID(jid string) (string, error) {
	local, domain, ok := strings.Cut(jid, "@")
	switch {
	case !ok || local == "" || domain == "":
		return "", fmt.Errorf("%w: %q is not a bare JID user@domain", ErrBadName, jid)
	case len(local) > maxJIDPart || len(domain) > maxJIDPart:
		return "", fmt.Errorf("%w: %q has a part longer than %d bytes", ErrBadName, jid, maxJIDPart)
	case !utf8.ValidString(jid):
		return "", fmt.Errorf("%w: %q is not UTF-8", ErrBadName, jid)
	case strings.ContainsAny(jid, "/\"&'<>: \t\r\n\x00") || strings.Contains(domain, "@"):
		return "", fmt.Errorf("%w: %q holds a character a bare JID cannot", ErrBadName, jid)
	}
	return strings.ToLower(jid), nil
}

// DeliverRemote stores a direct message from a remote user (from, a bare
// JID; resource, the sending client's, for SessionRef.Resource) to the
// local account to, and routes it to every session of to; when it has
// none, the message waits in its offline queue. The message-size bound
// and the rate limit (per remote JID) apply as to local senders. The
// returned message is durable: the door acknowledges nothing before.
func (c *Core) DeliverRemote(ctx context.Context, from, resource, to string, kind MessageKind, body, extra string) (Message, error) {
	from, err := RemoteJID(from)
	if err != nil {
		return Message{}, err
	}
	to = Fold(to)
	if _, _, err := c.store.Account(ctx, to); err != nil {
		if errors.Is(err, ErrNotFound) {
			return Message{}, fmt.Errorf("no account %q: %w", to, ErrNotFound)
		}
		return Message{}, err
	}
	if err := c.checkRemoteBody(from, body); err != nil {
		return Message{}, err
	}
	c.mu.Lock()
	online := len(c.byAcct[to]) > 0
	c.mu.Unlock()
	now := c.now().UTC()
	m := Message{ID: newMessageID(now), Time: now, From: from, FromNick: from,
		To: to, Kind: kindOrNormal(kind), Body: body, Extra: extra}
	var offline []string
	if !online {
		offline = []string{to}
	}
	if err := c.store.AppendMessage(ctx, &m, offline); err != nil {
		return Message{}, fmt.Errorf("store message: %w", err)
	}
	ref := SessionRef{Account: from, Door: "s2s", Resource: resource}
	n := 0
	c.mu.Lock()
	for _, os := range c.byAcct[to] {
		os.sink.Deliver(Delivery{Kind: DelMessage, Message: &m, From: ref})
		n++
	}
	c.mu.Unlock()
	if online && n == 0 {
		// The recipient's last session ended between the check and the
		// delivery: keep the message for its next login.
		if err := c.store.QueueOffline(ctx, to, m.Seq); err != nil {
			c.log.Error("queue a remote message for an offline recipient", "to", to, "err", err)
		}
	}
	c.publish(Event{Type: EventMessage, Account: from, Door: "s2s", Recipients: n})
	return m, nil
}

// SendRemote stores a direct message from session s to a remote user (to,
// a bare JID) and hands it to the RemoteRouter, which sends it across;
// the sender's other sessions get a Carbon and the sending session an
// Echo, as with SendDirect. ErrNotFound when no router serves the
// domain; ErrForbidden for guests. The returned message is durable.
func (c *Core) SendRemote(ctx context.Context, s *Session, to string, kind MessageKind, body, extra string) (Message, error) {
	to, err := RemoteJID(to)
	if err != nil {
		return Message{}, err
	}
	if s.info.Guest {
		return Message{}, fmt.Errorf("%w: guests may only speak in rooms", ErrForbidden)
	}
	if IsRemote(s.info.Account) {
		return Message{}, fmt.Errorf("%w: messages between users of other servers are not relayed here", ErrForbidden)
	}
	_, domain, _ := strings.Cut(to, "@")
	c.mu.Lock()
	r := c.remote
	c.mu.Unlock()
	if r == nil || !r.RemoteAllowed(domain) {
		return Message{}, fmt.Errorf("%w: this box does not exchange messages with %s", ErrNotFound, domain)
	}
	if err := c.checkBody(s, body); err != nil {
		return Message{}, err
	}
	now := c.now().UTC()
	m := Message{ID: newMessageID(now), Time: now, From: s.info.Account, FromNick: s.info.Account,
		To: to, Kind: kindOrNormal(kind), Body: body, Extra: extra}
	if err := c.store.AppendMessage(ctx, &m, nil); err != nil {
		return Message{}, fmt.Errorf("store message: %w", err)
	}
	if err := r.RouteRemote(&m, s.ref()); err != nil {
		return m, fmt.Errorf("send to %s: %w", to, err)
	}
	c.mu.Lock()
	if !s.closed {
		for _, os := range c.byAcct[s.info.Account] {
			if os != s {
				os.sink.Deliver(Delivery{Kind: DelMessage, Message: &m, From: s.ref(), Carbon: true})
			}
		}
		s.sink.Deliver(Delivery{Kind: DelMessage, Message: &m, From: s.ref(), Echo: true})
	}
	c.mu.Unlock()
	c.publish(Event{Type: EventMessage, Account: m.From, Door: s.info.Door, Recipients: 1})
	return m, nil
}

// checkRemoteBody is checkBody for a remote sender: size, UTF-8 and the
// per-sender rate limit, keyed by its bare JID.
func (c *Core) checkRemoteBody(from, body string) error {
	if len(body) > c.opts.Limits.MaxMessageBytes {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLong, len(body), c.opts.Limits.MaxMessageBytes)
	}
	if strings.TrimSpace(body) == "" {
		return ErrEmptyMessage
	}
	if !utf8.ValidString(body) {
		return ErrInvalidUTF8
	}
	if !c.sendLimit.Allow(from) {
		return ErrRateLimited
	}
	return nil
}

// maxRemoteSessions bounds the sessions of one remote user: one per room
// it is in here (and per resource).
const maxRemoteSessions = 100

// OpenRemote starts a session for a remote user (jid, a bare JID) taking
// part in rooms here (XEP-0045 over federation). Its account is the bare
// JID, so room affiliations, bans and history name the user as on its
// server; it has no credentials, vCard or offline queue here, is no box
// admin, and its direct messages go through the door's federation. It is
// not bound by SessionsPerAccount (a remote user has one session per room
// it is in) but by maxRemoteSessions.
func (c *Core) OpenRemote(ctx context.Context, jid string, info SessionInfo, sink Sink) (*Session, error) {
	account, err := RemoteJID(jid)
	if err != nil {
		return nil, err
	}
	if sink == nil {
		return nil, errors.New("chat: session needs a sink")
	}
	info.Account, info.Guest = account, false
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrSessionClosed
	}
	if len(c.byAcct[account]) >= maxRemoteSessions {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w (%d for %s)", ErrTooManySessions, maxRemoteSessions, account)
	}
	c.nextID++
	s := &Session{c: c, id: c.nextID, info: info, sink: sink,
		presence: Presence{Show: ShowOffline}}
	c.sessions[s.id] = s
	c.byAcct[account] = append(c.byAcct[account], s)
	c.mu.Unlock()
	c.publish(Event{Type: EventSessionOpened, Account: account, Door: info.Door, Addr: info.Addr})
	return s, nil
}
