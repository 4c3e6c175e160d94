package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// client is one connection, IRC or XMPP, joined to the room.
type client interface {
	// send sends one room message (safe beside the reader).
	send(seq int, body string) error
	// join joins the room (once, after the login), bounded by ctx.
	join(ctx context.Context) error
	// readLoop reads until the connection ends, handing room messages to
	// member.received.
	readLoop()
	// quit says goodbye and closes the connection.
	quit()
	// echoes reports whether the client receives its own room messages.
	echoes() bool
	base() *peer
}

// member is what the bench knows of one client.
type member struct {
	b       *bench
	idx     int
	proto   string
	account string
	joined  time.Duration // join sent to joined
	cl      client
	seen    bitset // by sender*messages+seq; the reader's alone
	done    chan struct{}
	stage   atomic.Pointer[string] // where connecting is, for a stall's report
	lastMu  sync.Mutex
	last    []string
	pend    pending // the reader's deliveries not yet in the run's counts (flush)
}

// pending holds a reader's deliveries until flush adds them to the
// run's shared counters: once per read, not four atomic operations on
// counters every reader shares per delivery (their cache lines moved
// between the processors at every one, the tool's own CPU competing
// with the server's).
type pending struct {
	lat    [64]int64 // latencies, µs
	n      int
	lastAt int64 // ns since base of the latest
}

// note keeps the last few things the server sent while connecting, for
// the report of a stall.
func (m *member) note(s string) {
	m.lastMu.Lock()
	defer m.lastMu.Unlock()
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if len(m.last) == 4 {
		m.last = append(m.last[:0], m.last[1:]...)
	}
	m.last = append(m.last, strings.TrimSpace(s))
}

func (m *member) lastSeen() string {
	m.lastMu.Lock()
	defer m.lastMu.Unlock()
	if len(m.last) == 0 {
		return "nothing"
	}
	return strconv.Quote(strings.Join(m.last, " | "))
}

// setStage notes what the client waits for while connecting.
func (m *member) setStage(s string) { m.stage.Store(&s) }

func (m *member) stageName() string {
	if p := m.stage.Load(); p != nil {
		return *p
	}
	return "not started"
}

// bench is one run's shared state.
type bench struct {
	o       options
	runID   string
	base    time.Time // send timestamps are nanoseconds since base
	hist    *histogram
	want    atomic.Int64 // set before the first send
	total   atomic.Int64 // distinct deliveries
	dups    atomic.Int64
	lastAt  atomic.Int64 // nanoseconds since base of the latest delivery
	allDone chan struct{}
	closing atomic.Bool // the run is over: connection ends are not errors

	errCount atomic.Int64
	errMu    sync.Mutex
	errFirst []string
}

const maxErrorSamples = 10

// fail counts one error and keeps the first few texts; once the run is
// over (connections closing), nothing counts.
func (b *bench) fail(format string, args ...any) {
	if b.closing.Load() {
		return
	}
	b.errCount.Add(1)
	b.errMu.Lock()
	defer b.errMu.Unlock()
	if len(b.errFirst) < maxErrorSamples {
		b.errFirst = append(b.errFirst, fmt.Sprintf(format, args...))
	}
}

// connEnded is called by a reader whose connection ended.
func (m *member) connEnded(err error) {
	m.flush()
	m.b.fail("%s (%s): connection ended: %v", m.account, m.proto, err)
}

// bodyFor is the text of message seq of sender s.
func (b *bench) bodyFor(s, seq int) string {
	return "cb " + b.runID + " " + strconv.Itoa(s) + " " + strconv.Itoa(seq) + " " + strconv.FormatInt(time.Since(b.base).Nanoseconds(), 10)
}

// received handles a room message's body as client m got it at now.
func (m *member) received(body string, now time.Time) { receivedBody(m, body, now) }

// receivedBytes is received for a body read straight from the stream.
func (m *member) receivedBytes(body []byte, now time.Time) { receivedBody(m, body, now) }

