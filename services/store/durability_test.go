//go:build unix

package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"chatbox/services/chat"
)

// childEnv names the database a re-executed test binary appends to.
const childEnv = "CHATBOX_STORE_CHILD"

// TestDurability kills a process that is appending messages (SIGKILL: no
// Close, no deferred code, no flush) and checks that every message it
// acknowledged is in the database afterwards.
func TestDurability(t *testing.T) {
	const want = 200
	path := filepath.Join(t.TempDir(), "chatbox.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot re-execute the test binary: %v", err)
	}

	var acked []string
	lines := bufio.NewScanner(stdout)
	read := func() bool {
		if !lines.Scan() {
			return false
		}
		if id, ok := strings.CutPrefix(lines.Text(), "ack "); ok {
			acked = append(acked, id)
		}
		return true
	}
	for len(acked) < want && read() {
	}
	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := len(acked)
	for read() { // acks written before the child died count too
	}
	err = cmd.Wait()
	if killedAt < want {
		t.Fatalf("child stopped after %d acks (%v):\n%s", killedAt, err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v\n%s", err, stderr.String())
	}

	s := openTest(t, path)
	if err := s.QuickCheck(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range acked {
		if _, err := s.MessageByID(context.Background(), id); err != nil {
			t.Errorf("acknowledged message %s lost: %v", id, err)
		}
	}
	t.Logf("%d acknowledged messages survived SIGKILL (%d in the database)", len(acked),
		count(t, s, `SELECT count(*) FROM messages`))
}

// TestDurabilityChild is the appending process of TestDurability; it does
// nothing unless run by it. It appends until it is killed, one message at a
// time and, every tenth round, several at once, and prints "ack <id>" once
// AppendMessage returned nil.
func TestDurabilityChild(t *testing.T) {
	path := os.Getenv(childEnv)
	if path == "" {
		t.Skip("run by TestDurability")
	}
	ctx := context.Background()
	s, err := Open(ctx, path, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := s.CreateAccount(ctx, chat.Account{Name: "bob"}, chat.Credentials{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	appendOne := func(id string) {
		m := &chat.Message{ID: id, Room: "general", From: "alice", Body: strings.Repeat("durable ", 8)}
		if err := s.AppendMessage(ctx, m, []string{"bob"}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		mu.Lock()
		fmt.Fprintf(os.Stdout, "ack %s\n", id)
		mu.Unlock()
	}
	for round := 0; ; round++ {
		if round%10 != 0 {
			appendOne(fmt.Sprint("seq-", round))
			continue
		}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() { appendOne(fmt.Sprintf("par-%d-%d", round, g)) })
		}
		wg.Wait()
	}
}
