package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// options are the command line, checked.
type options struct {
	irc, xmpp       string // as given
	ircAddr         string // resolved loopback ip:port
	xmppAddr        string
	domain          string
	mucDomain       string
	ca              string
	insecure        bool
	xmppPlaintext   bool
	tlsGroups       string
	curves          []tls.CurveID // from tlsGroups
	sasl            string
	ircLogin        string // pass or nick
	xmppRegister    bool   // XEP-0077 in-band registration before the run
	clients         int
	xmppShare       float64
	room            string
	senders         int
	messages        int
	pace            time.Duration
	pid             int
	prefix          string
	passwordPrefix  string
	makeAccounts    string
	chatbox         string
	json            bool
	timeout         time.Duration
	drain           time.Duration
	joinTimeout     time.Duration
	connectParallel int
	warmup          int
	smaps           string      // with --pid: a folder for /proc/PID/smaps at each memory sample
	tlsShared       *tls.Config // made once by run from --ca / --insecure (tlsConfig)

	// The start-up measurement (startup.go).
	seed         string
	seedAccounts int
	seedMessages int
	seedRooms    int
	startup      string
	runs         int
	startTimeout time.Duration
	cold         bool
}

// Bounds on what one run may ask for.
const (
	maxClients    = 10000
	maxMessages   = 100000
	maxDeliveries = 100_000_000 // clients x senders x messages: the receivers' bitsets stay under 13 MB
	maxTimeout    = 24 * time.Hour
	maxPace       = time.Minute
)

const usageText = `chatbench — measure a running chatbox (or any server speaking IRC and XMPP)
over loopback: N clients join one room, K of them send M messages each,
every client records when each message reaches it.

Usage:
  chatbench --irc 127.0.0.1:6667 --xmpp 127.0.0.1:5222 --domain D --ca CA.pem [flags]
  chatbench --make-accounts DATA_DIR --chatbox PATH --clients N [--room NAME]
  chatbench --seed NEW_DATA_DIR [--seed-accounts 10000 --seed-messages 1000000 --seed-rooms 20]
  chatbench --startup DATA_DIR --chatbox PATH [--runs 5]

Accounts are PREFIX0000 … with password PASSWORD_PREFIX+account (u0000 /
pw-u0000 by default); --make-accounts creates the missing ones (and the
room) with "chatbox --data DATA_DIR user add". Another server (ngIRCd,
InspIRCd, Prosody, ejabberd: see scripts/bench-peers.sh): --irc-login nick
for an IRC server without accounts, --xmpp-register to create the XMPP
accounts in-band first, --muc-domain for its rooms, --insecure for its
self-signed certificate.

Flags:
`

