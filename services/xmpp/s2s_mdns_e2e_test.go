//go:build linux

package xmpp

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"chatbox/internal/testbox"
)

// LAN discovery end to end: two real boxes, a.local and b.local, each in
// a network namespace this test makes, joined by a veth pair, with no
// host map: each finds the other by mDNS (DNS-SD _xmpp-server._tcp, which
// each box announces) and they exchange messages. The allowlist names the
// other box, so that this test is about discovery (trust on first
// contact is TestFederationFirstContactE2E). Clients reach each box from
// inside its namespace. Root only (network namespaces); skipped
// elsewhere.

// netnsPair makes two namespaces joined by veth (first 10.98.0.1, second
// 10.98.0.2), removed when the test ends.
func netnsPair(t *testing.T) (string, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	if testing.Short() {
		t.Skip("short")
	}
	sfx := strconv.Itoa(os.Getpid())
	ns1, ns2 := "cbfa-"+sfx, "cbfb-"+sfx
	if out, err := exec.Command("ip", "netns", "add", ns1).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here: %v: %s", err, out)
	}
	exec.Command("ip", "netns", "del", ns1).Run()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{ns1, ns2} {
		run("netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		// IPv4 only: an IPv6 address appearing after DAD would make the
		// announcer start over mid-test.
		exec.Command("ip", "netns", "exec", ns, "sh", "-c",
			"echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6").Run()
	}
	run("link", "add", "cbf1", "netns", ns1, "type", "veth", "peer", "name", "cbf2", "netns", ns2)
	run("-n", ns1, "addr", "add", "10.98.0.1/24", "dev", "cbf1")
	run("-n", ns2, "addr", "add", "10.98.0.2/24", "dev", "cbf2")
	for _, l := range [][2]string{{ns1, "cbf1"}, {ns2, "cbf2"}, {ns1, "lo"}, {ns2, "lo"}} {
		run("-n", l[0], "link", "set", l[1], "up")
	}
	return ns1, ns2
}

// dialIn connects from inside the network namespace ns: on a thread of
// its own, which ends with the goroutine (it is never unlocked, so no
// other goroutine runs in that namespace).
func dialIn(ns string) func(network, addr string, timeout time.Duration) (net.Conn, error) {
	return func(network, addr string, timeout time.Duration) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		done := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			f, err := os.Open("/var/run/netns/" + ns)
			if err != nil {
				done <- result{nil, err}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				done <- result{nil, fmt.Errorf("setns %s: %w", ns, err)}
				return
			}
			c, err := net.DialTimeout(network, addr, timeout)
			done <- result{c, err}
		}()
		r := <-done
		return r.c, r.err
	}
}

func TestFederationMDNSDiscovery(t *testing.T) {
	testbox.Skip(t, chatboxBin)
	ns1, ns2 := netnsPair(t)
	start := func(ns, domain, other, name, account string) *box {
		t.Helper()
		// The binary run inside the namespace ("ip netns exec" execs it:
		// the signals of the harness reach chatbox itself).
		wrap := filepath.Join(t.TempDir(), "chatbox-in-"+ns)
		script := "#!/bin/sh\nexec ip netns exec " + ns + " " + chatboxBin + ` "$@"` + "\n"
		if err := os.WriteFile(wrap, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		data := filepath.Join(t.TempDir(), domain)
		b := &box{Proc: testbox.New(wrap, data), data: data, domain: domain, dial: dialIn(ns)}
		b.cli(t, password(account)+"\n", "user", "add", account)
		args := []string{
			"--set", "domain=" + domain,
			"--set", "name=" + name,
			"--set", "irc.plain_listen=[]",
			"--set", "irc.tls_listen=[]",
			"--set", "xmpp.listen=127.0.0.1:0",
			"--set", "xmpp.tls_listen=[]",
			"--set", "web.listen=",
			"--set", "upload.listen=[]",
			"--set", "calls.listen=[]",
			"--set", "log.level=debug",
			"--set", "federation.enabled=true",
			"--set", "federation.listen=0.0.0.0:5269",
			"--set", "federation.allow=" + other,
		}
		b.Start(t, args, func(line string) {
			if m := listenRe.FindStringSubmatch(line); m != nil && m[3] == "c2s-starttls" {
				b.xmppAddr = m[2]
			}
		})
		b.ca = b.CA(t)
		return b
	}
	a := start(ns1, "a.local", "b.local", "Box A", "alice")
	b := start(ns2, "b.local", "a.local", "Box B", "bob")
	alice, bob := a.login(t, "alice", "phone"), b.login(t, "bob", "phone")
	alice.send(`<message to="bob@b.local" type="chat" id="m1"><body>found you on the LAN</body></message>`)
	if m := bob.expect("alice's message", isMsg("found you on the LAN")); m.Get("from") != alice.jid {
		t.Fatalf("bob got %s", m)
	}
	bob.send(`<message to="%s" type="chat" id="m2"><body>and I you</body></message>`, alice.jid)
	alice.expect("bob's answer", isMsg("and I you"))
	// a found b's server at b's address on the veth, by mDNS; b's
	// dialback check found a's the same way.
	a.waitLog(t, 0, "LAN peer found by mDNS", "peer=b.local", "addrs=10.98.0.2:5269")
	b.waitLog(t, 0, "LAN peer found by mDNS", "peer=a.local", "addrs=10.98.0.1:5269")
	b.waitLog(t, 0, "incoming stream authenticated", "peer=a.local", "addr=10.98.0.1")
}
