package irc

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ergochat/irc-go/ircmsg"
	"github.com/ergochat/irc-go/ircreader"

	"chatbox/internal/wsconn"
	"chatbox/services/chat"
)

// Input bounds (Modern IRC, IRCv3 message-tags): 512 bytes of message
// (CRLF included) after at most 4094 bytes of client tags. The reader
// holds at most one such line; a longer one closes the connection.
const (
	maxLineBody = 512
	maxReadLine = maxLineBody + ircmsg.MaxlenTagsFromClient + 2
	writeWait   = 30 * time.Second
)

type connState int

const (
	stateNew        connState = iota // before NICK/USER/CAP END
	stateRegistered                  // welcome sent
)

// conn is one client connection. Its reader goroutine runs the commands;
// its writer goroutine writes the queue, translating the core's
// deliveries into lines in the order the core made them.
type conn struct {
	srv   *Server
	nc    net.Conn
	ip    string
	isTLS bool
	rd    ircreader.Reader

	// Direct messages shown while the session's waiting messages are
	// handed over (startSession): a message sent at the moment the session
	// opens can come both live and from the offline queue; it is shown
	// once. dmu guards them.
	dmu          sync.Mutex
	directSeen   map[int64]struct{}
	directRecord bool

	// Line-rate bucket (reader goroutine only).
	tokens   float64
	lastLine time.Time

	mu          sync.Mutex // guards the fields below
	state       connState
	nick        string
	user        string
	realname    string
	gotUser     bool
	caps        capSet
	capBlocking bool
	capVersion  int
	pass        string
	passNick    string // a NICK held by another connection, kept for a pending PASS login
	// replayed is, per room, the last message a JOIN replay showed; the
	// writer alone uses it (translate).
	replayed   map[string]int64
	account    string
	admin      bool // box admin: IRC operator
	sess       *chat.Session
	away       string
	modes      map[byte]bool // user modes: i, w, B, o
	monitor    map[string]bool
	signon     time.Time
	idleSince  time.Time
	authBy     time.Time // deadline to prove an account's nick
	saslMech   string
	saslBuf    []byte
	clientCert []byte

	qmu     sync.Mutex // guards the write queue
	queue   []outItem
	spare   []outItem // the queue's other buffer, given back by the writer
	qBytes  int
	started bool // run began: enqueue starts a writer when none runs
	writing bool // a writer goroutine runs (or will, for the queue)
	dead    bool
	reason  string
	done    chan struct{} // closed when the last writer ends (dead)

	// lastFlush is when the writer last wrote to the socket, and
	// renewDeadline when its write deadline is to be moved next; the
	// writer alone uses them (one writer runs at a time).
	lastFlush     time.Time
	renewDeadline time.Time

	// Writer goroutine only: the settings of each channel the client is
	// in, as it was last told them (nil until the first join).
	chans chanList
}

// outItem is one thing to write: a line made by the server, a delivery,
// or (without the 632-byte copy of a Delivery per receiver) the fields of
// a room message's delivery.
type outItem struct {
	line   []byte
	d      *chat.Delivery
	msg    *chat.Message // a room message: d is nil
	shared *chat.Rendered
	door   string // the sender's door
	echo   bool
}

func newConn(s *Server, nc net.Conn, ip string) *conn {
	now := s.cfg.Now()
	c := &conn{srv: s, nc: nc, ip: ip, tokens: float64(s.cfg.LineBurst), lastLine: now,
		caps: capSet{}, modes: map[byte]bool{}, monitor: map[string]bool{}, signon: now, idleSince: now,
		done: make(chan struct{})}
	_, c.isTLS = nc.(*tls.Conn)
	if w, ok := nc.(*wsNetConn); ok {
		c.isTLS = w.tls
	}
	c.rd.Initialize(nc, 512, maxReadLine)
	return c
}

// host is the client's host as others see it: its door and the domain.
func (c *conn) host() string { return "irc." + c.srv.cfg.ServerName }

func (c *conn) accountName() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.account
}

func (c *conn) session() *chat.Session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess
}

func (c *conn) currentNick() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nick == "" {
		return "*"
	}
	return c.nick
}

func (c *conn) hasCap(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.caps.has(name)
}

// capsCopy returns the client's capabilities now. The set is replaced,
// never changed, when the client asks for others (caps.go), so it is
// safe to keep without copying.
func (c *conn) capsCopy() capSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.caps
}

