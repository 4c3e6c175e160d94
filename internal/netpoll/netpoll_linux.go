package netpoll

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller is one epoll instance and the goroutine that waits on it.
type Poller struct {
	ep   int
	wake int // eventfd: Close's way to end the wait
	log  *slog.Logger

	mu     sync.Mutex
	regs   map[int32]*Reg
	nextID int32
	closed bool
	done   chan struct{}
}

// Reg is one connection's registration.
type Reg struct {
	p     *Poller
	id    int32
	rc    syscall.RawConn
	ready func()
}

// New starts a Poller; Close ends it.
func New(log *slog.Logger) (*Poller, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("netpoll: epoll_create1: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("netpoll: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(ep)
		unix.Close(wake)
		return nil, fmt.Errorf("netpoll: epoll_ctl: %w", err)
	}
	p := &Poller{ep: ep, wake: wake, log: log, regs: map[int32]*Reg{}, done: make(chan struct{})}
	go p.loop()
	return p, nil
}

// Close ends the Poller's goroutine; registrations left are forgotten
// (their Ready is never called again). It waits for the goroutine.
func (p *Poller) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.done
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	var one = []byte{1, 0, 0, 0, 0, 0, 0, 0}
	unix.Write(p.wake, one)
	<-p.done
	unix.Close(p.wake)
	return unix.Close(p.ep)
}

func (p *Poller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(p.ep, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if p.log != nil {
				p.log.Error("netpoll: epoll_wait failed; idle connections are no longer read", "err", err)
			}
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		var fire []func()
		for _, ev := range events[:n] {
			if r := p.regs[ev.Fd]; r != nil {
				fire = append(fire, r.ready)
			}
		}
		p.mu.Unlock()
		for _, f := range fire {
			f()
		}
	}
}

// Register watches nc, a *net.TCPConn (or anything with SyscallConn);
// ready is called once (on the Poller's goroutine: it must not wait)
// after each Arm, when the socket is readable, at its end or on error.
// The registration starts disarmed.
func (p *Poller) Register(nc net.Conn, ready func()) (*Reg, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("netpoll: %T has no descriptor", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, errors.New("netpoll: poller closed")
	}
	for { // ids wrap after 2^31 registrations; skip those in use
		p.nextID++
		if p.nextID < 0 {
			p.nextID = 0
		}
		if _, used := p.regs[p.nextID]; !used {
			break
		}
	}
	r := &Reg{p: p, id: p.nextID, rc: rc, ready: ready}
	p.regs[r.id] = r
	p.mu.Unlock()
	var cerr error
	err = rc.Control(func(fd uintptr) {
		// Disarmed: EPOLLONESHOT with no event wanted yet.
		ev := unix.EpollEvent{Events: unix.EPOLLONESHOT, Fd: r.id}
		cerr = unix.EpollCtl(p.ep, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		p.forget(r)
		return nil, fmt.Errorf("netpoll: epoll_ctl add: %w", err)
	}
	return r, nil
}

func (p *Poller) forget(r *Reg) {
	p.mu.Lock()
	if p.regs[r.id] == r {
		delete(p.regs, r.id)
	}
	p.mu.Unlock()
}

// Arm asks for one more call of ready: at once if the socket is
// readable (or closed) now, else when it becomes so.
func (r *Reg) Arm() error {
	var cerr error
	err := r.rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: r.id}
		cerr = unix.EpollCtl(r.p.ep, unix.EPOLL_CTL_MOD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("netpoll: epoll_ctl mod: %w", err)
	}
	return nil
}

// Close ends the registration: ready is not called after it returns
// (unless a call had already begun). Call it before closing the
// connection.
func (r *Reg) Close() {
	r.p.forget(r)
	r.rc.Control(func(fd uintptr) {
		unix.EpollCtl(r.p.ep, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
}

// Read reads what the socket holds now into b without waiting: it
// returns ErrWouldBlock when there is nothing, io.EOF at the end.
func (r *Reg) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var rerr error
	err := r.rc.Control(func(fd uintptr) {
		for {
			n, rerr = unix.Read(int(fd), b)
			if rerr != unix.EINTR {
				return
			}
		}
	})
	switch {
	case err != nil:
		return 0, err // closed: net.ErrClosed
	case rerr == unix.EAGAIN:
		return 0, ErrWouldBlock
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: rerr}
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}
