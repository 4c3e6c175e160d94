package irc

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"chatbox/internal/rounds"
	"chatbox/services/chat"
)

// The slow-client path of the write rounds (write.go): a plain TCP client
// that stops reading while #general is flooded.

// slowWait bounds every wait of these tests (a hang detector: what is
// waited for takes milliseconds).
const slowWait = 10 * time.Second

// slowPad makes each flood line a few hundred bytes.
var slowPad = strings.Repeat("y", 200)

// slowDoor serves a door with accounts u000 (the sender), u001 (a client
// that reads) and u002 (a client that stops reading) on loopback, with
// the given sendq and a single write-round shard, so that the reader and
// the slow client are written by the same round goroutine.
func slowDoor(t *testing.T, sendQ int) (*fuzzDoor, string) {
	t.Helper()
	d := newFuzzDoor(t, fuzzDoorOptions{
		accounts: map[string]bool{"u000": false, "u001": false, "u002": false},
		limits: chat.Limits{MessagesPerSecond: 1e6, MessageBurst: 1 << 20,
			FailedLoginsPerMinute: 1 << 20, SessionsPerAccount: 1000},
		cfg: Config{PlainListen: []string{"127.0.0.1:0"}, LinesPerSecond: 1e6, LineBurst: 1 << 20,
			SendQ: sendQ, PingInterval: time.Hour, PingTimeout: time.Hour},
	})
	d.srv.rounds = rounds.New(1, d.srv.cfg.WriteCoalesce) // before any connection
	return d, serveDoor(t, d)
}

// slowJoin connects account (with a receive buffer of rcvbuf bytes if
// positive, set before connecting), logs in, joins #general and reads
// until the end of NAMES.
func slowJoin(t *testing.T, addr, account string, rcvbuf int) (*net.TCPConn, *bufio.Reader) {
	t.Helper()
	dl := net.Dialer{Timeout: slowWait}
	if rcvbuf > 0 {
		dl.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	nc, err := dl.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(slowWait))
	if _, err := nc.Write([]byte(fuzzLogin(account) + "JOIN #" + fuzzRoom + "\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	until := " " + RPL_ENDOFNAMES + " " + account + " #" + fuzzRoom + " "
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: reading until joined: %v", account, err)
		}
		if strings.Contains(line, until) {
			break
		}
	}
	nc.SetDeadline(time.Time{})
	return nc.(*net.TCPConn), br
}

// floodLine is the line a client is sent for flood message i.
func floodLine(i int) string {
	return fmt.Sprintf(":u000!u000@irc.%s PRIVMSG #%s :%06d %s\r\n", fuzzServerName, fuzzRoom, i, slowPad)
}

// floodIndex parses a flood line; ok is false for any other line.
func floodIndex(line string) (int, bool) {
	prefix := fmt.Sprintf(":u000!u000@irc.%s PRIVMSG #%s :", fuzzServerName, fuzzRoom)
	rest, ok := strings.CutPrefix(line, prefix)
	if !ok || len(rest) < 6 {
		return 0, false
	}
	i, err := strconv.Atoi(rest[:6])
	return i, err == nil
}

// reader reads a client's lines on a goroutine: flood message indexes to
// idx, anything else to other; err gets the error that ended it.
type reader struct {
	idx   chan int
	other chan string
	err   chan error
}

func readLines(br *bufio.Reader) *reader {
	r := &reader{idx: make(chan int, 100000), other: make(chan string, 1000), err: make(chan error, 1)}
	go func() {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				r.err <- err
				return
			}
			if i, ok := floodIndex(line); ok {
				if line != floodLine(i) {
					r.err <- fmt.Errorf("mangled line %q", line)
					return
				}
				r.idx <- i
				continue
			}
			select {
			case r.other <- line:
			default:
			}
		}
	}()
	return r
}

// expectFlood waits until r has got flood messages from..to-1, in order.
func (r *reader) expectFlood(t *testing.T, who string, from, to int) {
	t.Helper()
	timeout := time.After(slowWait)
	for want := from; want < to; want++ {
		select {
		case i := <-r.idx:
			if i != want {
				t.Fatalf("%s got message %d, want %d", who, i, want)
			}
		case err := <-r.err:
			t.Fatalf("%s: connection ended after message %d: %v", who, want-1, err)
		case <-timeout:
			t.Fatalf("%s: no message %d (held up?)", who, want)
		}
	}
}

// flood sends messages from..to-1 to #general.
func flood(t *testing.T, sender net.Conn, from, to int) {
	t.Helper()
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "PRIVMSG #%s :%06d %s\r\n", fuzzRoom, i, slowPad)
	}
	sender.SetWriteDeadline(time.Now().Add(slowWait))
	if _, err := sender.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
}

// serverConn is the server's connection of nick.
func serverConn(t *testing.T, d *fuzzDoor, nick string) *conn {
	t.Helper()
	cs := d.srv.nickHolders(nick)
	if len(cs) != 1 {
		t.Fatalf("%d connections hold %s", len(cs), nick)
	}
	return cs[0]
}

// ownWriter says whether c is being written by its own writer goroutine
// (what a round could not write), not by the rounds.
func ownWriter(c *conn) bool {
	c.qmu.Lock()
	defer c.qmu.Unlock()
	return c.writing
}

