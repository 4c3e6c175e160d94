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

	"chatbox/internal/chunkq"
	"chatbox/internal/netpoll"
	"chatbox/internal/rounds"
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

// conn is one client connection. Its reader runs the commands: a plain
// TCP connection's reader is a goroutine only while the client has sent
// something (poll.go: the server's netpoll.Poller wakes it, a timer
// stands in for the read deadline); any other connection's is a
// goroutine that lives as long as the connection.
// What it is sent is queued and written in the order the core made it,
// translated into lines (write.go): a plain TCP connection by its
// server's write rounds (internal/rounds), without a goroutine of its
// own; a TLS or WebSocket one, or a client too slow to take a round's
// bytes at once, by a writer goroutine of its own while it has something
// to write.
type conn struct {
	srv   *Server
	nc    net.Conn
	ip    string
	isTLS bool
	rd    lineReader // *ircreader.Reader; in poll mode *idleReader

	// Direct messages shown while the session's waiting messages are
	// handed over (startSession): a message sent at the moment the session
	// opens can come both live and from the offline queue; it is shown
	// once. dmu guards them.
	dmu          sync.Mutex
	directSeen   map[int64]struct{}
	directRecord bool

	// sends counts the room messages sent and not yet stored
	// (sendPipelined): the client's other commands wait for them.
	sends chat.InFlight

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

	qmu     sync.Mutex            // guards the write queue
	queue   chunkq.Queue[outItem] // in chunks lent by queues (write.go)
	qBytes  int
	started bool // run began: enqueue starts a writer when none runs
	writing bool // a writer goroutine runs (or will, for the queue)
	inRound bool // the queue is the write rounds' to write (raw)
	// lazyQueued: the connection is in the next lazy round (enqueue).
	lazyQueued bool
	dead       bool
	reason     string
	done       chan struct{} // closed when the last writer ends (dead)

	// lastFlush is when the writer last wrote to the socket, and
	// renewDeadline when its write deadline is to be moved next; the
	// writer alone uses them (one writer runs at a time).
	lastFlush     time.Time
	renewDeadline time.Time

	// raw writes a plain TCP connection without waiting (nil otherwise),
	// on shard of the server's write rounds; leftover is what a round
	// could not write, for the writer goroutine to write first.
	raw      *rounds.Writer
	shard    int
	leftover []byte

	// Writer goroutine only: the settings of each channel the client is
	// in, as it was last told them (nil until the first join).
	chans chanList

	// The reader's state between lines (poll.go keeps it between
	// goroutines).
	st readState
	// Poll mode (poll.go); pk is nil for a connection read by a
	// goroutine of its own.
	pk         *netpoll.Parker
	blockReads bool   // readBatch: reads wait (with a deadline)
	finish     func() // serveConn's, once the connection has ended
}

// outItem is one thing to write: a line made by the server or a
// delivery. A fan-out's receivers (but its sender, whose delivery is an
// Echo) share one copy of its delivery (Deliver), not a 632-byte copy
// each.
type outItem struct {
	line []byte
	d    *chat.Delivery
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
	if c.raw = rounds.NewWriter(nc); c.raw != nil {
		c.shard = s.rounds.Shard()
		c.registerPoll() // poll.go
	}
	if c.pk != nil {
		c.rd = &idleReader{src: pollReader{c}, max: maxReadLine}
	} else {
		rd := new(ircreader.Reader)
		rd.Initialize(nc, 512, maxReadLine)
		c.rd = rd
	}
	return c
}

// lineReader reads the client's lines.
type lineReader interface {
	ReadLine() ([]byte, error)
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
	st := &c.st
	st.regBy = time.Now().Add(c.srv.cfg.RegistrationTimeout)
	if c.pk != nil {
		c.resume(false) // poll.go
		return
	}
	defer c.finish()
	defer c.end()
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
	c.sends.Wait() // its last messages reach the room before it leaves
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
	if c.pk != nil {
		c.handleLine(text) // this goroutine ends once the client is silent
	} else {
		onOwnStack(func() error { c.handleLine(text); return nil })
	}
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
	if cmd != "PRIVMSG" && cmd != "NOTICE" {
		c.sends.Wait() // the room messages sent before go first (sendPipelined)
	}
	if cmd != "PING" && cmd != "PONG" {
		c.mu.Lock()
		c.idleSince = c.srv.cfg.Now()
		c.mu.Unlock()
	}
	h.fn(r)
}
