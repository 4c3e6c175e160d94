package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

// ircClient is a plain-text IRC connection logged in with PASS.
type ircClient struct {
	peer
	m       *member
	br      *bufio.Reader
	channel string
	echo    bool // echo-message acknowledged: the client gets its own lines
}

// Replies that end a login or a join.
var ircJoinErrors = map[string]bool{
	"ERROR": true, "FAIL": true,
	"432": true, "433": true, "436": true, "437": true, // nick refused
	"403": true, "405": true, "471": true, "473": true, "474": true, "475": true, "477": true, // join refused
	"464": true, "465": true, // password, banned
}

// dialIRC connects and logs in (PASS account:password, NICK account;
// with --irc-login nick, NICK and USER alone); it returns once the
// server has ended the welcome (end of MOTD, 376, or no MOTD, 422). A
// server without echo-message (ngIRCd) does not send a sender its own
// lines: the bench then expects none.
//
// If the nick is taken before the login (chatbox: another connection of
// the same account, e.g. one a previous run left and the server has not
// yet dropped), it registers with another nick once: the PASS login then
// gives it the account's nick anyway.
func dialIRC(ctx context.Context, o *options, account, password string, m *member) (*ircClient, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", o.ircAddr)
	if err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline()
	c := &ircClient{peer: peer{nc: nc, deadline: dl}, m: m, br: bufio.NewReaderSize(nc, 16<<10), channel: "#" + o.room}
	stop := watchCtx(ctx, nc)
	defer stop()
	pass := "PASS " + account + ":" + password + "\r\n"
	if o.ircLogin == "nick" {
		pass = ""
	}
	login := "CAP LS 302\r\nCAP REQ :echo-message\r\nCAP END\r\n" +
		pass + "NICK " + account + "\r\nUSER u 0 * :r\r\n"
	m.setStage("waiting for the welcome (001)")
	if err := c.write([]byte(login)); err != nil {
		nc.Close()
		return nil, ioErr(ctx, "login", err)
	}
	renamed := false
	err = c.until(ctx, "logging in", func(msg ircmsg.Message, line string) (bool, error) {
		switch msg.Command {
		case "433":
			if renamed || len(msg.Params) == 0 || msg.Params[0] != "*" {
				return false, refused(line)
			}
			renamed = true
			c.write([]byte("NICK cb" + strconv.Itoa(m.idx) + "_" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36) + "\r\n"))
			m.setStage("waiting for the welcome (001) after 433 and another NICK")
			return false, nil
		case "001":
			m.setStage("waiting for the end of the MOTD (376 or 422)")
		case "CAP":
			if len(msg.Params) >= 3 && msg.Params[1] == "ACK" {
				for _, cp := range strings.Fields(msg.Params[len(msg.Params)-1]) {
					if cp == "echo-message" {
						c.echo = true
					}
				}
			}
		}
		if ircJoinErrors[msg.Command] {
			return false, refused(line)
		}
		return msg.Command == "376" || msg.Command == "422", nil
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// join joins the room; it returns once the server has sent the end of
// NAMES (366).
func (c *ircClient) join(ctx context.Context) error {
	stop := watchCtx(ctx, c.nc)
	defer stop()
	c.m.setStage("waiting for the end of NAMES (366) of " + c.channel)
	if err := c.write([]byte("JOIN " + c.channel + "\r\n")); err != nil {
		return ioErr(ctx, "join", err)
	}
	err := c.until(ctx, "waiting to join "+c.channel, func(msg ircmsg.Message, line string) (bool, error) {
		if ircJoinErrors[msg.Command] {
			return false, refused(line)
		}
		return msg.Command == "366" && len(msg.Params) > 1 && strings.EqualFold(msg.Params[1], c.channel), nil
	})
	if err == nil {
		// Reads from now on are bounded by the run (closeAll).
		c.nc.SetReadDeadline(time.Time{})
	}
	return err
}

// until reads lines, answering pings, until step reports the end or an
// error for one.
func (c *ircClient) until(ctx context.Context, what string, step func(msg ircmsg.Message, line string) (bool, error)) error {
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return ioErr(ctx, what, err)
		}
		c.m.note(line)
		msg, err := ircmsg.ParseLine(line)
		if err != nil {
			continue
		}
		if msg.Command == "PING" {
			c.write([]byte("PONG :" + strings.Join(msg.Params, " ") + "\r\n"))
			continue
		}
		if done, err := step(msg, line); done || err != nil {
			return err
		}
	}
}

// refused is the error for a server's refusal line.
func refused(line string) error { return fmt.Errorf("%w: %s", errServer, strings.TrimSpace(line)) }

func (c *ircClient) echoes() bool { return c.echo }

func (c *ircClient) send(seq int, body string) error {
	return c.write([]byte("PRIVMSG " + c.channel + " :" + body + "\r\n"))
}

func (c *ircClient) quit() { c.close("QUIT :chatbench done\r\n") }

// readLoop counts the room's messages; error replies count as errors.
func (c *ircClient) readLoop() {
	for {
		line, err := c.br.ReadSlice('\n')
		now := time.Now()
		if err == bufio.ErrBufferFull {
			c.m.b.fail("%s (irc): line over %d bytes", c.m.account, c.br.Size())
			for err == bufio.ErrBufferFull {
				_, err = c.br.ReadSlice('\n')
			}
			continue
		}
		if err != nil {
			c.m.connEnded(err)
			return
		}
		msg, err := ircmsg.ParseLine(string(line))
		if err == nil {
			c.handle(msg, line, now)
		}
		if c.br.Buffered() == 0 {
			c.m.flush() // before the next read waits
		}
	}
}

// handle is readLoop's for one parsed line.
func (c *ircClient) handle(msg ircmsg.Message, line []byte, now time.Time) {
	switch cmd := msg.Command; {
	case cmd == "PRIVMSG":
		if len(msg.Params) == 2 && strings.EqualFold(msg.Params[0], c.channel) {
			c.m.received(msg.Params[1], now)
		}
	case cmd == "PING":
		tok := strings.Join(msg.Params, " ")
		go c.write([]byte("PONG :" + tok + "\r\n"))
	case cmd == "ERROR" || cmd == "FAIL" || len(cmd) == 3 && (cmd[0] == '4' || cmd[0] == '5'):
		c.m.b.fail("%s (irc): %s", c.m.account, strings.TrimSpace(string(line)))
	}
}