// prefix is the client's nick!user@host.
func (c *conn) prefix() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nick + "!" + c.userLocked() + "@" + c.host()
}

func (c *conn) userLocked() string {
	if c.account != "" {
		return c.account
	}
	if c.user != "" {
		return "~" + c.user
	}
	return "~u"
}

// run serves the connection until it ends. The reader goroutine lives
// as long as the connection and mostly waits in a read: its frames are
// kept small (the work is in the functions below, not inlined, and
// commands run on a stack of their own, onOwnStack), so that the runtime
// shrinks its stack to the least.
func (c *conn) run() {
	c.qmu.Lock()
	c.started = true
	c.startWriterLocked()
	c.qmu.Unlock()
	defer c.end()
	st := &readState{regBy: time.Now().Add(c.srv.cfg.RegistrationTimeout)}
	if !c.handshake(st.regBy) {
		return
	}
	for {
		c.nc.SetReadDeadline(time.Now().Add(c.readWait(st)))
		line, err := c.rd.ReadLine()
		if !c.afterRead(st, line, err) {
			return
		}
	}
}

// readState is what the reader keeps between lines.
type readState struct {
	// Registration must be over by regBy, however slowly the client
	// sends (slowloris): the deadline does not move with each line.
	regBy      time.Time
	pinged     bool
	registered bool      // as of the last read
	authBy     time.Time // as of the last read
}

// end closes the connection when the reader stops.
//
//go:noinline
func (c *conn) end() {
	c.kill("")
	<-c.done
	if s := c.session(); s != nil {
		c.mu.Lock()
		reason := c.reason
		c.mu.Unlock()
		s.Close(reason)
	}
	c.nc.Close()
}

// handshake completes a TLS connection's handshake (by regBy) and says
// whether to go on.
//
//go:noinline
func (c *conn) handshake(regBy time.Time) bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	tc.SetDeadline(regBy)
	if err := onOwnStack(tc.Handshake); err != nil {
		c.srv.log.Debug("tls handshake", "addr", c.ip, "err", err)
		return false
	}
	if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
		c.clientCert = certs[0].Raw
	}
	tc.SetDeadline(time.Time{})
	return true
}

// readWait is how long the next read may wait.
//
//go:noinline
func (c *conn) readWait(st *readState) time.Duration {
	c.mu.Lock()
	st.registered = c.state >= stateRegistered
	st.authBy = c.authBy
	c.mu.Unlock()
	wait := c.srv.cfg.PingInterval
	if !st.registered {
		wait = max(time.Until(st.regBy), time.Millisecond)
	} else if st.pinged {
		wait = c.srv.cfg.PingTimeout
	}
	if !st.authBy.IsZero() {
		if until := time.Until(st.authBy); until < wait {
			wait = max(until, time.Millisecond)
		}
	}
	return wait
}

// afterRead handles what a read returned and says whether to read on.
//
//go:noinline
func (c *conn) afterRead(st *readState, line []byte, err error) bool {
	if err != nil {
		var ne net.Error
		var wsErr *wsconn.ProtocolError // websocket.go
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			if c.isDead() {
				return false // quit() ends the read at once
			}
			if !st.authBy.IsZero() && !time.Now().Before(st.authBy) {
				c.authTimedOut()
				return true
			}
			if !st.registered {
				c.kill("Registration timed out")
				return false
			}
			if st.pinged {
				c.kill("Ping timeout: " + c.srv.cfg.PingTimeout.String())
				return false
			}
			st.pinged = true
			c.sendLine(ircmsg.MakeMessage(nil, "", "PING", c.srv.cfg.ServerName))
			return true
		case errors.Is(err, ircreader.ErrReadQ):
			c.numeric(ERR_INPUTTOOLONG, "Input line too long")
			c.kill("Input line too long")
			return false
		case errors.As(err, &wsErr):
			c.kill(wsErr.Reason)
			return false
		case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
			c.kill("Connection closed")
			return false
		default:
			c.kill("Read error")
			return false
		}
	}
	st.pinged = false
	if c.isDead() {
		return false
	}
	if !st.registered && !time.Now().Before(st.regBy) {
		c.kill("Registration timed out")
		return false
	}
	c.throttle()
	text := string(line)
	onOwnStack(func() error { c.handleLine(text); return nil })
	// A client that never pauses gets no read time-out: check the
	// login countdown here too.
	c.mu.Lock()
	overdue := !c.authBy.IsZero() && !time.Now().Before(c.authBy) && c.account == ""
	c.mu.Unlock()
	if overdue {
		c.authTimedOut()
	}
	return !c.isDead()
}

