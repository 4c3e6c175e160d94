package irc

import "strings"

// fold is the IRC casemapping, "ascii": the same rule as chat.Fold for
// account and room names.
func fold(s string) string { return strings.ToLower(s) }

// validNick accepts nicks a client may choose: 1 to 30 bytes, no
// characters IRC reserves (space, comma, '*', '?', '!', '@', '#', '&',
// ':', '$', '+', '%', '~', '.') and not starting with a digit or '-'.
func validNick(n string) bool {
	if n == "" || len(n) > 30 {
		return false
	}
	if c := n[0]; (c >= '0' && c <= '9') || c == '-' {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte(",*?!@#&:$+%~.", c) >= 0 {
			return false
		}
	}
	return true
}

// roomOf turns an IRC channel name into a room name ("" if it is not a
// channel).
func roomOf(channel string) string {
	if !strings.HasPrefix(channel, "#") {
		return ""
	}
	return fold(channel[1:])
}

// channelOf turns a room name into its IRC channel.
func channelOf(room string) string { return "#" + room }
