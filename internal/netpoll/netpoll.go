// Package netpoll tells when an idle connection has something to read,
// so that a server need not keep a goroutine waiting in Read for each
// of its connections.
//
// A goroutine blocked in Read holds its stack (2 KiB at the least, more
// once a command has grown it) for as long as the client stays
// connected and says nothing — most of a chat server's clients, most of
// the time. A Poller watches such sockets with an epoll instance of its
// own (one goroutine for all of them, waiting in epoll_wait); when one
// becomes readable, or closes, it calls the connection's Ready function
// once. The server then reads, on a goroutine that lives only while
// there is something to read, until the socket would block, and calls
// Arm to be told again. Registrations are one-shot (EPOLLONESHOT) and
// level-triggered: Arm re-evaluates the socket, so bytes that came
// between the last read and Arm are never missed.
//
// The Go runtime keeps its own registration of the socket for its
// netpoller; the two do not interfere (a descriptor may be in several
// epoll sets). Reads are the caller's, non-blocking (Read below): the
// runtime's read deadlines do not apply to them.
//
// Linux only (epoll); elsewhere New reports ErrUnsupported and servers
// keep a reading goroutine per connection.
package netpoll

import "errors"

// ErrUnsupported is New's error where there is no epoll.
var ErrUnsupported = errors.New("netpoll: not supported on this system")

// ErrWouldBlock is Read's error when the socket has nothing to read now.
var ErrWouldBlock = errors.New("netpoll: nothing to read now")
