// Benchmarks of the IRC door over real TCP on 127.0.0.1, against an
// in-process Server (Serve on an ephemeral port) over a real core and a
// real store in a temporary directory:
//
//   - BenchmarkIdleConnectionMemory: what one idle client costs, logged in
//     and joined to #general (heap in use + stacks, after GC, per
//     connection, baseline subtracted; goroutines per connection), at 500
//     and 100 members, and logged in without a channel.
//   - BenchmarkRoomFanout: 200 members in one room reading all the time,
//     10 of them sending; deliveries per second (messages x 200
//     receivers / elapsed), each message durable in the store first.
//
// The client side runs in the same process: its sockets (a few hundred
// bytes each; the idle clients run no goroutine) are included in B/conn,
// and its 200 reading goroutines share the CPU with the server in the
// fan-out figure. Left out: TLS (its per-connection buffers add ~20 KiB)
// and XMPP members.
package irc

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chatbox/services/chat"
)

const (
	benchIdleConns   = 500
	benchRoomMembers = 200
	benchSenders     = 10
	// benchRound is how many messages each sender sends per b.N.
	benchRound = 20
	// benchDeadline bounds every wait of the benchmarks (a hang detector).
	benchDeadline = 5 * time.Minute
)

// benchAccount names the i-th benchmark account.
func benchAccount(i int) string { return fmt.Sprintf("u%03d", i) }

// benchDoor makes a door with n accounts and limits high enough that
// neither the flood limit nor the message rate limit takes part, and
// serves it on 127.0.0.1 with an ephemeral port. It returns the server
// and its address.
func benchDoor(b testing.TB, n int) (*fuzzDoor, string) {
	b.Helper()
	accounts := map[string]bool{}
	for i := range n {
		accounts[benchAccount(i)] = false
	}
	d := newFuzzDoor(b, fuzzDoorOptions{
		accounts: accounts,
		limits: chat.Limits{MessagesPerSecond: 1e6, MessageBurst: 1 << 20,
			FailedLoginsPerMinute: 1 << 20, SessionsPerAccount: 1000},
		cfg: Config{PlainListen: []string{"127.0.0.1:0"}, LinesPerSecond: 1e6, LineBurst: 1 << 20,
			ConnectionsPerAddress: 4 * n, PingInterval: time.Hour, PingTimeout: time.Hour},
	})
	return d, serveDoor(b, d)
}

// serveDoor runs d's server until the test ends and returns its one
// listening address.
func serveDoor(tb testing.TB, d *fuzzDoor) string {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- d.srv.Serve(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-errc:
		cancel()
		tb.Fatalf("serve: %v", err)
	}
	tb.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			tb.Errorf("serve: %v", err)
		}
	})
	addrs := d.srv.Addrs()
	if len(addrs) != 1 {
		tb.Fatalf("want one listening address, got %v", addrs)
	}
	return addrs[0]
}

// benchJoin connects account to addr, logs it in (with the capabilities
// caps, if any), joins #general and reads until the end of the NAMES
// list. It returns the connection and its reader, positioned after it.
func benchJoin(addr, account, caps string) (net.Conn, *bufio.Reader, error) {
	return benchConnect(addr, account, caps, true)
}

// benchConnect is benchJoin, or with join false only logs in (and waits
// for the answer to a PING sent after the login, so the session is open).
func benchConnect(addr, account, caps string, join bool) (net.Conn, *bufio.Reader, error) {
	nc, err := net.DialTimeout("tcp", addr, benchDeadline)
	if err != nil {
		return nil, nil, err
	}
	var login strings.Builder
	if caps != "" {
		login.WriteString("CAP LS 302\r\nCAP REQ :" + caps + "\r\nCAP END\r\n")
	}
	login.WriteString(fuzzLogin(account))
	until := " PONG " + fuzzServerName + " "
	if join {
		login.WriteString("JOIN #" + fuzzRoom + "\r\n")
		until = " " + RPL_ENDOFNAMES + " " + account + " #" + fuzzRoom + " "
	} else {
		login.WriteString("PING :ready\r\n")
	}
	nc.SetDeadline(time.Now().Add(benchDeadline))
	if _, err := nc.Write([]byte(login.String())); err != nil {
		nc.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("%s: reading until logged in: %w", account, err)
		}
		if strings.HasPrefix(line, "ERROR ") {
			nc.Close()
			return nil, nil, fmt.Errorf("%s: the server closed the link: %s", account, strings.TrimSpace(line))
		}
		if strings.Contains(line, until) && (join || strings.HasSuffix(strings.TrimRight(line, "\r\n"), "ready")) {
			break
		}
	}
	nc.SetDeadline(time.Time{})
	return nc, br, nil
}

