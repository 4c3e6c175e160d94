package irc

// WHO (and WHOX), WHOIS, WHOWAS, LIST (ELIST), USERHOST, ISON, MONITOR, VERSION, TIME, INFO, AWAY, SETNAME.

var queryCommands = map[string]command{}
