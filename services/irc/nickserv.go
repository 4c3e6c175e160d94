package irc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ergochat/irc-go/ircmsg"

	"chatbox/services/chat"
)

// A small built-in NickServ for clients that log in the old way:
// IDENTIFY, REGISTER (while the box's registration is open, or with an
// invitation token from the web admin), INFO
// and HELP. Its replies are NOTICEs from NickServ.

const nickservSource = "NickServ!NickServ@services"

func nickservReply(r *request, text string) {
	r.send(ircmsg.MakeMessage(nil, nickservSource, "NOTICE", r.c.currentNick(), text))
}

func nickserv(r *request, text string) {
	c := r.c
	fields := strings.Fields(text)
	if len(fields) == 0 {
		nickservReply(r, "Commands: IDENTIFY, REGISTER, INFO, HELP")
		return
	}
	ctx := context.Background()
	switch strings.ToUpper(fields[0]) {
	case "IDENTIFY", "LOGIN":
		if c.accountName() != "" {
			nickservReply(r, "You are already logged in as "+c.accountName())
			return
		}
		var name, pw string
		switch len(fields) {
		case 2:
			name, pw = c.currentNick(), fields[1]
		case 3:
			name, pw = fields[1], fields[2]
		default:
			nickservReply(r, "Syntax: IDENTIFY [account] password")
			return
		}
		a, err := c.srv.core.Authenticate(ctx, name, pw, c.ip, "irc")
		if err != nil {
			if errors.Is(err, chat.ErrTooManyAttempts) {
				nickservReply(r, "Too many failed logins from your address; wait a minute")
			} else {
				nickservReply(r, "Invalid account name or password")
			}
			return
		}
		r.finish()
		c.login(a, nil)
		c.sendLine(ircmsg.MakeMessage(nil, nickservSource, "NOTICE", c.currentNick(), "You are now logged in as "+a.Name))
	case "REGISTER":
		if c.accountName() != "" {
			nickservReply(r, "You are already logged in as "+c.accountName())
			return
		}
		if len(fields) < 2 {
			nickservReply(r, "Syntax: REGISTER password [invitation] (your nick becomes your account)")
			return
		}
		name := fold(c.currentNick())
		if len(fields) > 2 {
			// An invitation from the web admin (the token after
			// "preauth=" in its link): it works while registration
			// is closed, and may reserve the name. Wrong tokens count
			// as failed logins of the address (guessing).
			if err := c.srv.core.LoginAllowed(c.ip); err != nil {
				nickservReply(r, "Too many failed attempts from your address; wait a minute")
				return
			}
			if _, _, err := c.srv.core.RedeemAccountInvite(ctx, fields[2], name, fields[1]); err != nil {
				switch {
				case errors.Is(err, chat.ErrNotFound):
					c.srv.core.LoginFailed(c.ip, name, "irc")
					nickservReply(r, "That invitation is not valid (unknown, expired or used up): ask the box's owner for a new one")
				case errors.Is(err, chat.ErrForbidden):
					nickservReply(r, "Cannot register "+name+": "+err.Error()+"; change your nick to that name (/nick) and try again")
				case errors.Is(err, chat.ErrExists):
					nickservReply(r, name+" is already registered: change your nick (/nick) and try again")
				default:
					nickservReply(r, "Cannot register "+name+": "+err.Error())
				}
				return
			}
		} else {
			if !c.srv.cfg.RegistrationOpen() {
				nickservReply(r, "Registration is closed on this box: ask its owner for an account or an invitation (REGISTER password invitation)")
				return
			}
			if err := c.srv.core.CreateAccount(ctx, name, fields[1], false); err != nil {
				switch {
				case errors.Is(err, chat.ErrExists):
					nickservReply(r, name+" is already registered")
				default:
					nickservReply(r, "Cannot register "+name+": "+err.Error())
				}
				return
			}
		}
		a, err := c.srv.core.Account(ctx, name)
		if err != nil {
			nickservReply(r, "Registered, but logging in failed: "+err.Error())
			return
		}
		c.srv.log.Info("account registered", "account", name, "via", "NickServ REGISTER", "addr", c.ip)
		nickservReply(r, "Account "+name+" registered")
		r.finish()
		c.login(a, nil)
	case "INFO":
		name := c.currentNick()
		if len(fields) > 1 {
			name = fields[1]
		}
		a, err := c.srv.core.Account(ctx, name)
		if err != nil {
			nickservReply(r, fmt.Sprintf("%s is not a registered account", name))
			return
		}
		p := c.srv.core.AccountPresence(a.Name)
		nickservReply(r, fmt.Sprintf("Account %s, registered %s, now %s", a.Name, a.Created.UTC().Format("2006-01-02"), p.Show))
	case "CERT":
		nickservCert(r, fields[1:])
	case "HELP":
		nickservReply(r, "IDENTIFY [account] password — log in to your account")
		nickservReply(r, "REGISTER password [invitation] — make your nick an account (when the box's registration is open, or with an invitation from its owner)")
		nickservReply(r, "INFO [account] — about an account")
		nickservReply(r, "CERT ADD [fingerprint] | CERT DEL fingerprint | CERT LIST — client certificates that log you in (SASL EXTERNAL); ADD alone adds the one you are connected with")
	default:
		nickservReply(r, "Unknown command "+fields[0]+": use IDENTIFY, REGISTER, INFO or HELP")
	}
}

// nickservCert manages the client certificates that log the account in.
func nickservCert(r *request, args []string) {
	c := r.c
	acct := c.accountName()
	if acct == "" {
		nickservReply(r, "Log in first")
		return
	}
	ctx := context.Background()
	sub := ""
	if len(args) > 0 {
		sub = strings.ToUpper(args[0])
	}
	switch {
	case sub == "LIST":
		fps, err := c.srv.core.Certificates(ctx, acct)
		if err != nil {
			nickservReply(r, "Cannot list certificates: "+err.Error())
			return
		}
		if len(fps) == 0 {
			nickservReply(r, "No certificate logs in "+acct)
		}
		for _, fp := range fps {
			nickservReply(r, "Certificate "+fp)
		}
	case sub == "ADD":
		fp := ""
		if len(args) > 1 {
			fp = args[1]
		} else if c.clientCert != nil {
			fp = chat.CertFingerprint(c.clientCert)
		} else {
			nickservReply(r, "You are not connected with a client certificate: give its SHA-256 fingerprint")
			return
		}
		if err := c.srv.core.AddCertificate(ctx, acct, fp); err != nil {
			nickservReply(r, "Cannot add the certificate: "+err.Error())
			return
		}
		nickservReply(r, "Certificate added: it now logs in "+acct+" (SASL EXTERNAL)")
	case sub == "DEL" && len(args) > 1:
		if err := c.srv.core.RemoveCertificate(ctx, acct, args[1]); err != nil {
			nickservReply(r, "Cannot remove the certificate: "+err.Error())
			return
		}
		nickservReply(r, "Certificate removed")
	default:
		nickservReply(r, "Syntax: CERT ADD [fingerprint] | CERT DEL fingerprint | CERT LIST")
	}
}
