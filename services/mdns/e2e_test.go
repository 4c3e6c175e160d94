package mdns

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/grandcat/zeroconf"
	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
)

// The end-to-end test re-executes the test binary in two network
// namespaces joined by a veth pair: one runs the Service (helper mode
// "respond"), the other zeroconf's own browser plus a packet watcher
// (helper mode "browse").
const helperEnv = "CHATBOX_MDNS_E2E"

var e2eAnns = []Announcement{
	{ServiceIRCTLS, 6697}, {ServiceIRC, 6667}, {ServiceXMPPClient, 5222},
	{ServiceXMPPSTLS, 5223}, {ServiceXMPPServer, 5269}, {ServiceHTTP, 8080}, {ServiceHTTPS, 8443},
}

const (
	e2eInstance = "E2E Box"
	e2eHost     = "e2ebox"
	e2eAddr1    = "10.99.0.1"
	e2eAddr2    = "10.99.0.2"
	hostQueryID = 0x4242
)

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "respond":
		os.Exit(helperRespond())
	case "browse":
		os.Exit(helperBrowse())
	case "lookup":
		os.Exit(helperLookup())
	}
	os.Exit(m.Run())
}

func helperRespond() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	svc := New(Config{
		Instance: e2eInstance, Host: e2eHost, Domain: "e2e.example", Version: "9.9",
		Announcements: e2eAnns, RegistrationOpen: func() bool { return true },
		Log:           slog.New(slog.NewTextHandler(os.Stderr, nil)),
		InterfacePoll: 2 * time.Second,
	})
	if err := svc.Serve(ctx, func() {}); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		return 1
	}
	return 0
}

func helperBrowse() int {
	ifc, err := net.InterfaceByName(os.Getenv(helperEnv + "_IF"))
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	var out sync.Mutex
	say := func(f string, a ...any) {
		out.Lock()
		fmt.Printf(f+"\n", a...)
		out.Unlock()
	}
	// The watcher: every mDNS packet on the link, for goodbyes, the host
	// name's A record and any loopback address.
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(224, 0, 0, 0), Port: 5353})
	if err != nil {
		say("ERROR %v", err)
		return 1
	}
	pc := ipv4.NewPacketConn(l)
	if err := pc.JoinGroup(ifc, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251)}); err != nil {
		say("ERROR join %v", err)
		return 1
	}
	var watchGoodbyes atomic.Bool
	go func() { // the test writes a line when the responder is stopped
		bufio.NewReader(os.Stdin).ReadString('\n')
		watchGoodbyes.Store(true)
		say("WATCHING")
	}()
	hostSeen := make(chan struct{})
	go func() {
		buf := make([]byte, 9000)
		seenHost, seenBye := false, map[string]bool{}
		for {
			n, _, err := l.ReadFromUDP(buf)
			if err != nil {
				return
			}
			var m dns.Msg
			if m.Unpack(buf[:n]) != nil || !m.Response {
				continue
			}
			for i, rr := range append(append(m.Answer, m.Ns...), m.Extra...) {
				switch rr := rr.(type) {
				case *dns.A:
					if rr.A.IsLoopback() {
						say("LOOPBACK %s", rr.A)
					}
					// Only an answer to our own question (its ID) counts:
					// zeroconf puts the same A records in its service
					// answers, but never answers this question.
					if m.Id == hostQueryID && i < len(m.Answer) &&
						rr.Hdr.Name == e2eHost+".local." && rr.Hdr.Ttl > 0 && !seenHost {
						seenHost = true
						say("HOST %s", rr.A)
						close(hostSeen)
					}
				case *dns.PTR:
					if rr.Hdr.Ttl == 0 && watchGoodbyes.Load() && !seenBye[rr.Hdr.Name] {
						seenBye[rr.Hdr.Name] = true
						say("GOODBYE %s %s", strings.TrimSuffix(rr.Hdr.Name, ".local."), rr.Ptr)
					}
				}
			}
		}
	}()

	// zeroconf's browser, one resolver per service type.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	found := make(chan string, 64)
	for _, a := range e2eAnns {
		r, err := zeroconf.NewResolver(zeroconf.SelectIfaces([]net.Interface{*ifc}), zeroconf.SelectIPTraffic(zeroconf.IPv4))
		if err != nil {
			say("ERROR resolver %v", err)
			return 1
		}
		entries := make(chan *zeroconf.ServiceEntry, 8)
		if err := r.Browse(ctx, a.Service, "local.", entries); err != nil {
			say("ERROR browse %v", err)
			return 1
		}
		go func() {
			for e := range entries {
				var ips []string
				for _, ip := range e.AddrIPv4 {
					ips = append(ips, ip.String())
				}
				found <- fmt.Sprintf("FOUND %s %q %s %d %s %s", e.Service, e.Instance, e.HostName, e.Port,
					strings.Join(ips, ","), strings.Join(e.Text, "|"))
			}
		}()
	}
	seen := map[string]bool{}
	for len(seen) < len(e2eAnns) {
		select {
		case f := <-found:
			seen[strings.Fields(f)[1]] = true
			say("%s", f)
		case <-ctx.Done():
			say("TIMEOUT browsing")
			return 1
		}
	}
	say("ALLFOUND")

	// The host name: ask A e2ebox.local. until the watcher sees an answer.
	q := new(dns.Msg)
	q.SetQuestion(e2eHost+".local.", dns.TypeA)
	q.RecursionDesired = false
	q.Id = hostQueryID
	qb, _ := q.Pack()
	for done := false; !done; {
		pc.WriteTo(qb, &ipv4.ControlMessage{IfIndex: ifc.Index}, &net.UDPAddr{IP: net.IPv4(224, 0, 0, 251), Port: 5353})
		select {
		case <-hostSeen:
			done = true
		case <-time.After(time.Second):
		case <-ctx.Done():
			say("TIMEOUT host")
			return 1
		}
	}
	<-ctx.Done() // the test kills us
	return 0
}

func TestEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("end-to-end mDNS test needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("end-to-end mDNS test needs iproute2's ip")
	}
	if testing.Short() {
		t.Skip("short")
	}
	sfx := strconv.Itoa(os.Getpid())
	ns1, ns2 := "cbmdns1-"+sfx, "cbmdns2-"+sfx
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// A machine where namespaces cannot be made (a container without
	// CAP_SYS_ADMIN) cannot run this test: say so rather than fail.
	if out, err := exec.Command("ip", "netns", "add", ns1).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here: %v: %s", err, out)
	}
	exec.Command("ip", "netns", "del", ns1).Run()
	for _, ns := range []string{ns1, ns2} {
		run("netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		// IPv4 only: a link-local IPv6 address appearing after DAD would
		// (rightly) make the responder re-announce mid-test.
		exec.Command("ip", "netns", "exec", ns, "sh", "-c",
			"echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6").Run()
	}
	run("link", "add", "cbm1", "netns", ns1, "type", "veth", "peer", "name", "cbm2", "netns", ns2)
	run("-n", ns1, "addr", "add", e2eAddr1+"/24", "dev", "cbm1")
	run("-n", ns2, "addr", "add", e2eAddr2+"/24", "dev", "cbm2")
	run("-n", ns1, "link", "set", "cbm1", "up")
	run("-n", ns2, "link", "set", "cbm2", "up")
	run("-n", ns1, "link", "set", "lo", "up")
	run("-n", ns2, "link", "set", "lo", "up")

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logw := &testWriter{t: t}

	resp := exec.Command("ip", "netns", "exec", ns1, self, "-test.run=^$")
	resp.Env = append(os.Environ(), helperEnv+"=respond")
	resp.Stdout, resp.Stderr = logw, logw
	if err := resp.Start(); err != nil {
		t.Fatal(err)
	}
	respDone := make(chan error, 1)
	go func() { respDone <- resp.Wait() }()
	t.Cleanup(func() {
		resp.Process.Kill()
		<-respDone
	})

	br := exec.Command("ip", "netns", "exec", ns2, self, "-test.run=^$")
	br.Env = append(os.Environ(), helperEnv+"=browse", helperEnv+"_IF=cbm2")
	br.Stderr = logw
	brIn, _ := br.StdinPipe()
	brOut, _ := br.StdoutPipe()
	if err := br.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		br.Process.Kill()
		br.Wait()
	})
	lines := make(chan string, 128)
	go func() {
		sc := bufio.NewScanner(brOut)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	next := func(what string) string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("browser ended while waiting for %s", what)
			}
			t.Logf("browser: %s", l)
			if strings.HasPrefix(l, "LOOPBACK") || strings.HasPrefix(l, "ERROR") || strings.HasPrefix(l, "TIMEOUT") {
				t.Fatalf("browser: %s", l)
			}
			return l
		case <-time.After(60 * time.Second):
			t.Fatalf("no %s from the browser within 60 s", what)
			return ""
		}
	}

	// Every service found, with its port, TXT and the responder's address.
	found := map[string]string{}
	for l := next("services"); l != "ALLFOUND"; l = next("services") {
		if strings.HasPrefix(l, "FOUND ") {
			found[strings.Fields(l)[1]] = l
		}
	}
	for _, a := range e2eAnns {
		l, ok := found[a.Service]
		if !ok {
			t.Errorf("%s not found", a.Service)
			continue
		}
		f := strings.Fields(l)
		// zeroconf's browser reports the instance in DNS presentation
		// form (E2E\ Box); on the wire it is the label "E2E Box".
		if !strings.Contains(l, `"E2E Box"`) && !strings.Contains(l, `"E2E\\ Box"`) {
			t.Errorf("%s: instance not E2E Box: %s", a.Service, l)
		}
		n := len(f)
		host, port, ips, txt := f[n-4], f[n-3], f[n-2], strings.Split(f[n-1], "|")
		if host != e2eHost+".local." {
			t.Errorf("%s: host %s", a.Service, host)
		}
		if port != strconv.Itoa(a.Port) {
			t.Errorf("%s: port %s, want %d", a.Service, port, a.Port)
		}
		if ips != e2eAddr1 {
			t.Errorf("%s: addresses %s, want %s", a.Service, ips, e2eAddr1)
		}
		want := txtFor(a.Service, "e2e.example", "9.9", true)
		if !slices.Equal(txt, want) {
			t.Errorf("%s: TXT %v, want %v", a.Service, txt, want)
		}
	}
	// The host name answers with the responder's own address.
	for l := next("host"); ; l = next("host") {
		if strings.HasPrefix(l, "HOST ") {
			if got := strings.TrimPrefix(l, "HOST "); got != e2eAddr1 {
				t.Errorf("%s.local is %s, want %s", e2eHost, got, e2eAddr1)
			}
			break
		}
	}

	// Stop the responder: every service says goodbye.
	fmt.Fprintln(brIn, "watch")
	for l := next("watching"); l != "WATCHING"; l = next("watching") {
	}
	resp.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-respDone:
		respDone <- err
		if err != nil {
			t.Errorf("responder exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("responder did not stop within 30 s")
	}
	byes := map[string]bool{}
	for len(byes) < len(e2eAnns) {
		l := next("goodbyes")
		if f := strings.SplitN(l, " ", 3); len(f) == 3 && f[0] == "GOODBYE" && f[1] != "_services._dns-sd._udp" {
			byes[f[1]] = true
			if !strings.HasPrefix(f[2], `E2E\ Box.`) && !strings.HasPrefix(f[2], "E2E Box.") {
				t.Errorf("goodbye for %s", f[2])
			}
		}
	}
	for _, a := range e2eAnns {
		if !byes[a.Service] {
			t.Errorf("no goodbye for %s", a.Service)
		}
	}
}

type testWriter struct {
	t  *testing.T
	mu sync.Mutex
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(l)
	}
	return len(p), nil
}

var _ io.Writer = (*testWriter)(nil)
