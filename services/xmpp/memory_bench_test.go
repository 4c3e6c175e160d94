package xmpp

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"chatbox/services/chat"
	"chatbox/services/store"
)

// TestMemoryPerMember measures what the server holds per member of a
// room: MEMBENCH_N clients (a child process, this test binary run again,
// so that none of their memory is in this process) connect over
// STARTTLS as the load tool does (cmd/chatbench), log in with SASL
// PLAIN, bind, join one room and go idle; the test then collects and
// compares the heap, the goroutine stacks and the goroutines with what
// they were before, and prints the live heap per member by owner (the
// allocating stacks, from a heap profile taken with MemProfileRate 1).
// MEMBENCH_PROF=dir writes heap profiles before and after (for
// go tool pprof -diff_base). Skipped unless MEMBENCH_N is set:
//
//	MEMBENCH_N=500 go test -run TestMemoryPerMember -v ./services/xmpp/
func TestMemoryPerMember(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MEMBENCH_N"))
	if n <= 0 {
		t.Skip("MEMBENCH_N not set")
	}
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "chat.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	core, err := chat.New(chat.Options{Store: st, Iterations: 4096, UsersMayCreateRooms: true,
		Limits: chat.Limits{MessagesPerSecond: 1e6, MessageBurst: 1e6, SessionsPerAccount: 10}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		name := fmt.Sprintf("u%04d", i)
		if err := core.CreateAccount(ctx, name, password(name), false); err != nil {
			t.Fatal(err)
		}
	}
	// STARTTLS required, as the appliance serves it.
	cfg := Config{Domain: boxDomain, Listen: []string{"127.0.0.1:0"}, TLS: selfSignedTLS(t, boxDomain),
		ConnectionsPerAddress: 1 << 20, StanzasPerSecond: 1e6, StanzaBurst: 1 << 20}
	srv := New(cfg, core, nil)
	sctx, cancel := context.WithCancel(ctx)
	ready := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(sctx, func() { close(ready) }) }()
	defer func() { cancel(); <-errc }()
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("serve: %v", err)
	}
	// Warm up what every connection shares (the TLS config's caches, the
	// pools) with one member that stays, then take the baseline.
	warm := runMemClients(t, srv.Addrs()[0], 0, 1)
	defer warm.stop()
	time.Sleep(time.Second)
	before := memSnapshot(t, "before")

	kids := runMemClients(t, srv.Addrs()[0], 1, n)
	defer kids.stop()
	// Quiet: what the joins sent is written.
	time.Sleep(3 * time.Second)
	after := memSnapshot(t, "after")

	if dir := os.Getenv("MEMBENCH_PROF"); dir != "" {
		if f, err := os.Create(filepath.Join(dir, "goroutines.txt")); err == nil {
			pprof.Lookup("goroutine").WriteTo(f, 1)
			f.Close()
		}
	}
	per := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(n) }
	t.Logf("members %d (plus 1 before the baseline)", n)
	t.Logf("HeapAlloc   %8.0f B/member", per(before.ms.HeapAlloc, after.ms.HeapAlloc))
	t.Logf("HeapInuse   %8.0f B/member", per(before.ms.HeapInuse, after.ms.HeapInuse))
	t.Logf("StackInuse  %8.0f B/member", per(before.ms.StackInuse, after.ms.StackInuse))
	t.Logf("Heap+Stack  %8.0f B/member (HeapInuse+StackInuse)", per(before.ms.HeapInuse+before.ms.StackInuse, after.ms.HeapInuse+after.ms.StackInuse))
	t.Logf("Sys         %8.0f B/member", per(before.ms.Sys, after.ms.Sys))
	t.Logf("goroutines  %8.2f /member", float64(after.goroutines-before.goroutines)/float64(n))
	// What the runtime holds beyond the heap's objects (span structures,
	// poll descriptors, stacks...): what RSS counts besides HeapInuse.
	// (The test's MemProfileRate of 1 adds profiling buckets that a
	// server does not have.)
	classNames := slices.Sorted(maps.Keys(after.classes))
	for _, k := range classNames {
		if d := per(before.classes[k], after.classes[k]); d >= 16 || d <= -16 {
			t.Logf("%-44s %8.0f B/member", k, d)
		}
	}
	t.Logf("stack/goroutine %6.0f B", float64(after.ms.StackInuse-before.ms.StackInuse)/float64(max(1, after.goroutines-before.goroutines)))

	// The live heap by allocating stack (the difference of the two
	// profiles), grouped by owner.
	owners := map[string]int64{}
	stacks := map[string]int64{}
	for k, v := range after.byStack {
		d := v - before.byStack[k]
		if d == 0 || strings.Contains(k, "xmpp.memSnapshot") {
			continue
		}
		owners[memOwner(k)] += d
		stacks[k] += d
	}
	var total int64
	keys := make([]string, 0, len(owners))
	for k, v := range owners {
		keys = append(keys, k)
		total += v
	}
	sort.Slice(keys, func(i, j int) bool { return owners[keys[i]] > owners[keys[j]] })
	t.Logf("live heap by owner (profile, MemProfileRate 1), B/member:")
	for _, k := range keys {
		if owners[k]/int64(n) != 0 {
			t.Logf("  %7.0f  %s", float64(owners[k])/float64(n), k)
		}
	}
	t.Logf("  %7.0f  total", float64(total)/float64(n))
	if os.Getenv("MEMBENCH_STACKS") != "" {
		sk := make([]string, 0, len(stacks))
		for k := range stacks {
			sk = append(sk, k)
		}
		sort.Slice(sk, func(i, j int) bool { return stacks[sk[i]] > stacks[sk[j]] })
		for _, k := range sk {
			if stacks[k]/int64(n) >= 16 {
				t.Logf("%7.0f B/member  [%s]\n%s", float64(stacks[k])/float64(n), memOwner(k), k)
			}
		}
	}
}