func receivedBody[T ~string | ~[]byte](m *member, body T, now time.Time) {
	b := m.b
	s, seq, sent, ok := parseBody(body, b.runID)
	if !ok {
		return // another run's (history), or someone else's
	}
	if s < 0 || s >= b.o.senders || seq < 0 || seq >= b.o.messages {
		b.fail("%s (%s): malformed message %q", m.account, m.proto, string(body))
		return
	}
	if m.seen.set(s*b.o.messages + seq) {
		b.dups.Add(1)
		return
	}
	at := int64(now.Sub(b.base))
	p := &m.pend
	p.lat[p.n] = max((at-sent)/int64(time.Microsecond), 0)
	p.n++
	p.lastAt = max(p.lastAt, at)
	if p.n == len(p.lat) {
		m.flush()
	}
}

// flush adds the reader's pending deliveries to the run's counts; the
// reader calls it before a read that may wait.
func (m *member) flush() {
	p := &m.pend
	if p.n == 0 {
		return
	}
	b := m.b
	b.hist.recordMicros(p.lat[:p.n])
	for cur := b.lastAt.Load(); p.lastAt > cur && !b.lastAt.CompareAndSwap(cur, p.lastAt); cur = b.lastAt.Load() {
	}
	k := int64(p.n)
	p.n = 0
	if t, want := b.total.Add(k), b.want.Load(); want > 0 && t >= want && t-k < want {
		close(b.allDone)
	}
}

// parseBody reads "cb RUN S SEQ SENT" (bodyFor) without allocating; ok
// is false for a body of another run or shape.
func parseBody[T ~string | ~[]byte](body T, run string) (s, seq int, sent int64, ok bool) {
	var f [5]T
	n := 0
	start := 0
	for i := 0; i <= len(body); i++ {
		if i < len(body) && body[i] != ' ' {
			continue
		}
		if n == len(f) {
			return 0, 0, 0, false
		}
		f[n] = body[start:i]
		n++
		start = i + 1
	}
	if n != 5 || !same(f[0], "cb") || !same(f[1], run) {
		return 0, 0, 0, false
	}
	a, ok1 := decimal(f[2])
	q, ok2 := decimal(f[3])
	t, ok3 := decimal(f[4])
	if !ok1 || !ok2 || !ok3 {
		return -1, -1, 0, true // ours, but malformed
	}
	return int(a), int(q), t, true
}

func same[T ~string | ~[]byte](a T, s string) bool {
	if len(a) != len(s) {
		return false
	}
	for i := range len(s) {
		if a[i] != s[i] {
			return false
		}
	}
	return true
}

