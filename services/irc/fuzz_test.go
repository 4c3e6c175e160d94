// Fuzzing of a connected client's line handling: the IRC message format
// (Modern IRC "Message format", IRCv3 message-tags) as the door reads it,
// and every command the door knows, driven through one real connection
// (net.Pipe) to a real Server over a real core and store.
//
// Properties checked for every input: no panic, no deadlock (the
// connection ends within fuzzConnDeadline after QUIT), every line the
// server writes ends in CRLF, is UTF-8 (the door advertises UTF8ONLY),
// parses with ircmsg.ParseLine and fits 512 bytes after its tags (tags at
// most ircmsg.MaxlenTags; IRC_FUZZ_TOLERATE=long,utf8 lets those kinds
// pass, to hunt other bugs while known ones wait for their fix); and a
// neighbour connection, joined to #general the whole time, stays
// connected, gets only such lines, and keeps receiving (checked with a
// probe message every fuzzProbeEvery inputs, and after replaying the seed
// corpus in TestFuzzCorpusLeavesServerUsable).
//
// An input starting with "#!raw\n" is sent before registration (CAP,
// AUTHENTICATE, PASS, NickServ paths); one starting with "#!oper\n" is
// sent after logging in as a box admin (KILL, KLINE, room moderation
// everywhere) and the neighbour and #general are restored after it;
// anything else is sent after logging in as the plain account alice.
//
// Left out: TLS (SASL EXTERNAL, the handshake) and the flood and ping
// timers (the limits are set high so inputs run fast); those are covered
// by the door's unit tests.
package irc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ergochat/irc-go/ircmsg"

	"chatbox/services/chat"
	"chatbox/services/store"
)

const (
	fuzzServerName = "box.test"
	// fuzzConnDeadline bounds one fuzzed connection, from its first byte
	// to its end. It is a hang detector, not a timing assertion: a
	// healthy input takes milliseconds.
	fuzzConnDeadline = 60 * time.Second
	// fuzzProbeEvery is how often (in inputs) the neighbour is probed
	// with a fresh room message.
	fuzzProbeEvery = 25
	// fuzzMaxInput bounds an input (bytes); longer ones are skipped so
	// that the fuzzer spends its time on structure, not bulk.
	fuzzMaxInput = 6000
	fuzzRoom     = "general"
	fuzzRawMark  = "#!raw\n"
	fuzzOperMark = "#!oper\n"
)

// fuzzPassword is the password of a test account.
func fuzzPassword(account string) string { return "password-" + account }

// fuzzLogin is what a client sends to register and log in as account.
func fuzzLogin(account string) string {
	return "PASS " + account + ":" + fuzzPassword(account) + "\r\nNICK " + account + "\r\nUSER " + account + " 0 * :" + account + "\r\n"
}

// fuzzDoor is an IRC door over a real core and store, for in-process
// tests: connections are attached through net.Pipe exactly as accept
// attaches a socket.
type fuzzDoor struct {
	srv   *Server
	core  *chat.Core
	st    *store.Store
	ipSeq atomic.Uint64
}

// fuzzDoorOptions are the knobs the fuzz target and the benchmarks turn.
type fuzzDoorOptions struct {
	accounts map[string]bool // account -> box admin
	limits   chat.Limits
	cfg      Config
}