// benchWaitConns waits until the server has no connection left.
func benchWaitConns(b *testing.B, d *fuzzDoor) {
	b.Helper()
	deadline := time.Now().Add(benchDeadline)
	for {
		n, _ := d.srv.connCount()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d connections still open %s after their clients closed them\n%s", n, benchDeadline, goroutineDump())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// benchFootprint is the process's heap in use plus stacks, and its live
// heap plus stacks, after two collections.
func benchFootprint() (inuse, live uint64) {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse, m.HeapAlloc + m.StackInuse
}

// BenchmarkIdleConnectionMemory measures what an idle, logged-in client
// costs the server: joined to #general with all the others (the brief's
// case; the door keeps nothing per member, so this should not grow with
// the room), and for comparison with fewer members and not joined at all.
func BenchmarkIdleConnectionMemory(b *testing.B) {
	for _, bc := range []struct {
		conns int
		join  bool
	}{{benchIdleConns, true}, {100, true}, {benchIdleConns, false}} {
		name := fmt.Sprintf("conns=%d/joined", bc.conns)
		if !bc.join {
			name = fmt.Sprintf("conns=%d/no-channel", bc.conns)
		}
		b.Run(name, func(b *testing.B) { benchIdleMemory(b, bc.conns, bc.join) })
	}
}

func benchIdleMemory(b *testing.B, n int, join bool) {
	d, addr := benchDoor(b, n)
	var inuseSum, liveSum, gorSum float64
	b.ResetTimer()
	for range b.N {
		inuse0, live0 := benchFootprint()
		g0 := runtime.NumGoroutine()
		conns := make([]net.Conn, 0, n)
		for i := range n {
			nc, _, err := benchConnect(addr, benchAccount(i), "", join)
			if err != nil {
				b.Fatalf("client %d: %v", i, err)
			}
			// Only the socket is kept: the client reads nothing more, so
			// what later joins send it waits in the kernel, not in Go.
			conns = append(conns, nc)
		}
		inuse1, live1 := benchFootprint()
		g1 := runtime.NumGoroutine()
		inuseSum += (float64(inuse1) - float64(inuse0)) / float64(n)
		liveSum += (float64(live1) - float64(live0)) / float64(n)
		gorSum += float64(g1-g0) / float64(n)
		for _, nc := range conns {
			nc.Close()
		}
		benchWaitConns(b, d)
	}
	b.StopTimer()
	runs := float64(b.N)
	b.ReportMetric(inuseSum/runs, "B/conn")
	b.ReportMetric(liveSum/runs, "live-B/conn")
	b.ReportMetric(gorSum/runs, "goroutines/conn")
}

// BenchmarkRoomFanout measures delivery to a 200-member room with 10
// members sending at once: each op is benchRound messages from each
// sender.
func BenchmarkRoomFanout(b *testing.B) {
	d, addr := benchDoor(b, benchRoomMembers)
	msgs := int64(benchSenders * benchRound * b.N)
	want := msgs * benchRoomMembers
	var got atomic.Int64
	all := make(chan struct{})
	// echo-message: the senders count their own lines too, so every
	// message makes exactly benchRoomMembers lines.
	conns := benchMembers(b, d, addr, benchRoomMembers, "echo-message", " PRIVMSG #"+fuzzRoom+" :", func() {
		if got.Add(1) == want {
			close(all)
		}
	})
	lines := make([][]byte, benchSenders)
	for k := range lines {
		var sb strings.Builder
		for m := range benchRound * b.N {
			fmt.Fprintf(&sb, "PRIVMSG #%s :message %d from sender %d, about as long as a line of chat usually is\r\n", fuzzRoom, m, k)
		}
		lines[k] = []byte(sb.String())
	}
	b.ResetTimer()
	start := time.Now()
	errc := make(chan error, benchSenders)
	for k := range benchSenders {
		go func() {
			_, err := conns[k].Write(lines[k])
			errc <- err
		}()
	}
	for range benchSenders {
		if err := <-errc; err != nil {
			b.Fatalf("sender: %v", err)
		}
	}
	select {
	case <-all:
	case <-time.After(benchDeadline):
		b.Fatalf("only %d of %d deliveries within %s", got.Load(), want, benchDeadline)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(want), "ns/delivery")
	b.ReportMetric(float64(msgs)/elapsed.Seconds(), "msgs/s")
}

// benchMembers joins n members (accounts 0 … n-1, with caps) to #general
// and has each read all the time, calling seen for every line holding
// marker; they are closed, and the server's connections waited for, when
// the benchmark ends. It returns the members' connections.
func benchMembers(b *testing.B, d *fuzzDoor, addr string, n int, caps, marker string, seen func()) []net.Conn {
	b.Helper()
	var readers sync.WaitGroup
	conns := make([]net.Conn, 0, n)
	b.Cleanup(func() {
		for _, nc := range conns {
			nc.Close()
		}
		readers.Wait()
		benchWaitConns(b, d)
	})
	m := []byte(marker)
	for i := range n {
		nc, br, err := benchJoin(addr, benchAccount(i), caps)
		if err != nil {
			b.Fatalf("member %d: %v", i, err)
		}
		conns = append(conns, nc)
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				line, err := br.ReadSlice('\n')
				if err != nil && err != bufio.ErrBufferFull {
					return
				}
				if bytes.Contains(line, m) {
					seen()
				}
			}
		}()
	}
	return conns
}

