// Command chatbox is the whole chat server in a box: run with no command
// it serves with its settings; its commands manage accounts, rooms,
// backups and the certificate, also while the server runs.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"chatbox/appliance"
	"chatbox/hw"
	"chatbox/services/chat"
	"chatbox/services/xmpp"
	"chatbox/webadmin"
)

// version is set at build time with -ldflags "-X main.version=…"; without
// it the VCS revision the binary was built from is shown.
var version = ""

const usage = `chatbox — a private chat server in a box (XMPP and IRC, one set of accounts and rooms)

Usage:
  chatbox [flags]                    run the server
  chatbox [flags] user add NAME      create an account (password from stdin)
  chatbox [flags] user passwd NAME   change an account's password (from stdin)
  chatbox [flags] user del NAME      delete an account
  chatbox [flags] user admin NAME yes|no
                                     make an account an admin of the box (IRC operator, owner of every room)
  chatbox [flags] user list          list accounts
  chatbox [flags] room add NAME      create a room (#NAME on IRC, NAME@rooms.<domain> on XMPP)
  chatbox [flags] room list          list rooms
  chatbox [flags] invite [--uses N] [--expire 7d]
                                     make an invitation link that creates an account (even while registration is closed)
  chatbox [flags] invite list|revoke TOKEN
                                     list the invitations still valid, or cancel one
  chatbox [flags] backup FILE        write a backup archive (works while the server runs)
  chatbox [flags] restore FILE       restore a backup (stop the server first)
  chatbox [flags] tls                print the certificate authority's fingerprint
  chatbox [flags] setup-code         print the code that sets up the web admin (until its password is set)
  chatbox version                    print the version
  chatbox check-config FILE          check a settings file and exit

Flags (anywhere on the line):
  --config FILE      settings file (also CHATBOX_CONFIG; default <data>/chatbox.toml if present)
  --data DIR         data directory (also CHATBOX_DATA; default ./chatbox-data)
  --set KEY=VALUE    override one setting for this run, repeatable (e.g. --set web.listen=127.0.0.1:0)
`

func main() {
	// chatbox serves no profiles: the runtime's sampling of allocations
	// would only hold memory (about 1.5 MB once a thousand clients have
	// joined) for nobody to read.
	runtime.MemProfileRate = 0
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// globals are the flags every command takes.
type globals struct {
	config string
	data   string
	sets   []string
}

// splitFlags pulls the global flags out of args, wherever they stand.
func splitFlags(args []string) (globals, []string, error) {
	var g globals
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || a == "-" {
			rest = append(rest, a)
			continue
		}
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		switch name {
		case "config", "data", "set":
		case "uses", "expire": // chatbox invite's own flags
			rest = append(rest, a)
			continue
		case "h", "help":
			return g, nil, errHelp
		default:
			return g, nil, fmt.Errorf("unknown flag %s (see chatbox --help)", a)
		}
		if !hasVal {
			if i+1 >= len(args) {
				return g, nil, fmt.Errorf("flag %s needs a value", a)
			}
			i++
			val = args[i]
		}
		switch name {
		case "config":
			g.config = val
		case "data":
			g.data = val
		case "set":
			g.sets = append(g.sets, val)
		}
	}
	return g, rest, nil
}

