package mdns

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grandcat/zeroconf"
)

func TestEntryAddrs(t *testing.T) {
	entry := func(host string, port int, txt []string, ips ...string) *zeroconf.ServiceEntry {
		e := zeroconf.NewServiceEntry("box", ServiceXMPPServer, "local.")
		e.HostName, e.Port, e.Text = host, port, txt
		for _, s := range ips {
			ip := net.ParseIP(s)
			if ip.To4() != nil {
				e.AddrIPv4 = append(e.AddrIPv4, ip.To4())
			} else {
				e.AddrIPv6 = append(e.AddrIPv6, ip)
			}
		}
		return e
	}
	txtB := []string{"domain=b.local", "version=1", "registration=closed"}
	for _, c := range []struct {
		name   string
		e      *zeroconf.ServiceEntry
		domain string
		want   []string
	}{
		{"by TXT domain", entry("pi.local.", 5269, txtB, "10.0.0.2", "fd00::2"), "b.local", []string{"10.0.0.2:5269", "[fd00::2]:5269"}},
		{"subdomain", entry("pi.local.", 5269, txtB, "10.0.0.2"), "rooms.b.local", []string{"10.0.0.2:5269"}},
		{"other domain", entry("pi.local.", 5269, txtB, "10.0.0.2"), "c.local", nil},
		{"suffix is not a subdomain", entry("pi.local.", 5269, txtB, "10.0.0.2"), "xb.local", nil},
		{"by host name without TXT", entry("b.local.", 5270, nil, "10.0.0.3"), "b.local", []string{"10.0.0.3:5270"}},
		{"TXT wins over host name", entry("c.local.", 5269, txtB, "10.0.0.3"), "c.local", nil},
		{"no usable address", entry("pi.local.", 5269, txtB, "127.0.0.1", "fe80::1"), "b.local", nil},
		{"bad port", entry("pi.local.", 0, txtB, "10.0.0.2"), "b.local", nil},
		{"nil", nil, "b.local", nil},
	} {
		if got := entryAddrs(c.e, c.domain); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestLookupServerNoAnswer: with nobody announcing the domain, the lookup
// ends with ctx and says so.
func TestLookupServerNoAnswer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	addrs, err := LookupServer(ctx, "nobody-here.local", []string{"lo"})
	if err == nil || len(addrs) > 0 {
		t.Fatalf("LookupServer = %v, %v; want no address and an error", addrs, err)
	}
}

// helperLookup runs LookupServer in its namespace and prints the result.
func helperLookup() int {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	addrs, err := LookupServer(ctx, os.Getenv(helperEnv+"_DOMAIN"), []string{os.Getenv(helperEnv + "_IF")})
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	fmt.Println("FOUND", strings.Join(addrs, ","))
	return 0
}

// TestLookupServerEndToEnd: a Service announcing _xmpp-server._tcp in
// one network namespace is found by LookupServer in another, across a
// veth pair (root only; skipped elsewhere).
func TestLookupServerEndToEnd(t *testing.T) {
	ns1, ns2 := vethPair(t, "cbml")
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
	t.Cleanup(func() {
		resp.Process.Kill()
		resp.Wait()
	})
	for _, c := range []struct{ domain, want string }{
		{"e2e.example", e2eAddr1 + ":5269"},
		{"rooms.e2e.example", e2eAddr1 + ":5269"},
	} {
		lk := exec.Command("ip", "netns", "exec", ns2, self, "-test.run=^$")
		lk.Env = append(os.Environ(), helperEnv+"=lookup", helperEnv+"_IF=cbm2", helperEnv+"_DOMAIN="+c.domain)
		lk.Stderr = logw
		out, err := lk.Output()
		line, _, _ := strings.Cut(string(out), "\n")
		if err != nil || line != "FOUND "+c.want {
			t.Errorf("lookup %s: %q (%v), want FOUND %s", c.domain, out, err, c.want)
		}
	}
}

// vethPair makes two network namespaces joined by a veth pair (cbm1 with
// e2eAddr1 in the first, cbm2 with e2eAddr2 in the second), removed when
// the test ends; it skips the test where that cannot be done.
func vethPair(t *testing.T, prefix string) (string, string) {
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
	ns1, ns2 := prefix+"1-"+sfx, prefix+"2-"+sfx
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
		exec.Command("ip", "netns", "exec", ns, "sh", "-c",
			"echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6").Run()
	}
	run("link", "add", "cbm1", "netns", ns1, "type", "veth", "peer", "name", "cbm2", "netns", ns2)
	run("-n", ns1, "addr", "add", e2eAddr1+"/24", "dev", "cbm1")
	run("-n", ns2, "addr", "add", e2eAddr2+"/24", "dev", "cbm2")
	for _, l := range [][2]string{{ns1, "cbm1"}, {ns2, "cbm2"}, {ns1, "lo"}, {ns2, "lo"}} {
		run("-n", l[0], "link", "set", l[1], "up")
	}
	return ns1, ns2
}
