// The harness of the IRC door's end-to-end tests (e2e_test.go,
// irssi_test.go): it builds the real chatbox binary once, runs one server
// per test on loopback with its own data directory, and connects clients
// to it, either raw (a socket and github.com/ergochat/irc-go/ircmsg, for
// exact assertions on numerics and tags) or through irc-go's ircevent, a
// client library real bots use. Modern IRC (https://modern.ircdocs.horse)
// and the IRCv3 specifications are what the assertions check against.
//
// Nothing here sleeps to let the server catch up: every wait is for a
// line, an event or a process, and every wait is bounded (waitLimit),
// so a missing reply fails the test with the lines that did arrive.
// Left out: XMPP clients (the XMPP door is not built yet).
package irc_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergochat/irc-go/ircevent"
	"github.com/ergochat/irc-go/ircmsg"

	"chatbox/internal/testbox"
)

// waitLimit bounds every wait for a line or an event.
const waitLimit = 15 * time.Second

// boxDomain is the domain the test servers run with: clients appear as
// nick!account@irc.box.test.
const (
	boxDomain = "box.test"
	ircHost   = "irc." + boxDomain
)

// chatboxBin is the binary under test, built once by TestMain.
var chatboxBin string

func TestMain(m *testing.M) {
	bin, cleanup, err := testbox.Build("../../cmd/chatbox")
	if err != nil {
		fmt.Fprintln(os.Stderr, "irc e2e:", err)
		os.Exit(2)
	}
	chatboxBin = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// password is the password the harness gives each account.
func password(account string) string { return "password-" + account }

// --- the server ---

// box is one running chatbox (testbox.Proc) and the addresses it logged.
type box struct {
	*testbox.Proc
	data    string // data directory
	plain   string // host:port of plain-text IRC
	tlsAddr string // host:port of IRC over TLS
	ca      *x509.CertPool
}

var listeningRe = regexp.MustCompile(`msg=listening door=irc addr=(\S+) tls=(true|false)`)

// startBox creates the accounts (each with password(name)) with the CLI,
// starts a server with the settings given as key=value (on top of
// loopback listeners on free ports, no web admin, domain box.test) and
// waits until it is ready. The server is stopped with SIGTERM when the
// test ends, and must exit with status 0.
func startBox(t *testing.T, accounts []string, settings ...string) *box {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	b := &box{Proc: testbox.New(chatboxBin, data), data: data}
	for _, a := range accounts {
		b.cli(t, password(a)+"\n", "user", "add", a)
	}
	args := []string{
		"--set", "domain=" + boxDomain,
		"--set", "irc.plain_listen=127.0.0.1:0",
		"--set", "irc.tls_listen=127.0.0.1:0",
		"--set", "xmpp.listen=[]",
		"--set", "xmpp.tls_listen=[]",
		"--set", "web.listen=",
		"--set", "calls.listen=[]",
		"--set", "upload.listen=[]",
	}
	for _, s := range settings {
		args = append(args, "--set", s)
	}
	b.Start(t, args, func(line string) {
		if m := listeningRe.FindStringSubmatch(line); m != nil {
			if m[2] == "true" {
				b.tlsAddr = m[1]
			} else {
				b.plain = m[1]
			}
		}
	})
	var plain, tlsAddr string
	b.Locked(func() { plain, tlsAddr = b.plain, b.tlsAddr })
	if plain == "" || tlsAddr == "" {
		t.Fatalf("chatbox did not log its IRC listeners (plain %q, TLS %q); log:\n%s", plain, tlsAddr, b.logText())
	}
	b.ca = b.CA(t)
	return b
}

// cli runs a chatbox command on the box's data directory.
func (b *box) cli(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	return b.CLI(t, stdin, args...)
}

func (b *box) logText() string { return b.LogText() }

// --- what a client received ---

// inbox holds the lines a connection received and not yet consumed.
type inbox struct {
	mu      sync.Mutex
	queue   []ircmsg.Message
	recent  []string // the last lines received, for failure reports
	closed  bool
	err     error
	discard bool // keep no queue (a client that only sends)
	wake    chan struct{}
}

func newInbox() *inbox { return &inbox{wake: make(chan struct{}, 1)} }

func (in *inbox) push(raw string, m ircmsg.Message) {
	in.mu.Lock()
	if !in.discard {
		in.queue = append(in.queue, m)
	}
	in.recent = append(in.recent, strings.TrimRight(raw, "\r\n"))
	if len(in.recent) > 60 {
		in.recent = in.recent[len(in.recent)-40:]
	}
	in.mu.Unlock()
	in.signal()
}

func (in *inbox) end(err error) {
	in.mu.Lock()
	if !in.closed {
		in.closed, in.err = true, err
	}
	in.mu.Unlock()
	in.signal()
}

func (in *inbox) signal() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

func (in *inbox) setDiscard(on bool) {
	in.mu.Lock()
	in.discard = on
	if on {
		in.queue = nil
	}
	in.mu.Unlock()
}

type popState int

const (
	popLine popState = iota
	popTimeout
	popClosed
)

// pop returns the next line; it waits until one comes, the connection
// ends, or expire fires.
func (in *inbox) pop(expire <-chan time.Time) (ircmsg.Message, popState) {
	for {
		in.mu.Lock()
		if len(in.queue) > 0 {
			m := in.queue[0]
			in.queue[0] = ircmsg.Message{}
			in.queue = in.queue[1:]
			in.mu.Unlock()
			return m, popLine
		}
		closed := in.closed
		in.mu.Unlock()
		if closed {
			return ircmsg.Message{}, popClosed
		}
		select {
		case <-in.wake:
		case <-expire:
			return ircmsg.Message{}, popTimeout
		}
	}
}

func (in *inbox) recentText() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	if len(in.recent) == 0 {
		return "  (nothing)"
	}
	return "  " + strings.Join(in.recent, "\n  ")
}