// newFuzzDoor opens a store in a temporary directory, a core over it with
// the accounts and the room #general (owned by no one who connects), and
// an IRC Server. Everything is closed when the test ends.
func newFuzzDoor(tb testing.TB, o fuzzDoorOptions) *fuzzDoor {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(tb.TempDir(), "chatbox.db"), nil)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	core, err := chat.New(chat.Options{Store: st, Limits: o.limits, Iterations: 1,
		UsersMayCreateRooms: true, DefaultHistory: 5})
	if err != nil {
		st.Close()
		tb.Fatalf("new core: %v", err)
	}
	for name, admin := range o.accounts {
		if err := core.CreateAccount(ctx, name, fuzzPassword(name), admin); err != nil {
			tb.Fatalf("create account %s: %v", name, err)
		}
	}
	if err := core.CreateRoom(ctx, fuzzRoom, "", chat.DefaultRoomSettings()); err != nil {
		tb.Fatalf("create room %s: %v", fuzzRoom, err)
	}
	cfg := o.cfg
	if cfg.ServerName == "" {
		cfg.ServerName = fuzzServerName
	}
	d := &fuzzDoor{srv: New(cfg, core, nil), core: core, st: st}
	tb.Cleanup(func() {
		d.srv.shutdown("test over")
		d.srv.wg.Wait()
		core.Shutdown("test over")
		if err := st.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return d
}

// nextIP returns a fresh documentation-range address, so that no test
// connection shares another's per-address limits.
func (d *fuzzDoor) nextIP() string {
	n := d.ipSeq.Add(1)
	return fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255)
}

// attach serves one in-memory connection as accept serves a socket
// (newConn, registered in s.conns, run, forget) and returns the client's
// end and a channel closed when the server is done with it.
func (d *fuzzDoor) attach(ip string) (net.Conn, <-chan struct{}) {
	client, server := net.Pipe()
	s := d.srv
	s.mu.Lock()
	s.perAddr[ip]++
	s.mu.Unlock()
	done := make(chan struct{})
	s.serveConn(server, ip, done)
	return client, done
}

// lineViolation is a server line breaking a property; kind names the
// property ("crlf", "forbidden", "utf8", "parse", "tags", "long").
type lineViolation struct {
	kind string
	msg  string
}

func (v *lineViolation) Error() string { return v.msg }

func violation(kind, format string, args ...any) *lineViolation {
	return &lineViolation{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// checkServerLine checks one line as the server wrote it, CRLF included.
func checkServerLine(raw []byte) *lineViolation {
	line, ok := bytes.CutSuffix(raw, []byte("\r\n"))
	if !ok {
		return violation("crlf", "line does not end in CRLF: %q", raw)
	}
	if i := bytes.IndexAny(line, "\r\n\x00"); i >= 0 {
		return violation("forbidden", "line holds a forbidden byte %q at %d: %q", line[i], i, raw)
	}
	if !utf8.Valid(line) {
		return violation("utf8", "line is not UTF-8 (the door advertises UTF8ONLY): %q", raw)
	}
	msg, err := ircmsg.ParseLine(string(line))
	if err != nil {
		return violation("parse", "line does not parse: %v: %q", err, raw)
	}
	if msg.Command == "" {
		return violation("parse", "line has no command: %q", raw)
	}
	body := line
	if line[0] == '@' {
		sp := bytes.IndexByte(line, ' ')
		if sp+1 > ircmsg.MaxlenTags {
			return violation("tags", "tags take %d bytes, more than %d: %.200q", sp+1, ircmsg.MaxlenTags, raw)
		}
		body = line[sp+1:]
	}
	if len(body)+2 > maxLineBody {
		return violation("long", "line is %d bytes after its tags, more than %d: %q", len(body)+2, maxLineBody, raw)
	}
	return nil
}

// fuzzSession is the outcome of driving one connection.
type fuzzSession struct {
	lines [][]byte         // every line the server wrote, CRLF included
	bad   []*lineViolation // property violations
}

// welcomed says whether the server completed registration (RPL_WELCOME).
func (s fuzzSession) welcomed() bool {
	for _, l := range s.lines {
		if m, err := ircmsg.ParseLine(strings.TrimRight(string(l), "\r\n")); err == nil && m.Command == RPL_WELCOME {
			return true
		}
	}
	return false
}

// text is what the server wrote, for failure messages.
func (s fuzzSession) text() string {
	var b strings.Builder
	for _, l := range s.lines {
		fmt.Fprintf(&b, "%q\n", l)
	}
	return b.String()
}

// drive writes input to a fresh connection (then QUIT), reads everything
// the server writes until it closes the connection, and fails the test if
// the server does not end the connection within fuzzConnDeadline.
func (d *fuzzDoor) drive(t testing.TB, input []byte) fuzzSession {
	t.Helper()
	nc, done := d.attach(d.nextIP())
	defer nc.Close()
	var out fuzzSession
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		br := bufio.NewReaderSize(nc, 1024)
		for {
			raw, err := br.ReadBytes('\n')
			if len(raw) > 0 {
				out.lines = append(out.lines, raw)
				if err == nil {
					if v := checkServerLine(raw); v != nil {
						out.bad = append(out.bad, v)
					}
				} else {
					out.bad = append(out.bad, violation("crlf", "unterminated last line: %q", raw))
				}
			}
			if err != nil {
				return
			}
		}
	}()
	writeDone := make(chan struct{})
	go func() {
		defer close(writeDone)
		// net.Pipe is synchronous: a write returns once the server read
		// it, and fails once the server closed its end.
		nc.Write(input)
		nc.Write([]byte("\r\nQUIT :fuzz input over\r\n"))
	}()
	timer := time.NewTimer(fuzzConnDeadline)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		t.Fatalf("the server did not end the connection within %s of the input and QUIT (hang?)\ninput: %q\n%s",
			fuzzConnDeadline, input, goroutineDump())
	}
	nc.Close()
	for _, ch := range []chan struct{}{writeDone, readDone} {
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("the client side of a finished connection did not unblock within %s\n%s", fuzzConnDeadline, goroutineDump())
		}
	}
	return out
}