// decimal parses a non-negative decimal of up to 18 digits.
func decimal[T ~string | ~[]byte](a T) (int64, bool) {
	if len(a) == 0 || len(a) > 18 {
		return 0, false
	}
	var v int64
	for i := range len(a) {
		c := a[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// senderIndex returns the client index of sender s: spread evenly, so
// that senders come from both protocols in proportion.
func (o *options) senderIndex(s int) int {
	return s * o.clients / o.senders
}

// connectAll connects every client and logs it in, then (after between,
// if not nil) joins each to the room: two phases, each
// o.connectParallel clients at a time, so that the joins are measured
// apart from the logins (TCP, TLS, SASL). It stops at the first failure.
func (b *bench) connectAll(ctx context.Context, progress func(joined int), between func() error) (members []*member, login, join time.Duration, err error) {
	o := &b.o
	nx := o.xmppClients()
	runDeadline, _ := ctx.Deadline()
	members = make([]*member, o.clients)
	defer func() {
		if err != nil {
			for _, m := range members {
				if m != nil {
					m.cl.quit()
				}
			}
			members = nil
		}
	}()
	t0 := time.Now()
	err = b.parallel(ctx, func(ctx context.Context, i int) error {
		name, pw := o.account(i)
		m := &member{b: b, idx: i, account: name, seen: newBitset(o.senders * o.messages), done: make(chan struct{})}
		m.setStage("dialling")
		start := time.Now()
		var err error
		if i < nx {
			m.proto = "xmpp"
			var c *xmppClient
			if c, err = dialXMPP(ctx, o, name, pw, m); err == nil {
				m.cl = c
			}
		} else {
			m.proto = "irc"
			var c *ircClient
			if c, err = dialIRC(ctx, o, name, pw, m); err == nil {
				m.cl = c
			}
		}
		if err != nil {
			return fmt.Errorf("%s (%s), %s after %s: %w (last from the server: %s)",
				name, m.proto, m.stageName(), time.Since(start).Round(time.Millisecond), err, m.lastSeen())
		}
		m.cl.base().setDeadline(runDeadline) // not the login's
		members[i] = m
		return nil
	})
	login = time.Since(t0)
	if err != nil {
		return nil, login, 0, fmt.Errorf("logging in: %w", err)
	}
	if between != nil {
		if err = between(); err != nil {
			return nil, login, 0, err
		}
	}
	t1 := time.Now()
	var joined atomic.Int64
	err = b.parallel(ctx, func(ctx context.Context, i int) error {
		m := members[i]
		start := time.Now()
		if err := m.cl.join(ctx); err != nil {
			return fmt.Errorf("%s (%s), %s after %s: %w (last from the server: %s)",
				m.account, m.proto, m.stageName(), time.Since(start).Round(time.Millisecond), err, m.lastSeen())
		}
		m.joined = time.Since(start)
		go func() {
			defer close(m.done)
			m.cl.readLoop()
		}()
		progress(int(joined.Add(1)))
		return nil
	})
	join = time.Since(t1)
	if err != nil {
		return nil, login, join, fmt.Errorf("joining (%d of %d joined): %w", joined.Load(), o.clients, err)
	}
	return members, login, join, nil
}

// parallel calls step for every client index, o.connectParallel at a
// time, each bounded by --join-timeout; it stops at the first error and
// returns it.
func (b *bench) parallel(ctx context.Context, step func(ctx context.Context, i int) error) error {
	o := &b.o
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, o.connectParallel)
	var wg sync.WaitGroup
	for i := range o.clients {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			sctx, scancel := context.WithTimeoutCause(ctx, o.joinTimeout, fmt.Errorf("--join-timeout %s reached", o.joinTimeout))
			defer scancel()
			if err := step(sctx, i); err != nil {
				cancel(err)
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// warmUp connects and joins the first o.warmup clients (in the run's
// mix of protocols) and ends them: the server's idle memory, the
// baseline of the per-connection figure, then holds what any first
// client brings in (code paged in from the binary, caches), not only
// what a server that never served holds.
func (b *bench) warmUp(ctx context.Context) error {
	if b.o.warmup == 0 {
		return nil
	}
	wb := &bench{o: b.o, runID: b.runID, base: b.base, hist: newHistogram(), allDone: make(chan struct{})}
	wb.o.clients = min(b.o.warmup, b.o.clients)
	members, _, _, err := wb.connectAll(ctx, func(int) {}, nil)
	if err != nil {
		return fmt.Errorf("warm-up (--warmup %d): %w", wb.o.clients, err)
	}
	wb.closeAll(members)
	return nil
}

// closeAll ends every connection and waits (bounded) for the readers.
func (b *bench) closeAll(members []*member) {
	b.closing.Store(true)
	var wg sync.WaitGroup
	for _, m := range members {
		if m != nil {
			wg.Go(m.cl.quit)
		}
	}
	wg.Wait()
	limit := time.After(10 * time.Second)
	for _, m := range members {
		if m == nil {
			continue
		}
		select {
		case <-m.done:
		case <-limit:
			return
		}
	}
}

// peer is what both protocols' clients share: the connection and a
// write lock (the sender and the reader's answers to pings both write).
type peer struct {
	nc       net.Conn
	wmu      sync.Mutex
	deadline time.Time // for writes: the run's end
	closed   atomic.Bool
}

func (p *peer) base() *peer { return p }

// setDeadline bounds the writes from now on.
func (p *peer) setDeadline(t time.Time) {
	p.wmu.Lock()
	p.deadline = t
	p.wmu.Unlock()
}

func (p *peer) write(b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.nc.SetWriteDeadline(p.deadline)
	_, err := p.nc.Write(b)
	return err
}

// close closes the connection once, after a last write of bye (bounded).
func (p *peer) close(bye string) {
	if p.closed.Swap(true) {
		return
	}
	if bye != "" {
		p.wmu.Lock()
		p.nc.SetWriteDeadline(time.Now().Add(time.Second))
		p.nc.Write([]byte(bye))
		p.wmu.Unlock()
	}
	p.nc.Close()
}

// watchCtx makes blocking I/O on nc return once ctx is done; the
// returned function stops watching.
func watchCtx(ctx context.Context, nc net.Conn) func() bool {
	return context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
}

// errServer is an error the server reported.
var errServer = errors.New("server refused")

// ioErr names a timeout as the run's timeout.
func ioErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, context.Cause(ctx))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: timed out", what)
	}
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: the server closed the connection", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}