// memOwners maps an allocating frame to what the allocation belongs to;
// the innermost frame of a stack that matches (by substring) decides.
var memOwners = []struct{ frame, owner string }{
	{"crypto/tls.(*Conn).readFromUntil", "TLS rawInput buffer"},
	{"crypto/tls.(*Conn).readRecordOrCCS", "TLS hand buffer (handshake messages, kept)"},
	{"crypto/tls.(*Conn).write", "TLS sendBuf/outBuf"},
	{"crypto/tls.(*Conn).flush", "TLS sendBuf/outBuf"},
	{"crypto/tls.(*halfConn).setTrafficSecret", "TLS record ciphers (AES-GCM, in and out)"},
	{"crypto/tls.aead", "TLS record ciphers (AES-GCM, in and out)"},
	{"crypto/tls.Server", "tls.Conn struct"},
	{"crypto/tls.(*Config).Clone", "tls.Config cloned per connection"},
	{"crypto/tls.", "TLS handshake leftovers (secrets, peer certs, ...)"},
	{"bufio.NewReaderSize", "stream read buffer (bufio)"},
	{"encoding/xml.NewDecoder", "XML decoder (struct, per stream restart)"},
	{"encoding/xml.", "XML decoder (namespace maps, stacks, buffers)"},
	{"xmpp.newStreamReader", "stream reader structs"},
	{"xmpp.(*conn).restartReader", "stream reader structs"},
	{"chatbox/internal/rounds.", "rounds.Conn (write side)"},
	{"net.", "net.TCPConn / fd / addrs"},
	{"internal/poll.", "net.TCPConn / fd / addrs"},
	{"runtime.malg", "goroutine structs (g, live and dead)"},
	{"xmpp.newOutQueue", "xmpp conn + outQueue structs"},
	{"xmpp.newConn", "xmpp conn + outQueue structs"},
	{"xmpp.(*roomPresCache)", "xmpp room presence cache (occupant presence, rendered)"},
	{"xmpp.(*session).mucJoined", "xmpp session MUC state (mucJoined)"},
	{"xmpp.(*session).muc", "xmpp session MUC state (ext map, muc state)"},
	{"services/chat.(*Core).Join", "chat room occupant (Join)"},
	{"services/chat.(*roomState)", "chat room occupant (Join)"},
	{"services/chat.(*Core).open", "chat session (Open)"},
	{"services/chat.", "chat other"},
	{"xmpp.(*blocklists)", "xmpp blocklist (loaded at bind)"},
	{"xmpp.(*session).directedPresence", "xmpp session directed-presence map"},
	{"xmpp.(*conn).bind", "xmpp session struct + maps (bind)"},
	{"xmpp.(*Server).accept", "xmpp accept (conn maps)"},
}

// memOwner names what an allocating stack (innermost frame first, one
// function a line) belongs to.
func memOwner(stack string) string {
	for _, f := range strings.Split(stack, "\n") {
		for _, o := range memOwners {
			if strings.Contains(f, o.frame) {
				return o.owner
			}
		}
	}
	for _, f := range strings.Split(stack, "\n") {
		if strings.HasPrefix(f, "chatbox/") {
			return "other: " + f
		}
	}
	return "other: " + strings.SplitN(stack, "\n", 2)[0]
}

