package irc

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"

	"chatbox/services/chat"
)

// IRCv3 SASL 3.2 (https://ircv3.net/specs/extensions/sasl-3.2) with the
// PLAIN mechanism (RFC 4616), checked against the account's stored SCRAM
// keys, and EXTERNAL (RFC 4422 appendix A): the TLS client certificate,
// registered to the account with NickServ CERT ADD.

const maxSASL = 8192 // bytes of a decoded SASL response

func handleAuthenticate(r *request) {
	c := r.c
	arg := r.msg.Params[0]
	c.mu.Lock()
	logged := c.account != ""
	mech := c.saslMech
	c.mu.Unlock()
	if logged {
		r.numeric(ERR_SASLALREADY, "You have already authenticated using SASL")
		return
	}
	if arg == "*" {
		c.resetSASL()
		r.numeric(ERR_SASLABORTED, "SASL authentication aborted")
		return
	}
	if mech == "" {
		mech = strings.ToUpper(arg)
		if mech != "PLAIN" && mech != "EXTERNAL" {
			r.numeric(RPL_SASLMECHS, "PLAIN,EXTERNAL", "are available SASL mechanisms")
			r.numeric(ERR_SASLFAIL, "SASL authentication failed")
			return
		}
		if mech == "EXTERNAL" && c.clientCert == nil {
			r.numeric(ERR_SASLFAIL, "SASL authentication failed: EXTERNAL needs a TLS client certificate")
			return
		}
		c.mu.Lock()
		c.saslMech = mech
		c.saslBuf = nil
		c.mu.Unlock()
		r.send(makeMsg("", "AUTHENTICATE", "+"))
		return
	}
	if len(arg) > 400 {
		r.numeric(ERR_SASLTOOLONG, "SASL message too long")
		c.resetSASL()
		return
	}
	c.mu.Lock()
	if arg != "+" {
		c.saslBuf = append(c.saslBuf, arg...)
	}
	buf := c.saslBuf
	c.mu.Unlock()
	if len(buf) > maxSASL*4/3+4 {
		r.numeric(ERR_SASLTOOLONG, "SASL message too long")
		c.resetSASL()
		return
	}
	if len(arg) == 400 {
		return // more to come
	}
	c.resetSASL()
	raw, err := base64.StdEncoding.DecodeString(string(buf))
	if err != nil {
		r.numeric(ERR_SASLFAIL, "SASL authentication failed: invalid base64")
		return
	}
	if mech == "EXTERNAL" {
		a, err := c.srv.core.AuthenticateCertificate(context.Background(), c.clientCert, string(raw), c.ip, "irc")
		if err != nil {
			r.numeric(ERR_SASLFAIL, "SASL authentication failed: "+saslReason(err))
			return
		}
		c.saslSucceeded(r, a)
		return
	}
	parts := bytes.Split(raw, []byte{0})
	if len(parts) != 3 {
		r.numeric(ERR_SASLFAIL, "SASL authentication failed: malformed PLAIN response")
		return
	}
	authz, authc, pw := string(parts[0]), string(parts[1]), string(parts[2])
	if authz != "" && chat.Fold(authz) != chat.Fold(authc) {
		r.numeric(ERR_SASLFAIL, "SASL authentication failed: cannot act as another account")
		return
	}
	a, err := c.srv.core.Authenticate(context.Background(), authc, pw, c.ip, "irc")
	if err != nil {
		if errors.Is(err, chat.ErrTooManyAttempts) {
			r.numeric(ERR_SASLFAIL, "SASL authentication failed: too many failed logins from your address, wait a minute")
		} else {
			r.numeric(ERR_SASLFAIL, "SASL authentication failed")
		}
		return
	}
	c.saslSucceeded(r, a)
}

// saslSucceeded logs the connection in and answers 900 and 903. During
// registration (where SASL happens) both are the AUTHENTICATE's reply,
// under its label (labeled-response); afterwards the login may rename the
// client and start its session, which come first.
func (c *conn) saslSucceeded(r *request, a chat.Account) {
	c.mu.Lock()
	registered := c.state >= stateRegistered
	c.mu.Unlock()
	if !registered {
		c.login(a, r)
		r.numeric(RPL_SASLSUCCESS, "SASL authentication successful")
		r.finish()
		return
	}
	r.finish()
	c.login(a, nil)
	c.numeric(RPL_SASLSUCCESS, "SASL authentication successful")
}

func saslReason(err error) string {
	if errors.Is(err, chat.ErrTooManyAttempts) {
		return "too many failed logins from your address, wait a minute"
	}
	return "the certificate is not registered to an account (NickServ CERT ADD)"
}

func (c *conn) resetSASL() {
	c.mu.Lock()
	c.saslMech = ""
	c.saslBuf = nil
	c.mu.Unlock()
}