// goroutineDump returns every goroutine's stack, cut to a readable size.
func goroutineDump() string {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 2)
	const limit = 200 << 10
	if b.Len() > limit {
		b.Truncate(limit)
		b.WriteString("\n… (cut)")
	}
	return b.String()
}

// fuzzPeer is a long-lived neighbour connection joined to #general: it
// reads all the time, answers PING, and reports probes and sync tokens it
// sees.
type fuzzPeer struct {
	account string
	nc      net.Conn
	done    <-chan struct{} // closed when the server ends the connection
	read    chan struct{}   // closed when the reader stops

	wmu sync.Mutex // serialises writes

	mu     sync.Mutex
	bad    []*lineViolation
	last   []string // the last lines, for failure messages
	events chan string
}

func (p *fuzzPeer) write(s string) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.nc.SetWriteDeadline(time.Now().Add(fuzzConnDeadline))
	_, err := p.nc.Write([]byte(s))
	return err
}

func (p *fuzzPeer) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// violations returns and clears the property violations seen so far.
func (p *fuzzPeer) violations() []*lineViolation {
	p.mu.Lock()
	defer p.mu.Unlock()
	bad := p.bad
	p.bad = nil
	return bad
}

func (p *fuzzPeer) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.last, "")
}

// connectPeer logs account in, joins #general and waits for the end of
// the NAMES list.
func (d *fuzzDoor) connectPeer(t testing.TB, account string) *fuzzPeer {
	t.Helper()
	nc, done := d.attach(d.nextIP())
	p := &fuzzPeer{account: account, nc: nc, done: done, read: make(chan struct{}), events: make(chan string, 64)}
	endOfNames := " " + RPL_ENDOFNAMES + " " + account + " #" + fuzzRoom + " "
	go func() {
		defer close(p.read)
		br := bufio.NewReaderSize(nc, 1024)
		for {
			raw, err := br.ReadBytes('\n')
			if len(raw) > 0 {
				p.mu.Lock()
				if v := checkServerLine(raw); v != nil {
					v.msg = "neighbour: " + v.msg
					p.bad = append(p.bad, v)
				}
				p.last = append(p.last, string(raw))
				if len(p.last) > 20 {
					p.last = p.last[1:]
				}
				p.mu.Unlock()
				line := strings.TrimRight(string(raw), "\r\n")
				msg, perr := ircmsg.ParseLine(line)
				switch {
				case perr != nil:
				case msg.Command == "PING" && len(msg.Params) > 0:
					go p.write("PONG :" + msg.Params[0] + "\r\n")
				case msg.Command == "PONG" && len(msg.Params) > 1:
					p.event("pong " + msg.Params[1])
				case msg.Command == "PRIVMSG" && len(msg.Params) > 1 && msg.Params[0] == "#"+fuzzRoom &&
					strings.HasPrefix(msg.Params[1], "probe-"):
					p.event(msg.Params[1])
				case strings.Contains(line, endOfNames):
					p.event("joined")
				}
			}
			if err != nil {
				return
			}
		}
	}()
	if err := p.write(fuzzLogin(account) + "JOIN #" + fuzzRoom + "\r\n"); err != nil {
		t.Fatalf("neighbour %s: write: %v", account, err)
	}
	p.await(t, "joined")
	return p
}

