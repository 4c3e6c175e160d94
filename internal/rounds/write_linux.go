package rounds

import (
	"errors"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Writer writes to one TCP socket without waiting (non-blocking writev on
// its descriptor, through the runtime's own lock on it). Its iovec array
// is reused from write to write.
type Writer struct {
	tc  *net.TCPConn
	rc  syscall.RawConn
	iov []unix.Iovec
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
	total := 0
	for len(bufs) > 0 {
		chunk := bufs[:min(len(bufs), maxIov)]
		bufs = bufs[len(chunk):]
		w.iov = w.iov[:0]
		want := 0
		for _, b := range chunk {
			if len(b) == 0 {
				continue
			}
			v := unix.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			w.iov = append(w.iov, v)
			want += len(b)
		}
		if len(w.iov) == 0 {
			continue
		}
		n, err := w.writev()
		clear(w.iov) // keep no pointers into the buffers
		total += n
		if err != nil || n < want {
			return total, err
		}
	}
	return total, nil
}

func (w *Writer) writev() (int, error) {
	var n int
	var errno syscall.Errno
	write := func(fd uintptr) bool {
		for {
			r, _, e := unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(len(w.iov)))
			if e == unix.EINTR {
				continue
			}
			n, errno = int(r), e
			return true // never wait for the socket: that is the caller's goroutine's job
		}
	}
	err := w.rc.Write(write)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// A deadline a blocking writer left, now past: it bounds
		// nothing here (this write does not wait), but the runtime
		// refuses any write once it has passed.
		w.tc.SetWriteDeadline(time.Time{})
		err = w.rc.Write(write)
	}
	switch {
	case err != nil:
		return 0, err
	case errno == unix.EAGAIN:
		return 0, nil
	case errno != 0:
		return 0, errno
	}
	return n, nil
}
