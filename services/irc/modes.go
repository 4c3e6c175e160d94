package irc

// MODE (user and channel), KICK, INVITE.

var modeCommands = map[string]command{}
