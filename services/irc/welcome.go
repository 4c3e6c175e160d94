package irc

import (
	"fmt"
	"strings"

	"github.com/ergochat/irc-go/ircmsg"
)

// The welcome burst (Modern IRC: RPL_WELCOME to RPL_ISUPPORT, LUSERS,
// MOTD) and an honest ISUPPORT: only what the door does.

// isupport lists the RPL_ISUPPORT tokens.
var welcomeCommands = map[string]command{
	"MOTD":   {fn: handleMotd, unidentified: true},
	"LUSERS": {fn: handleLusers, unidentified: true},
}

func (s *Server) isupport() []string {
	return []string{
		"AWAYLEN=390",
		"BOT=B",
		"CASEMAPPING=ascii",
		"CHANLIMIT=#:50",
		"CHATHISTORY=100",
		"CHANMODES=beI,k,l,imnpst",
		"CHANNELLEN=31",
		"CHANTYPES=#",
		"ELIST=CMNTU",
		"EXCEPTS=e",
		"INVEX=I",
		"KICKLEN=390",
		"LINELEN=512",
		"MAXLIST=beI:100",
		"MAXTARGETS=4",
		"MODES=4",
		"MONITOR=100",
		"MSGREFTYPES=msgid,timestamp",
		"NETWORK=" + strings.ReplaceAll(s.cfg.Network, " ", "-"),
		"NICKLEN=30",
		"PREFIX=(qaov)~&@+",
		"STATUSMSG=~&@+",
		"TARGMAX=PRIVMSG:4,NOTICE:4,TAGMSG:4,JOIN:,PART:,NAMES:1,KICK:4",
		"TOPICLEN=390",
		"USERLEN=30",
		"UTF8ONLY",
		"WHOX",
	}
}

func (c *conn) sendWelcome() {
	s := c.srv
	server := s.cfg.ServerName
	version := "chatbox-" + s.cfg.Version
	c.numeric(RPL_WELCOME, fmt.Sprintf("Welcome to the %s IRC network, %s", s.cfg.Network, c.prefix()))
	c.numeric(RPL_YOURHOST, fmt.Sprintf("Your host is %s, running version %s", server, version))
	c.numeric(RPL_CREATED, "This server was created "+s.created.UTC().Format("Mon Jan 2 2006 at 15:04:05 UTC"))
	c.numeric(RPL_MYINFO, server, version, "BiowZ", "beIiklmnopstv", "beIklov")
	tokens := s.isupport()
	for len(tokens) > 0 {
		n := min(len(tokens), 12)
		c.numeric(RPL_ISUPPORT, append(tokens[:n:n], "are supported by this server")...)
		tokens = tokens[n:]
	}
	r := &request{c: c}
	lusers(r)
	motd(r)
	r.finish()
	c.mu.Lock()
	modes := c.umodeStringLocked()
	nick := c.nick
	c.mu.Unlock()
	if modes != "+" {
		c.sendLine(ircmsg.MakeMessage(nil, c.prefix(), "MODE", nick, modes))
	}
}

// umodeStringLocked renders the client's user modes; c.mu held.
func (c *conn) umodeStringLocked() string {
	m := "+"
	for _, f := range []byte("BiowZ") {
		if c.modes[f] || (f == 'Z' && c.isTLS) {
			m += string(f)
		}
	}
	return m
}

func handleLusers(r *request) { lusers(r) }

func lusers(r *request) {
	n, maxSeen := r.c.srv.connCount()
	counts := r.c.srv.core.SessionCount()
	total := 0
	for _, k := range counts {
		total += k
	}
	r.numeric(RPL_LUSERCLIENT, fmt.Sprintf("There are %d users and 0 invisible on 1 server (%d over XMPP)", total, counts["xmpp"]))
	r.numeric(RPL_LUSEROP, "0", "operator(s) online")
	r.numeric(RPL_LUSERME, fmt.Sprintf("I have %d clients and 0 servers", n))
	r.numeric(RPL_LOCALUSERS, fmt.Sprint(n), fmt.Sprint(maxSeen), fmt.Sprintf("Current local users %d, max %d", n, maxSeen))
	r.numeric(RPL_GLOBALUSERS, fmt.Sprint(total), fmt.Sprint(maxSeen), fmt.Sprintf("Current global users %d, max %d", total, maxSeen))
}

func handleMotd(r *request) { motd(r) }

func motd(r *request) {
	text := strings.TrimSpace(r.c.srv.cfg.MOTD)
	if text == "" {
		r.numeric(ERR_NOMOTD, "MOTD File is missing")
		return
	}
	r.numeric(RPL_MOTDSTART, "- "+r.c.srv.cfg.ServerName+" Message of the day - ")
	for _, line := range strings.Split(text, "\n") {
		r.numeric(RPL_MOTD, "- "+strings.TrimRight(line, "\r"))
	}
	r.numeric(RPL_ENDOFMOTD, "End of /MOTD command.")
}