// parseFlags reads and checks the command line.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("chatbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	fs.StringVar(&o.irc, "irc", "", "plain-text IRC `host:port` (loopback only)")
	fs.StringVar(&o.xmpp, "xmpp", "", "XMPP client `host:port` with STARTTLS (loopback only)")
	fs.StringVar(&o.domain, "domain", "", "the server's XMPP domain (accounts are NAME@domain; also the TLS server name)")
	fs.StringVar(&o.mucDomain, "muc-domain", "", "the rooms' XMPP domain (default rooms.<domain>)")
	fs.StringVar(&o.ca, "ca", "", "PEM `file` of the CA that signed the server's certificate (chatbox: <data>/tls/ca.pem)")
	fs.BoolVar(&o.insecure, "insecure", false, "accept any XMPP server certificate (benchmarks only)")
	fs.StringVar(&o.tlsGroups, "tls-groups", "", "the key exchange groups the XMPP clients offer, in order (x25519mlkem768, x25519, p256, p384, p521; comma-separated); default Go's, a post-quantum hybrid first. x25519 alone is a client without one: its ClientHello is ~300 bytes, not ~1.5 KB, which sizes the buffers a Go server's TLS keeps")
	fs.BoolVar(&o.xmppPlaintext, "xmpp-plaintext", false, "XMPP without STARTTLS (a server that allows it, e.g. chatbox with xmpp.allow_plaintext; to tell TLS's share of the memory)")
	fs.StringVar(&o.sasl, "sasl", "plain", "XMPP login: plain or scram-sha-256")
	fs.StringVar(&o.ircLogin, "irc-login", "pass", "IRC login: pass (PASS account:password, chatbox) or nick (NICK and USER only, a server without accounts)")
	fs.BoolVar(&o.xmppRegister, "xmpp-register", false, "first register every XMPP account in-band (XEP-0077; an existing one is fine), outside the measured time")
	fs.IntVar(&o.clients, "clients", 10, "clients, each its own account (1-10000)")
	fs.Float64Var(&o.xmppShare, "xmpp-share", 0, "fraction of the clients that use XMPP (0-1); the rest use IRC")
	fs.StringVar(&o.room, "room", "general", "the room every client joins (#room on IRC, room@<muc-domain> on XMPP)")
	fs.IntVar(&o.senders, "senders", 1, "clients that send (1-clients), spread evenly over the clients")
	fs.IntVar(&o.messages, "messages", 10, "messages per sender (1-100000)")
	fs.DurationVar(&o.pace, "pace", 0, "pause between one sender's messages (0: back to back)")
	fs.IntVar(&o.pid, "pid", 0, "the server's process id: adds memory, CPU and disk figures from /proc")
	fs.StringVar(&o.prefix, "accounts-prefix", "u", "account names are PREFIX0000, PREFIX0001, …")
	fs.StringVar(&o.passwordPrefix, "password-prefix", "pw-", "each account's password is PASSWORD_PREFIX followed by its name")
	fs.StringVar(&o.makeAccounts, "make-accounts", "", "create the accounts (and the room) in chatbox data `dir` and exit")
	fs.StringVar(&o.chatbox, "chatbox", "", "the chatbox binary, for --make-accounts")
	fs.BoolVar(&o.json, "json", false, "print the result as one JSON line")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "hard bound on the whole run")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "after the last send, give up waiting once no delivery came for this long")
	fs.DurationVar(&o.joinTimeout, "join-timeout", 60*time.Second, "bound on one client's connect, login and join")
	fs.IntVar(&o.connectParallel, "connect-parallel", 16, "clients connecting at once (1-256)")
	fs.StringVar(&o.smaps, "smaps", "", "with --pid: copy the server's /proc/PID/smaps into this folder at each memory sample (idle.smaps, logged.smaps, joined.smaps), to see which mappings grew")
	fs.IntVar(&o.warmup, "warmup", 10, "with --pid: clients that join and leave before the idle memory sample, so the baseline holds the code and caches a first client brings in (0-1000)")
	fs.StringVar(&o.seed, "seed", "", "fill the new chatbox data `dir` with --seed-accounts, --seed-rooms and --seed-messages through the store, and exit")
	fs.IntVar(&o.seedAccounts, "seed-accounts", 10000, "accounts --seed makes (PREFIX0000 …)")
	fs.IntVar(&o.seedMessages, "seed-messages", 1000000, "messages --seed stores")
	fs.IntVar(&o.seedRooms, "seed-rooms", 20, "rooms --seed makes (--room and r001 …)")
	fs.StringVar(&o.startup, "startup", "", "time chatbox (--chatbox) starting over data `dir`: exec to ready and to the IRC listener's first answer")
	fs.IntVar(&o.runs, "runs", 5, "measured starts for --startup, after one warm-up start")
	fs.BoolVar(&o.cold, "cold", false, "--startup: drop the database from the page cache before each start (as after a reboot)")
	fs.DurationVar(&o.startTimeout, "start-timeout", time.Minute, "bound on one --startup start, ready to stopped")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (all settings are flags; see --help)", fs.Arg(0))
	}
	return o, o.check()
}

