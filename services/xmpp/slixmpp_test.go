package xmpp

// A third-party client against the box: slixmpp (Debian's
// python3-slixmpp, which .ci/run installs) logs alice in over STARTTLS
// with SCRAM-SHA-256-PLUS (TLS 1.2, tls-unique: see the script),
// trusting the box's CA, and talks to bob, who is on IRC.

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ergochat/irc-go/ircmsg"
)

// slixmppPython is the interpreter Debian's python3-slixmpp is for.
const slixmppPython = "/usr/bin/python3"

func needSlixmpp(t *testing.T) {
	if out, err := exec.Command(slixmppPython, "-c", "import slixmpp").CombinedOutput(); err != nil {
		t.Skipf("slixmpp is not installed for %s (apt-get install python3-slixmpp): %v %s",
			slixmppPython, err, bytes.TrimSpace(out))
	}
}

func TestSlixmppClient(t *testing.T) {
	needSlixmpp(t)
	b := startBox(t, []string{"alice", "bob"})
	bob := b.ircLogin(t, "bob")
	host, port, err := net.SplitHostPort(b.xmppAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, slixmppPython, filepath.Join("testdata", "slixmpp_client.py"),
		"--jid", "alice@"+boxDomain, "--password", password("alice"),
		"--host", host, "--port", port, "--ca", filepath.Join(b.data, "tls", "ca.pem"),
		"--to", "bob@"+boxDomain, "--body", "hello from slixmpp", "--timeout", "20", "--max-tls", "1.2")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	m := bob.expect("alice's message from slixmpp", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" })
	if !strings.HasPrefix(m.Source, "alice!") || len(m.Params) != 2 || m.Params[0] != "bob" || m.Params[1] != "hello from slixmpp" {
		t.Fatalf("bob got %s %v from %s", m.Command, m.Params, m.Source)
	}
	bob.raw("PRIVMSG alice :hello back from IRC")
	if err := <-exited; err != nil {
		t.Fatalf("slixmpp client: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	// SCRAM with channel binding: slixmpp's first choice, and what the
	// box offers first.
	want := "mechanism: SCRAM-SHA-256-PLUS\nreply: hello back from IRC"
	if got := strings.TrimSpace(stdout.String()); got != want {
		t.Fatalf("slixmpp client printed %q (stderr %q), want %q", got, stderr.String(), want)
	}
}

// TestSlixmppRoom: slixmpp, over TLS 1.3 (SCRAM without channel binding:
// it knows only tls-unique), joins general@rooms and talks with bob, who
// is in #general on IRC.
func TestSlixmppRoom(t *testing.T) {
	needSlixmpp(t)
	b := startBox(t, []string{"alice", "bob"})
	bob := b.ircLogin(t, "bob")
	bob.raw("JOIN #general")
	bob.expect("join", func(m ircmsg.Message) bool { return m.Command == "366" })
	host, port, err := net.SplitHostPort(b.xmppAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, slixmppPython, filepath.Join("testdata", "slixmpp_client.py"),
		"--jid", "alice@"+boxDomain, "--password", password("alice"),
		"--host", host, "--port", port, "--ca", filepath.Join(b.data, "tls", "ca.pem"),
		"--room", "general@"+roomsDomain, "--nick", "Ally", "--body", "hello room from slixmpp", "--timeout", "20")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	m := bob.expect("alice's line in #general", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" && m.Params[0] == "#general" })
	if !strings.HasPrefix(m.Source, "alice!") || m.Params[1] != "hello room from slixmpp" {
		t.Fatalf("bob got %v from %s", m.Params, m.Source)
	}
	bob.raw("PRIVMSG #general :hello back from IRC")
	if err := <-exited; err != nil {
		t.Fatalf("slixmpp client: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	want := "mechanism: SCRAM-SHA-256\nreply: bob: hello back from IRC"
	if got := strings.TrimSpace(stdout.String()); got != want {
		t.Fatalf("slixmpp client printed %q (stderr %q), want %q", got, stderr.String(), want)
	}
}
