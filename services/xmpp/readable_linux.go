package xmpp

import (
	"syscall"
	"unsafe"
)

// canWaitReadable says whether socketReadable can tell (conn.waitInput).
const canWaitReadable = true

// socketReadable reports whether a read of the socket fd would not wait:
// bytes are there, the peer closed it, or it failed. It peeks at one
// byte into b, without taking it.
func socketReadable(fd uintptr, b *byte) bool {
	_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(b)), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno != syscall.EAGAIN
}