// drainEvents forgets the events seen so far, so that a waiter that
// asks next only competes with what comes after its own request.
func (p *fuzzPeer) drainEvents() {
	for {
		select {
		case <-p.events:
		default:
			return
		}
	}
}

func (p *fuzzPeer) event(e string) {
	select {
	case p.events <- e:
	default: // nobody waits for it; a waiter looks for its own token only
	}
}

// await waits for event e, skipping others; it fails the test if it does
// not come within fuzzConnDeadline or the connection ends.
func (p *fuzzPeer) await(t testing.TB, e string) {
	t.Helper()
	if err := p.awaitErr(e); err != nil {
		t.Fatal(err)
	}
}

// errPeerGone says the neighbour's connection ended.
var errPeerGone = errors.New("the neighbour's connection ended")

// awaitErr is await returning errPeerGone (wrapped) when the connection
// ends, and another error on the deadline.
func (p *fuzzPeer) awaitErr(e string) error {
	timer := time.NewTimer(fuzzConnDeadline)
	defer timer.Stop()
	for {
		select {
		case got := <-p.events:
			if got == e {
				return nil
			}
		case <-p.read:
			return fmt.Errorf("neighbour %s lost its connection while waiting for %q: %w; its last lines:\n%s", p.account, e, errPeerGone, p.tail())
		case <-timer.C:
			return fmt.Errorf("neighbour %s did not see %q within %s; its last lines:\n%s\n%s", p.account, e, fuzzConnDeadline, p.tail(), goroutineDump())
		}
	}
}

// trySync is sync for a neighbour that may have been disconnected on
// purpose: it returns errPeerGone (wrapped) if so.
func (p *fuzzPeer) trySync(token string) error {
	p.drainEvents()
	if err := p.write("PING :" + token + "\r\n"); err != nil {
		<-p.read
		return fmt.Errorf("neighbour %s: write: %v: %w", p.account, err, errPeerGone)
	}
	return p.awaitErr("pong " + token)
}

// sync waits until the neighbour has received everything the server had
// queued for it before now (a PING's PONG comes after it).
func (p *fuzzPeer) sync(t testing.TB, token string) {
	t.Helper()
	p.drainEvents()
	if err := p.write("PING :" + token + "\r\n"); err != nil {
		t.Fatalf("neighbour %s: write: %v; its last lines:\n%s", p.account, err, p.tail())
	}
	p.await(t, "pong "+token)
}

func (p *fuzzPeer) close() {
	p.nc.Close()
	<-p.read
}

// fuzzHarness is the state shared by the inputs of one fuzzing process.
type fuzzHarness struct {
	d     *fuzzDoor
	peer  *fuzzPeer
	count int
	// tolerate lists kinds of line violation not to fail on
	// (IRC_FUZZ_TOLERATE=long,utf8), to look for other bugs while known
	// ones wait for their fix.
	tolerate map[string]bool
}