// check validates o and resolves the addresses.
func (o *options) check() error {
	o.room = strings.TrimPrefix(o.room, "#")
	if o.mucDomain == "" && o.domain != "" {
		o.mucDomain = "rooms." + o.domain
	}
	switch {
	case o.clients < 1 || o.clients > maxClients:
		return fmt.Errorf("--clients %d: want 1 to %d", o.clients, maxClients)
	case o.timeout <= 0 || o.timeout > maxTimeout:
		return fmt.Errorf("--timeout %s: want more than 0 and at most %s", o.timeout, maxTimeout)
	case !validName(o.prefix + "0000"):
		return fmt.Errorf("--accounts-prefix %q: account names must be a-z, 0-9, _ and -, starting with a letter, at most 30 characters", o.prefix)
	case o.passwordPrefix == "" || strings.ContainsAny(o.passwordPrefix, "\x00\r\n"):
		return fmt.Errorf("--password-prefix %q: want some text without NUL or line breaks", o.passwordPrefix)
	case !validName(o.room):
		return fmt.Errorf("--room %q: room names are a-z, 0-9, _ and -, starting with a letter, at most 30 characters", o.room)
	}
	switch {
	case o.seed != "" && (o.startup != "" || o.makeAccounts != ""), o.startup != "" && o.makeAccounts != "":
		return errors.New("--seed, --startup and --make-accounts are separate steps: give one")
	case o.seed != "":
		switch {
		case o.seedAccounts < 1 || o.seedAccounts > maxSeedAccounts:
			return fmt.Errorf("--seed-accounts %d: want 1 to %d", o.seedAccounts, maxSeedAccounts)
		case !validName(func() string { n, _ := o.account(o.seedAccounts - 1); return n }()):
			return fmt.Errorf("--accounts-prefix %q: too long for %d accounts (names are at most 30 characters)", o.prefix, o.seedAccounts)
		case o.seedMessages < 0 || o.seedMessages > maxSeedMessages:
			return fmt.Errorf("--seed-messages %d: want 0 to %d", o.seedMessages, maxSeedMessages)
		case o.seedRooms < 1 || o.seedRooms > maxSeedRooms:
			return fmt.Errorf("--seed-rooms %d: want 1 to %d", o.seedRooms, maxSeedRooms)
		}
		return nil
	case o.startup != "":
		switch {
		case o.chatbox == "":
			return errors.New("--startup needs --chatbox PATH (the chatbox binary)")
		case o.runs < 1 || o.runs > maxStartupRuns:
			return fmt.Errorf("--runs %d: want 1 to %d", o.runs, maxStartupRuns)
		case o.startTimeout <= 0 || o.startTimeout > o.timeout:
			return fmt.Errorf("--start-timeout %s: want more than 0 and at most --timeout (%s)", o.startTimeout, o.timeout)
		}
		return nil
	}
	if o.makeAccounts != "" {
		if o.chatbox == "" {
			return errors.New("--make-accounts needs --chatbox PATH (the chatbox binary)")
		}
		return nil
	}
	o.drain, o.joinTimeout = min(o.drain, o.timeout), min(o.joinTimeout, o.timeout)
	nx := o.xmppClients()
	switch {
	case math.IsNaN(o.xmppShare) || o.xmppShare < 0 || o.xmppShare > 1:
		return fmt.Errorf("--xmpp-share %v: want 0 to 1", o.xmppShare)
	case o.senders < 1 || o.senders > o.clients:
		return fmt.Errorf("--senders %d: want 1 to --clients (%d)", o.senders, o.clients)
	case o.messages < 1 || o.messages > maxMessages:
		return fmt.Errorf("--messages %d: want 1 to %d", o.messages, maxMessages)
	case int64(o.clients)*int64(o.senders)*int64(o.messages) > maxDeliveries:
		return fmt.Errorf("--clients x --senders x --messages is %d deliveries: at most %d", int64(o.clients)*int64(o.senders)*int64(o.messages), maxDeliveries)
	case o.pace < 0 || o.pace > maxPace:
		return fmt.Errorf("--pace %s: want 0 to %s", o.pace, maxPace)
	case o.drain <= 0:
		return fmt.Errorf("--drain %s: want more than 0", o.drain)
	case o.joinTimeout <= 0:
		return fmt.Errorf("--join-timeout %s: want more than 0", o.joinTimeout)
	case o.warmup < 0 || o.warmup > 1000:
		return fmt.Errorf("--warmup %d: want 0 to 1000", o.warmup)
	case o.connectParallel < 1 || o.connectParallel > 256:
		return fmt.Errorf("--connect-parallel %d: want 1 to 256", o.connectParallel)
	case o.pid < 0:
		return fmt.Errorf("--pid %d: want a process id", o.pid)
	case o.smaps != "" && o.pid == 0:
		return errors.New("--smaps needs --pid (the server whose mappings to copy)")
	case nx < o.clients && o.irc == "":
		return fmt.Errorf("%d IRC clients but no --irc address", o.clients-nx)
	case nx > 0 && o.xmpp == "":
		return fmt.Errorf("%d XMPP clients but no --xmpp address", nx)
	case nx > 0 && o.domain == "":
		return errors.New("--domain is needed for XMPP clients (the server's domain, e.g. chatbox's `domain` setting)")
	case nx > 0 && o.ca != "" && o.insecure:
		return errors.New("give --ca or --insecure, not both")
	case o.xmppPlaintext && (o.ca != "" || o.insecure):
		return errors.New("--xmpp-plaintext uses no TLS: leave out --ca and --insecure")
	case o.xmppPlaintext && o.tlsGroups != "":
		return errors.New("--xmpp-plaintext uses no TLS: leave out --tls-groups")
	case o.sasl != "plain" && o.sasl != "scram-sha-256":
		return fmt.Errorf("--sasl %q: want plain or scram-sha-256", o.sasl)
	case o.ircLogin != "pass" && o.ircLogin != "nick":
		return fmt.Errorf("--irc-login %q: want pass or nick", o.ircLogin)
	case o.xmppRegister && nx == 0:
		return errors.New("--xmpp-register without XMPP clients (--xmpp-share is 0)")
	}
	if o.tlsGroups != "" {
		groups := map[string]tls.CurveID{"x25519mlkem768": tls.X25519MLKEM768, "x25519": tls.X25519,
			"p256": tls.CurveP256, "p384": tls.CurveP384, "p521": tls.CurveP521}
		o.curves = nil
		for _, g := range strings.Split(o.tlsGroups, ",") {
			id, ok := groups[strings.ToLower(strings.TrimSpace(g))]
			if !ok {
				return fmt.Errorf("--tls-groups: %q is not one of x25519mlkem768, x25519, p256, p384, p521", g)
			}
			o.curves = append(o.curves, id)
		}
	}
	if o.pid > 0 {
		if _, err := os.Stat("/proc/" + strconv.Itoa(o.pid) + "/stat"); err != nil {
			return fmt.Errorf("--pid %d: %v", o.pid, err)
		}
	}
	if o.smaps != "" {
		if fi, err := os.Stat(o.smaps); err != nil || !fi.IsDir() {
			return fmt.Errorf("--smaps %s: want an existing folder", o.smaps)
		}
	}
	var err error
	if o.irc != "" {
		if o.ircAddr, err = loopbackAddr("--irc", o.irc); err != nil {
			return err
		}
	}
	if o.xmpp != "" {
		if o.xmppAddr, err = loopbackAddr("--xmpp", o.xmpp); err != nil {
			return err
		}
	}
	return nil
}

