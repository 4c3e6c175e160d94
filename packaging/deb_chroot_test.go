package packaging

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"chatbox/appliance"
)

// The throw-away Debian root: debootstrap's download (--make-tarball) and
// the installed minimal system are cached here (git-ignored), so only the
// first run pays for debootstrap (about 7 minutes on a 2-core machine).
const (
	cacheDir   = ".cache"
	debSuite   = "bookworm"
	baseTarGz  = cacheDir + "/" + debSuite + "-minbase-debs.tgz"
	rootTarGz  = cacheDir + "/" + debSuite + "-minbase-root.tar.gz"
	helperEnv  = "CHATBOX_DEBTEST_PROBE"
	optInEnv   = "CHATBOX_DEB_TEST"
	probeLimit = 30 * time.Second
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(helperEnv); addr != "" {
		// Run inside the test's network namespace: does chatbox answer?
		if err := probe(addr); err != nil {
			fmt.Fprintln(os.Stderr, "probe:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// probe checks that IRC (plain text on 127.0.0.1:6667) welcomes a client
// and that XMPP (127.0.0.1:5222) opens a stream for domain and offers
// STARTTLS. addr is the XMPP domain.
func probe(domain string) error {
	deadline := time.Now().Add(probeLimit)
	irc, err := net.DialTimeout("tcp", "127.0.0.1:6667", probeLimit)
	if err != nil {
		return fmt.Errorf("IRC: %w", err)
	}
	defer irc.Close()
	irc.SetDeadline(deadline)
	fmt.Fprintf(irc, "NICK probe\r\nUSER probe 0 * :probe\r\n")
	sc := bufio.NewScanner(irc)
	welcomed := false
	for i := 0; i < 100 && !welcomed && sc.Scan(); i++ {
		f := strings.Fields(sc.Text())
		welcomed = len(f) > 2 && f[1] == "001" && f[2] == "probe"
	}
	if !welcomed {
		return fmt.Errorf("IRC: no 001 welcome (%v)", sc.Err())
	}
	fmt.Fprintf(irc, "QUIT :bye\r\n")

	x, err := net.DialTimeout("tcp", "127.0.0.1:5222", probeLimit)
	if err != nil {
		return fmt.Errorf("XMPP: %w", err)
	}
	defer x.Close()
	x.SetDeadline(deadline)
	fmt.Fprintf(x, "<?xml version='1.0'?><stream:stream to='%s' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>", domain)
	buf := make([]byte, 0, 8192)
	for len(buf) < cap(buf) {
		n, err := x.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if strings.Contains(string(buf), "</stream:features>") {
			break
		}
		if err != nil {
			return fmt.Errorf("XMPP: %w after %q", err, buf)
		}
	}
	s := string(buf)
	if !strings.Contains(s, "from='"+domain+"'") && !strings.Contains(s, `from="`+domain+`"`) || !strings.Contains(s, "<starttls") {
		return fmt.Errorf("XMPP: no stream with STARTTLS from %s: %q", domain, s)
	}
	fmt.Fprint(x, "</stream:stream>")
	return nil
}

// run runs a command and fails the test with its output if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// debianMirror is the Debian mirror apt uses on this machine.
func debianMirror() string {
	for _, f := range []string{"/etc/apt/sources.list", "/etc/apt/sources.list.d/debian.sources"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, re := range []string{`(?m)^URIs:\s*(\S+/debian)\s*$`, `(?m)^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s+` + debSuite + `\s`} {
			if m := regexp.MustCompile(re).FindStringSubmatch(string(b)); m != nil {
				return m[1]
			}
		}
	}
	return "http://deb.debian.org/debian"
}

// debianRoot unpacks a minimal Debian into a new temporary folder and
// returns it; the first call makes the cache.
func debianRoot(t *testing.T) string {
	t.Helper()
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(rootTarGz); err != nil {
		if _, err := os.Stat(baseTarGz); err != nil {
			start := time.Now()
			tmp := baseTarGz + ".part"
			os.Remove(tmp)
			work := t.TempDir()
			run(t, "debootstrap", "--variant=minbase", "--make-tarball="+tmp, debSuite, filepath.Join(work, "r"), debianMirror())
			if err := os.Rename(tmp, baseTarGz); err != nil {
				t.Fatal(err)
			}
			t.Logf("debootstrap --make-tarball (download): %v", time.Since(start).Round(time.Second))
		}
		start := time.Now()
		root := t.TempDir()
		base, _ := filepath.Abs(baseTarGz)
		run(t, "debootstrap", "--variant=minbase", "--unpack-tarball="+base, debSuite, root, debianMirror())
		tmp := rootTarGz + ".part"
		run(t, "tar", "-C", root, "--numeric-owner", "-czf", tmp, ".")
		if err := os.Rename(tmp, rootTarGz); err != nil {
			t.Fatal(err)
		}
		t.Logf("debootstrap --unpack-tarball (install): %v", time.Since(start).Round(time.Second))
	}
	start := time.Now()
	root := t.TempDir()
	run(t, "tar", "-C", root, "--numeric-owner", "-xzf", rootTarGz)
	t.Logf("Debian root unpacked from the cache in %v", time.Since(start).Round(100*time.Millisecond))
	return root
}

// TestDebInstall installs the amd64 package into a throw-away Debian
// (bookworm) root, checks what it put where and who owns it, starts
// chatbox as systemd would (the unit's ExecStart, its user, umask and
// environment, NOTIFY_SOCKET included) in a network namespace of its own,
// waits for READY=1, checks IRC and XMPP answer there, stops it with
// SIGTERM (STOPPING=1, exit 0) and purges the package. Opt-in (make
// deb-test): debootstrap takes minutes the first time.
func TestDebInstall(t *testing.T) {
	if os.Getenv(optInEnv) == "" {
		t.Skipf("installs the package in a debootstrap root (minutes the first time): run make deb-test (sets %s=1)", optInEnv)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (chroot, debootstrap, network namespaces)")
	}
	for _, tool := range []string{"debootstrap", "ip", "tar", "chroot"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (apt-get install -y debootstrap iproute2)", tool)
		}
	}
	version := pkgVersion(t, false)
	deb := packageFile(t, "chatbox_"+version+"_amd64.deb", "deb")
	root := debianRoot(t)
	chroot := func(args ...string) string {
		t.Helper()
		return run(t, "chroot", append([]string{root}, args...)...)
	}

	// Install.
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "tmp/chatbox.deb"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	t.Logf("dpkg -i:\n%s", chroot("dpkg", "-i", "/tmp/chatbox.deb"))
	t.Logf("installed in %v", time.Since(start).Round(100*time.Millisecond))
	if got := chroot("dpkg-query", "-W", "-f=${Status} ${Version}", "chatbox"); got != "install ok installed "+version {
		t.Fatalf("dpkg-query: %q", got)
	}
	if got := chroot("dpkg-query", "-W", "-f=${Conffiles}", "chatbox"); !strings.HasPrefix(strings.TrimSpace(got), "/etc/chatbox/chatbox.toml ") {
		t.Errorf("conffiles: %q", got)
	}

	// The user and what it owns.
	pw := strings.Split(strings.TrimSpace(chroot("getent", "passwd", "chatbox")), ":")
	if len(pw) != 7 || pw[5] != "/var/lib/chatbox" || pw[6] != "/usr/sbin/nologin" {
		t.Fatalf("chatbox user: %q", pw)
	}
	var uid, gid int
	fmt.Sscan(pw[2], &uid)
	fmt.Sscan(pw[3], &gid)
	if uid == 0 || uid >= 1000 {
		t.Errorf("chatbox user has uid %d, want a system uid (1-999)", uid)
	}
	for path, want := range map[string]struct {
		mode     os.FileMode
		uid, gid int
	}{
		"/usr/bin/chatbox":                    {0o755, 0, 0},
		"/etc/chatbox":                        {os.ModeDir | 0o775, 0, gid},
		"/etc/chatbox/chatbox.toml":           {0o644, 0, 0},
		"/var/lib/chatbox":                    {os.ModeDir | 0o750, uid, gid},
		"/lib/systemd/system/chatbox.service": {0o644, 0, 0},
		"/usr/share/man/man1/chatbox.1.gz":    {0o644, 0, 0},
	} {
		fi, err := os.Lstat(filepath.Join(root, path))
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode() != want.mode || int(st.Uid) != want.uid || int(st.Gid) != want.gid {
			t.Errorf("%s: %v %d:%d, want %v %d:%d", path, fi.Mode(), st.Uid, st.Gid, want.mode, want.uid, want.gid)
		}
	}
	if got := chroot("/usr/bin/chatbox", "check-config", "/etc/chatbox/chatbox.toml"); !strings.Contains(got, ": ok") {
		t.Errorf("check-config: %q", got)
	}

	// Start it as the unit says.
	unit := readFile(t, filepath.Join(root, "lib/systemd/system/chatbox.service"))
	directive := func(key string) []string {
		var vals []string
		for _, m := range regexp.MustCompile(`(?m)^`+key+`=(.*)$`).FindAllStringSubmatch(unit, -1) {
			vals = append(vals, strings.TrimSpace(m[1]))
		}
		return vals
	}
	one := func(key string) string {
		v := directive(key)
		if len(v) != 1 {
			t.Fatalf("chatbox.service: %d %s= lines, want 1", len(v), key)
		}
		return v[0]
	}
	execStart, user, umask := one("ExecStart"), one("User"), one("UMask")
	var watchdog time.Duration
	if w, err := time.ParseDuration(one("WatchdogSec") + "s"); err == nil {
		watchdog = w
	}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8", "HOME=/var/lib/chatbox", "USER=" + user, "LOGNAME=" + user,
		"STATE_DIRECTORY=/var/lib/" + one("StateDirectory"),
		"NOTIFY_SOCKET=/run/chatbox-notify", fmt.Sprintf("WATCHDOG_USEC=%d", watchdog.Microseconds())}
	for _, e := range directive("Environment") {
		env = append(env, strings.Fields(e)...)
	}

	// systemd's notify socket, reachable from inside the root.
	notifyPath := filepath.Join(root, "run/chatbox-notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := os.Chmod(notifyPath, 0o777); err != nil {
		t.Fatal(err)
	}
	notes := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ln.Read(buf)
			if err != nil {
				close(notes)
				return
			}
			notes <- string(buf[:n])
		}
	}()
	waitNote := func(prefix string, within time.Duration) {
		t.Helper()
		timeout := time.After(within)
		for {
			select {
			case n, ok := <-notes:
				if !ok {
					t.Fatalf("notify socket closed before %s", prefix)
				}
				if strings.HasPrefix(n, prefix) {
					return
				}
			case <-timeout:
				t.Fatalf("no %s within %v", prefix, within)
			}
		}
	}

	// A network namespace of its own: lan = true listens on every
	// interface and announces over mDNS; here there is only loopback.
	ns := fmt.Sprintf("chatbox-debtest-%d", os.Getpid())
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")

	script := "umask " + umask + " && exec " + execStart
	cmd := exec.Command("ip", "netns", "exec", ns, "chroot", "--userspec="+user+":"+user, root, "/bin/sh", "-c", script)
	cmd.Env = env
	logPath := filepath.Join(t.TempDir(), "chatbox.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("chatbox's log:\n%s", readFile(t, logPath))
		}
	}()
	select {
	case err := <-exited:
		stopped = true
		t.Fatalf("chatbox exited before READY=1: %v", err)
	default:
	}
	waitNote("READY=1", 60*time.Second)
	t.Logf("READY=1 %v after start", time.Since(start).Round(10*time.Millisecond))

	// IRC and XMPP answer, from inside the namespace.
	cfg, err := appliance.Load(filepath.Join(root, "etc/chatbox/chatbox.toml"), nil, hostname())
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pr := exec.Command("ip", "netns", "exec", ns, self, "-test.run=^$")
	pr.Env = append(os.Environ(), helperEnv+"="+cfg.Domain)
	if out, err := pr.CombinedOutput(); err != nil {
		t.Fatalf("chatbox does not answer: %v\n%s", err, out)
	}

	// Its data went where the package said, owned by its user.
	fi, err := os.Stat(filepath.Join(root, "var/lib/chatbox/tls/ca.pem"))
	if err != nil {
		t.Fatalf("no certificate in /var/lib/chatbox: %v", err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid {
		t.Errorf("/var/lib/chatbox/tls/ca.pem belongs to uid %d, want chatbox (%d)", st.Uid, uid)
	}

	// Stop as systemd does.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitNote("STOPPING=1", 15*time.Second)
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Fatalf("chatbox did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second): // the unit's TimeoutStopSec
		t.Fatal("chatbox still running 15 s after SIGTERM")
	}
	if log := readFile(t, logPath); !strings.Contains(log, `msg="chatbox stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", log)
	}

	// Purge removes it all.
	t.Logf("dpkg --purge:\n%s", chroot("dpkg", "--purge", "chatbox"))
	for _, p := range []string{"/usr/bin/chatbox", "/etc/chatbox", "/var/lib/chatbox", "/lib/systemd/system/chatbox.service"} {
		if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after purge (%v)", p, err)
		}
	}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
