// A real third-party client against the IRC door: irssi, run in a
// detached tmux session, connects over TLS trusting the box's CA (irssi's
// tls_cafile, tls_verify), logs in with SASL PLAIN and autojoins
// #general; messages then go both ways between it and an ircevent
// client. What irssi shows is read with tmux capture-pane.
//
// Skipped when irssi or tmux is not installed (.ci/run installs both).
// Left out: irssi's other login paths (PASS, NickServ), covered by the
// raw-client tests in e2e_test.go.
package irc_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tmuxSession is a detached tmux server of its own (its socket in a temp
// dir) running one program.
type tmuxSession struct {
	t    *testing.T
	bin  string
	sock string
}

func (s *tmuxSession) run(args ...string) (string, error) {
	cmd := exec.Command(s.bin, append([]string{"-S", s.sock}, args...)...)
	env := os.Environ()
	if os.Getenv("TERM") == "" {
		env = append(env, "TERM=xterm-256color")
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// screen is what the program shows now.
func (s *tmuxSession) screen() string {
	out, err := s.run("capture-pane", "-p", "-J", "-t", "irssi")
	if err != nil {
		return fmt.Sprintf("(capture-pane: %v: %s)", err, out)
	}
	return out
}

// keys types a line into the program.
func (s *tmuxSession) keys(line string) {
	s.t.Helper()
	if out, err := s.run("send-keys", "-t", "irssi", "-l", line); err != nil {
		s.t.Fatalf("tmux send-keys: %v: %s", err, out)
	}
	if out, err := s.run("send-keys", "-t", "irssi", "Enter"); err != nil {
		s.t.Fatalf("tmux send-keys Enter: %v: %s", err, out)
	}
}

// waitScreen polls the screen until it shows text, for at most waitLimit.
func (s *tmuxSession) waitScreen(text string) {
	s.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if strings.Contains(s.screen(), text) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("irssi did not show %q within %s; screen:\n%s", text, waitLimit, s.screen())
}

// window makes irssi show the window of item (a channel or a nick),
// typing cmd again until its prompt shows the item: irssi may not have
// made the window yet when the server has already done its part.
func (s *tmuxSession) window(cmd, item string) {
	s.t.Helper()
	prompt := "[" + item + "]"
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		s.keys(cmd)
		for range 10 {
			if strings.Contains(s.screen(), prompt) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	s.t.Fatalf("irssi did not show the window of %s within %s; screen:\n%s", item, waitLimit, s.screen())
}

func TestIrssi(t *testing.T) {
	irssi, err1 := exec.LookPath("irssi")
	tmux, err2 := exec.LookPath("tmux")
	if err1 != nil || err2 != nil {
		t.Skip("irssi and tmux are needed for this test (apt-get install irssi tmux; .ci/run installs them)")
	}
	t.Parallel()
	b := startBox(t, []string{"alice", "bob"})
	bob := b.evLogin(t, "bob")
	join(bob, "#general")

	_, port, err := net.SplitHostPort(b.tlsAddr)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	// irssi checks the certificate's DNS names, not IP addresses: it
	// connects to localhost, which the box's certificate covers.
	config := fmt.Sprintf(`servers = (
  {
    address = "localhost";
    chatnet = "box";
    port = "%s";
    use_tls = "yes";
    tls_verify = "yes";
    tls_cafile = "%s";
    autoconnect = "yes";
  }
);
chatnets = {
  box = {
    type = "IRC";
    sasl_mechanism = "PLAIN";
    sasl_username = "alice";
    sasl_password = "%s";
  };
};
channels = ( { name = "#general"; chatnet = "box"; autojoin = "yes"; } );
settings = {
  core = { real_name = "Alice in irssi"; user_name = "alice"; nick = "alice"; resolve_prefer_ipv6 = "no"; };
  "fe-common/core" = { autocreate_windows = "yes"; };
  "irc/core" = { cmd_queue_speed = "10msec"; cmds_max_at_once = "20"; };
};
`, port, filepath.Join(b.data, "tls", "ca.pem"), password("alice"))
	if err := os.WriteFile(filepath.Join(home, "config"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &tmuxSession{t: t, bin: tmux, sock: filepath.Join(t.TempDir(), "tmux.sock")}
	if out, err := s.run("new-session", "-d", "-s", "irssi", "-x", "200", "-y", "50", irssi+" --home="+home); err != nil {
		t.Fatalf("tmux new-session: %v: %s", err, out)
	}
	t.Cleanup(func() { s.run("kill-server") })

	// irssi connects, logs in and joins: bob sees alice arrive.
	if _, err := bob.await("irssi's JOIN", isFrom("alice", "JOIN", "#general")); err != nil {
		t.Fatalf("%v\nirssi's screen:\n%s", err, s.screen())
	}
	s.window("/window goto #general", "#general")

	// From irssi to the ircevent client.
	s.keys("/msg #general hello from irssi")
	if _, err := bob.await("irssi's message", isFrom("alice", "PRIVMSG", "#general", "hello from irssi")); err != nil {
		t.Fatalf("%v\nirssi's screen:\n%s", err, s.screen())
	}
	// From the ircevent client to irssi.
	bob.send("PRIVMSG #general :hello from ircevent")
	s.waitScreen("hello from ircevent")
	// A direct message too, in a query window.
	s.window("/query bob", "bob")
	bob.send("PRIVMSG alice :psst, alice")
	s.waitScreen("psst, alice")
}
