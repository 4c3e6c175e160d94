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

// slixmppRun is the slixmpp client script running as alice against the
// box with extra arguments; wait returns its stdout once it exited 0.
type slixmppRun struct {
	t              *testing.T
	stdout, stderr bytes.Buffer
	exited         chan error
}

func startSlixmpp(t *testing.T, b *box, args ...string) *slixmppRun {
	t.Helper()
	host, port, err := net.SplitHostPort(b.xmppAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	r := &slixmppRun{t: t, exited: make(chan error, 1)}
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, slixmppPython, append([]string{filepath.Join("testdata", "slixmpp_client.py"),
		"--jid", "alice@" + boxDomain, "--password", password("alice"),
		"--host", host, "--port", port, "--ca", filepath.Join(b.data, "tls", "ca.pem"), "--timeout", "20"}, args...)...)
	cmd.Stdout, cmd.Stderr = &r.stdout, &r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.exited <- cmd.Wait() }()
	return r
}

// expectOutput waits for the script and checks what it printed.
func (r *slixmppRun) expectOutput(want string) {
	r.t.Helper()
	if err := <-r.exited; err != nil {
		r.t.Fatalf("slixmpp client: %v\nstdout:\n%s\nstderr:\n%s", err, &r.stdout, &r.stderr)
	}
	if got := strings.TrimSpace(r.stdout.String()); got != want {
		r.t.Fatalf("slixmpp client printed %q (stderr %q), want %q", got, r.stderr.String(), want)
	}
}

func TestSlixmppClient(t *testing.T) {
	needSlixmpp(t)
	b := startBox(t, []string{"alice", "bob"})
	bob := b.ircLogin(t, "bob")
	run := startSlixmpp(t, b, "--to", "bob@"+boxDomain, "--body", "hello from slixmpp", "--max-tls", "1.2")

	m := bob.expect("alice's message from slixmpp", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" })
	if !strings.HasPrefix(m.Source, "alice!") || len(m.Params) != 2 || m.Params[0] != "bob" || m.Params[1] != "hello from slixmpp" {
		t.Fatalf("bob got %s %v from %s", m.Command, m.Params, m.Source)
	}
	bob.raw("PRIVMSG alice :hello back from IRC")
	// SCRAM with channel binding: slixmpp's first choice, and what the
	// box offers first.
	run.expectOutput("mechanism: SCRAM-SHA-256-PLUS\nreply: hello back from IRC")
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
	run := startSlixmpp(t, b, "--room", "general@"+roomsDomain, "--nick", "Ally", "--body", "hello room from slixmpp")
	m := bob.expect("alice's line in #general", func(m ircmsg.Message) bool { return m.Command == "PRIVMSG" && m.Params[0] == "#general" })
	if !strings.HasPrefix(m.Source, "alice!") || m.Params[1] != "hello room from slixmpp" {
		t.Fatalf("bob got %v from %s", m.Params, m.Source)
	}
	bob.raw("PRIVMSG #general :hello back from IRC")
	run.expectOutput("mechanism: SCRAM-SHA-256\nreply: bob: hello back from IRC")
}
