package irc_test

import "testing"

// TestSetname: SETNAME is answered and reaches channel mates that asked
// for the setname capability.
func TestSetname(t *testing.T) {
	b := startBox(t, []string{"alice", "bob"})
	alice := b.login(t, "alice", "setname")
	bob := b.login(t, "bob", "setname")
	alice.send("JOIN #general")
	alice.expectLine("366")
	bob.send("JOIN #general")
	bob.expectLine("366")
	alice.send("SETNAME :Alice Liddell")
	alice.expect("her own SETNAME", isFrom("alice", "SETNAME", "Alice Liddell"))
	bob.expect("alice's SETNAME", isFrom("alice", "SETNAME", "Alice Liddell"))
}
