// Command ircload puts a bounded load on a running chatbox's IRC door over
// loopback and reports what it saw: n clients log in (PASS
// account:password, Modern IRC registration) and join one channel, k of
// them send m messages each, and every client counts the room messages it
// receives (IRCv3 echo-message is requested, so a sender counts its own).
//
// It reports the connect-and-join time (dial to end of NAMES), the
// deliveries per second (messages x n receivers / time from the first
// send to the last delivery) and the fan-out latency (send to receipt of
// each delivery, p50/p99/max), and how many deliveries never came.
//
// The accounts must exist, named PREFIX0 … PREFIX(n-1) with one password,
// and the channel's room too; for example:
//
//	for i in $(seq 0 49); do echo secret-pass | chatbox user add load$i; done
//	chatbox room add load
//	go run ./scripts/ircload -addr 127.0.0.1:6667 -n 50 -k 5 -m 100 \
//	    -accounts load -password secret-pass -channel '#load'
//
// Left out: TLS (use the plain listener on loopback), XMPP clients, and
// any host but a loopback one (the tool refuses others: it is for
// measuring the box on the box, not for loading someone else's server).
// The server's per-address connection limit (irc.connections_per_address)
// and flood and message-rate limits apply: raise them for large runs, or
// the figures measure the limits.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergochat/irc-go/ircmsg"
)

type options struct {
	addr     string
	n, k, m  int
	prefix   string
	password string
	channel  string
	interval time.Duration
	timeout  time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:6667", "the IRC door's plain-text address (loopback only)")
	flag.IntVar(&o.n, "n", 50, "clients (1-5000)")
	flag.IntVar(&o.k, "k", 5, "senders among the clients (1-n)")
	flag.IntVar(&o.m, "m", 100, "messages per sender (1-100000)")
	flag.StringVar(&o.prefix, "accounts", "load", "account name prefix: accounts are PREFIX0 … PREFIX(n-1)")
	flag.StringVar(&o.password, "password", "", "the accounts' password (required)")
	flag.StringVar(&o.channel, "channel", "#general", "the channel every client joins")
	flag.DurationVar(&o.interval, "interval", 0, "pause between one sender's messages (0: as fast as the server takes them)")
	flag.DurationVar(&o.timeout, "timeout", 5*time.Minute, "bound on the whole run")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "ircload:", err)
		os.Exit(1)
	}
}

func (o options) check() error {
	switch {
	case o.password == "":
		return errors.New("-password is required (the accounts' password)")
	case o.n < 1 || o.n > 5000:
		return fmt.Errorf("-n %d: want 1 to 5000 clients", o.n)
	case o.k < 1 || o.k > o.n:
		return fmt.Errorf("-k %d: want 1 to n (%d) senders", o.k, o.n)
	case o.m < 1 || o.m > 100000:
		return fmt.Errorf("-m %d: want 1 to 100000 messages per sender", o.m)
	case !strings.HasPrefix(o.channel, "#") || len(o.channel) < 2 || strings.ContainsAny(o.channel, " ,\r\n\x00"):
		return fmt.Errorf("-channel %q: want #name", o.channel)
	case o.timeout <= 0 || o.timeout > time.Hour:
		return fmt.Errorf("-timeout %s: want more than 0 and at most 1h", o.timeout)
	}
	return checkLoopback(o.addr)
}

// checkLoopback refuses an address that is not on this machine.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %v (want host:port)", addr, err)
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return fmt.Errorf("-addr %q: %v", addr, err)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("-addr %q resolves to %s, not a loopback address: ircload only loads a box from the box itself", addr, ip)
		}
	}
	return nil
}

// client is one connection; its reader counts room messages.
type client struct {
	account string
	nc      net.Conn
	br      *bufio.Reader
	wmu     sync.Mutex
	joined  time.Duration // dial to end of NAMES

	got  atomic.Int64
	lats []time.Duration // reader only until it ends
	done chan struct{}
}

func (c *client) write(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write([]byte(s))
	return err
}

// connect logs account in and joins the channel.
func connect(o options, account string, deadline time.Time) (*client, error) {
	start := time.Now()
	nc, err := net.DialTimeout("tcp", o.addr, time.Until(deadline))
	if err != nil {
		return nil, err
	}
	c := &client{account: account, nc: nc, br: bufio.NewReaderSize(nc, 8192), done: make(chan struct{})}
	nc.SetDeadline(deadline)
	login := "CAP LS 302\r\nCAP REQ :echo-message\r\nCAP END\r\n" +
		"PASS " + account + ":" + o.password + "\r\nNICK " + account + "\r\nUSER " + account + " 0 * :ircload\r\n" +
		"JOIN " + o.channel + "\r\n"
	if err := c.write(login); err != nil {
		nc.Close()
		return nil, err
	}
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("%s: waiting to join %s: %w", account, o.channel, err)
		}
		msg, err := ircmsg.ParseLine(line)
		if err != nil {
			continue
		}
		switch msg.Command {
		case "PING":
			c.write("PONG :" + strings.Join(msg.Params, " ") + "\r\n")
		case "ERROR", "464", "403", "405", "471", "473", "474", "475", "433", "432":
			nc.Close()
			return nil, fmt.Errorf("%s: the server said %s", account, strings.TrimSpace(line))
		case "366":
			if len(msg.Params) > 1 && strings.EqualFold(msg.Params[1], o.channel) {
				c.joined = time.Since(start)
				nc.SetDeadline(time.Time{})
				return c, nil
			}
		}
	}
}