// --- clients ---

// client is one IRC connection under test.
type client struct {
	t    *testing.T
	name string
	in   *inbox
	nc   net.Conn             // raw clients
	ev   *ircevent.Connection // ircevent clients
	// evUp says ircevent's Connect succeeded: its goroutines run until
	// QUIT.
	evUp atomic.Bool
	wmu  sync.Mutex
	sent atomic.Int64 // lines written, for sync tokens

	paused atomic.Bool   // raw: the reader stops after its current line
	resume chan struct{} // raw: closed to let a paused reader go on

	// welcome is every line received during registration, up to the
	// end of the welcome burst (raw clients made by register).
	welcome []ircmsg.Message
}

// dial opens a raw connection (plain, or TLS trusting the box's CA)
// without registering. Its reader answers PING and queues every line.
func (b *box) dial(t *testing.T, name string, useTLS bool) *client {
	t.Helper()
	var nc net.Conn
	var err error
	if useTLS {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: waitLimit},
			Config: &tls.Config{RootCAs: b.ca, ServerName: "localhost"}}
		nc, err = d.DialContext(context.Background(), "tcp", b.tlsAddr)
	} else {
		nc, err = net.DialTimeout("tcp", b.plain, waitLimit)
	}
	if err != nil {
		t.Fatalf("%s: connect: %v", name, err)
	}
	c := &client{t: t, name: name, in: newInbox(), nc: nc, resume: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(func() { nc.Close() })
	return c
}

func (c *client) readLoop() {
	br := bufio.NewReaderSize(c.nc, 16*1024)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.in.end(err)
			return
		}
		m, perr := ircmsg.ParseLine(strings.TrimRight(line, "\r\n"))
		if perr != nil {
			m = ircmsg.MakeMessage(nil, "", "UNPARSEABLE", line, perr.Error())
		}
		if m.Command == "PING" && len(m.Params) > 0 {
			c.write("PONG :" + m.Params[len(m.Params)-1])
		}
		c.in.push(line, m)
		if c.paused.Load() {
			<-c.resume
		}
	}
}

// write sends one line; false if the connection is gone.
func (c *client) write(line string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ev != nil {
		return c.ev.SendRaw(line)
	}
	c.nc.SetWriteDeadline(time.Now().Add(waitLimit))
	_, err := io.WriteString(c.nc, line+"\r\n")
	return err
}

// send writes one line and fails the test if it cannot.
func (c *client) send(line string) {
	c.t.Helper()
	if err := c.write(line); err != nil {
		c.t.Fatalf("%s: send %q: %v", c.name, abbrev(line), err)
	}
}