// stallSlow joins the three clients, shrinks the server's send buffer
// to u002 and floods #general in batches, checking that u001 gets every
// message, until u002's rest is with its own writer and two more
// batches are queued behind it. It returns how many messages it sent.
func stallSlow(t *testing.T, d *fuzzDoor, addr string) (sent int, sender net.Conn, fast *reader, slowNC *net.TCPConn, slowBR *bufio.Reader, slow *conn) {
	t.Helper()
	sender, _ = slowJoin(t, addr, "u000", 0)
	_, fastBR := slowJoin(t, addr, "u001", 0)
	slowNC, slowBR = slowJoin(t, addr, "u002", 4096)
	slow = serverConn(t, d, "u002")
	if err := slow.nc.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		t.Fatal(err)
	}
	fast = readLines(fastBR)
	const batch = 100
	extra := -1
	for sent < 20000 && extra != 0 {
		flood(t, sender, sent, sent+batch)
		fast.expectFlood(t, "u001", sent, sent+batch)
		sent += batch
		switch {
		case extra > 0:
			extra--
		case ownWriter(slow):
			extra = 2
		}
	}
	if extra != 0 {
		t.Fatalf("after %d messages u002, which reads nothing, still has no writer of its own", sent)
	}
	return
}

// TestSlowClientCatchesUp: a client that stops reading while the room is
// flooded does not hold up its neighbour on the same round; once it reads
// again it gets every line, whole and in order, and is written by the
// rounds again.
func TestSlowClientCatchesUp(t *testing.T) {
	d, addr := slowDoor(t, 8<<20)
	sent, sender, fast, _, slowBR, slow := stallSlow(t, d, addr)
	slowR := readLines(slowBR)
	slowR.expectFlood(t, "u002", 0, sent)
	// Caught up: the writer goroutine ends and the rounds write again.
	deadline := time.Now().Add(slowWait)
	for ownWriter(slow) {
		if time.Now().After(deadline) {
			t.Fatal("u002's own writer still runs with nothing left to write")
		}
		time.Sleep(time.Millisecond)
	}
	flood(t, sender, sent, sent+10)
	fast.expectFlood(t, "u001", sent, sent+10)
	slowR.expectFlood(t, "u002", sent, sent+10)
	if slow.isDead() {
		t.Fatal("u002 was disconnected")
	}
}

// TestSlowClientSendQExceeded: a client that stays behind past its sendq
// is disconnected ("SendQ exceeded", its neighbours see it quit) while
// its neighbour keeps getting every message; what it did get is whole
// lines, in order.
func TestSlowClientSendQExceeded(t *testing.T) {
	d, addr := slowDoor(t, 64<<10)
	sent, sender, fast, slowNC, slowBR, _ := stallSlow(t, d, addr)
	const batch = 100
	for len(d.srv.nickHolders("u002")) > 0 {
		if sent >= 20000 {
			t.Fatalf("u002 still connected after %d messages it did not read, sendq 64 KiB", sent)
		}
		flood(t, sender, sent, sent+batch)
		fast.expectFlood(t, "u001", sent, sent+batch)
		sent += batch
	}
	timeout := time.After(slowWait)
	for quit := false; !quit; {
		select {
		case line := <-fast.other:
			if strings.HasPrefix(line, ":u002!") && strings.Contains(line, " QUIT ") {
				if !strings.Contains(line, "SendQ exceeded") {
					t.Fatalf("u002 quit with %q, want SendQ exceeded", line)
				}
				quit = true
			}
		case <-timeout:
			t.Fatal("u001 did not see u002 quit")
		}
	}
	// u002 reads what it was sent: a prefix of the flood, whole lines in
	// order (but perhaps a last line cut by the close), then the end.
	next := 0
	slowNC.SetReadDeadline(time.Now().Add(slowWait))
	for {
		line, err := slowBR.ReadString('\n')
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("u002's connection was not closed (read %d messages)", next)
		}
		if err != nil {
			break
		}
		i, ok := floodIndex(line)
		if !ok {
			t.Fatalf("u002 got %q", line)
		}
		if i != next || line != floodLine(i) {
			t.Fatalf("u002 got %q, want message %d", line, next)
		}
		next++
	}
	if next == 0 || next >= sent {
		t.Fatalf("u002 read %d of %d messages before the end", next, sent)
	}
	// The neighbour is still served.
	flood(t, sender, sent, sent+5)
	fast.expectFlood(t, "u001", sent, sent+5)
}

// TestSlowClientLaterRounds: a client that was slow once, caught up and
// went back to the write rounds, is still written by them after the
// write deadline its own writer set (writeWait) has passed.
func TestSlowClientLaterRounds(t *testing.T) {
	if testing.Short() {
		t.Skip("waits writeWait (30 s)")
	}
	d, addr := slowDoor(t, 8<<20)
	sent, sender, fast, _, slowBR, slow := stallSlow(t, d, addr)
	slowR := readLines(slowBR)
	slowR.expectFlood(t, "u002", 0, sent)
	deadline := time.Now().Add(slowWait)
	for ownWriter(slow) {
		if time.Now().After(deadline) {
			t.Fatal("u002's own writer still runs with nothing left to write")
		}
		time.Sleep(time.Millisecond)
	}
	// Not a timing assertion: the wait only lets the writer's deadline
	// pass; a correct server delivers the message however long it is.
	time.Sleep(writeWait + time.Second)
	flood(t, sender, sent, sent+1)
	fast.expectFlood(t, "u001", sent, sent+1)
	select {
	case i := <-slowR.idx:
		if i != sent {
			t.Fatalf("u002 got message %d, want %d", i, sent)
		}
	case err := <-slowR.err:
		slow.mu.Lock()
		reason := slow.reason
		slow.mu.Unlock()
		t.Fatalf("u002 was disconnected (%q) instead of getting message %d: %v", reason, sent, err)
	case <-time.After(slowWait):
		t.Fatalf("u002: no message %d", sent)
	}
}
