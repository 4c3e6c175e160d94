package main

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"chatbox/internal/testbox"
)

// binary is the real chatbox, built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	// testbox.Build builds nothing when no test will run (fuzzing
	// workers, -run '^$').
	bin, cleanup, err := testbox.Build(".")
	if err != nil {
		panic(err)
	}
	binary = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}

type result struct {
	code   int
	stdout string
	stderr string
}

// chatbox runs the binary with args in dir, stdin as given.
func chatbox(t *testing.T, dir, stdin string, args ...string) result {
	t.Helper()
	testbox.Skip(t, binary)
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHATBOX_CONFIG=", "CHATBOX_DATA=")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

func must(t *testing.T, r result, wantCode int, wantOut string) {
	t.Helper()
	if r.code != wantCode || !strings.Contains(r.stdout+r.stderr, wantOut) {
		t.Fatalf("exit %d (want %d), output does not hold %q:\nstdout: %s\nstderr: %s", r.code, wantCode, wantOut, r.stdout, r.stderr)
	}
}

// server is a running chatbox.
type server struct {
	cmd  *exec.Cmd
	logs chan string
	all  *bytes.Buffer
}

func startServer(t *testing.T, dir string, args ...string) *server {
	t.Helper()
	testbox.Skip(t, binary)
	args = append([]string{"--set", "irc.tls_listen=127.0.0.1:0", "--set", "irc.plain_listen=127.0.0.1:0",
		"--set", "xmpp.listen=127.0.0.1:0", "--set", "xmpp.tls_listen=127.0.0.1:0",
		"--set", "calls.listen=127.0.0.1:0", "--set", "upload.listen=127.0.0.1:0",
		"--set", "web.listen=127.0.0.1:0"}, args...)
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHATBOX_CONFIG=", "CHATBOX_DATA=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, logs: make(chan string, 1000), all: &bytes.Buffer{}}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.logs <- sc.Text()
		}
		close(s.logs)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	s.waitLog(t, "chatbox ready")
	return s
}

func (s *server) waitLog(t *testing.T, want string) string {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-s.logs:
			if !ok {
				t.Fatalf("server exited before logging %q; log:\n%s", want, s.all)
			}
			s.all.WriteString(line + "\n")
			if strings.Contains(line, want) {
				return line
			}
		case <-deadline:
			t.Fatalf("no %q in the log within a minute; log:\n%s", want, s.all)
		}
	}
}

func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.waitLog(t, "chatbox stopped")
	for range s.logs {
	}
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("server exit after SIGTERM: %v", err)
	}
}

var fingerprintRe = regexp.MustCompile(`([0-9A-F]{2}:){31}[0-9A-F]{2}`)

func TestServerLifecycle(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "chatbox-data", "chatbox.db")); err != nil {
		t.Fatalf("no database in the default data folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "chatbox-data", "tls", "ca.pem")); err != nil {
		t.Fatalf("no CA made on first start: %v", err)
	}
	fp1 := fingerprintRe.FindString(srv.all.String())
	if fp1 == "" {
		t.Fatalf("CA fingerprint not logged:\n%s", srv.all)
	}
	// The commands work while the server runs.
	must(t, chatbox(t, dir, "s3cret-pass\n", "user", "add", "alice"), 0, "account alice created")
	must(t, chatbox(t, dir, "", "user", "list"), 0, "alice")
	must(t, chatbox(t, dir, "", "room", "list"), 0, "#general")
	must(t, chatbox(t, dir, "", "backup", filepath.Join(dir, "b.tgz")), 0, "backup written")
	must(t, chatbox(t, dir, "", "restore", filepath.Join(dir, "b.tgz")), 1, "in use by another chatbox")
	// A second server on the same data is refused.
	must(t, chatbox(t, dir, ""), 1, "in use by another chatbox")
	srv.stop(t)

	srv = startServer(t, dir)
	if fp2 := fingerprintRe.FindString(srv.all.String()); fp2 != fp1 {
		t.Fatalf("second start made a new CA: %s, was %s", fp2, fp1)
	}
	srv.stop(t)
	must(t, chatbox(t, dir, "", "tls"), 0, fp1)
}

