package xmpp

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"time"

	"chatbox/services/chat"
)

// This file is the SASL stream feature (RFC 6120 §6) on the receiving
// side: SCRAM-SHA-256(-PLUS) and SCRAM-SHA-1(-PLUS) (RFC 5802, RFC 7677,
// channel binding tls-exporter RFC 9266 and tls-unique RFC 5929, its
// types advertised per XEP-0440), PLAIN (RFC 4616) only over TLS, and
// EXTERNAL (RFC 4422 Appendix A, XEP-0178) with a client certificate
// that an account has registered. SASL2 (XEP-0388) and FAST are left out.

// saslExchange is one SASL exchange in progress.
type saslExchange struct {
	mech  string
	scram *scramServer
}

// maxSASLFailures ends a connection that keeps guessing.
const maxSASLFailures = 5

// channelBindingTypes lists what this TLS connection can bind to.
func (c *conn) channelBindingTypes() []string {
	if c.tc == nil {
		return nil
	}
	cs := c.tc.ConnectionState()
	var types []string
	if _, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32); err == nil {
		types = append(types, "tls-exporter")
	}
	if cs.Version < tls.VersionTLS13 && len(cs.TLSUnique) > 0 {
		types = append(types, "tls-unique")
	}
	return types
}

func (c *conn) channelBinding(cbType string) ([]byte, bool) {
	if c.tc == nil {
		return nil, false
	}
	cs := c.tc.ConnectionState()
	switch cbType {
	case "tls-exporter":
		b, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
		return b, err == nil
	case "tls-unique":
		if cs.Version < tls.VersionTLS13 && len(cs.TLSUnique) > 0 {
			return cs.TLSUnique, true
		}
	}
	return nil, false
}

// mechanisms lists the SASL mechanisms offered now, strongest first.
func (c *conn) mechanisms() []string {
	if c.guest {
		return []string{"ANONYMOUS"}
	}
	var m []string
	if len(c.channelBindingTypes()) > 0 {
		m = append(m, "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS")
	}
	m = append(m, "SCRAM-SHA-256", "SCRAM-SHA-1")
	if c.plainAllowed() {
		m = append(m, "PLAIN")
	}
	if c.clientCert() != nil {
		m = append(m, "EXTERNAL")
	}
	return m
}

func (c *conn) clientCert() []byte {
	if c.tc == nil {
		return nil
	}
	if certs := c.tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		return certs[0].Raw
	}
	return nil
}

func (c *conn) saslFeatures() []*Element {
	f := El(nsSASL, "mechanisms")
	for _, m := range c.mechanisms() {
		f.Add(El(nsSASL, "mechanism").Add(m))
	}
	if types := c.channelBindingTypes(); len(types) > 0 {
		cb := El("urn:xmpp:sasl-cb:0", "sasl-channel-binding")
		for _, t := range types {
			cb.Add(El("urn:xmpp:sasl-cb:0", "channel-binding", "type", t))
		}
		return []*Element{f, cb}
	}
	return []*Element{f}
}

func (c *conn) saslFailure(cond, text string) {
	f := El(nsSASL, "failure").Add(El(nsSASL, cond))
	if text != "" {
		f.Add(El(nsSASL, "text").Add(text))
	}
	c.send([]byte(f.String()))
	c.sasl = nil
}

// handleSASL runs <auth/>, <response/> and <abort/>.
func (c *conn) handleSASL(el *Element) {
	switch el.Local {
	case "abort":
		c.saslFailure("aborted", "")
		return
	case "auth":
		c.sasl = nil
		if err := c.srv.core.LoginAllowed(c.ip); err != nil {
			c.saslFailure("temporary-auth-failure", err.Error())
			return
		}
		mech := el.Get("mechanism")
		offered := false
		for _, m := range c.mechanisms() {
			offered = offered || m == mech
		}
		if !offered {
			if mech == "PLAIN" {
				c.saslFailure("encryption-required", "PLAIN is only accepted over TLS")
			} else {
				c.saslFailure("invalid-mechanism", "")
			}
			return
		}
		in, ok := saslPayload(el)
		if !ok {
			c.saslFailure("incorrect-encoding", "")
			return
		}
		switch mech {
		case "PLAIN":
			c.saslPlain(in)
		case "EXTERNAL":
			c.saslExternal(in)
		case "ANONYMOUS":
			c.saslAnonymous()
		default:
			// RFC 5802's downgrade check (a client saying "y" while -PLUS
			// is offered fails) is applied where every binding-capable
			// client has a type it can use: with TLS 1.2 (tls-unique).
			// Under TLS 1.3 only tls-exporter exists, and clients that know
			// only tls-unique (slixmpp 1.8, older Dino and libstrophe)
			// rightly say "y"; refusing them would lock them out.
			plus := slices.Contains(c.channelBindingTypes(), "tls-unique")
			var cb channelBinding
			if c.tc != nil {
				cb = c.channelBinding
			}
			sc, err := newSCRAMServer(mech, c.scramLookup(mech), cb, plus, c.srv.secret)
			if err != nil {
				c.saslFailure("invalid-mechanism", err.Error())
				return
			}
			c.sasl = &saslExchange{mech: mech, scram: sc}
			if el.Text() == "" {
				// No initial response: an empty challenge asks for it.
				c.send([]byte(El(nsSASL, "challenge").String()))
				return
			}
			c.scramStep(in)
		}
	case "response":
		if c.sasl == nil {
			c.saslFailure("malformed-request", "no exchange in progress")
			return
		}
		in, ok := saslPayload(el)
		if !ok {
			c.saslFailure("incorrect-encoding", "")
			return
		}
		c.scramStep(in)
	default:
		c.saslFailure("malformed-request", "")
	}
}