// onOwnStack runs f on a goroutine of its own and waits for it. Commands
// go deep (the store, password hashing, a TLS handshake) and a goroutine
// keeps the stack it grew to: run on its own, the reader, which lives as
// long as the connection, keeps a small stack (about 4 KiB less per
// idle connection).
func onOwnStack(f func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- f() }()
	return <-errc
}

// throttle delays a client that sends faster than LinesPerSecond after
// its burst ("fake lag"): its lines are all handled, only later.
func (c *conn) throttle() {
	now := time.Now()
	rate := c.srv.cfg.LinesPerSecond
	c.tokens = min(float64(c.srv.cfg.LineBurst), c.tokens+now.Sub(c.lastLine).Seconds()*rate)
	c.lastLine = now
	c.tokens--
	if c.tokens < 0 {
		d := time.Duration(-c.tokens / rate * float64(time.Second))
		time.Sleep(min(d, time.Second))
	}
}

// handleLine parses and runs one line from the client.
func (c *conn) handleLine(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	if !utf8.ValidString(line) {
		c.sendLine(ircmsg.MakeMessage(nil, c.srv.cfg.ServerName, "FAIL", "*", "INVALID_UTF8", "This server accepts UTF-8 only (UTF8ONLY)"))
		return
	}
	msg, err := ircmsg.ParseLineStrict(line, true, maxLineBody)
	switch {
	case errors.Is(err, ircmsg.ErrorBodyTooLong):
		c.numeric(ERR_INPUTTOOLONG, "Input line too long")
		return
	case errors.Is(err, ircmsg.ErrorTagsTooLong):
		c.numeric(ERR_INPUTTOOLONG, "Input line too long (tags)")
		return
	case errors.Is(err, ircmsg.ErrorLineIsEmpty):
		return
	case err != nil:
		c.sendLine(ircmsg.MakeMessage(nil, c.srv.cfg.ServerName, "FAIL", "*", "INVALID_MESSAGE", "Malformed line: "+err.Error()))
		return
	}
	cmd := strings.ToUpper(msg.Command)
	msg.Command = cmd
	h, ok := commands[cmd]
	r := &request{c: c, msg: msg}
	if present, label := msg.GetTag("label"); present && c.hasCap("labeled-response") {
		r.label = label
	}
	defer r.finish()
	if !ok {
		r.numeric(ERR_UNKNOWNCOMMAND, cmd, "Unknown command")
		return
	}
	c.mu.Lock()
	state := c.state
	identified := c.account != "" || c.sess != nil // an account, or a guest
	c.mu.Unlock()
	if state < stateRegistered && !h.preReg {
		r.numeric(ERR_NOTREGISTERED, "You have not registered")
		return
	}
	if state >= stateRegistered && !identified && !h.unidentified {
		r.notice("You must log in first: use SASL, PASS account:password, or /msg NickServ IDENTIFY password")
		return
	}
	if len(msg.Params) < h.minParams {
		r.numeric(ERR_NEEDMOREPARAMS, cmd, "Not enough parameters")
		return
	}
	if cmd != "PING" && cmd != "PONG" {
		c.mu.Lock()
		c.idleSince = c.srv.cfg.Now()
		c.mu.Unlock()
	}
	h.fn(r)
}

// --- the write queue ---

func (c *conn) isDead() bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.dead
}

// enqueue adds an item for the writer; a client whose queue exceeds the
// sendq is disconnected (what it missed is in the history).
func (c *conn) enqueue(it outItem, size int) {
	c.qmu.Lock()
	if c.dead {
		c.qmu.Unlock()
		return
	}
	if c.qBytes+size > c.srv.cfg.SendQ {
		c.qmu.Unlock()
		c.kill("SendQ exceeded")
		return
	}
	if c.queue == nil {
		c.queue, c.spare = c.spare, nil
	}
	c.queue = append(c.queue, it)
	c.qBytes += size
	c.startWriterLocked()
	c.qmu.Unlock()
}

