package xmpp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"time"
)

// XEP-0220 Server Dialback, with the dialback key generation of XEP-0185
// (HMAC-SHA256 keyed with SHA-256 of the box's secret, over receiving
// domain, originating domain and stream id) and the checks of XEP-0344
// that apply: dialback runs only over TLS (STARTTLS is required before
// anything else), the stream feature urn:xmpp:features:dialback is
// announced with <errors/> and errors are reported as dialback errors
// (item-not-found for a domain not served here, forbidden for a domain
// the policy refuses, remote-connection-failed when the authoritative
// server cannot be reached); and a peer whose TLS certificate verifies
// for the claimed domain (public roots or a pinned certificate) is
// accepted without the round trip to its authoritative server (§2.4
// "dialback with certificate"). A .local peer not on the allowlist is
// accepted only with a pinned certificate (s2s_trust.go). Verification otherwise opens a stream to
// the originating domain's authoritative server found like any peer
// (s2s_resolve.go) and asks <db:verify/>.

// dialbackKey is the XEP-0185 key for a stream id.
func (f *federation) dialbackKey(receiving, originating, streamID string) string {
	secret := sha256.Sum256(f.cfg.Secret)
	m := hmac.New(sha256.New, []byte(hex.EncodeToString(secret[:])))
	m.Write([]byte(strings.ToLower(receiving) + " " + strings.ToLower(originating) + " " + streamID))
	return hex.EncodeToString(m.Sum(nil))
}

// dialbackError is a <db:result/> or <db:verify/> of type error.
func dialbackError(local, from, to, id, typ, cond string) string {
	el := El(nsDialback, local, "from", from, "to", to, "id", id, "type", "error").Add(
		El(nsServer, "error", "type", typ).Add(El(nsStanzaErr, cond)))
	return string(el.Bytes(nsServer))
}

// dialbackResult is a peer asking to send from a domain (§2.1.1): the
// key is checked with the authoritative server, asynchronously; the
// stream goes on meanwhile.
func (c *s2sIn) dialbackResult(el *Element) *streamError {
	from, to, key := strings.ToLower(el.Get("from")), strings.ToLower(el.Get("to")), strings.TrimSpace(el.Text())
	if from == "" || to == "" || key == "" {
		return streamErr("bad-format", "a dialback request needs from, to and a key")
	}
	if _, err := parseJID(from); err != nil {
		return streamErr("invalid-from", "%q is not a domain", from)
	}
	if !c.f.ourDomain(to) {
		c.write(dialbackError("result", to, from, "", "cancel", "item-not-found"))
		return nil
	}
	if !c.f.allowed(from) {
		c.write(dialbackError("result", to, from, "", "auth", "forbidden"))
		return nil
	}
	if c.isAuthed(from) {
		c.write(string(El(nsDialback, "result", "from", to, "to", from, "type", "valid").Bytes(nsServer)))
		return nil
	}
	// A LAN peer proves itself by a pinned certificate only
	// (s2s_trust.go): until the owner approves it, it is refused.
	if !c.f.trusted(c.tc.ConnectionState(), from, c.ip) {
		c.write(dialbackError("result", to, from, "", "auth", "forbidden"))
		return nil
	}
	if n := len(c.authedDomains()); n >= maxStreamDomains {
		c.write(dialbackError("result", to, from, "", "cancel", "policy-violation"))
		return nil
	}
	if c.dbPending.Add(1) > maxDialbackPending {
		c.dbPending.Add(-1)
		c.write(dialbackError("result", to, from, "", "wait", "resource-constraint"))
		return nil
	}
	id := c.streamID
	c.f.wg.Add(1)
	go func() {
		defer c.f.wg.Done()
		defer c.dbPending.Add(-1)
		valid := c.f.peerVerified(c.tc.ConnectionState(), from)
		how := "dialback-certificate" // XEP-0344 §2.4: no round trip
		if !valid {
			how = "dialback"
			ctx, cancel := context.WithTimeout(c.f.ctx, c.f.cfg.DialTimeout)
			ok, err := c.f.verify(ctx, to, from, id, key)
			cancel()
			if err != nil {
				c.f.srv.log.Info("federation: dialback: authoritative server unreachable", "peer", from, "err", err)
				c.write(dialbackError("result", to, from, "", "cancel", "remote-connection-failed"))
				return
			}
			valid = ok
		}
		if !valid {
			c.f.srv.log.Info("federation: dialback key refused", "peer", from, "addr", c.ip)
			c.write(string(El(nsDialback, "result", "from", to, "to", from, "type", "invalid").Bytes(nsServer)))
			return
		}
		c.authenticate(from, how) // before the peer hears it may send
		c.write(string(El(nsDialback, "result", "from", to, "to", from, "type", "valid").Bytes(nsServer)))
	}()
	return nil
}

// dialbackVerify answers as the authoritative server (§2.1.3): is this
// the key we gave for that stream?
func (c *s2sIn) dialbackVerify(el *Element) *streamError {
	from, to, id, key := strings.ToLower(el.Get("from")), strings.ToLower(el.Get("to")), el.Get("id"), strings.TrimSpace(el.Text())
	if from == "" || to == "" || id == "" {
		return streamErr("bad-format", "a dialback verification needs from, to and id")
	}
	if !c.f.ourDomain(to) {
		c.write(dialbackError("verify", to, from, id, "cancel", "item-not-found"))
		return nil
	}
	want := c.f.dialbackKey(from, to, id)
	typ := "invalid"
	if subtle.ConstantTimeCompare([]byte(want), []byte(key)) == 1 {
		typ = "valid"
	}
	c.write(string(El(nsDialback, "verify", "from", to, "to", from, "id", id, "type", typ).Bytes(nsServer)))
	return nil
}

// verify asks originating's authoritative server whether key is the one
// it gave for streamID (receiving is our domain).
func (f *federation) verify(ctx context.Context, receiving, originating, streamID, key string) (bool, error) {
	st, err := f.dial(ctx, receiving, originating)
	if err != nil {
		return false, err
	}
	defer st.close()
	st.write(string(El(nsDialback, "verify", "from", receiving, "to", originating, "id", streamID).Add(key).Bytes(nsServer)))
	for {
		el, err := st.next(time.Until(deadlineOf(ctx)))
		if err != nil {
			return false, err
		}
		if el.Is(nsDialback, "verify") && el.Get("id") == streamID {
			return el.Get("type") == "valid", nil
		}
	}
}

func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(30 * time.Second)
}
