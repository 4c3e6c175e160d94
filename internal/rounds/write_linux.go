package rounds

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Writer writes to one TCP socket without waiting (non-blocking writev on
// its descriptor, through the runtime's own lock on it).
type Writer struct {
	tc *net.TCPConn
	rc syscall.RawConn
}

// calls are the writes' iovec arrays and results, lent for one TryWritev:
// an array per connection, kept between its writes, was up to 16 KB
// (IOV_MAX entries) a connection held for the size of its largest round,
// grown anew for each; and the results and the function the runtime
// calls with the descriptor were three allocations per write.
var calls = sync.Pool{New: func() any {
	c := new(writevCall)
	c.do = c.write
	return c
}}

// writevCall is one writev: its iovecs and its result.
type writevCall struct {
	iov   []unix.Iovec
	n     int
	errno syscall.Errno
	do    func(fd uintptr) bool // c.write
}

// write is the runtime's callback with the descriptor, under its lock.
func (c *writevCall) write(fd uintptr) bool {
	for {
		r, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&c.iov[0])), uintptr(len(c.iov)))
		if e == unix.EINTR {
			continue
		}
		c.n, c.errno = int(r), e
		return true // never wait for the socket: that is the caller's goroutine's job
	}
}

// NewWriter returns a Writer for nc, or nil when nc is not a plain TCP
// connection (TLS and WebSocket connections write from a goroutine).
func NewWriter(nc net.Conn) *Writer {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return &Writer{tc: tc, rc: rc}
}

// maxIov is the most buffers one writev takes (Linux's IOV_MAX).
const maxIov = 1024

// TryWritev writes bufs as far as the socket takes them now and returns
// how many bytes it wrote: fewer than all when the socket's buffer is
// full. An error means the connection is broken.
func (w *Writer) TryWritev(bufs [][]byte) (int, error) {
	c := calls.Get().(*writevCall)
	defer calls.Put(c)
	total := 0
	for len(bufs) > 0 {
		chunk := bufs[:min(len(bufs), maxIov)]
		bufs = bufs[len(chunk):]
		c.iov = c.iov[:0]
		want := 0
		for _, b := range chunk {
			if len(b) == 0 {
				continue
			}
			v := unix.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			c.iov = append(c.iov, v)
			want += len(b)
		}
		if len(c.iov) == 0 {
			continue
		}
		n, err := w.writev(c)
		clear(c.iov) // keep no pointers into the buffers
		total += n
		if err != nil || n < want {
			return total, err
		}
	}
	return total, nil
}

func (w *Writer) writev(c *writevCall) (int, error) {
	c.n, c.errno = 0, 0
	err := w.rc.Write(c.do)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// A deadline a blocking writer left, now past: it bounds
		// nothing here (this write does not wait), but the runtime
		// refuses any write once it has passed.
		w.tc.SetWriteDeadline(time.Time{})
		err = w.rc.Write(c.do)
	}
	switch {
	case err != nil:
		return 0, err
	case c.errno == unix.EAGAIN:
		return 0, nil
	case c.errno != 0:
		return 0, c.errno
	}
	return c.n, nil
}
