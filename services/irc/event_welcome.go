package irc

import (
	"strings"

	"chatbox/services/chat"

	"github.com/ergochat/irc-go/ircmsg"
)

// Event mode's welcome (issue 11; chat/event.go): a guest joining an
// event room gets the owner's welcome as NOTICEs from the server to the
// channel, one per line of the text, after the JOIN burst and the history
// replay. Left out: no numeric or tag marks it, since none is standard.
func welcomeLines(server string, d *chat.Delivery) []ircmsg.Message {
	if d.Welcome == "" {
		return nil
	}
	var out []ircmsg.Message
	for line := range strings.Lines(d.Welcome) {
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "" {
			continue
		}
		if len(line) > 400 {
			line = strings.ToValidUTF8(line[:400], "")
		}
		out = append(out, makeMsg(server, "NOTICE", channelOf(d.Room), line))
		if len(out) == 10 {
			break
		}
	}
	return out
}