// xmppClients is how many clients use XMPP: the first ones.
func (o *options) xmppClients() int {
	if math.IsNaN(o.xmppShare) || o.xmppShare < 0 || o.xmppShare > 1 {
		return 0
	}
	return int(math.Round(o.xmppShare * float64(o.clients)))
}

// account returns client i's account name and password.
func (o *options) account(i int) (name, password string) {
	name = fmt.Sprintf("%s%04d", o.prefix, i)
	return name, o.passwordPrefix + name
}

// validName is chatbox's rule for account and room names.
func validName(s string) bool {
	if len(s) < 1 || len(s) > 30 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// loopbackAddr checks that addr is on this machine and returns it with
// the host resolved, so that what is dialled is what was checked.
func loopbackAddr(flagName, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("%s %q: %v (want host:port)", flagName, addr, err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return "", fmt.Errorf("%s %q: port %q: want 1 to 65535", flagName, addr, port)
	}
	refuse := func(ip net.IP) error {
		return fmt.Errorf("%s %q: %s is not a loopback address: chatbench only measures a server on this machine (127.0.0.0/8, ::1)", flagName, addr, ip)
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return "", refuse(ip)
		}
		return net.JoinHostPort(ip.String(), port), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
	if err != nil {
		return "", fmt.Errorf("%s %q: %v", flagName, addr, err)
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("%s %q: %s has no address", flagName, addr, host)
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return "", refuse(ip)
		}
	}
	return net.JoinHostPort(ips[0].String(), port), nil
}
