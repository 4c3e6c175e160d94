package chat

import (
	"fmt"
	"strings"
)

// Fold returns the canonical form of an account or room name: ASCII lower
// case (the only letters ValidName allows).
func Fold(name string) string { return strings.ToLower(name) }

// reservedNames are service names IRC clients and users expect to be the
// server's (NickServ and friends); no account or room may take them.
var reservedNames = map[string]bool{
	"nickserv": true, "chanserv": true, "memoserv": true, "operserv": true,
	"hostserv": true, "histserv": true, "botserv": true, "global": true,
}

// ValidName checks an account or room name (after Fold) against the shared
// rule ^[a-z][a-z0-9_-]{0,29}$ and the reserved service names, and says
// what is wrong in a sentence a user can act on.
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: a name cannot be empty", ErrBadName)
	}
	if len(name) > 30 {
		return fmt.Errorf("%w: %q is %d characters long, at most 30 are allowed", ErrBadName, name, len(name))
	}
	if c := name[0]; c < 'a' || c > 'z' {
		return fmt.Errorf("%w: %q must start with a letter a-z", ErrBadName, name)
	}
	for i := 1; i < len(name); i++ {
		c := name[i]
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' {
			continue
		}
		return fmt.Errorf("%w: %q may hold only a-z, 0-9, '_' and '-' (found %q)", ErrBadName, name, string(rune(c)))
	}
	if reservedNames[name] {
		return fmt.Errorf("%w: %q is reserved for the server's own services", ErrBadName, name)
	}
	return nil
}

// foldNick is the comparison key of a room nickname.
func foldNick(nick string) string { return strings.ToLower(nick) }