func newFuzzHarness(t testing.TB) *fuzzHarness {
	d := newFuzzDoor(t, fuzzDoorOptions{
		accounts: map[string]bool{"alice": false, "bob": false, "root": true},
		limits: chat.Limits{MessagesPerSecond: 1e6, MessageBurst: 1 << 20, FailedLoginsPerMinute: 1 << 20,
			SessionsPerAccount: 1000},
		cfg: Config{LinesPerSecond: 1e6, LineBurst: 1 << 20, ConnectionsPerAddress: 1000,
			PingInterval: time.Hour, PingTimeout: time.Hour, HistoryOnJoin: 3,
			MOTD: "Welcome to the fuzz box\nsecond line"},
	})
	h := &fuzzHarness{d: d, tolerate: map[string]bool{}}
	for _, kind := range strings.Split(os.Getenv("IRC_FUZZ_TOLERATE"), ",") {
		if kind = strings.TrimSpace(kind); kind != "" {
			h.tolerate[kind] = true
		}
	}
	h.peer = d.connectPeer(t, "bob")
	t.Cleanup(func() { h.peer.close() })
	return h
}

// run drives one input and checks the properties.
func (h *fuzzHarness) run(t *testing.T, data []byte) {
	h.count++
	prefix, body, oper := fuzzLogin("alice"), data, false
	switch {
	case bytes.HasPrefix(data, []byte(fuzzRawMark)):
		prefix, body = "", data[len(fuzzRawMark):]
	case bytes.HasPrefix(data, []byte(fuzzOperMark)):
		prefix, body, oper = fuzzLogin("root"), data[len(fuzzOperMark):], true
	}
	// The input twice: as CRLF-terminated lines, then as it is.
	var in bytes.Buffer
	in.WriteString(prefix)
	for _, l := range bytes.Split(body, []byte("\n")) {
		in.Write(bytes.TrimSuffix(l, []byte("\r")))
		in.WriteString("\r\n")
	}
	in.Write(body)
	out := h.d.drive(t, in.Bytes())
	if prefix != "" && !out.welcomed() {
		t.Fatalf("harness: the login before the input did not complete; the server wrote:\n%s", out.text())
	}
	h.report(t, out.bad)
	if oper {
		// A box admin may legitimately kill, ban or kick the neighbour
		// and reconfigure #general: put everything back.
		h.restore(t)
	} else if !h.peer.alive() {
		t.Fatalf("the neighbour's connection ended during a plain user's input; its last lines:\n%s", h.peer.tail())
	}
	h.peer.sync(t, "sync-"+strconv.Itoa(h.count))
	h.report(t, h.peer.violations())
	if t.Failed() {
		t.Logf("input: %q", data)
		return
	}
	if h.count%fuzzProbeEvery == 0 {
		h.probe(t)
	}
}

// report fails the test for each violation not tolerated.
func (h *fuzzHarness) report(t testing.TB, bad []*lineViolation) {
	t.Helper()
	for _, v := range bad {
		if !h.tolerate[v.kind] {
			t.Errorf("%s", v)
		}
	}
}

// probe checks the server still serves: a fresh connection says
// something in #general and the neighbour hears it.
func (h *fuzzHarness) probe(t testing.TB) {
	t.Helper()
	token := "probe-" + strconv.Itoa(h.count)
	h.peer.drainEvents()
	out := h.d.drive(t, []byte(fuzzLogin("alice")+"JOIN #"+fuzzRoom+"\r\nPRIVMSG #"+fuzzRoom+" :"+token+"\r\n"))
	h.report(t, out.bad)
	h.peer.await(t, token)
}

