package irc

import (
	"bytes"
	"errors"
	"io"
	"sync"

	"github.com/ergochat/irc-go/ircreader"

	"chatbox/internal/netpoll"
)

// idleReader is the line reader of a connection in poll mode (poll.go):
// ircreader.Reader's behaviour (lines end with \n or \r\n, at most max
// bytes without one, then ircreader.ErrReadQ; lines before an EOF are
// returned first) with a buffer borrowed from a pool only while it holds
// unread bytes. A silent client — most of them — holds none, where
// ircreader keeps its 512 bytes or more for the connection's life.
type idleReader struct {
	src        io.Reader // returns netpoll.ErrWouldBlock when empty
	max        int
	buf        *[]byte // nil while empty
	start, end int
	searched   int // buf[start:searched] has no \n
	eof        bool
}

// errWouldBlock is src's error when the socket is empty.
var errWouldBlock = netpoll.ErrWouldBlock

var idleBufs = sync.Pool{New: func() any { b := make([]byte, maxReadLine); return &b }}

// ReadLine returns the next line (without its \r\n or \n), valid until
// the next call; src's error (netpoll.ErrWouldBlock) when no whole line
// is there yet.
func (r *idleReader) ReadLine() ([]byte, error) {
	for {
		if r.buf != nil {
			b := (*r.buf)[:r.end]
			if i := bytes.IndexByte(b[r.searched:], '\n'); i >= 0 {
				nl := r.searched + i
				line := b[r.start:nl]
				r.start, r.searched = nl+1, nl+1
				if n := len(line); n > 0 && line[n-1] == '\r' {
					line = line[:n-1]
				}
				return line, nil
			}
			r.searched = r.end
		}
		if r.eof {
			r.release()
			return nil, io.EOF
		}
		if r.buf == nil {
			r.buf = idleBufs.Get().(*[]byte)
			r.start, r.end, r.searched = 0, 0, 0
		} else if r.start > 0 {
			n := copy(*r.buf, (*r.buf)[r.start:r.end])
			r.searched -= r.start
			r.start, r.end = 0, n
		}
		if r.end >= r.max {
			r.release() // the connection ends
			return nil, ircreader.ErrReadQ
		}
		n, err := r.src.Read((*r.buf)[r.end:r.max])
		r.end += n
		switch {
		case n > 0 && errors.Is(err, io.EOF):
			r.eof = true
		case err != nil:
			if r.start == r.end || !errors.Is(err, errWouldBlock) {
				r.release() // empty, or the end: nothing more to read
			}
			return nil, err
		}
	}
}

// release gives the buffer back (it holds nothing unread).
func (r *idleReader) release() {
	if r.buf != nil {
		idleBufs.Put(r.buf)
		r.buf = nil
	}
	r.start, r.end, r.searched = 0, 0, 0
}