type memSnap struct {
	ms         runtime.MemStats
	goroutines int
	byStack    map[string]int64  // in-use bytes by allocating stack
	classes    map[string]uint64 // runtime/metrics /memory/classes/...
}

// memSnapshot collects (MEMBENCH_GCS times, at least 3, so that the
// profile is of this moment and the stacks shrink: by half a cycle), then reads the memory statistics and the heap
// profile.
func memSnapshot(t *testing.T, name string) memSnap {
	gcs, _ := strconv.Atoi(os.Getenv("MEMBENCH_GCS"))
	for range max(gcs, 3) {
		runtime.GC()
	}
	var s memSnap
	runtime.ReadMemStats(&s.ms)
	s.goroutines = runtime.NumGoroutine()
	var samples []metrics.Sample
	for _, d := range metrics.All() {
		if strings.HasPrefix(d.Name, "/memory/classes/") && d.Kind == metrics.KindUint64 {
			samples = append(samples, metrics.Sample{Name: d.Name})
		}
	}
	metrics.Read(samples)
	s.classes = map[string]uint64{}
	for _, x := range samples {
		s.classes[x.Name] = x.Value.Uint64()
	}
	if dir := os.Getenv("MEMBENCH_PROF"); dir != "" {
		f, err := os.Create(filepath.Join(dir, name+".pprof"))
		if err != nil {
			t.Fatal(err)
		}
		pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
	}
	var recs []runtime.MemProfileRecord
	for {
		n, ok := runtime.MemProfile(recs, false)
		if ok {
			recs = recs[:n]
			break
		}
		recs = make([]runtime.MemProfileRecord, n+100)
	}
	s.byStack = map[string]int64{}
	for _, r := range recs {
		var b strings.Builder
		frames := runtime.CallersFrames(r.Stack())
		for {
			f, more := frames.Next()
			b.WriteString(f.Function + "\n")
			if !more {
				break
			}
		}
		s.byStack[b.String()] += r.InUseBytes()
	}
	return s
}

func init() {
	if os.Getenv("MEMBENCH_N") != "" && os.Getenv("MEMBENCH_CHILD") == "" {
		runtime.MemProfileRate = 1
	}
}

// memClients is the child process holding some members.
type memClients struct {
	cmd   *exec.Cmd
	stdin io.Closer
}

func (m *memClients) stop() {
	m.stdin.Close()
	m.cmd.Wait()
}

// runMemClients starts a child process with members u<from>..u<to-1>
// and waits until every one has joined.
func runMemClients(t *testing.T, addr string, from, to int) *memClients {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemoryClients$")
	cmd.Env = append(os.Environ(), "MEMBENCH_CHILD="+addr, "MEMBENCH_FROM="+strconv.Itoa(from), "MEMBENCH_TO="+strconv.Itoa(to))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if sc.Text() == "joined" {
			go io.Copy(io.Discard, stdout)
			return &memClients{cmd: cmd, stdin: stdin}
		}
		t.Log("clients: " + sc.Text())
	}
	stdin.Close()
	cmd.Wait()
	t.Fatal("the clients' process ended before they joined")
	return nil
}

// TestMemoryClients is the child process of TestMemoryPerMember: it logs
// its members in as cmd/chatbench does (STARTTLS, SASL PLAIN, bind, join
// without history), says "joined", then reads and discards what they are
// sent until its stdin closes.
func TestMemoryClients(t *testing.T) {
	addr := os.Getenv("MEMBENCH_CHILD")
	if addr == "" {
		t.Skip("the child of TestMemoryPerMember")
	}
	from, _ := strconv.Atoi(os.Getenv("MEMBENCH_FROM"))
	to, _ := strconv.Atoi(os.Getenv("MEMBENCH_TO"))
	names := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	failed := false
	for range 8 {
		wg.Go(func() {
			for name := range names {
				nc, err := memClientJoin(addr, name)
				mu.Lock()
				if err != nil {
					failed = true
					fmt.Println(name + ": " + err.Error())
				} else {
					conns = append(conns, nc)
				}
				mu.Unlock()
			}
		})
	}
	for i := from; i < to; i++ {
		names <- fmt.Sprintf("u%04d", i)
	}
	close(names)
	wg.Wait()
	if failed {
		t.Fatal("some clients failed")
	}
	fmt.Println("joined")
	io.Copy(io.Discard, os.Stdin)
	for _, nc := range conns {
		nc.Close()
	}
}

