// Command chatbench measures a running chatbox (or another server that
// speaks the same protocols) over loopback: N clients, some on IRC and
// some on XMPP, join one room; K of them send M messages each; every
// client records when each message reaches it. It reports the connect
// and join time, deliveries per second, the fan-out latency, errors and
// missing deliveries and, given the server's process id, its memory per
// connection, CPU time per delivery and disk bytes per stored message.
//
// It is a load tool for the box on the box: it refuses any address that
// is not loopback. See README.md, "Measuring", and scripts/bench-fanout.sh.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/term"
)

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "chatbench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, fmt.Errorf("--timeout %s reached", o.timeout))
	defer cancel()
	// The hard bound, should anything not heed the context.
	watchdog := time.AfterFunc(o.timeout+15*time.Second, func() {
		fmt.Fprintln(stderr, "chatbench: still running 15s past --timeout; exiting")
		os.Exit(3)
	})
	defer watchdog.Stop()

	if o.makeAccounts != "" {
		if err := makeAccounts(ctx, &o, stdout); err != nil {
			fmt.Fprintln(stderr, "chatbench:", err)
			return 1
		}
		return 0
	}

	var progress func(string)
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		progress = func(s string) { fmt.Fprintf(stderr, "\r\033[K%s", s) }
	}
	if o.seed != "" || o.startup != "" { // startup.go
		measure := seedStore
		if o.startup != "" {
			measure = measureStartup
		}
		if err := measure(ctx, &o, stdout, progress); err != nil {
			fmt.Fprintln(stderr, "chatbench:", err)
			return 1
		}
		return 0
	}
	rep, err := run(ctx, o, progress)
	if progress != nil {
		progress("")
	}
	if rep != nil {
		if o.json {
			b, _ := json.Marshal(rep)
			fmt.Fprintln(stdout, string(b))
		} else {
			rep.print(stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "chatbench:", err)
		return 1
	}
	return 0
}