var errHelp = errors.New("help")

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g, rest, err := splitFlags(args)
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "chatbox:", err)
		return 2
	}
	cmd := ""
	if len(rest) > 0 {
		cmd = rest[0]
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, "chatbox", versionString())
		return 0
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	case "check-config":
		if len(rest) != 2 {
			fmt.Fprintln(stderr, "chatbox: usage: chatbox check-config FILE")
			return 2
		}
		if err := appliance.CheckConfigFile(rest[1], hostname()); err != nil {
			fmt.Fprintln(stderr, "chatbox:", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok\n", rest[1])
		return 0
	}
	cfg, cfgPath, err := loadConfig(g)
	if err != nil {
		fmt.Fprintln(stderr, "chatbox:", err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	ctx := context.Background()
	switch cmd {
	case "", "run":
		for {
			var again bool
			again, err = serve(ctx, cfg, cfgPath, log)
			if err != nil || !again {
				break
			}
			// A factory reset erased the data, or the web admin asked
			// for a restart (saved settings, a staged restore): start
			// afresh, reading the settings again.
			if cfg, cfgPath, err = loadConfig(g); err != nil {
				break
			}
		}
	case "user":
		err = userCmd(ctx, cfg, rest[1:], stdin, stdout, log)
	case "room":
		err = roomCmd(ctx, cfg, rest[1:], stdout, log)
	case "invite":
		err = inviteCmd(ctx, cfg, rest[1:], stdout, log)
	case "backup":
		if len(rest) != 2 {
			return usageErr(stderr, "chatbox backup FILE")
		}
		if err = appliance.Backup(ctx, cfg, cfgPath, rest[1], log); err == nil {
			fmt.Fprintf(stdout, "backup written to %s\n", rest[1])
		}
	case "restore":
		if len(rest) != 2 {
			return usageErr(stderr, "chatbox restore FILE")
		}
		if err = appliance.Restore(ctx, cfg, cfgPath, rest[1], log); err == nil {
			fmt.Fprintf(stdout, "restored %s into %s\n", rest[1], cfg.DataDir)
		}
	case "tls":
		err = tlsCmd(cfg, stdout, log)
	case "setup-code":
		var code string
		if code, err = webadmin.ReadSetupCode(cfg.DataDir); err == nil {
			fmt.Fprintln(stdout, code)
		}
	default:
		fmt.Fprintf(stderr, "chatbox: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "chatbox:", err)
		return 1
	}
	return 0
}

func usageErr(stderr io.Writer, u string) int {
	fmt.Fprintln(stderr, "chatbox: usage:", u)
	return 2
}

func versionString() string {
	if version != "" {
		return version
	}
	v := "dev"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v = "dev-" + s.Value[:12]
			}
		}
	}
	return v
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// loadConfig finds the settings file and data directory: --config, then
// CHATBOX_CONFIG, then <data>/chatbox.toml if it exists; --data, then
// CHATBOX_DATA, then the file's data_dir, then ./chatbox-data.
func loadConfig(g globals) (appliance.Config, string, error) {
	path := g.config
	if path == "" {
		path = os.Getenv("CHATBOX_CONFIG")
	}
	data := g.data
	if data == "" {
		data = os.Getenv("CHATBOX_DATA")
	}
	if path == "" {
		dir := data
		if dir == "" {
			dir = appliance.Defaults("").DataDir
		}
		if p := filepath.Join(dir, "chatbox.toml"); fileExists(p) {
			path = p
		} else if seedSettings != "" { // the SD image (platform_gokrazy.go)
			if err := seedConfig(seedSettings, p); err != nil {
				return appliance.Config{}, "", err
			}
			path = p
		}
	}
	cfg, err := appliance.Load(path, g.sets, hostname())
	if err != nil {
		return cfg, "", err
	}
	if data != "" {
		cfg.DataDir = data
	}
	return cfg, path, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func newLogger(c appliance.LogConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// stopTimeout bounds a shutdown: services get this long to close their
// connections politely, within the 10 s a service manager allows.
const stopTimeout = 8 * time.Second

// serve runs the box until a signal or a shutdown from the panel; it
// reports whether to start again (after a factory reset or a restart).
func serve(ctx context.Context, cfg appliance.Config, cfgPath string, log *slog.Logger) (bool, error) {
	log.Info("chatbox starting", "version", versionString(), "config", cmpOr(cfgPath, "(built-in defaults)"), "data", cfg.DataDir)
	box, err := appliance.Open(ctx, appliance.Options{Config: cfg, ConfigPath: cfgPath, Log: log, Version: versionString(),
		WaitNetwork: networkWaiter(log)})
	if err != nil {
		return false, err
	}
	panel, err := hw.New(cfg.HW, box, hw.Options{Log: log, PairingWindow: cfg.Registration.PairingWindow})
	if err != nil {
		box.Close()
		return false, err
	}
	box.SetPanel(panel.State) // the web admin's dashboard shows the LEDs
	// The panel outlives Run so that the shutdown pattern stays visible.
	panelCtx, stopPanel := context.WithCancel(context.WithoutCancel(ctx))
	panelDone := make(chan struct{})
	go func() {
		defer close(panelDone)
		if err := panel.Run(panelCtx); err != nil {
			log.Error("front panel", "err", err)
		}
	}()
	defer func() {
		stopPanel()
		<-panelDone
	}()
	sigCtx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// systemd (Type=notify, WatchdogSec=): readiness, state and watchdog
	// pings; nothing without $NOTIFY_SOCKET.
	notifier, err := appliance.NotifierFromEnv(os.Getenv, os.Getpid())
	if err != nil {
		log.Warn("service manager notifications off", "err", err)
	}
	notifyCtx, stopNotify := context.WithCancel(context.WithoutCancel(ctx))
	notifyDone := make(chan struct{})
	go func() {
		defer close(notifyDone)
		appliance.ServeNotify(notifyCtx, box, notifier, func(err error) { log.Warn("service manager", "err", err) })
	}()
	defer func() {
		stopNotify()
		<-notifyDone
	}()
	go func() {
		<-sigCtx.Done()
		stop() // a second signal ends the process at once
		if ctx.Err() == nil && notifier != nil {
			if err := notifier.Send("STOPPING=1"); err != nil {
				log.Warn("service manager", "err", err)
			}
		}
	}()
	err = box.Run(sigCtx, stopTimeout)
	reason := box.ShutdownReason()
	if err != nil && !(errors.Is(err, context.Canceled) && reason != "") {
		return false, err
	}
	log.Info("chatbox stopped", "reason", cmpOr(reason, "signal"))
	return reason == appliance.ShutdownFactoryReset || reason == appliance.ShutdownRestart, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func tlsCmd(cfg appliance.Config, stdout io.Writer, log *slog.Logger) error {
	var t *appliance.BoxTLS
	var err error
	if cfg.TLS.CertFile != "" {
		t, err = appliance.LoadTLSFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	} else {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return err
		}
		t, err = appliance.LoadOrCreateTLS(filepath.Join(cfg.DataDir, "tls"), cfg.Domain, cfg.TLS.ExtraNames, time.Now(), log)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "domain:          %s\n", cfg.Domain)
	fmt.Fprintf(stdout, "CA SHA-256:      %s\n", t.CAFingerprint)
	if cfg.TLS.CertFile == "" {
		fmt.Fprintf(stdout, "CA certificate:  %s\n", filepath.Join(cfg.DataDir, "tls", "ca.pem"))
	}
	return nil
}

// readPassword reads a password: from the terminal without echo (asked
// twice), or the first line of stdin when it is piped.
func readPassword(stdin io.Reader, stdout io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stdout, "Password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdout)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stdout, "Again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdout)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", errors.New("the two passwords differ")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on stdin (pipe it in: echo 'secret-pass' | chatbox user add NAME)")
	}
	return line, nil
}

