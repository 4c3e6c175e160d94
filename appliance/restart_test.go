package appliance

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatbox/services/chat"
)

// TestStageRestore: the web admin's restore checks the archive, stages it
// and restarts the box; the next Open puts it in place. A bad archive is
// refused with nothing staged and the box running on.
func TestStageRestore(t *testing.T) {
	ctx := context.Background()
	cfg := quietConfig(t)
	box, events, wait := runningBox(t, Options{Config: cfg})
	if err := box.Core().CreateAccount(ctx, "alice", "password-alice", false); err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	if err := box.Backup(ctx, &archive); err != nil {
		t.Fatal(err)
	}
	if err := box.Core().CreateAccount(ctx, "bob", "password-bob", false); err != nil {
		t.Fatal(err)
	}
	// Refused: not an archive. Nothing staged, no restart.
	err := box.StageRestore(ctx, strings.NewReader("not a backup"), "testhost")
	if err == nil || !strings.Contains(err.Error(), "not a chatbox backup") || strings.Contains(err.Error(), cfg.DataDir) {
		t.Fatalf("a bad archive: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, RestoreMarker)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused restore left a marker: %v", err)
	}
	if r := box.ShutdownReason(); r != "" {
		t.Fatalf("a refused restore stopped the box: %q", r)
	}
	// Staged: the box restarts.
	if err := box.StageRestore(ctx, bytes.NewReader(archive.Bytes()), "testhost"); err != nil {
		t.Fatal(err)
	}
	waitKind(t, events, EventRestoreStaged)
	if ev := waitKind(t, events, EventShutdownRequested); ev.Detail != ShutdownRestart {
		t.Fatalf("shutdown %+v", ev)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if r := box.ShutdownReason(); r != ShutdownRestart {
		t.Fatalf("reason %q, want %q", r, ShutdownRestart)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, RestoreMarker)); err != nil {
		t.Fatalf("no restore pending after the stage: %v", err)
	}
	// The next start restores: bob, made after the backup, is gone.
	again, _, _ := runningBox(t, Options{Config: cfg})
	if _, err := again.Core().Account(ctx, "alice"); err != nil {
		t.Fatalf("alice after the restore: %v", err)
	}
	if _, err := again.Core().Account(ctx, "bob"); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("bob after the restore: %v, want not found", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, RestoreMarker)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the marker stays after the restore: %v", err)
	}
	n, err := again.MessagesSince(ctx, time.Now().Add(-time.Hour))
	if err != nil || n != 0 {
		t.Fatalf("messages since an hour: %d %v", n, err)
	}
}

func TestRestart(t *testing.T) {
	box, events, wait := runningBox(t, Options{Config: quietConfig(t)})
	box.Restart("test")
	if ev := waitKind(t, events, EventShutdownRequested); ev.Detail != ShutdownRestart {
		t.Fatalf("shutdown %+v", ev)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

func TestPanelView(t *testing.T) {
	box, _, _ := runningBox(t, Options{Config: quietConfig(t)})
	if _, ok := box.Panel(); ok {
		t.Fatal("a panel before SetPanel")
	}
	want := PanelState{Backend: "sim", LEDs: []LED{{Name: "status", Pattern: "on", Meaning: "ready", Lit: true}}}
	box.SetPanel(func() PanelState { return want })
	got, ok := box.Panel()
	if !ok || got.Backend != "sim" || len(got.LEDs) != 1 || got.LEDs[0] != want.LEDs[0] {
		t.Fatalf("Panel: %+v %v", got, ok)
	}
	wp, ok := webBox{box}.Panel()
	if !ok || wp.Backend != "sim" || len(wp.LEDs) != 1 || wp.LEDs[0].Meaning != "ready" || !wp.LEDs[0].Lit {
		t.Fatalf("the web admin's panel: %+v %v", wp, ok)
	}
}
