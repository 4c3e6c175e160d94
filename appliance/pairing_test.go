package appliance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"chatbox/services/chat"
	"chatbox/webadmin"
)

// quietConfig is a box without doors, in its own data directory.
func quietConfig(t *testing.T) Config {
	t.Helper()
	cfg := Defaults("testhost")
	cfg.DataDir = t.TempDir()
	cfg.IRC.TLSListen, cfg.IRC.PlainListen = nil, nil
	cfg.XMPP.Listen, cfg.XMPP.TLSListen = nil, nil
	cfg.Calls.Listen = nil
	cfg.Upload.Listen = nil
	cfg.Web.Listen = ""
	return cfg
}

// runningBox opens and runs a box; wait returns Run's error once it has
// stopped.
func runningBox(t *testing.T, o Options) (box *Box, events <-chan Event, wait func() error) {
	t.Helper()
	box, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	events, stop := box.Subscribe(256)
	t.Cleanup(stop)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- box.Run(ctx, 5*time.Second) }()
	stopped := false
	wait = func() error {
		t.Helper()
		if stopped {
			return nil
		}
		select {
		case err := <-done:
			stopped = true
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("the box did not stop")
			return nil
		}
	}
	t.Cleanup(func() {
		cancel()
		wait()
	})
	waitState(t, events, StateReady)
	return box, events, wait
}

// waitKind returns the next event of kind.
func waitKind(t *testing.T, events <-chan Event, kind string) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}