// startWriterLocked starts a writer goroutine for what is queued, unless
// one runs or the connection is not running yet; c.qmu held. A writer
// runs only while there is something to write (or the connection ends).
func (c *conn) startWriterLocked() {
	if c.writing || !c.started || (len(c.queue) == 0 && !c.dead) {
		return
	}
	c.writing = true
	go c.writeLoop()
}

// Deliver is the core's Sink: it queues and never blocks.
func (c *conn) Deliver(d chat.Delivery) {
	if m := d.Message; d.Kind == chat.DelMessage && m != nil && m.Room == "" && m.Seq != 0 && !d.Echo && !d.Carbon && !c.firstDirect(m.Seq) {
		return // shown already (live and from the offline queue)
	}
	size := 256
	if d.Message != nil {
		size += len(d.Message.Body) + len(d.Message.Extra)
	}
	size += 64 * len(d.Occupants)
	if m := d.Message; d.Kind == chat.DelMessage && m != nil && m.Room != "" {
		c.enqueue(outItem{msg: m, shared: d.Shared, door: d.From.Door, echo: d.Echo}, size)
		return
	}
	if d.Kind == chat.DelJoin && !d.Echo && !d.AccountFirst {
		return // the account was in the room already: nothing to show
	}
	if d.Shared != nil && !d.Echo {
		switch d.Kind {
		case chat.DelJoin, chat.DelLeave, chat.DelKick, chat.DelTopic:
			// The same for every receiver of the fan-out: one copy.
			shared := d.Shared.Value("irc-delivery", func() any { dd := d; return &dd }).(*chat.Delivery)
			c.enqueue(outItem{d: shared}, size)
			return
		}
	}
	c.enqueue(outItem{d: &d}, size)
}

// firstDirect says whether the direct message seq is shown for the first
// time: a message seen while the offline queue is handed over is kept, so
// that its second copy (live or queued) is dropped.
func (c *conn) firstDirect(seq int64) bool {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if _, ok := c.directSeen[seq]; ok {
		return false
	}
	if c.directRecord {
		c.directSeen[seq] = struct{}{}
	}
	return true
}

// sendLine queues a line made by the server.
func (c *conn) sendLine(m ircmsg.Message) {
	// Server lines that echo long client input are cut to 512 bytes
	// (at a character boundary); messages are split before they get here.
	b, err := m.LineBytesStrict(false, maxLineBody)
	if err != nil && b == nil {
		c.srv.log.Warn("unserialisable line", "cmd", m.Command, "err", err)
		return
	}
	c.enqueue(outItem{line: b}, len(b))
}

// numeric queues a numeric reply to the client.
func (c *conn) numeric(code string, params ...string) {
	c.sendLine(ircmsg.MakeMessage(nil, c.srv.cfg.ServerName, code, append([]string{c.currentNick()}, params...)...))
}

// kill marks the connection dead: the writer sends ERROR with reason
// (if any) and closes it.
func (c *conn) kill(reason string) {
	c.qmu.Lock()
	if c.dead {
		c.qmu.Unlock()
		return
	}
	c.dead = true
	c.qmu.Unlock()
	c.mu.Lock()
	if c.reason == "" {
		c.reason = reason
	}
	c.mu.Unlock()
	c.qmu.Lock()
	c.startWriterLocked()
	c.qmu.Unlock()
	if reason == "SendQ exceeded" {
		// The writer may be stuck on a client that does not read.
		c.nc.SetWriteDeadline(time.Now())
	}
}

// quit ends the connection politely with an ERROR line (server shutdown,
// KILL).
func (c *conn) quit(reason string) {
	c.kill(reason)
	c.nc.SetReadDeadline(time.Now())
}

