package xmpp

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"chatbox/services/chat"
	"chatbox/services/store"
)

// The MUC benchmarks drive the door in this process over plain TCP on
// loopback: N clients log in (SASL PLAIN without TLS), join one room, and
// read what they get, counting markers rather than parsing, so that the
// profile (-cpuprofile, -memprofile) shows the server's side.
// BENCH_MUC_N sets N (default 200); BENCH_MUC_TLS=1 makes the clients
// use direct TLS (XEP-0368) rather than plain TCP.

func mucBenchN() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_MUC_N")); err == nil && n > 0 {
		return n
	}
	return 200
}

// mucBench is a door with n logged-in raw clients.
type mucBench struct {
	srv     *Server
	core    *chat.Core
	clients []*mucBenchClient
	mem0    int64 // liveBytes before the clients connected
	// bodies counts body markers received by all clients; subjects the
	// subjects (one per join); leaves the unavailable presences; kick
	// wakes waiters.
	bodies, subjects, leaves atomic.Int64
	kick                     chan struct{}
}

type mucBenchClient struct {
	name string
	nc   net.Conn
	mu   sync.Mutex // writes
}

func (m *mucBench) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// wait waits until cond holds, for at most limit.
func (m *mucBench) wait(tb testing.TB, what string, limit time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-m.kick:
		case <-deadline.C:
			tb.Fatalf("%s: not within %v (bodies %d, subjects %d)", what, limit, m.bodies.Load(), m.subjects.Load())
		}
	}
}

func newMUCBench(tb testing.TB, n int) *mucBench {
	tb.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(tb.TempDir(), "chat.db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	core, err := chat.New(chat.Options{Store: st, Iterations: 4096, UsersMayCreateRooms: true,
		Limits: chat.Limits{MessagesPerSecond: 1e6, MessageBurst: 1e6, SessionsPerAccount: 10}})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := Config{Domain: boxDomain, Listen: []string{"127.0.0.1:0"}, AllowPlaintext: true,
		ConnectionsPerAddress: 1 << 20, StanzasPerSecond: 1e6, StanzaBurst: 1 << 20, SendQ: 64 << 20}
	useTLS := os.Getenv("BENCH_MUC_TLS") == "1"
	if useTLS {
		cfg.Listen, cfg.TLSListen, cfg.TLS = nil, []string{"127.0.0.1:0"}, selfSignedTLS(tb, boxDomain)
	}
	srv := New(cfg, core, nil)
	sctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(sctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-errc:
		cancel()
		tb.Fatalf("serve: %v", err)
	}
	m := &mucBench{srv: srv, core: core, kick: make(chan struct{}, 1)}
	tb.Cleanup(func() {
		for _, c := range m.clients {
			c.nc.Close()
		}
		cancel()
		<-errc
		st.Close()
	})
	addr := srv.Addrs()[0]
	for i := range n {
		name := fmt.Sprintf("u%04d", i)
		if err := core.CreateAccount(ctx, name, password(name), false); err != nil {
			tb.Fatal(err)
		}
	}
	m.mem0 = liveBytes()
	for i := range n {
		m.clients = append(m.clients, m.login(tb, addr, fmt.Sprintf("u%04d", i), useTLS))
	}
	return m
}

// liveBytes is the heap and goroutine stacks in use after a collection.
func liveBytes() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse + ms.StackInuse)
}