func TestPairingWindow(t *testing.T) {
	cfg := quietConfig(t)
	box, err := Open(context.Background(), Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := box.OpenPairing(time.Hour); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("OpenPairing while booting: %v", err)
	}
	box.Close()

	box, events, _ := runningBox(t, Options{Config: cfg})
	if box.PairingOpen() || box.registrationOpen() {
		t.Fatal("open before OpenPairing")
	}

	// Open, then close by hand.
	if err := box.OpenPairing(time.Hour); err != nil {
		t.Fatal(err)
	}
	waitState(t, events, StatePairing)
	if ev := waitKind(t, events, EventPairingOpened); ev.Detail != "1h" || ev.State != StatePairing {
		t.Fatalf("opened event %+v", ev)
	}
	if !box.PairingOpen() || !box.registrationOpen() || box.PairingUntil().IsZero() {
		t.Fatal("window not open")
	}
	box.ClosePairing()
	waitState(t, events, StateReady)
	if ev := waitKind(t, events, EventPairingClosed); ev.Detail != "closed" {
		t.Fatalf("closed event %+v", ev)
	}
	if box.PairingOpen() || box.registrationOpen() || !box.PairingUntil().IsZero() {
		t.Fatal("window still open")
	}
	box.ClosePairing() // closing a closed window does nothing

	// It closes by itself.
	if err := box.OpenPairing(20 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitKind(t, events, EventPairingOpened)
	if ev := waitKind(t, events, EventPairingClosed); ev.Detail != "timed out" || ev.State != StateReady {
		t.Fatalf("closed event %+v", ev)
	}
	if box.PairingOpen() || box.State() != StateReady {
		t.Fatalf("after the window: open %v, state %s", box.PairingOpen(), box.State())
	}

	// Opening again restarts the time: the first opening's timer no
	// longer closes it.
	if err := box.OpenPairing(time.Hour); err != nil {
		t.Fatal(err)
	}
	first := box.actions.gen
	if err := box.OpenPairing(time.Hour); err != nil {
		t.Fatal(err)
	}
	box.closePairing(first, "timed out")
	if !box.PairingOpen() || box.State() != StatePairing {
		t.Fatal("an earlier window's timer closed the window")
	}
	box.ClosePairing()
	waitState(t, events, StateReady)
}

func TestPairingWhileDegraded(t *testing.T) {
	box, events, _ := runningBox(t, Options{Config: quietConfig(t)})
	box.sup.setFailing("door", true)
	waitState(t, events, StateDegraded)
	if err := box.OpenPairing(time.Hour); err != nil {
		t.Fatal(err)
	}
	waitState(t, events, StatePairing)
	box.ClosePairing()
	waitState(t, events, StateDegraded) // still failing
	box.sup.setFailing("door", false)
	waitState(t, events, StateReady)

	// A failure during the window: degraded wins; closing leaves it.
	if err := box.OpenPairing(time.Hour); err != nil {
		t.Fatal(err)
	}
	box.sup.setFailing("door", true)
	waitState(t, events, StateDegraded)
	box.ClosePairing()
	waitKind(t, events, EventPairingClosed)
	if s := box.State(); s != StateDegraded {
		t.Fatalf("state %s after closing", s)
	}
	box.sup.setFailing("door", false)
	waitState(t, events, StateReady)

	// A failure that ends while the window is still open: the box shows
	// the pairing window again (its LED pattern), not ready.
	if err := box.OpenPairing(time.Hour); err != nil {
		t.Fatal(err)
	}
	waitState(t, events, StatePairing)
	box.sup.setFailing("door", true)
	waitState(t, events, StateDegraded)
	box.sup.setFailing("door", false)
	waitState(t, events, StatePairing)
	box.ClosePairing()
	waitState(t, events, StateReady)
}

func TestShutdown(t *testing.T) {
	box, events, wait := runningBox(t, Options{Config: quietConfig(t)})
	if err := box.OpenPairing(time.Hour); err != nil {
		t.Fatal(err)
	}
	box.Shutdown("button A held")
	if ev := waitKind(t, events, EventShutdownRequested); ev.Detail != "button A held" {
		t.Fatalf("event %+v", ev)
	}
	waitState(t, events, StateShuttingDown)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	waitKind(t, events, EventPairingClosed)
	if box.PairingOpen() {
		t.Fatal("pairing open after Run")
	}
	box.Shutdown("again")
	if r := box.ShutdownReason(); r != "button A held" {
		t.Fatalf("reason %q", r)
	}
}

func TestShutdownBeforeRun(t *testing.T) {
	box, err := Open(context.Background(), Options{Config: quietConfig(t)})
	if err != nil {
		t.Fatal(err)
	}
	box.Shutdown("early")
	done := make(chan error, 1)
	go func() { done <- box.Run(context.Background(), 5*time.Second) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not stop")
	}
}

func TestFactoryReset(t *testing.T) {
	ctx := context.Background()
	cfg := quietConfig(t)
	dir := cfg.DataDir
	settings := filepath.Join(dir, dataDirSettings)
	if err := os.WriteFile(settings, []byte("name = \"kitchen\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "keep.txt")
	if err := os.WriteFile(keep, []byte("not the box's"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, webadmin.AdminFile), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	box, events, wait := runningBox(t, Options{Config: cfg, ConfigPath: settings})
	if err := box.Core().CreateAccount(ctx, "alice", "password-alice", false); err != nil {
		t.Fatal(err)
	}
	oldCA := box.TLS().CAFingerprint
	if err := box.FactoryReset(); err != nil {
		t.Fatal(err)
	}
	waitKind(t, events, EventFactoryReset)
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if r := box.ShutdownReason(); r != ShutdownFactoryReset {
		t.Fatalf("reason %q", r)
	}
	if _, err := os.Stat(filepath.Join(dir, FactoryResetMarker)); err != nil {
		t.Fatalf("no marker: %v", err)
	}
	if _, err := os.Stat(settings); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("settings file still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, DBFile)); err != nil {
		t.Fatalf("the database went before the restart: %v", err)
	}

	// The next start erases.
	if err := applyFactoryReset(dir, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	left := dirNames(t, dir)
	for _, gone := range []string{DBFile, DBFile + "-wal", DBFile + "-shm", "tls", dataDirSettings, FactoryResetMarker, webadmin.AdminFile} {
		if slices.Contains(left, gone) {
			t.Errorf("%s survived the reset: %v", gone, left)
		}
	}
	if !slices.Contains(left, "keep.txt") || !slices.Contains(left, "chatbox.lock") {
		t.Errorf("the reset erased too much: %v", left)
	}
	box2, err := Open(ctx, Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	defer box2.Close()
	if _, err := box2.Core().Account(ctx, "alice"); !errors.Is(err, chat.ErrNotFound) {
		t.Fatalf("alice after the reset: %v", err)
	}
	if box2.TLS().CAFingerprint == oldCA {
		t.Fatal("the CA survived the reset")
	}
}

func TestApplyFactoryReset(t *testing.T) {
	dir := t.TempDir()
	files := []string{DBFile, DBFile + "-wal", DBFile + "-shm", dataDirSettings, "chatbox.lock", "keep.txt", "tls/ca.pem"}
	for _, f := range files {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Without the marker nothing happens.
	if err := applyFactoryReset(dir, nil); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); len(got) != 7 {
		t.Fatalf("erased without a marker: %v", got)
	}
	// With it, the box's data goes; twice is harmless (a power cut midway).
	os.WriteFile(filepath.Join(dir, FactoryResetMarker), nil, 0o600)
	if err := applyFactoryReset(dir, nil); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, FactoryResetMarker), nil, 0o600)
	if err := applyFactoryReset(dir, nil); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, dir); !slices.Equal(got, []string{"chatbox.lock", "keep.txt"}) {
		t.Fatalf("left after the reset: %v", got)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
