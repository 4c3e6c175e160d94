package netpoll

import (
	"net"
	"sync/atomic"
	"time"
)

// Parker is one connection's wait without a goroutine: its registration,
// a timer standing in for its read deadline, and the parked flag that
// lets exactly one of the poller, the timer and Wake resume it. The
// connection's reader calls Park when it finds nothing to read and, if
// that reports true, ends; resume then runs on a new goroutine (on the
// timer's, with timedOut, when the deadline came first).
type Parker struct {
	reg    *Reg
	resume func(timedOut bool)
	parked atomic.Bool
	due    atomic.Int64 // the timer's due time (UnixNano)
	timer  *time.Timer
}

// NewParker registers nc with p; resume is the connection's reader,
// started again after each successful Park.
func (p *Poller) NewParker(nc net.Conn, resume func(timedOut bool)) (*Parker, error) {
	k := &Parker{resume: resume}
	// Made now, stopped: Wake may stop it as soon as Park has set parked.
	k.timer = time.AfterFunc(time.Hour, k.timedOut)
	k.timer.Stop()
	reg, err := p.Register(nc, k.Wake)
	if err != nil {
		return nil, err
	}
	k.reg = reg
	return k, nil
}

// Park waits for the socket (readable or closed) or for wait to pass.
// It reports whether the reader may end (parked: resume will run, or
// runs already); false with the registration's error when it cannot
// wait.
func (k *Parker) Park(wait time.Duration) (bool, error) {
	k.due.Store(time.Now().Add(wait).UnixNano())
	k.parked.Store(true)
	// A Wake may already have stopped it: then it fires for nothing
	// (timedOut finds nothing parked, or a later due time).
	k.timer.Reset(wait)
	if err := k.reg.Arm(); err != nil {
		if !k.parked.CompareAndSwap(true, false) {
			return true, nil // woken already: that goroutine reads on
		}
		k.timer.Stop()
		return false, err
	}
	return true, nil
}

// Unpark takes a Park back, when the reader learns after parking that
// it must go on (the connection ended meanwhile and its Wake came before
// the park); false when a resume has begun already.
func (k *Parker) Unpark() bool {
	if k.parked.CompareAndSwap(true, false) {
		k.timer.Stop()
		return true
	}
	return false
}

// Parked says whether the reader is parked now.
func (k *Parker) Parked() bool { return k.parked.Load() }

// Wake resumes a parked reader now (the poller's call; also the
// connection's end). It never waits.
func (k *Parker) Wake() {
	if k.Unpark() {
		go k.resume(false)
	}
}

// timedOut is the timer's call. A call from an earlier park, which lost
// the race with Wake, finds a later due time and leaves it to that
// park's timer.
func (k *Parker) timedOut() {
	if time.Now().UnixNano() < k.due.Load() {
		return
	}
	if k.parked.CompareAndSwap(true, false) {
		k.resume(true)
	}
}

// Read reads what the socket holds now without waiting (Reg.Read).
func (k *Parker) Read(b []byte) (int, error) { return k.reg.Read(b) }

// Close ends the registration and the timer; call it before closing
// the connection.
func (k *Parker) Close() {
	k.timer.Stop()
	k.reg.Close()
}
