// Package testbox runs the real chatbox binary for end-to-end tests: it
// builds it once per test binary (Build, from TestMain), starts one
// server per test with its own data directory, waits until it says it is
// ready, keeps its log, and stops it with SIGTERM when the test ends,
// failing the test unless it exits with status 0. The doors' test
// harnesses (services/irc, services/xmpp) add their protocol clients on
// top. Nothing here sleeps: every wait is bounded.
package testbox

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles cmd/chatbox (pkg, relative to the caller's directory)
// into a temporary directory; remove that directory with cleanup.
//
// When no test will run, it builds nothing and returns "": in a fuzzing
// worker process (go test -fuzz runs only the fuzz target there) and
// with -run '^$' (make fuzz, make bench). With CHATBOX_E2E=off (make
// test-cross, where the tests run under qemu-user and the binary could
// not) it builds nothing either, and every end-to-end test is skipped
// (Start, CLI and Skip skip the test when the binary is "").
func Build(pkg string) (bin string, cleanup func(), err error) {
	if os.Getenv(E2EEnv) == "off" {
		return "", func() {}, nil
	}
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.fuzzworker") || a == "-test.run=^$" {
			return "", func() {}, nil
		}
	}
	dir, err := os.MkdirTemp("", "chatbox-e2e-")
	if err != nil {
		return "", nil, err
	}
	bin = filepath.Join(dir, "chatbox")
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building chatbox: %v\n%s", err, out)
	}
	return bin, func() { os.RemoveAll(dir) }, nil
}

// E2EEnv is the environment variable that turns the end-to-end tests off
// ("off").
const E2EEnv = "CHATBOX_E2E"

// Skip skips the test if there is no binary to run (bin is what Build
// returned).
func Skip(t testing.TB, bin string) {
	t.Helper()
	if bin == "" {
		t.Skipf("end-to-end test skipped: no chatbox binary (%s=%s)", E2EEnv, os.Getenv(E2EEnv))
	}
}

// Proc is one running chatbox.
type Proc struct {
	Bin  string
	Data string // data directory

	cmd     *exec.Cmd
	logMu   sync.Mutex
	log     bytes.Buffer
	exited  chan struct{} // closed when the process has ended
	err     error         // Wait's result, once exited is closed
	stopped bool          // Stop ended it
}

// New is a chatbox that is not started yet, for CLI calls before Start.
func New(bin, data string) *Proc {
	return &Proc{Bin: bin, Data: data, exited: make(chan struct{})}
}

// Start runs the server with args (after --data), calls onLine with each
// line it logs (under the log's lock: keep it short), and returns once
// it logged that it is ready. The server is stopped when the test ends.
func (p *Proc) Start(t testing.TB, args []string, onLine func(line string)) {
	t.Helper()
	Skip(t, p.Bin)
	p.cmd = exec.Command(p.Bin, append([]string{"--data", p.Data}, args...)...)
	p.cmd.Env = append(os.Environ(), "CHATBOX_CONFIG=", "CHATBOX_DATA=")
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = &lockedWriter{mu: &p.logMu, w: &p.log}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start chatbox: %v", err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		isReady := false
		for sc.Scan() {
			line := sc.Text()
			p.logMu.Lock()
			p.log.WriteString(line + "\n")
			if onLine != nil {
				onLine(line)
			}
			p.logMu.Unlock()
			if !isReady && strings.Contains(line, `msg="chatbox ready"`) {
				isReady = true
				close(ready)
			}
		}
		io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.Stop(t) })
	select {
	case <-ready:
	case <-p.exited:
		t.Fatalf("chatbox exited before it was ready (%v); log:\n%s", p.err, p.LogText())
	case <-time.After(60 * time.Second):
		t.Fatalf("chatbox not ready within a minute; log:\n%s", p.LogText())
	}
}

// Locked runs f under the log's lock (to read what onLine recorded).
func (p *Proc) Locked(f func()) {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	f()
}

// CLI runs a chatbox command on the data directory and returns its output.
func (p *Proc) CLI(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	Skip(t, p.Bin)
	cmd := exec.Command(p.Bin, append([]string{"--data", p.Data}, args...)...)
	cmd.Env = append(os.Environ(), "CHATBOX_CONFIG=", "CHATBOX_DATA=")
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chatbox %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// LogText is everything the server logged so far.
func (p *Proc) LogText() string {
	p.logMu.Lock()
	defer p.logMu.Unlock()
	return p.log.String()
}

// CA is the box's certificate authority, to trust in clients.
func (p *Proc) CA(t testing.TB) *x509.CertPool {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(p.Data, "tls", "ca.pem"))
	if err != nil {
		t.Fatalf("the box's CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s/tls/ca.pem holds no certificate", p.Data)
	}
	return pool
}

// Stop ends the server with SIGTERM and checks it exits with status 0
// (it runs by itself when the test ends).
func (p *Proc) Stop(t testing.TB) {
	select {
	case <-p.exited:
		if p.stopped {
			return
		}
		t.Errorf("chatbox ended by itself during the test (%v); log:\n%s", p.err, p.LogText())
		return
	default:
	}
	p.stopped = true
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("chatbox did not stop within 30s of SIGTERM; log:\n%s", p.LogText())
		return
	}
	if p.err != nil {
		t.Errorf("chatbox exit after SIGTERM: %v (want status 0); log:\n%s", p.err, p.LogText())
	} else if t.Failed() {
		t.Logf("server log:\n%s", p.LogText())
	}
}

// Kill ends the server with SIGKILL (no shutdown, no flush: a crash or a
// power cut, as far as the data directory can tell) and waits until it
// has gone.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	select {
	case <-p.exited:
		t.Errorf("chatbox ended by itself before the kill (%v); log:\n%s", p.err, p.LogText())
		return
	default:
	}
	p.stopped = true
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Errorf("SIGKILL: %v", err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("chatbox still running 30s after SIGKILL")
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
