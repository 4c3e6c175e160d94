package appliance

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatbox/services/chat"
)

// TestCheckStore: the background check passes on a sound database, stays
// quiet when the box stops first, and reports a database damaged past
// its schema (which Open no longer reads) with what to do.
func TestCheckStore(t *testing.T) {
	ctx := context.Background()
	cfg := Defaults("testhost")
	cfg.DataDir = t.TempDir()
	var logs lockedBuffer
	open := func() *Box {
		t.Helper()
		b, err := Open(ctx, Options{Config: cfg, Log: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	box := open()
	for i := range 300 {
		m := &chat.Message{ID: fmt.Sprint("m", i), Room: "general", From: "alice", Time: time.Unix(int64(i), 0), Body: strings.Repeat("x", 200)}
		if err := box.store.AppendMessage(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
	}
	box.checkStore(ctx, 0)
	if !strings.Contains(logs.String(), "database check passed") {
		t.Fatalf("no passed check in the log:\n%s", logs.String())
	}
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	done := make(chan struct{})
	go func() { box.checkStore(stopped, time.Hour); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("checkStore did not return when its context ended")
	}
	if err := box.Close(); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(cfg.DataDir, DBFile)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, 3*4096), st.Size()/2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	box = open()
	defer box.Close()
	box.checkStore(ctx, 0)
	if got := logs.String(); !strings.Contains(got, "database check") || !strings.Contains(got, "chatbox restore") {
		t.Fatalf("damage not reported with what to do:\n%s", got)
	}
}