func (c *client) sendf(format string, args ...any) {
	c.t.Helper()
	c.send(fmt.Sprintf(format, args...))
}

// stopReading makes a raw client stop reading after its current line,
// as a stuck client does; its socket stays open.
func (c *client) stopReading() { c.paused.Store(true) }

// readAgain lets a stopped raw client read again.
func (c *client) readAgain() { c.paused.Store(false); close(c.resume) }

// await returns the next line that match accepts, skipping the others.
func (c *client) await(what string, match func(ircmsg.Message) bool) (ircmsg.Message, error) {
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		m, st := c.in.pop(timer.C)
		switch st {
		case popLine:
			if match(m) {
				return m, nil
			}
		case popTimeout:
			return m, fmt.Errorf("%s: no %s within %s; last lines received:\n%s", c.name, what, waitLimit, c.in.recentText())
		case popClosed:
			return m, fmt.Errorf("%s: connection closed (%v) before %s; last lines received:\n%s", c.name, c.in.err, what, c.in.recentText())
		}
	}
}

// expect is await that fails the test.
func (c *client) expect(what string, match func(ircmsg.Message) bool) ircmsg.Message {
	c.t.Helper()
	m, err := c.await(what, match)
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// expectLine waits for a line of command whose first parameters are
// params (a numeric's first parameter, the client's nick, included).
func (c *client) expectLine(command string, params ...string) ircmsg.Message {
	c.t.Helper()
	return c.expect(describe(command, params), isLine(command, params...))
}

// expectNumeric waits for a numeric reply, whatever its parameters.
func (c *client) expectNumeric(code string) ircmsg.Message {
	c.t.Helper()
	return c.expect("numeric "+code, isLine(code))
}

// collect returns every line up to and including the one match accepts.
func (c *client) collect(what string, match func(ircmsg.Message) bool) []ircmsg.Message {
	c.t.Helper()
	var got []ircmsg.Message
	c.expect(what, func(m ircmsg.Message) bool {
		got = append(got, m)
		return match(m)
	})
	return got
}

// sync sends a PING and returns every line that came before its PONG:
// the server handles a client's lines in order, so they are all the
// replies to what the client sent before.
func (c *client) sync() []ircmsg.Message {
	c.t.Helper()
	token := fmt.Sprintf("sync-%s-%d", c.name, c.sent.Add(1))
	c.send("PING :" + token)
	got := c.collect("PONG "+token, func(m ircmsg.Message) bool {
		return m.Command == "PONG" && len(m.Params) > 0 && m.Params[len(m.Params)-1] == token
	})
	return got[:len(got)-1]
}

// expectClosed waits until the server closes the connection and
// returns the lines that came before.
func (c *client) expectClosed() []ircmsg.Message {
	c.t.Helper()
	var got []ircmsg.Message
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		m, st := c.in.pop(timer.C)
		switch st {
		case popLine:
			got = append(got, m)
		case popClosed:
			return got
		case popTimeout:
			c.t.Fatalf("%s: the server did not close the connection within %s; last lines received:\n%s", c.name, waitLimit, c.in.recentText())
		}
	}
}

// quit sends QUIT and waits for the server to close the connection.
func (c *client) quit(reason string) {
	c.t.Helper()
	c.send("QUIT :" + reason)
	c.expectClosed()
}

// --- registration ---