// memClientJoin logs name in and joins the room "general"; a goroutine
// then discards what the connection is sent.
func memClientJoin(addr, name string) (net.Conn, error) {
	tc, rd, err := memClientLogin(addr, name)
	if err != nil {
		return nil, err
	}
	io.WriteString(tc, `<presence to="general@rooms.`+boxDomain+`/`+name+`"><x xmlns="`+nsMUC+`"><history maxstanzas="0"/></x></presence>`)
	for {
		el, err := rd.Next()
		if err != nil {
			tc.Close()
			return nil, fmt.Errorf("join: %w", err)
		}
		if el.Local == "message" && el.Child(nsClient, "subject") != nil {
			break
		}
	}
	tc.SetDeadline(time.Time{})
	// What comes next (the later members' presence) is read and dropped.
	go func() {
		for {
			if _, err := rd.Next(); err != nil {
				return
			}
		}
	}()
	return tc, nil
}

// memClientLogin logs name in as cmd/chatbench does: STARTTLS, SASL
// PLAIN, bind. The TLS client sends full records from the start
// (DynamicRecordSizingDisabled), so that a write is one record.
func memClientLogin(addr, name string) (*tls.Conn, *streamReader, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, nil, err
	}
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	header := `<?xml version='1.0'?><stream:stream xmlns="jabber:client" xmlns:stream="http://etherx.jabber.org/streams" to="` + boxDomain + `" version="1.0">`
	var rd *streamReader
	next := func(what string) (*Element, error) {
		el, err := rd.Next()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return el, nil
	}
	fail := func(err error) (*tls.Conn, *streamReader, error) { nc.Close(); return nil, nil, err }
	open := func(w net.Conn) error {
		io.WriteString(w, header)
		rd = newStreamReader(w, 1<<24, 64, nil)
		if _, err := rd.Header(); err != nil {
			return err
		}
		_, err := next("features")
		return err
	}
	if err := open(nc); err != nil {
		return fail(err)
	}
	io.WriteString(nc, `<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"/>`)
	if el, err := next("starttls"); err != nil {
		return fail(err)
	} else if el.Local != "proceed" {
		return fail(fmt.Errorf("starttls: %s", el))
	}
	cfg := &tls.Config{InsecureSkipVerify: true, ServerName: boxDomain, DynamicRecordSizingDisabled: true}
	if os.Getenv("MEMBENCH_CLASSIC") != "" {
		// A client offering no post-quantum key share: a ClientHello of
		// ~300 bytes rather than ~1.5 KB, which sizes the buffers
		// crypto/tls keeps for the connection's life.
		cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	tc := tls.Client(nc, cfg)
	if err := tc.Handshake(); err != nil {
		return fail(err)
	}
	if err := open(tc); err != nil {
		return fail(err)
	}
	auth := base64.StdEncoding.EncodeToString([]byte("\x00" + name + "\x00" + password(name)))
	io.WriteString(tc, `<auth xmlns="urn:ietf:params:xml:ns:xmpp-sasl" mechanism="PLAIN">`+auth+`</auth>`)
	if el, err := next("auth"); err != nil {
		return fail(err)
	} else if !el.Is(nsSASL, "success") {
		return fail(fmt.Errorf("PLAIN: %s", el))
	}
	if err := open(tc); err != nil {
		return fail(err)
	}
	io.WriteString(tc, `<iq type="set" id="bind"><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"><resource>chatbench</resource></bind></iq>`)
	if el, err := next("bind"); err != nil {
		return fail(err)
	} else if el.Get("type") != "result" {
		return fail(fmt.Errorf("bind: %s", el))
	}
	return tc, rd, nil
}

