package irc

// IRCv3 draft/chathistory and draft/multiline.

var historyCommands = map[string]command{}