func userCmd(ctx context.Context, cfg appliance.Config, args []string, stdin io.Reader, stdout io.Writer, log *slog.Logger) error {
	if len(args) == 0 {
		return errors.New("usage: chatbox user add|passwd|del|list [NAME]")
	}
	switch want := map[string]int{"list": 1, "admin": 3}[args[0]]; {
	case want == 0 && len(args) != 2:
		return fmt.Errorf("usage: chatbox user %s NAME", args[0])
	case want != 0 && len(args) != want:
		return errors.New("usage: chatbox user list | chatbox user admin NAME yes|no")
	}
	st, core, err := appliance.OpenCore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	switch args[0] {
	case "list":
		accts, err := core.Accounts(ctx)
		if err != nil {
			return err
		}
		for _, a := range accts {
			admin := ""
			if a.Admin {
				admin = "\tadmin"
			}
			fmt.Fprintf(stdout, "%s\t%s%s\n", a.Name, a.Created.Local().Format("2006-01-02 15:04"), admin)
		}
		return nil
	case "add", "passwd":
		name := chat.Fold(args[1])
		if err := chat.ValidName(name); err != nil {
			return err
		}
		if args[0] == "passwd" {
			if _, err := core.Account(ctx, name); err != nil {
				return fmt.Errorf("no account %q (see chatbox user list)", name)
			}
		}
		pw, err := readPassword(stdin, stdout)
		if err != nil {
			return err
		}
		if args[0] == "add" {
			if err := core.CreateAccount(ctx, name, pw, false); err != nil {
				if errors.Is(err, chat.ErrExists) {
					return fmt.Errorf("account %q already exists (change its password with chatbox user passwd %s)", name, name)
				}
				return err
			}
			fmt.Fprintf(stdout, "account %s created: %s@%s on XMPP, nick %s on IRC\n", name, name, cfg.Domain, name)
			return nil
		}
		if err := core.SetPassword(ctx, name, pw); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password of %s changed\n", name)
		return nil
	case "admin":
		name := chat.Fold(args[1])
		var on bool
		switch strings.ToLower(args[2]) {
		case "yes", "on", "true":
			on = true
		case "no", "off", "false":
		default:
			return fmt.Errorf("chatbox user admin %s: say yes or no, not %q", name, args[2])
		}
		if err := core.SetAdmin(ctx, name, on); err != nil {
			if errors.Is(err, chat.ErrNotFound) {
				return fmt.Errorf("no account %q (see chatbox user list)", name)
			}
			return err
		}
		if on {
			fmt.Fprintf(stdout, "%s is now an admin of the box (from the next login)\n", name)
		} else {
			fmt.Fprintf(stdout, "%s is no longer an admin of the box (from the next login)\n", name)
		}
		return nil
	case "del":
		name := chat.Fold(args[1])
		if err := core.DeleteAccount(ctx, name); err != nil {
			if errors.Is(err, chat.ErrNotFound) {
				return fmt.Errorf("no account %q (see chatbox user list)", name)
			}
			return err
		}
		fmt.Fprintf(stdout, "account %s deleted, with its direct messages; what it wrote in rooms stays\n", name)
		return nil
	}
	return fmt.Errorf("unknown user command %q: use add, passwd, del or list", args[0])
}