// restore undoes what a box admin's input may have done to the
// neighbour's world: K-lines, #general's existence, settings, lists and
// affiliations, and the neighbour's connection and membership.
func (h *fuzzHarness) restore(t testing.TB) {
	t.Helper()
	// The KILL of the neighbour, if any, is over once this returns.
	err := h.peer.trySync("restore-" + strconv.Itoa(h.count))
	if err != nil && !errors.Is(err, errPeerGone) {
		t.Fatal(err)
	}
	gone := err != nil
	ctx := context.Background()
	s := h.d.srv
	s.mu.Lock()
	clear(s.klines)
	s.mu.Unlock()
	core := h.d.core
	room, _, err := core.RoomInfo(ctx, fuzzRoom)
	if errors.Is(err, chat.ErrNoSuchRoom) {
		if err := core.CreateRoom(ctx, fuzzRoom, "", chat.DefaultRoomSettings()); err != nil {
			t.Fatalf("restore: create #%s: %v", fuzzRoom, err)
		}
		room, _, err = core.RoomInfo(ctx, fuzzRoom)
	}
	if err != nil {
		t.Fatalf("restore: room info: %v", err)
	}
	if room.Settings != chat.DefaultRoomSettings() {
		if _, err := core.UpdateSettings(ctx, nil, fuzzRoom, func(st *chat.RoomSettings) error {
			*st = chat.DefaultRoomSettings()
			return nil
		}); err != nil {
			t.Fatalf("restore: settings: %v", err)
		}
	}
	for _, m := range room.Masks {
		if err := core.RemoveMask(ctx, nil, fuzzRoom, m.List, m.Mask); err != nil {
			t.Fatalf("restore: mask %s %s: %v", m.List, m.Mask, err)
		}
	}
	for acct := range room.Affiliations {
		if err := core.SetAffiliation(ctx, nil, fuzzRoom, acct, chat.AffNone, ""); err != nil {
			t.Fatalf("restore: affiliation of %s: %v", acct, err)
		}
	}
	_, occ, err := core.RoomInfo(ctx, fuzzRoom)
	if err != nil {
		t.Fatalf("restore: room info: %v", err)
	}
	present := false
	for _, o := range occ {
		present = present || o.Account == h.peer.account
	}
	if gone || !present {
		h.peer.close()
		select {
		case <-h.peer.done:
		case <-time.After(fuzzConnDeadline):
			t.Fatalf("restore: the server did not end the old neighbour's connection within %s\n%s", fuzzConnDeadline, goroutineDump())
		}
		h.peer = h.d.connectPeer(t, "bob")
	}
}

// FuzzClientLines feeds arbitrary bytes to a logged-in (or, with the
// "#!raw\n" mark, unregistered) client connection.
func FuzzClientLines(f *testing.F) {
	f.Add([]byte("JOIN #general\nPRIVMSG #general :hello\nPART #general :bye"))
	h := newFuzzHarness(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzMaxInput {
			t.Skip("input longer than fuzzMaxInput")
		}
		h.run(t, data)
	})
}

// TestFuzzCorpusLeavesServerUsable replays the whole seed corpus on one
// server, one input after another, then checks a neighbour that stayed
// joined the whole time still hears a new message in #general.
func TestFuzzCorpusLeavesServerUsable(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzClientLines")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read the seed corpus: %v", err)
	}
	h := newFuzzHarness(t)
	// Over-long lines are FuzzClientLines' finding; this test is about
	// what the whole corpus leaves behind.
	h.tolerate["long"] = true
	n := 0
	for _, e := range entries {
		data, err := readCorpusFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > fuzzMaxInput {
			continue
		}
		h.run(t, data)
		if t.Failed() {
			t.Fatalf("seed %s failed", e.Name())
		}
		n++
	}
	if n < 20 {
		t.Errorf("only %d seeds in %s; expected the full corpus", n, dir)
	}
	h.probe(t)
}

// readCorpusFile reads a one-argument []byte corpus file ("go test fuzz
// v1").
func readCorpusFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(string(b), "go test fuzz v1\n")
	if !ok {
		return nil, fmt.Errorf("%s: not a go fuzz corpus file (no \"go test fuzz v1\" header)", path)
	}
	rest = strings.TrimSpace(rest)
	lit, ok := strings.CutPrefix(rest, "[]byte(")
	if !ok || !strings.HasSuffix(lit, ")") {
		return nil, fmt.Errorf("%s: want one []byte(...) value", path)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return []byte(s), nil
}
