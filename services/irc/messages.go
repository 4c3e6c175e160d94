package irc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"

	"chatbox/services/chat"
)

// PRIVMSG, NOTICE (Modern IRC) and TAGMSG (IRCv3 message-tags), with
// echo-message, server-time, msgid and account-tag. CTCP ACTION becomes
// the core's action kind (/me on XMPP); other CTCP (VERSION, DCC offers)
// passes through untouched as text.

const maxTargets = 4

var messageCommands = map[string]command{
	"PRIVMSG": {fn: handlePrivmsg, unidentified: true},
	"NOTICE":  {fn: handlePrivmsg},
	"TAGMSG":  {fn: handleTagmsg, minParams: 1},
}

func handlePrivmsg(r *request) {
	c := r.c
	verb := r.msg.Command
	if strayBatchLine(r) {
		return // lines of an open multiline batch never get here (multiline.go)
	}
	if len(r.msg.Params) == 0 {
		r.numeric(ERR_NORECIPIENT, "No recipient given ("+verb+")")
		return
	}
	if len(r.msg.Params) < 2 || r.msg.Params[1] == "" {
		r.numeric(ERR_NOTEXTTOSEND, "No text to send")
		return
	}
	text := r.msg.Params[1]
	targets := strings.Split(r.msg.Params[0], ",")
	if len(targets) > maxTargets {
		for _, extra := range targets[maxTargets:] {
			r.numeric(ERR_TOOMANYTARGETS, extra, fmt.Sprintf("Too many targets: at most %d, the message was not sent to this one", maxTargets))
		}
		targets = targets[:maxTargets]
	}
	c.mu.Lock()
	identified := c.account != "" || c.sess != nil // an account, or a guest
	c.mu.Unlock()
	for _, target := range targets {
		if strings.EqualFold(target, "NickServ") {
			if verb == "PRIVMSG" {
				nickserv(r, text)
			}
			continue
		}
		if !identified {
			r.notice("You must log in first: /msg NickServ IDENTIFY account password")
			continue
		}
		sendOne(r, verb, target, text)
	}
}

// sendOne sends one message to one target through the core.
func sendOne(r *request, verb, target, text string) {
	c := r.c
	kind := chat.KindNormal
	if verb == "NOTICE" {
		kind = chat.KindNotice
	}
	body := text
	if strings.HasPrefix(text, "\x01ACTION") {
		kind = chat.KindAction
		body = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(text, "\x01ACTION"), " "), "\x01")
		if body == "" {
			body = " "
		}
	}
	// STATUSMSG (@#room) goes to the whole room: the core has no
	// per-role delivery.
	target = strings.TrimLeft(target, "~&@+")
	if room := roomOf(target); room != "" && r.label == "" {
		sendPipelined(r, verb, target, room, kind, body)
		return
	}
	c.sends.Wait() // what the client sent before goes first
	s := c.session()
	ctx := context.Background()
	var m chat.Message
	err := retryRateLimited(func() error {
		var err error
		if room := roomOf(target); room != "" {
			m, err = c.srv.core.SendRoom(ctx, s, room, kind, body, "")
		} else if jid, ok := remoteTarget(target); ok { // remote.go
			m, err = c.srv.core.SendRemote(ctx, s, jid, kind, body, "")
		} else {
			m, err = c.srv.core.SendDirect(ctx, s, target, kind, body, "")
		}
		return err
	})
	sent(r, verb, target, m, err)
}

// sendPipelined sends a message to a room without waiting for the disk
// (chat.Core.SendRoomAsync): the client's next line is read meanwhile.
// Its echo, or the error that kept it from being stored, comes once it
// is stored; the client's commands other than room messages wait for
// that (conn.sends), so they keep their order. A labeled message is sent
// by sendOne, as its reply carries the label.
func sendPipelined(r *request, verb, target, room string, kind chat.MessageKind, body string) {
	c := r.c
	s := c.session()
	c.sends.Add()
	err := retryRateLimited(func() error {
		return c.srv.core.SendRoomAsync(context.Background(), s, room, kind, body, "", func(m chat.Message, err error) {
			defer c.sends.Done()
			later := &request{c: c, msg: r.msg}
			sent(later, verb, target, m, err)
			later.finish()
		})
	})
	if err != nil {
		c.sends.Done()
		sent(r, verb, target, chat.Message{}, err)
	}
}

