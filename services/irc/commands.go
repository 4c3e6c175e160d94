package irc

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// command is one IRC command's handler and what it needs.
type command struct {
	fn        func(*request)
	minParams int
	// preReg: allowed before registration completes; unidentified:
	// allowed to a registered client that has not logged in yet.
	preReg       bool
	unidentified bool
}

// commands is the door's command table, gathered from the files that
// implement each feature.
var commands = mergeCommands(
	registrationCommands, messageCommands, channelCommands, welcomeCommands,
	queryCommands, modeCommands, operCommands, historyCommands,
)

func mergeCommands(tables ...map[string]command) map[string]command {
	all := map[string]command{}
	for _, t := range tables {
		for name, cmd := range t {
			if _, dup := all[name]; dup {
				panic("irc: command " + name + " defined twice")
			}
			all[name] = cmd
		}
	}
	return all
}

// request is one command being handled: its replies are collected and
// sent together, wrapped for labeled-response when the client asked.
type request struct {
	c     *conn
	msg   ircmsg.Message
	label string
	lines []ircmsg.Message
	done  bool
}

func (r *request) send(m ircmsg.Message) { r.lines = append(r.lines, m) }

// numeric adds a numeric reply addressed to the client.
func (r *request) numeric(code string, params ...string) {
	r.send(ircmsg.MakeMessage(nil, r.c.srv.cfg.ServerName, code, append([]string{r.c.currentNick()}, params...)...))
}

// notice adds a server notice to the client.
func (r *request) notice(text string) {
	r.send(ircmsg.MakeMessage(nil, r.c.srv.cfg.ServerName, "NOTICE", r.c.currentNick(), text))
}

// fail adds an IRCv3 standard reply FAIL.
func (r *request) fail(code, text string, context ...string) {
	params := append([]string{r.msg.Command, code}, context...)
	r.send(ircmsg.MakeMessage(nil, r.c.srv.cfg.ServerName, "FAIL", append(params, text)...))
}

// finish sends the collected replies: as they are, or with the client's
// label (one line tagged, several in a labeled-response batch, none as
// ACK).
func (r *request) finish() {
	if r.done {
		return
	}
	r.done = true
	c := r.c
	if r.label == "" {
		for _, m := range r.lines {
			c.sendLine(m)
		}
		r.lines = nil
		return
	}
	server := c.srv.cfg.ServerName
	switch len(r.lines) {
	case 0:
		c.sendLine(ircmsg.MakeMessage(map[string]string{"label": r.label}, server, "ACK"))
	case 1:
		m := r.lines[0]
		m.SetTag("label", r.label)
		c.sendLine(m)
	default:
		id := batchID()
		c.sendLine(ircmsg.MakeMessage(map[string]string{"label": r.label}, server, "BATCH", "+"+id, "labeled-response"))
		for _, m := range r.lines {
			if !m.HasTag("batch") {
				m.SetTag("batch", id)
			}
			c.sendLine(m)
		}
		c.sendLine(ircmsg.MakeMessage(nil, server, "BATCH", "-"+id))
	}
	r.lines = nil
}

// batchID returns a fresh batch reference tag.
func batchID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// serverTime formats a time for the server-time tag.
func serverTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