// TestIdleReaderWaitsAtSocket: a logged-in client's reader, once idle,
// has no goroutine (poll.go: it parked) or, where there is no epoll,
// waits for its next stanza at the socket (conn.waitInput: a small
// stack); and stanzas TLS already holds are not left waiting: a stanza
// sent in one record after another is answered at once, wherever the
// first ends relative to the reader's buffer.
func TestIdleReaderWaitsAtSocket(t *testing.T) {
	srv, _ := startInproc(t, Config{TLS: selfSignedTLS(t, boxDomain), StanzasPerSecond: 1e6, StanzaBurst: 1 << 20}, "alice")
	tc, rd, err := memClientLogin(srv.Addrs()[0], "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	deadline := time.Now().Add(waitLimit)
	for {
		var b strings.Builder
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		parked := false
		srv.mu.Lock()
		for c := range srv.conns {
			parked = parked || (c.pk != nil && c.pk.Parked())
		}
		srv.mu.Unlock()
		// Parked: the reader's goroutine ends (it may be unwinding now).
		if parked && !strings.Contains(b.String(), "xmpp.(*conn).streams") {
			break
		}
		if srv.poll == nil && strings.Contains(b.String(), "xmpp.(*conn).waitInput") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle client's reader neither parked nor waits in conn.waitInput:\n%s", b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	ping := func(id, pad string) string {
		return `<iq type="get" id="` + id + `"><ping xmlns="urn:xmpp:ping"/>` + pad + `</iq>`
	}
	base := len(ping("a", ""))
	for size := readBuffer - 40; size <= 2*readBuffer+40; size++ {
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(tc, ping("a", strings.Repeat(" ", size-base))+ping("b", "")); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"a", "b"} {
			el, err := rd.Next()
			if err != nil {
				t.Fatalf("first stanza %d bytes: the answer to %s: %v", size, id, err)
			}
			if el.Get("id") != id || el.Get("type") != "result" {
				t.Fatalf("first stanza %d bytes: %s, want the result of %s", size, el, id)
			}
		}
	}
}

// TestKeepaliveFromSocketWait: a client idle past PingInterval is pinged
// (its reader waited at the socket, conn.waitInput), stays connected
// when it answers, and is cut with connection-timeout when it does not.
func TestKeepaliveFromSocketWait(t *testing.T) {
	srv, _ := startInproc(t, Config{TLS: selfSignedTLS(t, boxDomain), PingInterval: 300 * time.Millisecond, PingTimeout: 300 * time.Millisecond}, "alice")
	tc, rd, err := memClientLogin(srv.Addrs()[0], "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	tc.SetDeadline(time.Now().Add(waitLimit))
	for i := range 2 {
		el, err := rd.Next()
		if err != nil || !el.Is(nsClient, "iq") || el.Child("urn:xmpp:ping", "ping") == nil {
			t.Fatalf("ping %d: %v %v", i, el, err)
		}
		io.WriteString(tc, `<iq type="result" id="`+el.Get("id")+`"/>`)
	}
	el, err := rd.Next() // the third ping, not answered
	if err != nil || el.Child("urn:xmpp:ping", "ping") == nil {
		t.Fatalf("third ping: %v %v", el, err)
	}
	el, err = rd.Next()
	if err != nil || !el.Is(nsStream, "error") || el.Child(nsStreamErr, "connection-timeout") == nil {
		t.Fatalf("after an unanswered ping: %v %v", el, err)
	}
}

// TestParkedClientEndsOnServerClose: a bound client whose reader parked
// (poll.go) and that the server then ends — here a new connection takes
// its resource (conflict) — gets the stream error and the close, and its
// connection leaves the server's tables: the close resumed the reader,
// which ended the connection.
func TestParkedClientEndsOnServerClose(t *testing.T) {
	srv, _ := startInproc(t, Config{TLS: selfSignedTLS(t, boxDomain)}, "alice")
	if srv.poll == nil {
		t.Skip("no epoll here: readers do not park")
	}
	old, oldRd, err := memClientLogin(srv.Addrs()[0], "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	conns := func() (n int, parked bool) {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		for c := range srv.conns {
			parked = parked || (c.pk != nil && c.pk.Parked())
		}
		return len(srv.conns), parked
	}
	deadline := time.Now().Add(waitLimit)
	for _, parked := conns(); !parked; _, parked = conns() {
		if time.Now().After(deadline) {
			t.Fatal("the idle client's reader did not park")
		}
		time.Sleep(10 * time.Millisecond)
	}
	replacement, _, err := memClientLogin(srv.Addrs()[0], "alice") // same resource
	if err != nil {
		t.Fatal(err)
	}
	defer replacement.Close()
	old.SetDeadline(time.Now().Add(waitLimit))
	sawConflict := false
	for {
		el, err := oldRd.Next()
		if err != nil {
			break // the end of the stream, then of the connection
		}
		if el.Local == "error" && el.Child("urn:ietf:params:xml:ns:xmpp-streams", "conflict") != nil {
			sawConflict = true
		}
	}
	if !sawConflict {
		t.Fatal("the replaced client got no <conflict/> stream error")
	}
	for n, _ := conns(); n != 1; n, _ = conns() {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still in the server's table, want the replacement's only", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