// register runs connection registration on a raw client the way most
// clients do: CAP LS 302, NICK, USER, the capabilities asked for (all
// must be acknowledged), SASL PLAIN as account when account is not "",
// CAP END. It waits for RPL_WELCOME and the end of the welcome burst,
// and keeps every line received meanwhile in c.welcome.
func (c *client) register(nick, account string, caps ...string) {
	c.t.Helper()
	start := len(c.welcome)
	keep := func(ms []ircmsg.Message) { c.welcome = append(c.welcome, ms...) }
	c.send("CAP LS 302")
	c.sendf("NICK %s", nick)
	c.sendf("USER %s 0 * :%s's test client", nick, nick)
	keep(c.collect("the end of CAP LS", isCapLSEnd))
	keep(c.sync())
	if hasLine(c.welcome[start:], isLine("433")) {
		// Like every client: try another nick at once (another
		// connection of the account holds it; logging in gives it back).
		c.sendf("NICK %s_", nick)
	}
	if account != "" {
		caps = append(caps, "sasl")
	}
	if len(caps) > 0 {
		req := strings.Join(caps, " ")
		c.send("CAP REQ :" + req)
		got := c.collect("CAP ACK/NAK", isLine("CAP"))
		keep(got)
		if ack := got[len(got)-1]; len(ack.Params) < 3 || ack.Params[1] != "ACK" {
			c.t.Fatalf("%s: the server does not grant CAP REQ :%s: %v", c.name, req, ack.Params)
		}
	}
	if account != "" {
		c.send("AUTHENTICATE PLAIN")
		keep(c.collect("AUTHENTICATE +", isLine("AUTHENTICATE", "+")))
		c.send("AUTHENTICATE " + saslPlain(account, password(account)))
		keep(c.collect("RPL_SASLSUCCESS", isLine("903")))
	}
	c.send("CAP END")
	keep(c.collect("RPL_WELCOME", isLine("001")))
	keep(c.sync())
	if account != "" && !hasLine(c.welcome[start:], isLine("900")) {
		c.t.Fatalf("%s: no RPL_LOGGEDIN (900) after SASL; lines:\n%s", c.name, lines(c.welcome[start:]))
	}
}

// hasLine reports whether one of ms matches.
func hasLine(ms []ircmsg.Message, match func(ircmsg.Message) bool) bool {
	for _, m := range ms {
		if match(m) {
			return true
		}
	}
	return false
}

// login connects a raw client over plain text, logged in to account
// with SASL, with these capabilities.
func (b *box) login(t *testing.T, account string, caps ...string) *client {
	t.Helper()
	c := b.dial(t, account, false)
	c.register(account, account, caps...)
	return c
}

// evLogin connects an ircevent client over TLS, trusting the box's CA,
// logged in to account with SASL PLAIN, with these capabilities.
func (b *box) evLogin(t *testing.T, account string, caps ...string) *client {
	t.Helper()
	return b.evConnect(t, account, b.evConfig(account, caps...))
}

// evConfig is an ircevent connection to the box over TLS, trusting the
// box's CA, logging in to account with SASL PLAIN, with these
// capabilities. The caller may change it before evConnect.
func (b *box) evConfig(account string, caps ...string) *ircevent.Connection {
	return &ircevent.Connection{
		Server:       b.tlsAddr,
		Nick:         account,
		User:         account,
		RealName:     account + " (ircevent)",
		UseTLS:       true,
		TLSConfig:    &tls.Config{RootCAs: b.ca},
		UseSASL:      true,
		SASLLogin:    account,
		SASLPassword: password(account),
		RequestCaps:  caps,
		Timeout:      waitLimit,
		KeepAlive:    4 * time.Minute,
		Log:          log.New(io.Discard, "", 0),
	}
}

// evConnect connects ev (registration included) and fails the test if
// it cannot.
func (b *box) evConnect(t *testing.T, name string, ev *ircevent.Connection) *client {
	t.Helper()
	c := b.evClient(t, name, ev)
	if err := c.connect(); err != nil {
		t.Fatalf("%s: ircevent connect: %v; lines received:\n%s", name, err, c.in.recentText())
	}
	return c
}

// evClient wraps an ircevent connection (not yet connected) so that
// every line it receives is queued for expect.
func (b *box) evClient(t *testing.T, name string, ev *ircevent.Connection) *client {
	c := &client{t: t, name: name, in: newInbox(), ev: ev}
	ev.AddRawCallback(func(raw string, m ircmsg.Message, err error) {
		if err != nil {
			m = ircmsg.MakeMessage(nil, "", "UNPARSEABLE", raw, err.Error())
		}
		c.in.push(raw, m)
	})
	ev.AddDisconnectCallback(func(ircmsg.Message) { c.in.end(errors.New("disconnected")) })
	t.Cleanup(func() {
		if !c.evUp.Load() {
			return
		}
		ev.Quit()
		done := make(chan struct{})
		go func() { ev.Loop(); close(done) }()
		select {
		case <-done:
		case <-time.After(waitLimit):
			t.Errorf("%s: ircevent did not stop within %s of QUIT", name, waitLimit)
		}
	})
	return c
}

