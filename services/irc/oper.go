package irc

// operator commands for the box's admin accounts: KILL, KLINE.

var operCommands = map[string]command{}
