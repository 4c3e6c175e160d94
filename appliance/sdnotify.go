package appliance

// The service manager's notify protocol, as systemd documents it in
// sd_notify(3) and sd_watchdog_enabled(3): one datagram of KEY=VALUE
// lines sent to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an
// abstract socket when it starts with "@"). chatbox sends READY=1 once
// every service is up, STATUS= with the box's state, WATCHDOG=1 at half
// the interval $WATCHDOG_USEC asks for (only when $WATCHDOG_PID is unset
// or names this process), and STOPPING=1 when a signal asks it to stop. Left out:
// file descriptor passing (FDSTORE), RELOADING=1 (chatbox has no reload),
// MAINPID, EXTEND_TIMEOUT_USEC and the vsock addresses of VMs. Without
// $NOTIFY_SOCKET nothing is sent.

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Notifier sends notifications to the service manager that started this
// process. A nil *Notifier sends nothing.
type Notifier struct {
	addr     *net.UnixAddr
	watchdog time.Duration // 0: the manager wants no pings
}

// NotifierFromEnv reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID
// through getenv (os.Getenv) for the process pid (os.Getpid()). It returns
// nil and no error when no service manager listens.
func NotifierFromEnv(getenv func(string) string, pid int) (*Notifier, error) {
	sock := getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil, nil
	}
	switch {
	case strings.HasPrefix(sock, "@"):
		sock = "\x00" + sock[1:]
	case strings.HasPrefix(sock, "/"):
	default:
		return nil, fmt.Errorf("NOTIFY_SOCKET=%q is neither a path nor an abstract socket (@name); unset it to run without a service manager", sock)
	}
	n := &Notifier{addr: &net.UnixAddr{Name: sock, Net: "unixgram"}}
	if us := getenv("WATCHDOG_USEC"); us != "" {
		v, err := strconv.ParseUint(us, 10, 63)
		if err != nil || v == 0 {
			return nil, fmt.Errorf("WATCHDOG_USEC=%q is not a positive number of microseconds; fix WatchdogSec= in the unit", us)
		}
		forUs := true
		if p := getenv("WATCHDOG_PID"); p != "" {
			forUs = p == strconv.Itoa(pid)
		}
		if forUs {
			n.watchdog = time.Duration(v) * time.Microsecond
		}
	}
	return n, nil
}

// Watchdog is the interval within which the manager expects a WATCHDOG=1
// ping; 0 when it expects none.
func (n *Notifier) Watchdog() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// Send sends one notification, such as "READY=1".
func (n *Notifier) Send(state string) error {
	if n == nil {
		return nil
	}
	what, _, _ := strings.Cut(state, "=")
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("notify the service manager of %s (NOTIFY_SOCKET): %w", what, err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("notify the service manager of %s (NOTIFY_SOCKET): %w", what, err)
	}
	return nil
}

// stateSource is what ServeNotify watches: the box (or its hub in tests).
type stateSource interface {
	State() State
	Subscribe(buffer int) (<-chan Event, func())
}

// ServeNotify tells the service manager about the box's state until ctx
// is done: READY=1 when the box first reaches ready (or degraded, or
// pairing: it serves), STATUS= on every change, and WATCHDOG=1 pings, each
// after reading the box's state (which takes its lock: a wedged box stops
// the pings and the manager restarts it). Pings go on while the box shuts
// down; STOPPING=1 is the caller's (a factory reset stops the box and
// starts a new one in the same process). Errors sending go to onErr, once
// per kind of notification: the manager may simply not listen.
func ServeNotify(ctx context.Context, box stateSource, n *Notifier, onErr func(error)) {
	if n == nil {
		return
	}
	events, stop := box.Subscribe(16)
	defer stop()
	var tick <-chan time.Time
	if w := n.Watchdog(); w > 0 {
		t := time.NewTicker(w / 2)
		defer t.Stop()
		tick = t.C
	}
	ready := false
	last := State("")
	failed := map[string]bool{}
	send := func(s string) {
		if err := n.Send(s); err != nil {
			key, _, _ := strings.Cut(s, "=")
			if !failed[key] {
				failed[key] = true
				onErr(err)
			}
		}
	}
	check := func() {
		st := box.State()
		if st == last {
			return
		}
		last = st
		if !ready && (st == StateReady || st == StateDegraded || st == StatePairing) {
			ready = true
			send("READY=1\nSTATUS=" + string(st))
			return
		}
		send("STATUS=" + string(st))
	}
	check()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			check()
		case <-tick:
			check()
			send("WATCHDOG=1")
		}
	}
}
