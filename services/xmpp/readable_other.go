//go:build !linux

package xmpp

// canWaitReadable says whether socketReadable can tell (conn.waitInput):
// not here, where the readers wait inside their reads.
const canWaitReadable = false

func socketReadable(uintptr, *byte) bool { return true }
