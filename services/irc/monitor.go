package irc

import (
	"github.com/ergochat/irc-go/ircmsg"

	"chatbox/services/chat"
)

// monitorLines tells a MONITOR client (IRCv3 monitor) that a watched
// account came online or went offline. c.monitor maps each watched
// account to whether the client was last told it is online.
func (c *conn) monitorLines(d *chat.Delivery) []ircmsg.Message {
	acct := d.From.Account
	online := d.Account.Show != chat.ShowOffline
	c.mu.Lock()
	was, watching := c.monitor[acct]
	if watching {
		c.monitor[acct] = online
	}
	me := c.nick
	c.mu.Unlock()
	if !watching || was == online {
		return nil
	}
	server := c.srv.cfg.ServerName
	if !online {
		return []ircmsg.Message{makeMsg(server, RPL_MONOFFLINE, me, acct)}
	}
	return []ircmsg.Message{makeMsg(server, RPL_MONONLINE, me, c.source(acct, d.From.Door))}
}