// read counts this run's messages in the channel and their latency
// (history replayed on join, from earlier runs, carries another run id).
func (c *client) read(channel, runID string, onDelivery func()) {
	defer close(c.done)
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			return
		}
		msg, err := ircmsg.ParseLine(line)
		if err != nil {
			continue
		}
		switch msg.Command {
		case "PING":
			go c.write("PONG :" + strings.Join(msg.Params, " ") + "\r\n")
		case "PRIVMSG":
			if len(msg.Params) < 2 || !strings.EqualFold(msg.Params[0], channel) {
				continue
			}
			// "ircload <run> <sender> <seq> <unix-nanoseconds>"
			f := strings.Fields(msg.Params[1])
			if len(f) != 5 || f[0] != "ircload" || f[1] != runID {
				continue
			}
			sent, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil {
				continue
			}
			c.lats = append(c.lats, time.Since(time.Unix(0, sent)))
			c.got.Add(1)
			onDelivery()
		}
	}
}

func run(o options) error {
	if err := o.check(); err != nil {
		return err
	}
	deadline := time.Now().Add(o.timeout)

	// Connect, at most 16 at a time.
	clients := make([]*client, o.n)
	errs := make([]error, o.n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range o.n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			clients[i], errs[i] = connect(o, o.prefix+strconv.Itoa(i), deadline)
		}()
	}
	wg.Wait()
	connectAll := time.Since(t0)
	defer func() {
		for _, c := range clients {
			if c != nil {
				c.write("QUIT :ircload done\r\n")
				c.nc.Close()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	joins := make([]time.Duration, o.n)
	for i, c := range clients {
		joins[i] = c.joined
	}
	slices.Sort(joins)
	fmt.Printf("connected %d clients in %s; connect+login+join each: p50 %s p99 %s max %s\n",
		o.n, connectAll.Round(time.Millisecond), pct(joins, 50), pct(joins, 99), joins[len(joins)-1])

	want := int64(o.n) * int64(o.k) * int64(o.m)
	var total atomic.Int64
	all := make(chan struct{})
	var lastAt atomic.Int64
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, c := range clients {
		go c.read(o.channel, runID, func() {
			lastAt.Store(time.Now().UnixNano())
			if total.Add(1) == want {
				close(all)
			}
		})
	}

	start := time.Now()
	sendErr := make(chan error, o.k)
	for s := range o.k {
		go func() {
			c := clients[s]
			for i := range o.m {
				line := fmt.Sprintf("PRIVMSG %s :ircload %s %s %d %d\r\n", o.channel, runID, c.account, i, time.Now().UnixNano())
				if err := c.write(line); err != nil {
					sendErr <- fmt.Errorf("%s: send: %w", c.account, err)
					return
				}
				if o.interval > 0 {
					time.Sleep(o.interval)
				}
			}
			sendErr <- nil
		}()
	}
	var failed error
	for range o.k {
		if err := <-sendErr; err != nil {
			failed = errors.Join(failed, err)
		}
	}
	select {
	case <-all:
	case <-time.After(time.Until(deadline)):
	}
	got := total.Load()
	elapsed := time.Duration(lastAt.Load() - start.UnixNano())
	if got == 0 || elapsed <= 0 {
		elapsed = time.Since(start)
	}
	// Stop the readers before looking at their latencies.
	for _, c := range clients {
		c.nc.SetReadDeadline(time.Now())
	}
	var lats []time.Duration
	for _, c := range clients {
		<-c.done
		lats = append(lats, c.lats...)
	}
	slices.Sort(lats)
	msgs := o.k * o.m
	fmt.Printf("sent %d messages (%d senders x %d) to %d members: %d of %d deliveries in %s\n",
		msgs, o.k, o.m, o.n, got, want, elapsed.Round(time.Millisecond))
	fmt.Printf("deliveries/s %.0f, messages/s %.0f\n", float64(got)/elapsed.Seconds(), float64(got)/float64(o.n)/elapsed.Seconds())
	if len(lats) > 0 {
		fmt.Printf("fan-out latency (send to receipt): p50 %s p99 %s max %s\n", pct(lats, 50), pct(lats, 99), lats[len(lats)-1])
	}
	if failed != nil {
		return failed
	}
	if got < want {
		return fmt.Errorf("%d deliveries missing after %s (rate limits? sendq? see the server's log)", want-got, o.timeout)
	}
	return nil
}

// pct returns the p-th percentile of sorted durations.
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)].Round(time.Microsecond)
}