// report is what a run measured; the JSON line's fields.
type report struct {
	IRCClients        int     `json:"irc_clients"`
	XMPPClients       int     `json:"xmpp_clients"`
	IRCSenders        int     `json:"irc_senders"`
	XMPPSenders       int     `json:"xmpp_senders"`
	MessagesPerSender int     `json:"messages_per_sender"`
	PaceMS            float64 `json:"pace_ms"`
	Room              string  `json:"room"`

	ConnectWallMS float64 `json:"connect_wall_ms"` // login_wall_ms + join_wall_ms
	LoginWallMS   float64 `json:"login_wall_ms"`   // every client connected and logged in
	JoinWallMS    float64 `json:"join_wall_ms"`    // then every client joined to the room
	// The tool's own CPU over each phase: on a small machine it competes
	// with the server for the same cores.
	ToolLoginCPUMS float64 `json:"tool_login_cpu_ms"`
	ToolJoinCPUMS  float64 `json:"tool_join_cpu_ms"`
	JoinP50MS      float64 `json:"join_p50_ms"` // one client's room join, join sent to joined
	JoinP99MS      float64 `json:"join_p99_ms"`
	JoinMaxMS      float64 `json:"join_max_ms"`

	MessagesSent       int64    `json:"messages_sent"`
	DeliveriesExpected int64    `json:"deliveries_expected"`
	Deliveries         int64    `json:"deliveries"`
	Missing            int64    `json:"missing"`
	Duplicates         int64    `json:"duplicates"`
	Errors             int64    `json:"errors"`
	ErrorSamples       []string `json:"error_samples,omitempty"`

	SendElapsedMS  float64 `json:"send_elapsed_ms"` // first send to last delivery
	DeliveriesPerS float64 `json:"deliveries_per_s"`
	LatencyP50MS   float64 `json:"latency_p50_ms"` // send to receipt, every delivery
	LatencyP99MS   float64 `json:"latency_p99_ms"`
	LatencyMaxMS   float64 `json:"latency_max_ms"`

	ToolCPUUSPerDelivery float64 `json:"tool_cpu_us_per_delivery"` // chatbench's own CPU over the send phase

	// With --pid.
	ServerRSSIdleKB        *int64   `json:"server_rss_idle_kb,omitempty"`
	ServerRSSJoinedKB      *int64   `json:"server_rss_joined_kb,omitempty"`
	RSSPerConnKB           *float64 `json:"rss_per_conn_kb,omitempty"`
	ServerRSSPeakKB        *int64   `json:"server_rss_peak_kb,omitempty"`   // VmHWM once joined: the joins' peak
	RSSPeakPerConnKB       *float64 `json:"rss_peak_per_conn_kb,omitempty"` // (peak - idle) / connections
	ServerLoginCPUMS       *float64 `json:"server_login_cpu_ms,omitempty"`  // over the logins (to settled)
	ServerJoinCPUMS        *float64 `json:"server_join_cpu_ms,omitempty"`   // over the joins (to settled)
	ServerCPUMS            *float64 `json:"server_cpu_ms,omitempty"`        // over the send phase
	CPUUSPerDelivery       *float64 `json:"cpu_us_per_delivery,omitempty"`
	DiskWriteBytes         *int64   `json:"disk_write_bytes,omitempty"`
	DiskBytesPerMessage    *float64 `json:"disk_bytes_per_message,omitempty"`
	Complete               bool     `json:"complete"`
	TimedOut               bool     `json:"timed_out,omitempty"`
	Interrupted            bool     `json:"interrupted,omitempty"`
	DeliveriesStoppedAfter string   `json:"deliveries_stopped_after,omitempty"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

func ptr[T any](v T) *T { return &v }

// run connects, sends, waits and measures. The report is nil only when
// nothing was measured (the clients could not all join).
func run(ctx context.Context, o options, progress func(string)) (*report, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, o.timeout, fmt.Errorf("--timeout %s reached", o.timeout))
	defer cancel()
	if o.xmppClients() > 0 {
		// One TLS configuration (the CA read and parsed once) for every
		// connection.
		cfg, err := tlsConfig(&o)
		if err != nil {
			return nil, err
		}
		o.tlsShared = cfg
	}
	var sayMu sync.Mutex
	say := func(format string, args ...any) {
		if progress != nil {
			sayMu.Lock()
			progress(fmt.Sprintf(format, args...))
			sayMu.Unlock()
		}
	}
	b := &bench{
		o:       o,
		runID:   strconv.FormatInt(time.Now().UnixNano(), 36),
		base:    time.Now(),
		hist:    newHistogram(),
		allDone: make(chan struct{}),
	}
	if o.xmppRegister {
		t0 := time.Now()
		if err := registerAll(ctx, &o, func(n int) { say("registered %d/%d", n, o.xmppClients()) }); err != nil {
			return nil, err
		}
		say("registered %d XMPP accounts in %s", o.xmppClients(), time.Since(t0).Round(time.Millisecond))
	}
	var idle procSample
	if o.pid > 0 {
		if err := b.warmUp(ctx); err != nil {
			return nil, err
		}
		say("warmed up with %d clients", min(o.warmup, o.clients))
		var err error
		if idle, err = settled(ctx, o.pid); err != nil {
			return nil, fmt.Errorf("--pid %d: %w", o.pid, err)
		}
		if err := saveSmaps(o, "idle"); err != nil {
			return nil, err
		}
	}

	// Connect and log in, then join.
	var joinedN atomic.Int64
	var loggedS procSample
	tool0 := selfCPU()
	var toolLogged, toolJoinStart time.Duration
	members, login, join, err := b.connectAll(ctx, func(n int) {
		joinedN.Store(int64(n))
		say("joined %d/%d", n, o.clients)
	}, func() error {
		toolLogged = selfCPU()
		say("logged in %d clients", o.clients)
		if o.pid > 0 {
			var err error
			if loggedS, err = settled(ctx, o.pid); err != nil {
				return fmt.Errorf("--pid %d: %w", o.pid, err)
			}
			if err := saveSmaps(o, "logged"); err != nil {
				return err
			}
		}
		toolJoinStart = selfCPU()
		return nil
	})
	toolJoined := selfCPU()
	if err != nil {
		return nil, err
	}
	defer b.closeAll(members)
	var joinedS procSample
	if o.pid > 0 {
		if joinedS, err = settled(ctx, o.pid); err != nil {
			return nil, fmt.Errorf("--pid %d: %w", o.pid, err)
		}
		if err := saveSmaps(o, "joined"); err != nil {
			return nil, err
		}
	}

	rep := &report{
		XMPPClients: o.xmppClients(), MessagesPerSender: o.messages, PaceMS: ms(o.pace), Room: o.room,
		LoginWallMS: ms(login), JoinWallMS: ms(join),
		ToolLoginCPUMS: ms(toolLogged - tool0), ToolJoinCPUMS: ms(toolJoined - toolJoinStart),
	}
	rep.ConnectWallMS = round(rep.LoginWallMS+rep.JoinWallMS, 3)
	if o.pid > 0 {
		rep.ServerLoginCPUMS = ptr(ms(loggedS.cpuSince(idle)))
		rep.ServerJoinCPUMS = ptr(ms(joinedS.cpuSince(loggedS)))
	}
	rep.IRCClients = o.clients - rep.XMPPClients
	joins := make([]time.Duration, len(members))
	for i, m := range members {
		joins[i] = m.joined
	}
	rep.JoinP50MS, rep.JoinP99MS, rep.JoinMaxMS = ms(percentile(joins, 50)), ms(percentile(joins, 99)), ms(percentile(joins, 100))

	// Who sends, and how many deliveries to expect.
	senders := make([]*member, o.senders)
	for s := range senders {
		senders[s] = members[o.senderIndex(s)]
		if senders[s].proto == "xmpp" {
			rep.XMPPSenders++
		} else {
			rep.IRCSenders++
		}
	}
	perReceiver := int64(o.senders) * int64(o.messages)
	want := int64(len(members)) * perReceiver
	for _, m := range senders {
		if !m.cl.echoes() {
			want -= int64(o.messages)
		}
	}
	b.want.Store(want)
	rep.DeliveriesExpected = want
	if want == 0 { // one IRC client without echo-message, sending to itself
		close(b.allDone)
	}

	// Send.
	cpu0, toolSend0 := joinedS, selfCPU()
	if o.pid > 0 {
		if cpu0, err = readProc(o.pid); err != nil {
			return nil, fmt.Errorf("--pid %d: %w", o.pid, err)
		}
	}
	var sent atomic.Int64
	sendStart := time.Now()
	var wg sync.WaitGroup
	for s, m := range senders {
		wg.Go(func() {
			for seq := range o.messages {
				if ctx.Err() != nil {
					return
				}
				if err := m.cl.send(seq, b.bodyFor(s, seq)); err != nil {
					if ctx.Err() == nil {
						b.fail("%s (%s): send: %v", m.account, m.proto, err)
					}
					return
				}
				sent.Add(1)
				if o.pace > 0 {
					select {
					case <-time.After(o.pace):
					case <-ctx.Done():
						return
					}
				}
			}
		})
	}
	sendersDone := make(chan struct{})
	go func() { wg.Wait(); close(sendersDone) }()

	// Wait for every delivery, for the run's end, or until deliveries
	// stop coming for --drain after the last send.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var quietSince time.Time
	lastTotal := int64(-1)
wait:
	for {
		select {
		case <-b.allDone:
			// The last delivery can come before its sender counted the
			// send: let the senders finish (they have nothing left to
			// wait for).
			select {
			case <-sendersDone:
			case <-ctx.Done():
			case <-time.After(10 * time.Second):
			}
			break wait
		case <-ctx.Done():
			rep.TimedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
			rep.Interrupted = !rep.TimedOut
			break wait
		case <-tick.C:
			got := b.total.Load()
			say("sent %d/%d, delivered %d/%d", sent.Load(), o.senders*o.messages, got, want)
			select {
			case <-sendersDone:
			default:
				continue
			}
			if got != lastTotal {
				lastTotal, quietSince = got, time.Now()
			} else if time.Since(quietSince) >= o.drain {
				rep.DeliveriesStoppedAfter = o.drain.String()
				break wait
			}
		}
	}
	end := time.Now()
	toolCPU := selfCPU() - toolSend0
	var cpu1 procSample
	if o.pid > 0 {
		cpu1, err = readProc(o.pid)
		if err != nil {
			return nil, fmt.Errorf("--pid %d: %w", o.pid, err)
		}
	}

	got := b.total.Load()
	elapsed := end.Sub(sendStart)
	if last := b.lastAt.Load(); got > 0 {
		elapsed = time.Duration(last) - sendStart.Sub(b.base)
	}
	rep.MessagesSent = sent.Load()
	rep.Deliveries = got
	rep.Missing = want - got
	rep.Duplicates = b.dups.Load()
	rep.SendElapsedMS = ms(elapsed)
	rep.DeliveriesPerS = round(perSecond(got, elapsed), 1)
	rep.LatencyP50MS, rep.LatencyP99MS, rep.LatencyMaxMS = ms(b.hist.Quantile(0.50)), ms(b.hist.Quantile(0.99)), ms(b.hist.Max())
	if got > 0 {
		rep.ToolCPUUSPerDelivery = round(float64(toolCPU.Microseconds())/float64(got), 2)
	}
	if o.pid > 0 {
		rep.ServerRSSIdleKB, rep.ServerRSSJoinedKB = ptr(idle.rssKB), ptr(joinedS.rssKB)
		rep.RSSPerConnKB = ptr(round(float64(joinedS.rssKB-idle.rssKB)/float64(len(members)), 2))
		if joinedS.peakKB > 0 {
			rep.ServerRSSPeakKB = ptr(joinedS.peakKB)
			rep.RSSPeakPerConnKB = ptr(round(float64(joinedS.peakKB-idle.rssKB)/float64(len(members)), 2))
		}
		cpu := cpu1.cpuSince(cpu0)
		rep.ServerCPUMS = ptr(ms(cpu))
		if got > 0 {
			rep.CPUUSPerDelivery = ptr(round(float64(cpu.Microseconds())/float64(got), 3))
		}
		if cpu0.writeBytes >= 0 && cpu1.writeBytes >= 0 {
			w := cpu1.writeBytes - cpu0.writeBytes
			rep.DiskWriteBytes = ptr(w)
			if rep.MessagesSent > 0 {
				rep.DiskBytesPerMessage = ptr(round(float64(w)/float64(rep.MessagesSent), 1))
			}
		}
	}
	b.closeAll(members) // before reading the error list: connection ends are not errors
	rep.Errors = b.errCount.Load()
	b.errMu.Lock()
	rep.ErrorSamples = append([]string(nil), b.errFirst...)
	b.errMu.Unlock()
	rep.Complete = rep.Missing == 0 && rep.Errors == 0 && rep.MessagesSent == int64(o.senders*o.messages)

	switch {
	case rep.TimedOut:
		return rep, fmt.Errorf("%w; %d of %d deliveries arrived", context.Cause(ctx), got, want)
	case rep.Interrupted:
		return rep, fmt.Errorf("interrupted; %d of %d deliveries arrived", got, want)
	case !rep.Complete:
		return rep, fmt.Errorf("incomplete: %d sent of %d, %d deliveries missing, %d errors", rep.MessagesSent, o.senders*o.messages, rep.Missing, rep.Errors)
	}
	return rep, nil
}

// print writes the report for people.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "clients: %d IRC + %d XMPP in %s; senders: %d IRC + %d XMPP, %d messages each\n",
		r.IRCClients, r.XMPPClients, r.Room, r.IRCSenders, r.XMPPSenders, r.MessagesPerSender)
	fmt.Fprintf(w, "connect+login: all in %.0f ms; then room joins: all in %.0f ms, one client p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
		r.LoginWallMS, r.JoinWallMS, r.JoinP50MS, r.JoinP99MS, r.JoinMaxMS)
	if r.ServerJoinCPUMS != nil {
		fmt.Fprintf(w, "server CPU: %.0f ms for the logins, %.0f ms for the joins\n", *r.ServerLoginCPUMS, *r.ServerJoinCPUMS)
	}
	fmt.Fprintf(w, "chatbench's own CPU: %.0f ms for the logins, %.0f ms for the joins\n", r.ToolLoginCPUMS, r.ToolJoinCPUMS)
	fmt.Fprintf(w, "deliveries: %d of %d (missing %d, duplicates %d, errors %d) in %.0f ms: %.0f deliveries/s\n",
		r.Deliveries, r.DeliveriesExpected, r.Missing, r.Duplicates, r.Errors, r.SendElapsedMS, r.DeliveriesPerS)
	fmt.Fprintf(w, "fan-out latency (send to receipt): p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		r.LatencyP50MS, r.LatencyP99MS, r.LatencyMaxMS)
	if r.RSSPerConnKB != nil {
		fmt.Fprintf(w, "server: RSS %d kB idle, %d kB joined: %.1f kB per connection\n",
			*r.ServerRSSIdleKB, *r.ServerRSSJoinedKB, *r.RSSPerConnKB)
		if r.RSSPeakPerConnKB != nil {
			fmt.Fprintf(w, "server: peak RSS during the joins %d kB: %.1f kB per connection\n", *r.ServerRSSPeakKB, *r.RSSPeakPerConnKB)
		}
		if r.CPUUSPerDelivery != nil {
			fmt.Fprintf(w, "server: CPU %.0f ms over the send phase: %.2f µs per delivery\n", *r.ServerCPUMS, *r.CPUUSPerDelivery)
		}
		if r.DiskBytesPerMessage != nil {
			fmt.Fprintf(w, "server: %d bytes written to disk: %.0f bytes per message\n", *r.DiskWriteBytes, *r.DiskBytesPerMessage)
		} else {
			fmt.Fprintln(w, "server: /proc/PID/io not readable (another user's process?): no disk figure")
		}
	}
	fmt.Fprintf(w, "chatbench itself: %.2f µs CPU per delivery\n", r.ToolCPUUSPerDelivery)
	if r.DeliveriesStoppedAfter != "" {
		fmt.Fprintf(w, "deliveries stopped: none for %s after the last send\n", r.DeliveriesStoppedAfter)
	}
	for _, e := range r.ErrorSamples {
		fmt.Fprintln(w, "error:", e)
	}
}