func roomCmd(ctx context.Context, cfg appliance.Config, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) == 0 || (args[0] == "add" && len(args) != 2) || (args[0] == "list" && len(args) != 1) {
		return errors.New("usage: chatbox room add NAME | chatbox room list")
	}
	st, core, err := appliance.OpenCore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	switch args[0] {
	case "list":
		rooms, err := core.Rooms(ctx)
		if err != nil {
			return err
		}
		for _, r := range rooms {
			fmt.Fprintf(stdout, "#%s\t%s\n", r.Name, r.Topic)
		}
		return nil
	case "add":
		name := chat.Fold(strings.TrimPrefix(args[1], "#"))
		if err := core.CreateRoom(ctx, name, "", chat.DefaultRoomSettings()); err != nil {
			if errors.Is(err, chat.ErrExists) {
				return fmt.Errorf("room %q already exists", name)
			}
			return err
		}
		fmt.Fprintf(stdout, "room created: #%s on IRC, %s@rooms.%s on XMPP\n", name, name, cfg.Domain)
		return nil
	}
	return fmt.Errorf("unknown room command %q: use add or list", args[0])
}

// inviteCmd makes, lists and revokes invitations to create an account
// (XEP-0401 on XMPP: the link opens an XMPP app's registration).
func inviteCmd(ctx context.Context, cfg appliance.Config, args []string, stdout io.Writer, log *slog.Logger) error {
	const use = "usage: chatbox invite [--uses N] [--expire 7d] | chatbox invite list | chatbox invite revoke TOKEN"
	req := chat.InviteRequest{}
	var words []string
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !strings.HasPrefix(args[i], "-") {
			words = append(words, args[i])
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return fmt.Errorf("flag %s needs a value (%s)", args[i], use)
			}
			i++
			val = args[i]
		}
		switch name {
		case "uses":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > chat.MaxInviteUses {
				return fmt.Errorf("--uses %s: give a number of accounts from 1 to %d", val, chat.MaxInviteUses)
			}
			req.Uses = n
		case "expire":
			d, err := parseDays(val)
			if err != nil || d < time.Minute || d > chat.MaxInviteTTL {
				return fmt.Errorf("--expire %s: give a duration from 1m to %dd, such as 7d, 36h or 30m", val, chat.MaxInviteTTL/(24*time.Hour))
			}
			req.TTL = d
		default:
			return errors.New(use)
		}
	}
	switch {
	case len(words) == 0:
	case words[0] == "list" && len(words) == 1, words[0] == "revoke" && len(words) == 2:
		if req != (chat.InviteRequest{}) {
			return errors.New(use)
		}
	default:
		return errors.New(use)
	}
	st, core, err := appliance.OpenCore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if len(words) == 0 {
		inv, err := core.CreateAccountInvite(ctx, req)
		if err != nil {
			return err
		}
		uses := "one account"
		if inv.Uses > 1 {
			uses = fmt.Sprintf("%d accounts", inv.Uses)
		}
		fmt.Fprintf(stdout, "invitation for %s on %s, valid until %s; open this link with an XMPP app:\n%s\ntoken: %s\n",
			uses, cfg.Domain, inv.Expires.Local().Format("2006-01-02 15:04"), xmpp.InviteURI(cfg.Domain, inv), inv.Token)
		return nil
	}
	if words[0] == "revoke" {
		if err := core.RevokeAccountInvite(ctx, words[1]); err != nil {
			if errors.Is(err, chat.ErrNotFound) {
				return fmt.Errorf("no invitation %q (see chatbox invite list)", words[1])
			}
			return err
		}
		fmt.Fprintf(stdout, "invitation %s revoked\n", words[1])
		return nil
	}
	invs, err := core.AccountInvites(ctx)
	if err != nil {
		return err
	}
	for _, inv := range invs {
		by := inv.Creator
		if by == "" {
			by = "(box)"
		}
		fmt.Fprintf(stdout, "%s\t%d left\tuntil %s\tby %s\t%s\n", inv.Token, inv.Uses,
			inv.Expires.Local().Format("2006-01-02 15:04"), by, xmpp.InviteURI(cfg.Domain, inv))
	}
	return nil
}

// parseDays is time.ParseDuration that also takes whole days ("7d").
func parseDays(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 100000 {
			return 0, fmt.Errorf("bad number of days %q", n)
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