// BenchmarkRoomQuit measures N IRC members of a room (N: BENCH_IRC_N,
// default 200) seeing N others quit at once (as when a box's Wi-Fi
// drops): the quitters are the core's sessions, with a sink that drops
// what it gets, whose closing makes the core's DelQuit to every member
// left, N² QUIT lines in all; ms/quit-all is the wall time until the
// last is read. The quitters' joins are not timed.
func BenchmarkRoomQuit(b *testing.B) {
	n := 200
	if v, err := strconv.Atoi(os.Getenv("BENCH_IRC_N")); err == nil && v > 0 {
		n = v
	}
	d, addr := benchDoor(b, 2*n)
	ctx := context.Background()
	var got atomic.Int64
	kick := make(chan struct{}, 1)
	benchMembers(b, d, addr, n, "", " QUIT ", func() {
		got.Add(1)
		select {
		case kick <- struct{}{}:
		default:
		}
	})
	b.ReportAllocs()
	var wall time.Duration
	quitters := make([]*chat.Session, n)
	for i := range b.N {
		b.StopTimer()
		want := got.Load() + int64(n)*int64(n)
		for k := range quitters {
			account := benchAccount(n + k)
			s, err := d.core.Open(ctx, chat.SessionInfo{Account: account, Door: "irc", Resource: fmt.Sprintf("q%d_%d", i, k)},
				chat.SinkFunc(func(chat.Delivery) {}))
			if err != nil {
				b.Fatal(err)
			}
			s.SetPresence(chat.Presence{Show: chat.ShowAvailable}) // as the IRC door's sessions
			if _, err := d.core.Join(ctx, s, fuzzRoom, fmt.Sprintf("q%d_%d", i, k), ""); err != nil {
				b.Fatal(err)
			}
			quitters[k] = s
		}
		b.StartTimer()
		start := time.Now()
		for _, s := range quitters {
			s.Close("bye")
		}
		deadline := time.After(benchDeadline)
		for got.Load() < want {
			select {
			case <-kick:
			case <-deadline:
				b.Fatalf("only %d of %d quits within %s", got.Load()-want+int64(n)*int64(n), int64(n)*int64(n), benchDeadline)
			}
		}
		wall += time.Since(start)
	}
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "ms/quit-all")
	b.ReportMetric(0, "ns/op")
}
