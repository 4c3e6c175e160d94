package xmpp

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"time"
)

// XEP-0114 Jabber Component Protocol: a bot or gateway connects to
// ComponentListen, names its domain in the stream header and proves the
// shared secret with <handshake/>; it then sends and receives stanzas for
// its whole domain. Stanzas it sends to accounts here are relayed to
// their XMPP sessions (not stored: a component is not an account);
// stanzas the box's users address to its domain reach it. Left out:
// XEP-0225 (component connections over s2s) and privileged entities.

func (c *conn) runComponent() {
	c.newReader(c.nc)
	hdr, err := c.rd.Header()
	if err != nil {
		c.readFailed(err)
		return
	}
	var to, defNS string
	for _, a := range hdr.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "to":
			to = strings.ToLower(a.Value)
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			defNS = a.Value
		}
	}
	id := randomID()
	c.send([]byte(streamHeader(nsComponent, to, "", id, "")))
	if defNS != nsComponent {
		c.fail(streamErr("invalid-namespace", "components speak %s", nsComponent))
		return
	}
	secret, ok := c.srv.cfg.Components[to]
	if !ok || to == "" {
		c.fail(streamErr("host-unknown", "no component %q is configured here", to))
		return
	}
	el, err := c.rd.Next()
	if err != nil {
		c.readFailed(err)
		return
	}
	sum := sha1.Sum([]byte(id + secret))
	want := hex.EncodeToString(sum[:])
	if !el.Is(nsComponent, "handshake") || subtle.ConstantTimeCompare([]byte(strings.ToLower(strings.TrimSpace(el.Text()))), []byte(want)) != 1 {
		c.srv.core.LoginFailed(c.ip, to, "xmpp-component")
		c.fail(streamErr("not-authorized", "wrong component secret"))
		return
	}
	c.srv.mu.Lock()
	if old := c.srv.components[to]; old != nil {
		c.srv.mu.Unlock()
		old.fail(streamErr("conflict", "replaced by a new connection of the component"))
		c.srv.mu.Lock()
	}
	c.srv.components[to] = c
	c.comp = to
	c.srv.mu.Unlock()
	c.send([]byte("<handshake/>"))
	c.srv.log.Info("component connected", "domain", to, "addr", c.ip)
	c.state = stateReady
	for {
		c.nc.SetReadDeadline(time.Now().Add(c.srv.cfg.PingInterval + c.srv.cfg.PingTimeout))
		el, err := c.rd.Next()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.rateOK()
		c.componentStanza(el)
		if c.isClosed() {
			return
		}
	}
}

// componentStanza routes one stanza from a component.
func (c *conn) componentStanza(el *Element) {
	if el.Space != nsComponent || (el.Local != "message" && el.Local != "presence" && el.Local != "iq") {
		c.fail(streamErr("unsupported-stanza-type", "<%s/> is not a stanza", el.Local))
		return
	}
	from, err := parseJID(el.Get("from"))
	if err != nil || from.Domain != c.comp {
		c.fail(streamErr("invalid-from", "a component sends only from its own domain %s", c.comp))
		return
	}
	to, err := parseJID(el.Get("to"))
	if err != nil {
		c.fail(streamErr("improper-addressing", "every stanza from a component needs a valid to address"))
		return
	}
	renamespace(el, nsComponent, nsClient)
	reply := func(cond string) {
		if t := el.Get("type"); t != "error" && t != "result" {
			c.sendEl(renamespace(stanzaErrorReply(el, "", cond, ""), nsClient, nsComponent))
		}
	}
	switch {
	case to.Domain == c.srv.cfg.Domain && to.Local != "":
		var peers []*session
		if to.Resource != "" {
			if p := c.srv.sessionAt(to.Local, to.Resource); p != nil {
				peers = append(peers, p)
			}
		} else if el.Local == "iq" {
			reply("service-unavailable")
			return
		} else if el.Local == "message" {
			peers = c.srv.chosen(to.Local, el.Get("type"))
		} else {
			peers = c.srv.sessionsOf(to.Local)
		}
		if len(peers) == 0 {
			reply("service-unavailable")
			return
		}
		for _, p := range peers {
			out := el.Clone()
			out.Set("to", p.full)
			if el.Local == "presence" || el.Local == "message" && to.Resource == "" {
				out.Set("to", to.String())
			}
			p.send(out)
		}
	default:
		c.srv.mu.Lock()
		other := c.srv.components[to.Domain]
		c.srv.mu.Unlock()
		if other == nil {
			reply("service-unavailable")
			return
		}
		other.sendEl(renamespace(el, nsClient, nsComponent))
	}
}