// connect runs ircevent's Connect (registration included).
func (c *client) connect() error {
	errc := make(chan error, 1)
	go func() { errc <- c.ev.Connect() }()
	select {
	case err := <-errc:
		if err == nil {
			c.evUp.Store(true)
		}
		return err
	case <-time.After(2 * waitLimit):
		return fmt.Errorf("ircevent Connect did not return within %s", 2*waitLimit)
	}
}

// labeled sends a command with ircevent's labeled-response support and
// returns the server's answer (a single line, an ACK or a batch).
func (c *client) labeled(command string, params ...string) *ircevent.Batch {
	c.t.Helper()
	type result struct {
		b   *ircevent.Batch
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := c.ev.GetLabeledResponse(nil, command, params...)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			c.t.Fatalf("%s: labeled %s: %v", c.name, command, r.err)
		}
		return r.b
	case <-time.After(waitLimit):
		c.t.Fatalf("%s: no labeled response to %s within %s; last lines:\n%s", c.name, command, waitLimit, c.in.recentText())
	}
	return nil
}

func saslPlain(account, pw string) string {
	return base64.StdEncoding.EncodeToString([]byte(account + "\x00" + account + "\x00" + pw))
}

// --- matching lines ---

// isLine matches command with these leading parameters.
func isLine(command string, params ...string) func(ircmsg.Message) bool {
	return func(m ircmsg.Message) bool {
		if !strings.EqualFold(m.Command, command) || len(m.Params) < len(params) {
			return false
		}
		for i, p := range params {
			if m.Params[i] != p {
				return false
			}
		}
		return true
	}
}

// isFrom matches command from the nick with these leading parameters.
func isFrom(nick, command string, params ...string) func(ircmsg.Message) bool {
	line := isLine(command, params...)
	return func(m ircmsg.Message) bool { return line(m) && strings.EqualFold(m.Nick(), nick) }
}

// isCap matches a CAP reply with this subcommand (LS, ACK, NAK…),
// whatever nick it is addressed to.
func isCap(sub string) func(ircmsg.Message) bool {
	return func(m ircmsg.Message) bool { return m.Command == "CAP" && len(m.Params) >= 2 && m.Params[1] == sub }
}

func isCapLSEnd(m ircmsg.Message) bool {
	return m.Command == "CAP" && len(m.Params) >= 3 && m.Params[1] == "LS" && m.Params[2] != "*"
}

func describe(command string, params []string) string {
	if len(params) == 0 {
		return command
	}
	return command + " " + strings.Join(params, " ")
}

// lastParam is a line's last parameter ("" if none).
func lastParam(m ircmsg.Message) string {
	if len(m.Params) == 0 {
		return ""
	}
	return m.Params[len(m.Params)-1]
}

// tag returns a tag's value, failing the test if the line lacks it.
func tag(t *testing.T, m ircmsg.Message, name string) string {
	t.Helper()
	ok, v := m.GetTag(name)
	if !ok {
		t.Fatalf("line %s %v has no %q tag (tags %v)", m.Command, m.Params, name, m.AllTags())
	}
	return v
}

// serverTime parses a server-time tag.
func serverTime(t *testing.T, m ircmsg.Message) time.Time {
	t.Helper()
	v := tag(t, m, "time")
	tm, err := time.Parse("2006-01-02T15:04:05.000Z", v)
	if err != nil {
		t.Fatalf("time tag %q is not server-time (YYYY-MM-DDThh:mm:ss.sssZ): %v", v, err)
	}
	return tm
}

// privmsgs keeps the PRIVMSG lines among ms.
func privmsgs(ms []ircmsg.Message) []ircmsg.Message {
	var out []ircmsg.Message
	for _, m := range ms {
		if m.Command == "PRIVMSG" {
			out = append(out, m)
		}
	}
	return out
}

func abbrev(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// lines renders messages for a failure report.
func lines(ms []ircmsg.Message) string {
	var sb strings.Builder
	for _, m := range ms {
		l, err := m.Line()
		if err != nil {
			l = fmt.Sprintf("%s %v", m.Command, m.Params)
		}
		sb.WriteString("  " + abbrev(strings.TrimRight(l, "\r\n")) + "\n")
	}
	if sb.Len() == 0 {
		return "  (nothing)\n"
	}
	return sb.String()
}
