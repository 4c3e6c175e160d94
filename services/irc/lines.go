package irc

import "github.com/ergochat/irc-go/ircmsg"

// makeMsg builds a line without tags.
func makeMsg(source, command string, params ...string) ircmsg.Message {
	return ircmsg.MakeMessage(nil, source, command, params...)
}
