package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func parse(args ...string) (options, error) {
	var stderr bytes.Buffer
	return parseFlags(args, &stderr)
}

func TestOnlyLoopbackAddresses(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:6667", "127.1.2.3:6667", "[::1]:6667", "localhost:6667", "[::ffff:127.0.0.1]:6667"} {
		o, err := parse("--irc", addr)
		if err != nil {
			t.Errorf("--irc %s refused: %v", addr, err)
			continue
		}
		if !strings.Contains(o.ircAddr, "127.") && !strings.Contains(o.ircAddr, "::1") {
			t.Errorf("--irc %s resolved to %s", addr, o.ircAddr)
		}
	}
	for _, addr := range []string{"10.0.0.1:6667", "192.168.1.20:6667", "8.8.8.8:6667", "0.0.0.0:6667", "[::]:6667", "[2001:db8::1]:6667", "[fe80::1]:6667"} {
		_, err := parse("--irc", addr)
		if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("--irc %s: got %v, want a loopback-only refusal", addr, err)
		}
		_, err = parse("--xmpp", addr, "--xmpp-share", "1", "--domain", "d.local", "--insecure")
		if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
			t.Errorf("--xmpp %s: got %v, want a loopback-only refusal", addr, err)
		}
	}
	// An address of the other door is checked even when no client uses it.
	if _, err := parse("--irc", "127.0.0.1:6667", "--xmpp", "10.1.1.1:5222"); err == nil {
		t.Error("a non-loopback --xmpp accepted beside IRC-only clients")
	}
}

func TestFlagValidation(t *testing.T) {
	irc := []string{"--irc", "127.0.0.1:6667"}
	both := append([]string{"--xmpp", "127.0.0.1:5222", "--domain", "box.local", "--insecure"}, irc...)
	cases := []struct {
		args []string
		want string // in the error; "" for accepted
	}{
		{irc, ""},
		{append([]string{"--clients", "200", "--senders", "10", "--messages", "50", "--pace", "10ms"}, irc...), ""},
		{append([]string{"--xmpp-share", "0.5", "--clients", "6", "--senders", "2"}, both...), ""},
		{append([]string{"--sasl", "scram-sha-256", "--xmpp-share", "1"}, both...), ""},
		{[]string{}, "no --irc address"},
		{[]string{"--xmpp-share", "1", "--xmpp", "127.0.0.1:5222", "--insecure"}, "--domain is needed"},
		{[]string{"--xmpp-share", "0.5", "--clients", "4", "--xmpp", "127.0.0.1:5222", "--domain", "d"}, "no --irc address"},
		{append([]string{"--xmpp-share", "0.5"}, irc...), "no --xmpp address"},
		{append([]string{"--xmpp-share", "1.5"}, both...), "--xmpp-share"},
		{append([]string{"--xmpp-share", "-0.1"}, both...), "--xmpp-share"},
		{append([]string{"--xmpp-share", "NaN"}, both...), "--xmpp-share"},
		{append([]string{"--clients", "0"}, irc...), "--clients"},
		{append([]string{"--clients", "10001"}, irc...), "--clients"},
		{append([]string{"--clients", "5", "--senders", "6"}, irc...), "--senders"},
		{append([]string{"--senders", "0"}, irc...), "--senders"},
		{append([]string{"--messages", "0"}, irc...), "--messages"},
		{append([]string{"--messages", "100001"}, irc...), "--messages"},
		{append([]string{"--clients", "10000", "--senders", "1000", "--messages", "100000"}, irc...), "deliveries: at most"},
		{append([]string{"--pace", "-1s"}, irc...), "--pace"},
		{append([]string{"--pace", "2m"}, irc...), "--pace"},
		{append([]string{"--timeout", "0s"}, irc...), "--timeout"},
		{append([]string{"--timeout", "25h"}, irc...), "--timeout"},
		{append([]string{"--drain", "0s"}, irc...), "--drain"},
		{append([]string{"--connect-parallel", "0"}, irc...), "--connect-parallel"},
		{append([]string{"--join-timeout", "0s"}, irc...), "--join-timeout"},
		{append([]string{"--timeout", "30s"}, irc...), ""}, // --drain and --join-timeout shrink to it
		{append([]string{"--room", "Bad Room"}, irc...), "--room"},
		{append([]string{"--room", "#kitchen"}, irc...), ""},
		{append([]string{"--accounts-prefix", "9u"}, irc...), "--accounts-prefix"},
		{append([]string{"--accounts-prefix", strings.Repeat("a", 27)}, irc...), "--accounts-prefix"},
		{append([]string{"--password-prefix", ""}, irc...), "--password-prefix"},
		{append([]string{"--xmpp-share", "1", "--ca", "x.pem"}, both...), "not both"},
		{append([]string{"--xmpp-share", "1", "--sasl", "digest-md5"}, both...), "--sasl"},
		{append([]string{"--xmpp-share", "1", "--tls-groups", "x25519, P256"}, both...), ""},
		{append([]string{"--xmpp-share", "1", "--tls-groups", "x448"}, both...), "--tls-groups"},
		{append([]string{"--xmpp-share", "1", "--tls-groups", ""}, both...), ""},
		{append([]string{"--pid", "-3"}, irc...), "--pid"},
		{append([]string{"--pid", "999999999"}, irc...), "--pid"},
		{append([]string{"--pid", strconv.Itoa(os.Getpid())}, irc...), ""},
		{append([]string{"--smaps", os.TempDir()}, irc...), "--smaps needs --pid"},
		{append([]string{"--pid", strconv.Itoa(os.Getpid()), "--smaps", "/nonexistent-chatbench"}, irc...), "existing folder"},
		{append([]string{"--pid", strconv.Itoa(os.Getpid()), "--smaps", os.TempDir()}, irc...), ""},
		{append([]string{"--irc", "127.0.0.1"}, irc[:0]...), "want host:port"},
		{append([]string{"--irc", "127.0.0.1:0"}, irc[:0]...), "port"},
		{append([]string{"extra"}, irc...), "unexpected argument"},
		{append(irc, "extra"), "unexpected argument"},
		{append([]string{"--irc-login", "nick"}, irc...), ""},
		{append([]string{"--irc-login", "sasl"}, irc...), "--irc-login"},
		{append([]string{"--xmpp-register", "--xmpp-share", "1"}, both...), ""},
		{append([]string{"--xmpp-register"}, irc...), "--xmpp-register without XMPP clients"},
		{[]string{"--make-accounts", "/tmp/x"}, "needs --chatbox"},
		{[]string{"--make-accounts", "/tmp/x", "--chatbox", "/bin/chatbox", "--clients", "20"}, ""},
		{[]string{"--seed", "/tmp/x"}, ""},
		{[]string{"--seed", "/tmp/x", "--seed-accounts", "0"}, "--seed-accounts"},
		{[]string{"--seed", "/tmp/x", "--seed-accounts", "1000001"}, "--seed-accounts"},
		{[]string{"--seed", "/tmp/x", "--seed-accounts", "100000", "--accounts-prefix", strings.Repeat("a", 26)}, "too long"},
		{[]string{"--seed", "/tmp/x", "--seed-messages", "-1"}, "--seed-messages"},
		{[]string{"--seed", "/tmp/x", "--seed-messages", "0"}, ""},
		{[]string{"--seed", "/tmp/x", "--seed-rooms", "0"}, "--seed-rooms"},
		{[]string{"--seed", "/tmp/x", "--startup", "/tmp/x"}, "separate steps"},
		{[]string{"--seed", "/tmp/x", "--make-accounts", "/tmp/x"}, "separate steps"},
		{[]string{"--startup", "/tmp/x"}, "needs --chatbox"},
		{[]string{"--startup", "/tmp/x", "--chatbox", "/bin/chatbox"}, ""},
		{[]string{"--startup", "/tmp/x", "--chatbox", "/bin/chatbox", "--runs", "0"}, "--runs"},
		{[]string{"--startup", "/tmp/x", "--chatbox", "/bin/chatbox", "--start-timeout", "6m"}, "--start-timeout"},
	}
	for _, c := range cases {
		_, err := parse(c.args...)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: refused: %v", c.args, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q: got %v, want an error about %q", c.args, err, c.want)
		}
	}
}