// sent answers a message sent: the error that kept it from being sent,
// or the away reply and the echo.
func sent(r *request, verb, target string, m chat.Message, err error) {
	c := r.c
	if err != nil {
		if verb == "NOTICE" {
			return // NOTICE never gets an automatic reply
		}
		sendError(r, target, err)
		return
	}
	if verb == "PRIVMSG" && m.To != "" && !chat.IsRemote(m.To) {
		if away, msg := awayOf(c.srv.core.AccountPresence(m.To)); away {
			r.numeric(RPL_AWAY, m.To, msg)
		}
	}
	if c.hasCap("echo-message") {
		caps := c.capsCopy()
		echoTarget := target
		if roomOf(target) != "" {
			echoTarget = channelOf(m.Room)
		} else if chat.IsRemote(m.To) {
			echoTarget = ircName(m.To)
		}
		for _, line := range c.messageLines(&m, c.prefix(), echoTarget, caps) {
			r.send(line)
		}
	}
}

// retryRateLimited retries a send the core refused for going too fast,
// for a few seconds, so that a burst is slowed down, not lost.
func retryRateLimited(send func() error) error {
	var err error
	for wait := 100 * time.Millisecond; wait <= 3*time.Second; wait *= 2 {
		if err = send(); !errors.Is(err, chat.ErrRateLimited) {
			return err
		}
		time.Sleep(wait)
	}
	return err
}

// sendError maps a core error on a message to the IRC reply.
func sendError(r *request, target string, err error) {
	switch {
	case errors.Is(err, chat.ErrNoSuchRoom):
		r.numeric(ERR_NOSUCHCHANNEL, target, "No such channel")
	case errors.Is(err, chat.ErrNotFound):
		r.numeric(ERR_NOSUCHNICK, target, "No such nick/channel")
	case errors.Is(err, chat.ErrNotInRoom):
		r.numeric(ERR_CANNOTSENDTOCHAN, target, "Cannot send to channel (you are not in it)")
	case errors.Is(err, chat.ErrModerated):
		r.numeric(ERR_CANNOTSENDTOCHAN, target, "Cannot send to channel (+m: you need voice)")
	case errors.Is(err, chat.ErrBanned):
		r.numeric(ERR_CANNOTSENDTOCHAN, target, "Cannot send to channel (you are banned)")
	case errors.Is(err, chat.ErrTooLong):
		r.numeric(ERR_INPUTTOOLONG, "Message too long: "+err.Error())
	case errors.Is(err, chat.ErrEmptyMessage):
		r.numeric(ERR_NOTEXTTOSEND, "No text to send")
	case errors.Is(err, chat.ErrForbidden):
		r.fail("FORBIDDEN", err.Error(), target)
	case errors.Is(err, chat.ErrRateLimited):
		r.fail("RATE_LIMITED", "You are sending too fast; the message was not sent, send it again", target)
	default:
		r.c.srv.log.Error("send message", "target", target, "err", err)
		r.fail("MESSAGE_ERROR", "The message could not be stored; send it again", target)
	}
}

func handleTagmsg(r *request) {
	c := r.c
	if !c.hasCap("message-tags") {
		return
	}
	tags := map[string]string{}
	for k, v := range r.msg.ClientOnlyTags() {
		tags[strings.TrimPrefix(k, "+")] = v
	}
	if len(tags) == 0 {
		return
	}
	target := strings.TrimLeft(r.msg.Params[0], "~&@+")
	room, to := roomOf(target), ""
	if room == "" {
		to = target
	}
	err := c.srv.core.Signal(context.Background(), c.session(), room, to, tags)
	if err != nil && !errors.Is(err, chat.ErrNotFound) {
		sendError(r, target, err)
		return
	}
	if c.hasCap("echo-message") {
		full := map[string]string{}
		for k, v := range tags {
			full["+"+k] = v
		}
		r.send(ircmsg.MakeMessage(full, c.prefix(), "TAGMSG", target))
	}
}