// saslPayload decodes an element's base64 text ("=" is an empty one).
func saslPayload(el *Element) ([]byte, bool) {
	t := strings.TrimSpace(el.Text())
	if t == "" || t == "=" {
		return nil, true
	}
	b, err := base64.StdEncoding.DecodeString(t)
	return b, err == nil
}

func (c *conn) scramLookup(mech string) func(string) (chat.SCRAMKeys, error) {
	return func(user string) (chat.SCRAMKeys, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cr, err := c.srv.core.Credentials(ctx, user, c.ip)
		switch {
		case errors.Is(err, chat.ErrTooManyAttempts):
			return chat.SCRAMKeys{}, &saslError{Condition: "temporary-auth-failure", Text: err.Error()}
		case errors.Is(err, chat.ErrBadPassword):
			return chat.SCRAMKeys{}, err // unknown account: the exchange fails at the proof
		case err != nil:
			c.srv.log.Error("read credentials", "account", user, "err", err)
			return chat.SCRAMKeys{}, &saslError{Condition: "temporary-auth-failure", Text: "the server could not check the password; try again"}
		}
		if strings.HasPrefix(mech, "SCRAM-SHA-1") {
			return cr.SHA1, nil
		}
		return cr.SHA256, nil
	}
}

func (c *conn) scramStep(in []byte) {
	sc := c.sasl.scram
	out, done, err := sc.Step(in)
	if err != nil {
		var se *saslError
		cond, text := "not-authorized", ""
		if errors.As(err, &se) {
			cond, text = se.Condition, se.Text
		}
		if cond == "not-authorized" {
			c.loginFailed(sc.Username())
			text = "wrong name or password"
		}
		c.saslFailure(cond, text)
		return
	}
	if !done {
		c.send([]byte(El(nsSASL, "challenge").Add(base64.StdEncoding.EncodeToString(out)).String()))
		return
	}
	user := sc.Username()
	if a := sc.Authzid(); a != "" && !c.authzOK(a, user) {
		c.saslFailure("invalid-authzid", "you may only log in as yourself")
		return
	}
	c.succeed(user, out)
}

// authzOK accepts an authorization identity naming the account itself.
func (c *conn) authzOK(authzid, account string) bool {
	return strings.EqualFold(authzid, account) || strings.EqualFold(authzid, account+"@"+c.srv.cfg.Domain)
}

func (c *conn) loginFailed(user string) {
	c.srv.core.LoginFailed(c.ip, user, "xmpp")
	c.srv.mu.Lock()
	c.failures++
	n := c.failures
	c.srv.mu.Unlock()
	if n >= maxSASLFailures {
		c.fail(streamErr("policy-violation", "too many failed logins"))
	}
}

func (c *conn) saslPlain(in []byte) {
	parts := bytes.Split(in, []byte{0})
	if len(parts) != 3 {
		c.saslFailure("malformed-request", "PLAIN needs authzid NUL authcid NUL password")
		return
	}
	authz, user, pass := string(parts[0]), string(parts[1]), string(parts[2])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	acct, err := c.srv.core.Authenticate(ctx, user, pass, c.ip, "xmpp")
	if err != nil {
		if errors.Is(err, chat.ErrTooManyAttempts) {
			c.saslFailure("temporary-auth-failure", err.Error())
			return
		}
		c.saslFailure("not-authorized", "wrong name or password")
		c.loginFailed(user)
		return
	}
	if authz != "" && !c.authzOK(authz, acct.Name) {
		c.saslFailure("invalid-authzid", "you may only log in as yourself")
		return
	}
	c.succeed(acct.Name, nil)
}

func (c *conn) saslExternal(in []byte) {
	der := c.clientCert()
	authz := string(in)
	if i := strings.IndexByte(authz, '@'); i >= 0 && strings.EqualFold(authz[i+1:], c.srv.cfg.Domain) {
		authz = authz[:i]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	acct, err := c.srv.core.AuthenticateCertificate(ctx, der, authz, c.ip, "xmpp")
	if err != nil {
		c.saslFailure("not-authorized", "this certificate logs in no account here")
		return
	}
	c.succeed(acct.Name, nil)
}

// succeed ends SASL: the stream restarts, now authenticated.
func (c *conn) succeed(account string, additional []byte) {
	s := El(nsSASL, "success")
	if len(additional) > 0 {
		s.Add(base64.StdEncoding.EncodeToString(additional))
	}
	c.send([]byte(s.String()))
	c.account = chat.Fold(account)
	c.sasl = nil
	c.state = stateBind
	c.restart = true
	c.restartReader()
	c.srv.log.Info("logged in", "account", c.account, "addr", c.ip)
}

// plainAllowed says whether PLAIN may be offered: over TLS, on a listener
// set to allow plaintext, or on a WebSocket that is HTTPS or loopback.
func (c *conn) plainAllowed() bool {
	if c.kind == kindWebSocket {
		return c.secure
	}
	return c.tc != nil || c.srv.cfg.AllowPlaintext
}
