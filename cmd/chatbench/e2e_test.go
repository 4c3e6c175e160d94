package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEndToEnd builds chatbox, makes six accounts, starts the server on
// loopback and runs the tool half on IRC, half on XMPP (both SASL
// mechanisms): every delivery must arrive. No timing is asserted.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs chatbox")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "chatbox")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "../chatbox")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building chatbox: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")

	mk, err := parse("--make-accounts", data, "--chatbox", bin, "--clients", "6")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := makeAccounts(ctx, &mk, &out); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := makeAccounts(ctx, &mk, &out); err != nil || !strings.Contains(out.String(), "0 created, 6 already there") {
		t.Fatalf("second --make-accounts: %v, %q", err, out.String())
	}

	plainData := filepath.Join(dir, "plain")
	if err := os.CopyFS(plainData, os.DirFS(data)); err != nil {
		t.Fatal(err)
	}

	srv := startChatbox(t, ctx, bin, data)
	for _, sasl := range []string{"plain", "scram-sha-256"} {
		t.Run(sasl, func(t *testing.T) {
			o, err := parse("--irc", srv.irc, "--xmpp", srv.xmpp, "--domain", "bench.local",
				"--ca", filepath.Join(data, "tls", "ca.pem"), "--sasl", sasl,
				"--clients", "6", "--xmpp-share", "0.5", "--senders", "2", "--messages", "5",
				"--pid", strconv.Itoa(srv.cmd.Process.Pid), "--timeout", "90s", "--join-timeout", "20s")
			if err != nil {
				t.Fatal(err)
			}
			rep, err := run(ctx, o, nil)
			if err != nil {
				t.Fatalf("run: %v\nreport: %+v\nserver log:\n%s", err, rep, srv.log())
			}
			if rep.IRCClients != 3 || rep.XMPPClients != 3 || rep.IRCSenders != 1 || rep.XMPPSenders != 1 {
				t.Errorf("clients %d IRC + %d XMPP, senders %d + %d; want 3+3 and 1+1", rep.IRCClients, rep.XMPPClients, rep.IRCSenders, rep.XMPPSenders)
			}
			if !rep.Complete || rep.MessagesSent != 10 || rep.DeliveriesExpected != 60 || rep.Deliveries != 60 ||
				rep.Missing != 0 || rep.Duplicates != 0 || rep.Errors != 0 {
				t.Errorf("not every delivery arrived: %+v", rep)
			}
			if rep.ServerRSSIdleKB == nil || rep.CPUUSPerDelivery == nil || rep.DiskWriteBytes == nil ||
				rep.ServerLoginCPUMS == nil || rep.ServerJoinCPUMS == nil {
				t.Errorf("no /proc figures with --pid: %+v", rep)
			}
			if rep.LoginWallMS <= 0 || rep.JoinWallMS <= 0 || rep.ConnectWallMS != round(rep.LoginWallMS+rep.JoinWallMS, 3) ||
				rep.JoinMaxMS <= 0 || rep.JoinMaxMS > rep.JoinWallMS {
				t.Errorf("login %v ms, joins %v ms (one at most %v ms), connect %v ms: want both phases timed, the sum the connect time",
					rep.LoginWallMS, rep.JoinWallMS, rep.JoinMaxMS, rep.ConnectWallMS)
			}
		})
	}

	// --tls-groups x25519: a client without a post-quantum key share.
	o, err := parse("--xmpp", srv.xmpp, "--domain", "bench.local", "--ca", filepath.Join(data, "tls", "ca.pem"),
		"--tls-groups", "x25519", "--clients", "3", "--xmpp-share", "1", "--senders", "1", "--messages", "5",
		"--timeout", "90s", "--join-timeout", "20s")
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := run(ctx, o, nil); err != nil || !rep.Complete || rep.Deliveries != 15 {
		t.Fatalf("--tls-groups x25519: %v, %+v\nserver log:\n%s", err, rep, srv.log())
	}

	// --xmpp-plaintext: refused with a hint by a server that wants TLS,
	// complete against one with xmpp.allow_plaintext.
	plainArgs := func(xmpp string) []string {
		return []string{"--xmpp", xmpp, "--domain", "bench.local", "--xmpp-plaintext",
			"--clients", "4", "--xmpp-share", "1", "--senders", "2", "--messages", "5",
			"--timeout", "90s", "--join-timeout", "20s"}
	}
	o, err = parse(plainArgs(srv.xmpp)...)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := run(ctx, o, nil); err == nil || !strings.Contains(err.Error(), "allow_plaintext") {
		t.Errorf("--xmpp-plaintext against a server that wants TLS: err %v (report %+v), want the allow_plaintext hint", err, rep)
	}
	plain := startChatbox(t, ctx, bin, plainData, "--set", "xmpp.allow_plaintext=true")
	if o, err = parse(plainArgs(plain.xmpp)...); err != nil {
		t.Fatal(err)
	}
	rep, err := run(ctx, o, nil)
	if err != nil || !rep.Complete || rep.Deliveries != 40 || rep.Errors != 0 {
		t.Fatalf("--xmpp-plaintext: %v, %+v\nserver log:\n%s", err, rep, plain.log())
	}
}

type chatboxServer struct {
	cmd       *exec.Cmd
	irc, xmpp string
	mu        sync.Mutex
	logBuf    bytes.Buffer
}

func (s *chatboxServer) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logBuf.String()
}

var listeningRe = regexp.MustCompile(`msg=listening door=(irc|xmpp) addr=(\S+)`)

// startChatbox runs chatbox on loopback (ports picked by the system, the
// rate limits raised) and returns once it is ready.
func startChatbox(t *testing.T, ctx context.Context, bin, data string, extra ...string) *chatboxServer {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--data", data}, extra...)...)
	cmd.Args = append(cmd.Args,
		"--set", "domain=bench.local", "--set", "hw.backend=sim",
		"--set", "xmpp.listen=127.0.0.1:0", "--set", "xmpp.tls_listen=[]",
		"--set", "irc.plain_listen=127.0.0.1:0", "--set", "irc.tls_listen=[]",
		"--set", "web.listen=", "--set", "upload.listen=[]", "--set", "calls.listen=[]",
		"--set", "limits.messages_per_second=100000", "--set", "limits.message_burst=100000",
		"--set", "limits.connections_per_address=100000", "--set", "limits.sessions_per_account=1000")
	cmd.Env = append(os.Environ(), "CHATBOX_CONFIG=", "CHATBOX_DATA=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &chatboxServer{cmd: cmd}
	ready := make(chan struct{})
	go func() { // reads the log to its end, so the server never blocks on it
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logBuf.WriteString(line + "\n")
			if m := listeningRe.FindStringSubmatch(line); m != nil {
				if m[1] == "irc" {
					s.irc = m[2]
				} else {
					s.xmpp = m[2]
				}
			}
			s.mu.Unlock()
			if strings.Contains(line, "chatbox ready") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatalf("chatbox not ready within a minute; log:\n%s", s.log())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.irc == "" || s.xmpp == "" {
		t.Fatalf("no listening addresses in the log:\n%s", s.logBuf.String())
	}
	return s
}