// login logs name in and starts its reader.
func (m *mucBench) login(tb testing.TB, addr, name string, useTLS bool) *mucBenchClient {
	tb.Helper()
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	if useTLS {
		nc = tls.Client(nc, &tls.Config{InsecureSkipVerify: true, ServerName: boxDomain})
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	header := `<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="` + boxDomain + `" version="1.0">`
	rd := newStreamReader(nc, 1<<24, 64, nil)
	next := func() *Element {
		el, err := rd.Next()
		if err != nil {
			tb.Fatalf("%s: read: %v", name, err)
		}
		return el
	}
	io.WriteString(nc, header)
	if _, err := rd.Header(); err != nil {
		tb.Fatal(err)
	}
	next() // features
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + name + "\x00" + password(name)))
	io.WriteString(nc, `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">`+auth+`</auth>`)
	if el := next(); !el.Is(nsSASL, "success") {
		tb.Fatalf("%s: PLAIN: %s", name, el)
	}
	io.WriteString(nc, header)
	rd = newStreamReader(nc, 1<<24, 64, nil)
	if _, err := rd.Header(); err != nil {
		tb.Fatal(err)
	}
	next()
	io.WriteString(nc, `<iq type="set" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>b</resource></bind></iq>`)
	if el := next(); el.Get("type") != "result" {
		tb.Fatalf("%s: bind: %s", name, el)
	}
	nc.SetDeadline(time.Time{})
	c := &mucBenchClient{name: name, nc: nc}
	go m.read(c)
	return c
}

// read counts the markers in what c receives until the connection ends.
func (m *mucBench) read(c *mucBenchClient) {
	body, subject, leave := []byte("bm!"), []byte("<subject"), []byte("unavailable")
	buf := make([]byte, 4<<10)
	keep := 0
	for {
		n, err := c.nc.Read(buf[keep:])
		if n > 0 {
			data := buf[:keep+n]
			// Matches wholly inside the kept tail were counted before.
			b := bytes.Count(data, body) - bytes.Count(data[:keep], body)
			s := bytes.Count(data, subject) - bytes.Count(data[:keep], subject)
			l := bytes.Count(data, leave) - bytes.Count(data[:keep], leave)
			if l > 0 {
				m.leaves.Add(int64(l))
			}
			if b > 0 {
				m.bodies.Add(int64(b))
			}
			if s > 0 {
				m.subjects.Add(int64(s))
			}
			if b+s+l > 0 {
				m.wake()
			}
			// Keep a tail shorter than the longest marker, for one split
			// across reads.
			keep = min(len(data), len(leave)-1)
			copy(buf, data[len(data)-keep:])
		}
		if err != nil {
			return
		}
	}
}

func (c *mucBenchClient) send(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	io.WriteString(c.nc, s)
}

// joinAll makes every client join room, 16 at a time, and waits until
// each has its subject (the end of its join burst).
func (m *mucBench) joinAll(tb testing.TB, room string) {
	tb.Helper()
	want := m.subjects.Load() + int64(len(m.clients))
	m.sendAll(func(c *mucBenchClient) string {
		return `<presence to="` + room + `@rooms.` + boxDomain + `/` + c.name + `"><x xmlns="` + nsMUC + `"><history maxstanzas="0"/></x></presence>`
	})
	m.wait(tb, "joins", 10*time.Minute, func() bool { return m.subjects.Load() >= want })
}

// sendAll has every client send its stanza, 16 at a time.
func (m *mucBench) sendAll(stanza func(c *mucBenchClient) string) {
	work := make(chan *mucBenchClient)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for c := range work {
				c.send(stanza(c))
			}
		})
	}
	for _, c := range m.clients {
		work <- c
	}
	close(work)
	wg.Wait()
}