// writeLoop writes the queue until it is empty, then ends (enqueue
// starts another when something comes); when the connection is dead it
// writes what is left and ERROR, closes its write side and closes done.
// Under load it writes at most once per WriteCoalesce: what comes in the
// meantime goes out in the same write.
func (c *conn) writeLoop() {
	w := new(batch)
	var scratch *chat.Delivery // a room message's delivery, rebuilt per item
	for {
		if wait := c.srv.cfg.WriteCoalesce - time.Since(c.lastFlush); wait > 0 && !c.isDead() {
			time.Sleep(wait)
		}
		c.qmu.Lock()
		items := c.queue
		c.queue = nil
		c.qBytes = 0
		dead := c.dead
		if len(items) == 0 && !dead {
			c.spare = nil // an idle connection keeps no buffer
			c.writing = false
			c.qmu.Unlock()
			return
		}
		c.qmu.Unlock()
		if len(items) > 0 {
			if now := time.Now(); !dead && now.After(c.renewDeadline) {
				// A write may wait between writeWait/2 and writeWait:
				// the deadline is moved only every writeWait/2, not for
				// every write (a timer change each time).
				c.nc.SetWriteDeadline(now.Add(writeWait))
				c.renewDeadline = now.Add(writeWait / 2)
				c.mu.Lock()
				stalled := c.reason == "SendQ exceeded"
				c.mu.Unlock()
				if stalled {
					// kill set an immediate deadline just before ours: a
					// client that does not read cannot hold us.
					c.nc.SetWriteDeadline(time.Now())
				}
			}
			for _, it := range items {
				switch {
				case it.line != nil:
					w.Write(it.line)
				case it.msg != nil:
					if scratch == nil {
						scratch = new(chat.Delivery)
					}
					*scratch = chat.Delivery{Kind: chat.DelMessage, Room: it.msg.Room, Message: it.msg,
						From: chat.SessionRef{Account: it.msg.From, Door: it.door}, Echo: it.echo, Shared: it.shared}
					c.writeDelivery(w, scratch)
				default:
					c.writeDelivery(w, it.d)
				}
			}
			err := w.flush(c.nc)
			c.lastFlush = time.Now()
			if err != nil {
				c.kill("Write error")
				c.nc.Close()
				c.qmu.Lock()
				c.queue = nil
				c.qmu.Unlock()
				close(c.done)
				return
			}
			for _, it := range items { // the latency histogram (chat/latency.go)
				if !dead {
					if it.msg != nil {
						c.srv.core.Delivered(it.msg)
					} else if it.d != nil && it.d.Kind == chat.DelMessage {
						c.srv.core.Delivered(it.d.Message)
					}
				}
			}
			clear(items)
			c.qmu.Lock()
			c.spare = items[:0]
			c.qmu.Unlock()
		}
		if dead {
			c.mu.Lock()
			reason := c.reason
			c.mu.Unlock()
			if reason != "" && reason != "SendQ exceeded" {
				c.nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
				io.WriteString(c.nc, "ERROR :Closing link: "+ircmsg.TruncateUTF8Safe(reason, 400)+"\r\n")
			}
			if tc, ok := c.nc.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			c.nc.SetReadDeadline(time.Now())
			close(c.done)
			return
		}
	}
}

// batch gathers what one write sends: a fan-out's shared bytes by
// reference (they never change), anything else copied. Over TCP it goes
// out in one writev without copying the shared bytes; over TLS and
// WebSocket, joined in one Write. It holds memory only while the writer
// runs.
type batch struct {
	bufs  net.Buffers
	buf   []byte // the copied bytes; bufs points into it
	start int    // where the part of buf not yet in bufs starts
	n     int    // bytes gathered
}

// Write copies p.
func (b *batch) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	b.n += len(p)
	return len(p), nil
}

// writeShared takes p, which must not change, by reference.
func (b *batch) writeShared(p []byte) {
	b.cut()
	b.bufs = append(b.bufs, p)
	b.n += len(p)
}

func (b *batch) cut() {
	if len(b.buf) > b.start {
		b.bufs = append(b.bufs, b.buf[b.start:len(b.buf):len(b.buf)])
		b.start = len(b.buf)
	}
}

// flush writes what was gathered to nc and empties the batch.
func (b *batch) flush(nc net.Conn) error {
	b.cut()
	var err error
	switch {
	case b.n == 0:
	case len(b.bufs) == 1:
		_, err = nc.Write(b.bufs[0])
	default:
		if _, tcp := nc.(*net.TCPConn); tcp {
			bufs := b.bufs
			_, err = bufs.WriteTo(nc)
		} else {
			all := make([]byte, 0, b.n)
			for _, p := range b.bufs {
				all = append(all, p...)
			}
			_, err = nc.Write(all)
		}
	}
	clear(b.bufs)
	b.bufs, b.buf, b.start, b.n = b.bufs[:0], b.buf[:0], 0, 0
	if cap(b.buf) > 64<<10 {
		b.buf = nil // a join's burst: do not keep it
	}
	return err
}