func TestUserAndRoomCommands(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "d")
	must(t, chatbox(t, dir, "s3cret-pass\n", "--data", data, "user", "add", "Bob"), 0, "account bob created")
	must(t, chatbox(t, dir, "s3cret-pass\n", "--data", data, "user", "add", "bob"), 1, "already exists")
	must(t, chatbox(t, dir, "s3cret-pass\n", "--data", data, "user", "add", "9lives"), 1, "must start with a letter")
	must(t, chatbox(t, dir, "short\n", "--data", data, "user", "add", "carol"), 1, "at least 8 characters")
	must(t, chatbox(t, dir, "", "--data", data, "user", "add", "carol"), 1, "no password on stdin")
	must(t, chatbox(t, dir, "another-pass\n", "--data", data, "user", "passwd", "bob"), 0, "password of bob changed")
	must(t, chatbox(t, dir, "another-pass\n", "--data", data, "user", "passwd", "nobody"), 1, `no account "nobody"`)
	must(t, chatbox(t, dir, "", "--data", data, "user", "del", "nobody"), 1, `no account "nobody"`)
	must(t, chatbox(t, dir, "", "--data", data, "room", "add", "#Lobby"), 0, "#lobby on IRC")
	must(t, chatbox(t, dir, "", "--data", data, "room", "add", "lobby"), 1, "already exists")
	must(t, chatbox(t, dir, "", "--data", data, "room", "list"), 0, "#lobby")
	must(t, chatbox(t, dir, "", "--data", data, "user", "admin", "bob", "yes"), 0, "bob is now an admin")
	must(t, chatbox(t, dir, "", "--data", data, "user", "list"), 0, "admin")
	must(t, chatbox(t, dir, "", "--data", data, "user", "admin", "bob", "maybe"), 1, "say yes or no")
	must(t, chatbox(t, dir, "", "--data", data, "user", "admin", "nobody", "yes"), 1, `no account "nobody"`)
	must(t, chatbox(t, dir, "", "--data", data, "user", "del", "bob"), 0, "account bob deleted")
	r := chatbox(t, dir, "", "--data", data, "user", "list")
	if r.code != 0 || strings.Contains(r.stdout, "bob") {
		t.Fatalf("bob still listed: %+v", r)
	}
	// CHATBOX_DATA is honoured like --data.
	cmd := exec.Command(binary, "room", "list")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHATBOX_DATA="+data, "CHATBOX_CONFIG=")
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "#lobby") {
		t.Fatalf("CHATBOX_DATA: %v %s", err, out)
	}
	must(t, chatbox(t, dir, "", "frobnicate"), 2, "unknown command")
	must(t, chatbox(t, dir, "", "--bogus"), 2, "unknown flag")
	must(t, chatbox(t, dir, "", "version"), 0, "chatbox ")
}