// BenchmarkMUCJoin measures N clients joining one room (a fresh room per
// iteration); ms/join-all is the wall time for all N.
func BenchmarkMUCJoin(b *testing.B) {
	n := mucBenchN()
	m := newMUCBench(b, n)
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for i := range b.N {
		m.joinAll(b, "join"+strconv.Itoa(i))
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N), "ms/join-all")
	b.ReportMetric(float64(cpuTime()-cpu0)/1e6/float64(b.N), "cpu-ms/join-all")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkMUCLeave measures N clients leaving one room at once (as
// when a box's Wi-Fi drops): each leave goes to everyone still there, N
// (N+1)/2 presences in all; ms/leave-all is the wall time until the last
// is read. The joins before each iteration are not timed.
func BenchmarkMUCLeave(b *testing.B) {
	n := mucBenchN()
	m := newMUCBench(b, n)
	b.ReportAllocs()
	var wall, cpu time.Duration
	for i := range b.N {
		b.StopTimer()
		room := "leave" + strconv.Itoa(i)
		m.joinAll(b, room)
		want := m.leaves.Load() + int64(n)*int64(n+1)/2
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		m.sendAll(func(c *mucBenchClient) string {
			return `<presence type="unavailable" to="` + room + `@rooms.` + boxDomain + `/` + c.name + `"/>`
		})
		m.wait(b, "leaves", 10*time.Minute, func() bool { return m.leaves.Load() >= want })
		wall += time.Since(start)
		cpu += time.Duration(cpuTime() - cpu0)
	}
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "ms/leave-all")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/leave-all")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkMUCQuit measures N IRC members quitting a mixed room at once
// (their sessions close: the core's DelQuit) while N XMPP members stay:
// N² unavailable presences to the XMPP clients; ms/quit-all is the wall
// time until the last is read. The IRC sessions are the core's, with a
// sink that drops what it gets; their joins are not timed.
func BenchmarkMUCQuit(b *testing.B) {
	n := mucBenchN()
	m := newMUCBench(b, n)
	ctx := context.Background()
	m.joinAll(b, "mixed")
	ircs := make([]*chat.Session, n)
	for i := range ircs {
		name := fmt.Sprintf("i%04d", i)
		if err := m.core.CreateAccount(ctx, name, password(name), false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	var wall, cpu time.Duration
	for i := range b.N {
		b.StopTimer()
		want := m.leaves.Load() + int64(n)*int64(n)
		for k := range ircs {
			name := fmt.Sprintf("i%04d", k)
			s, err := m.core.Open(ctx, chat.SessionInfo{Account: name, Door: "irc", Resource: name + "x" + strconv.Itoa(i)},
				chat.SinkFunc(func(chat.Delivery) {}))
			if err != nil {
				b.Fatal(err)
			}
			s.SetPresence(chat.Presence{Show: chat.ShowAvailable}) // as the IRC door's sessions
			if _, err := m.core.Join(ctx, s, "mixed", name, ""); err != nil {
				b.Fatal(err)
			}
			ircs[k] = s
		}
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		for _, s := range ircs {
			s.Close("Quit: bye")
		}
		m.wait(b, "quits", 10*time.Minute, func() bool { return m.leaves.Load() >= want })
		wall += time.Since(start)
		cpu += time.Duration(cpuTime() - cpu0)
	}
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "ms/quit-all")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/quit-all")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkMUCFanout measures room messages to N members: 10 senders
// write back to back; an iteration is one message delivered to all N.
func BenchmarkMUCFanout(b *testing.B) {
	n := mucBenchN()
	m := newMUCBench(b, n)
	m.joinAll(b, "general")
	// Memory per member, the in-process clients' share included (a
	// goroutine, a 4 KiB buffer and a connection each, TLS state too).
	perMember := float64(liveBytes()-m.mem0) / float64(n)
	if path := os.Getenv("BENCH_MUC_HEAP"); path != "" { // a heap profile of the joined room
		if f, err := os.Create(path); err == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	senders := m.clients[:min(10, n)]
	b.ReportAllocs()
	b.ResetTimer()
	want := m.bodies.Load() + int64(b.N)*int64(n)
	cpu0 := cpuTime()
	var wg sync.WaitGroup
	for k, c := range senders {
		count := b.N / len(senders)
		if k < b.N%len(senders) {
			count++
		}
		wg.Go(func() {
			for j := range count {
				c.send(`<message to="general@rooms.` + boxDomain + `" type="groupchat" id="m` + strconv.Itoa(j) + `"><body>bm! message ` + strconv.Itoa(j) + ` from ` + c.name + `, a line of ordinary length for a chat room</body></message>`)
			}
		})
	}
	wg.Wait()
	m.wait(b, "deliveries", 10*time.Minute, func() bool { return m.bodies.Load() >= want })
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(int64(b.N)*int64(n)), "ns/delivery")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(int64(b.N)*int64(n)), "cpu-ns/delivery")
	b.ReportMetric(perMember, "live-B/member")
}

// cpuTime is the process's user and system CPU time so far, in ns (the
// clients' reading included: they run in this process).
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
