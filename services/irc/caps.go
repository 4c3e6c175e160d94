package irc

import (
	"sort"
	"strings"

	"github.com/ergochat/irc-go/ircmsg"
)

// IRCv3 capability negotiation (https://ircv3.net/specs/extensions/capability-negotiation),
// version 302 with cap-notify. STS is not offered: with the box's own CA
// it would lock clients out.

// capSet is the set of capabilities a client enabled.
type capSet map[string]bool

func (s capSet) has(name string) bool { return s[name] }

// with returns a new set holding s and names: a client's set is never
// changed in place, so readers may keep it without copying.
func (s capSet) with(names ...string) capSet {
	n := make(capSet, len(s)+len(names))
	for k, v := range s {
		n[k] = v
	}
	for _, k := range names {
		n[k] = true
	}
	return n
}

// supportedCaps lists what the door offers, with the values shown to
// clients that asked for CAP LS 302.
func supportedCaps() map[string]string {
	return map[string]string{
		"account-notify":    "",
		"account-tag":       "",
		"away-notify":       "",
		"batch":             "",
		"cap-notify":        "",
		"chghost":           "",
		"draft/chathistory": "",
		"draft/multiline":   multilineCapValue,
		"echo-message":      "",
		"extended-join":     "",
		"invite-notify":     "",
		"labeled-response":  "",
		"message-tags":      "",
		"multi-prefix":      "",
		"sasl":              "PLAIN,EXTERNAL",
		"server-time":       "",
		"setname":           "",
		"userhost-in-names": "",
	}
}

func handleCap(r *request) {
	c := r.c
	sub := strings.ToUpper(r.msg.Params[0])
	nick := c.currentNick()
	server := c.srv.cfg.ServerName
	supported := supportedCaps()
	switch sub {
	case "LS":
		version := 301
		if len(r.msg.Params) > 1 && r.msg.Params[1] >= "302" {
			version = 302
		}
		c.mu.Lock()
		if c.state < stateRegistered {
			c.capBlocking = true
		}
		if version > c.capVersion {
			c.capVersion = version
		}
		if version >= 302 {
			c.caps = c.caps.with("cap-notify") // implied by 302
		}
		c.mu.Unlock()
		names := make([]string, 0, len(supported))
		for name, val := range supported {
			if version >= 302 && val != "" {
				name += "=" + val
			}
			names = append(names, name)
		}
		sort.Strings(names)
		// Split into lines that fit; 302 clients understand "*" continuations.
		var lines []string
		cur := ""
		for _, n := range names {
			if len(cur)+len(n)+1 > 350 {
				lines = append(lines, cur)
				cur = ""
			}
			if cur != "" {
				cur += " "
			}
			cur += n
		}
		lines = append(lines, cur)
		for i, l := range lines {
			if i < len(lines)-1 && version >= 302 {
				r.send(ircmsg.MakeMessage(nil, server, "CAP", nick, "LS", "*", l))
			} else {
				r.send(ircmsg.MakeMessage(nil, server, "CAP", nick, "LS", l))
			}
		}
	case "LIST":
		c.mu.Lock()
		var on []string
		for name := range c.caps {
			on = append(on, name)
		}
		c.mu.Unlock()
		sort.Strings(on)
		r.send(ircmsg.MakeMessage(nil, server, "CAP", nick, "LIST", strings.Join(on, " ")))
	case "REQ":
		if len(r.msg.Params) < 2 {
			r.numeric(ERR_NEEDMOREPARAMS, "CAP", "Not enough parameters")
			return
		}
		want := strings.Fields(r.msg.Params[1])
		ok := len(want) > 0
		for _, w := range want {
			if _, known := supported[strings.TrimPrefix(w, "-")]; !known {
				ok = false
			}
		}
		verb := "NAK"
		c.mu.Lock()
		if c.state < stateRegistered {
			c.capBlocking = true
		}
		if ok {
			verb = "ACK"
			next := c.caps.with()
			for _, w := range want {
				if strings.HasPrefix(w, "-") {
					delete(next, w[1:])
				} else {
					next[w] = true
				}
			}
			c.caps = next
		}
		c.mu.Unlock()
		r.send(ircmsg.MakeMessage(nil, server, "CAP", nick, verb, r.msg.Params[1]))
	case "END":
		c.mu.Lock()
		c.capBlocking = false
		c.mu.Unlock()
		r.finish()
		c.tryRegister()
	default:
		r.numeric(ERR_INVALIDCAPCMD, r.msg.Params[0], "Invalid CAP command")
	}
}