func TestDefaultsAndDerived(t *testing.T) {
	o, err := parse("--irc", "127.0.0.1:6667", "--xmpp", "127.0.0.1:5222", "--domain", "box.local", "--insecure",
		"--clients", "200", "--xmpp-share", "0.5", "--senders", "10")
	if err != nil {
		t.Fatal(err)
	}
	if o.timeout != 5*time.Minute || o.pace != 0 || o.room != "general" || o.sasl != "plain" {
		t.Errorf("defaults: timeout %s pace %s room %q sasl %q", o.timeout, o.pace, o.room, o.sasl)
	}
	if o.mucDomain != "rooms.box.local" {
		t.Errorf("muc domain %q", o.mucDomain)
	}
	if o.xmppClients() != 100 {
		t.Errorf("xmpp clients %d, want 100", o.xmppClients())
	}
	xmppSenders := 0
	seen := map[int]bool{}
	for s := range o.senders {
		i := o.senderIndex(s)
		if seen[i] || i < 0 || i >= o.clients {
			t.Fatalf("sender %d is client %d", s, i)
		}
		seen[i] = true
		if i < o.xmppClients() {
			xmppSenders++
		}
	}
	if xmppSenders != 5 {
		t.Errorf("%d of 10 senders on XMPP with half the clients, want 5", xmppSenders)
	}
	if name, pw := o.account(7); name != "u0007" || pw != "pw-u0007" {
		t.Errorf("account 7: %s / %s", name, pw)
	}
	if o.clients = 6; o.xmppClients() != 3 {
		t.Errorf("6 clients at 0.5: %d on XMPP", o.xmppClients())
	}
}

func TestHelpIsNotAnError(t *testing.T) {
	var out, errb bytes.Buffer
	if code := realMain([]string{"--help"}, &out, &errb); code != 0 {
		t.Fatalf("--help exits %d", code)
	}
	if !strings.Contains(errb.String(), "--make-accounts") {
		t.Errorf("--help does not list the flags:\n%s", errb.String())
	}
	if code := realMain([]string{"--irc", "10.0.0.1:6667"}, &out, &errb); code != 2 {
		t.Errorf("a refused address exits %d, want 2", code)
	}
}
