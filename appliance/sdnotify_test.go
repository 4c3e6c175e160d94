package appliance

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// notifySocket listens like systemd does: a unixgram socket whose
// datagrams the test reads.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	got := make(chan string, 64)
	go func() {
		defer close(got)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	return path, got
}

func next(t *testing.T, got <-chan string) string {
	t.Helper()
	select {
	case m := <-got:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10 s")
		return ""
	}
}

// expect reads notifications until one equals want, skipping watchdog
// pings (their timing is not the subject).
func expect(t *testing.T, got <-chan string, want string) {
	t.Helper()
	for range 100 {
		m := next(t, got)
		if m == want {
			return
		}
		if m != "WATCHDOG=1" {
			t.Fatalf("got notification %q, want %q", m, want)
		}
	}
	t.Fatalf("no %q among 100 notifications", want)
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestNotifierFromEnv(t *testing.T) {
	n, err := NotifierFromEnv(env(nil), 42)
	if n != nil || err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v, %v; want nil, nil", n, err)
	}
	if err := n.Send("READY=1"); err != nil || n.Watchdog() != 0 {
		t.Fatalf("a nil Notifier sent: %v, watchdog %v", err, n.Watchdog())
	}
	ServeNotify(context.Background(), newHub(time.Now), nil, func(err error) { t.Error(err) }) // returns at once

	for _, bad := range []map[string]string{
		{"NOTIFY_SOCKET": "relative/path"},
		{"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "soon"},
		{"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "0"},
	} {
		if _, err := NotifierFromEnv(env(bad), 42); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	n, err = NotifierFromEnv(env(map[string]string{"NOTIFY_SOCKET": "@abstract", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}), 42)
	if err != nil || n.addr.Name != "\x00abstract" || n.Watchdog() != 30*time.Second {
		t.Fatalf("abstract socket, our watchdog: %+v, %v", n, err)
	}
	n, err = NotifierFromEnv(env(map[string]string{"NOTIFY_SOCKET": "/run/n", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "7"}), 42)
	if err != nil || n.Watchdog() != 0 {
		t.Fatalf("another process's watchdog taken: %+v, %v", n, err)
	}
}

// TestServeNotify: READY=1 when the box is ready, STATUS= on changes,
// watchdog pings, over a real unixgram socket.
func TestServeNotify(t *testing.T) {
	path, got := notifySocket(t)
	n, err := NotifierFromEnv(env(map[string]string{"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"}), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	h := newHub(time.Now)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ServeNotify(ctx, h, n, func(err error) { t.Error(err) })
	}()
	expect(t, got, "STATUS=booting")
	h.setState(StateReady, "")
	expect(t, got, "READY=1\nSTATUS=ready")
	expect(t, got, "WATCHDOG=1")
	expect(t, got, "WATCHDOG=1")
	h.setState(StateDegraded, "irc")
	expect(t, got, "STATUS=degraded")
	h.setState(StateReady, "")
	expect(t, got, "STATUS=ready") // READY=1 only once
	h.setState(StateShuttingDown, "")
	expect(t, got, "STATUS=shutting-down")
	expect(t, got, "WATCHDOG=1") // pings go on while the services stop
	if err := n.Send("STOPPING=1"); err != nil {
		t.Fatal(err)
	}
	expect(t, got, "STOPPING=1")
	cancel()
	<-done
}

// TestServeNotifyUnreachable: a manager that does not listen is reported
// once, not at every ping, and the box goes on.
func TestServeNotifyUnreachable(t *testing.T) {
	dir := t.TempDir()
	n, err := NotifierFromEnv(env(map[string]string{"NOTIFY_SOCKET": filepath.Join(dir, "none"), "WATCHDOG_USEC": "2000"}), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	h := newHub(time.Now)
	errs := make(chan error, 100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ServeNotify(ctx, h, n, func(err error) { errs <- err })
	}()
	h.setState(StateReady, "")
	// Each kind of notification fails once, however many pings follow.
	var all []string
	for watchdog := false; !watchdog; {
		select {
		case err := <-errs:
			all = append(all, err.Error())
			watchdog = strings.Contains(err.Error(), "of WATCHDOG (NOTIFY_SOCKET)")
		case <-time.After(10 * time.Second):
			t.Fatalf("no failed watchdog ping reported within 10 s; errors: %q", all)
		}
	}
	// Let a few more pings fail (more or fewer does not change the verdict).
	<-time.After(20 * time.Millisecond)
	cancel()
	<-done
	close(errs)
	kinds := map[string]int{}
	for err := range errs {
		all = append(all, err.Error())
	}
	for _, e := range all {
		kind := strings.Fields(strings.TrimPrefix(e, "notify the service manager of "))[0]
		kinds[kind]++
		if kinds[kind] > 1 {
			t.Fatalf("%s reported twice: %q", kind, all)
		}
	}
	if kinds["READY"] != 1 {
		t.Fatalf("errors %q: want READY once", all)
	}
}