func TestBackupRestore(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a")
	must(t, chatbox(t, dir, "s3cret-pass\n", "--data", a, "user", "add", "dora"), 0, "created")
	must(t, chatbox(t, dir, "", "--data", a, "room", "add", "kitchen"), 0, "created")
	fp := chatbox(t, dir, "", "--data", a, "tls")
	must(t, chatbox(t, dir, "", "--data", a, "backup", filepath.Join(dir, "box.tgz")), 0, "backup written")
	b := filepath.Join(dir, "b")
	must(t, chatbox(t, dir, "", "--data", b, "restore", filepath.Join(dir, "box.tgz")), 0, "restored")
	must(t, chatbox(t, dir, "", "--data", b, "user", "list"), 0, "dora")
	must(t, chatbox(t, dir, "", "--data", b, "room", "list"), 0, "#kitchen")
	must(t, chatbox(t, dir, "", "--data", b, "tls"), 0, fingerprintRe.FindString(fp.stdout))
	os.WriteFile(filepath.Join(dir, "junk.tgz"), []byte("not an archive"), 0o600)
	must(t, chatbox(t, dir, "", "--data", b, "restore", filepath.Join(dir, "junk.tgz")), 1, "not a chatbox backup")
	must(t, chatbox(t, dir, "", "--data", b, "user", "list"), 0, "dora")
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("domain = \"box.local\"\n[irc]\nplain_listen = [\"127.0.0.1:0\"]\n"), 0o600)
	must(t, chatbox(t, dir, "", "check-config", good), 0, "ok")
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("domain = \"box.local\"\n\n[irc]\nplain_lsten = [\"127.0.0.1:0\"]\n"), 0o600)
	must(t, chatbox(t, dir, "", "check-config", bad), 1, "bad.toml:4")
	must(t, chatbox(t, dir, "", "--config", bad, "user", "list"), 1, "plain_lsten")
	must(t, chatbox(t, dir, "", "--set", "irc.nope=1", "user", "list"), 1, "irc.nope")
	// --set reaches the running server's settings.
	srv := startServer(t, dir, "--set", "domain=example.local", "--set", "rooms.default=[\"hall\"]")
	srv.stop(t)
	must(t, chatbox(t, dir, "", "room", "list"), 0, "#hall")
}

func TestInviteCommand(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "d")
	set := []string{"--data", data, "--set", "domain=box.example"}
	r := chatbox(t, dir, "", append(set, "invite", "--uses", "2", "--expire=3d")...)
	must(t, r, 0, "xmpp:box.example?register;preauth=")
	m := regexp.MustCompile(`xmpp:box\.example\?register;preauth=([a-z2-7]{26})\ntoken: ([a-z2-7]{26})\n`).FindStringSubmatch(r.stdout)
	if m == nil || m[1] != m[2] || !strings.Contains(r.stdout, "2 accounts") {
		t.Fatalf("invite output: %q", r.stdout)
	}
	must(t, chatbox(t, dir, "", append(set, "invite", "list")...), 0, m[1]+"\t2 left")
	must(t, chatbox(t, dir, "", append(set, "invite", "--uses", "0")...), 1, "from 1 to 1000")
	must(t, chatbox(t, dir, "", append(set, "invite", "--expire", "10s")...), 1, "such as 7d")
	must(t, chatbox(t, dir, "", append(set, "invite", "frobnicate")...), 1, "usage: chatbox invite")
	must(t, chatbox(t, dir, "", append(set, "invite", "revoke", m[1])...), 0, "revoked")
	must(t, chatbox(t, dir, "", append(set, "invite", "revoke", m[1])...), 1, "no invitation")
	if r := chatbox(t, dir, "", append(set, "invite", "list")...); r.code != 0 || strings.Contains(r.stdout, m[1]) {
		t.Fatalf("revoked invitation listed: %+v", r)
	}
}

// TestWebAdminSetupCode: the running box serves the web admin, logs a
// setup code and writes it for `chatbox setup-code`; the web admin sends
// every page to /setup until its password is set.
func TestWebAdminSetupCode(t *testing.T) {
	dir := t.TempDir()
	must(t, chatbox(t, dir, "", "setup-code"), 1, "no setup code")
	srv := startServer(t, dir)
	logs := srv.all.String()
	code := regexp.MustCompile(`msg="web admin setup code" code=([a-z0-9]+)`).FindStringSubmatch(logs)
	addr := regexp.MustCompile(`msg=listening door=web addr=(\S+)`).FindStringSubmatch(logs)
	if code == nil || addr == nil || len(code[1]) < 8 {
		t.Fatalf("no web listener or setup code in the log:\n%s", logs)
	}
	must(t, chatbox(t, dir, "", "setup-code"), 0, code[1])
	fi, err := os.Stat(filepath.Join(dir, "chatbox-data", "webadmin-setup-code"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("setup code file: %v %v", fi, err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get("http://" + addr[1] + "/admin/people")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/admin/setup" {
		t.Fatalf("GET /admin/people before setup: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	srv.stop(t)
}
