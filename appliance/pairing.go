package appliance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"chatbox/webadmin"
)

// Event kinds the box's actions publish (besides "state").
const (
	EventPairingOpened     = "pairing.opened"     // Detail: how long, e.g. "5m"
	EventPairingClosed     = "pairing.closed"     // Detail: "closed" or "timed out"
	EventShutdownRequested = "shutdown.requested" // Detail: the reason
	EventFactoryReset      = "factory-reset"      // data erased at the next start
)

// ErrNotRunning is OpenPairing's answer while the box is booting or
// shutting down.
var ErrNotRunning = errors.New("the box is not running (it is starting or stopping)")

// FactoryResetMarker is the file in the data directory that asks the next
// start to erase the box's data (applyFactoryReset).
const FactoryResetMarker = "factory-reset"

// ShutdownFactoryReset is the Shutdown reason FactoryReset gives.
const ShutdownFactoryReset = "factory reset"

// dataDirSettings is the settings file's name in the data directory (the
// one the web admin edits and a backup carries).
const dataDirSettings = "chatbox.toml"

// actions is the state of the box's actions: the pairing window and the
// request to stop. Its zero value is ready to use.
type actions struct {
	mu        sync.Mutex
	cancel    context.CancelFunc // ends Run; nil outside Run
	shutdown  string             // the reason, once Shutdown was called
	requested bool
	pairing   bool
	until     time.Time
	timer     *time.Timer
	gen       uint64 // ends an earlier window's timer
}

// runActions derives Run's context: Shutdown cancels it. end releases it and
// closes the pairing window; Run defers it.
func (b *Box) runActions(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	a := &b.actions
	a.mu.Lock()
	a.cancel = cancel
	if a.requested {
		cancel() // asked to stop before it ran
	}
	a.mu.Unlock()
	return ctx, func() {
		a.mu.Lock()
		a.cancel = nil
		open := a.pairing
		a.pairing = false
		a.gen++
		if a.timer != nil {
			a.timer.Stop()
			a.timer = nil
		}
		a.mu.Unlock()
		cancel()
		if open {
			b.hub.publish(Event{Kind: EventPairingClosed, Detail: "the box stopped"})
		}
	}
}

// OpenPairing opens the pairing window: for d (d <= 0: the
// registration.pairing_window setting) anyone reaching the box may create
// an account, whatever registration.policy says. The box's state becomes
// "pairing" and observers get EventPairingOpened. Opening an open window
// starts its time again. The window closes by itself after d.
// It fails with ErrNotRunning unless the box is ready or degraded (or
// already pairing).
func (b *Box) OpenPairing(d time.Duration) error {
	if d <= 0 {
		d = b.cfg.Registration.PairingWindow
	}
	if d <= 0 {
		d = 5 * time.Minute
	}
	a := &b.actions
	a.mu.Lock()
	if !b.hub.setStateFrom(StatePairing, "pairing window open", StateReady, StateDegraded, StatePairing) {
		a.mu.Unlock()
		return ErrNotRunning
	}
	a.pairing = true
	a.until = b.hub.now().Add(d)
	a.gen++
	gen := a.gen
	if a.timer != nil {
		a.timer.Stop()
	}
	a.timer = time.AfterFunc(d, func() { b.closePairing(gen, "timed out") })
	a.mu.Unlock()
	b.log.Info("pairing window open: registration open", "for", formatDuration(d))
	b.hub.publish(Event{Kind: EventPairingOpened, Detail: formatDuration(d)})
	return nil
}

// ClosePairing closes the pairing window if it is open: the state goes
// back to ready (or degraded, if a service is failing) and observers get
// EventPairingClosed.
func (b *Box) ClosePairing() { b.closePairing(0, "closed") }

// closePairing closes the window opened as gen (0: whichever is open).
func (b *Box) closePairing(gen uint64, why string) {
	a := &b.actions
	a.mu.Lock()
	if !a.pairing || (gen != 0 && gen != a.gen) {
		a.mu.Unlock()
		return
	}
	a.pairing = false
	a.gen++
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	b.sup.mu.Lock()
	failing := len(b.sup.failing) > 0
	b.sup.mu.Unlock()
	back := StateReady
	if failing {
		back = StateDegraded
	}
	// Only from "pairing": a failure meanwhile made it degraded (and the
	// supervisor puts it back to ready), shutting down stays so.
	b.hub.setStateFrom(back, "pairing window "+why, StatePairing)
	a.mu.Unlock()
	b.log.Info("pairing window "+why, "registration", b.cfg.Registration.Policy)
	b.hub.publish(Event{Kind: EventPairingClosed, Detail: why})
}

// PairingOpen reports whether the pairing window is open.
func (b *Box) PairingOpen() bool {
	b.actions.mu.Lock()
	defer b.actions.mu.Unlock()
	return b.actions.pairing
}

// PairingUntil is when the open pairing window closes (zero if closed).
func (b *Box) PairingUntil() time.Time {
	b.actions.mu.Lock()
	defer b.actions.mu.Unlock()
	if !b.actions.pairing {
		return time.Time{}
	}
	return b.actions.until
}

// Shutdown asks the box to stop, as a signal would: Run stops the
// services and returns. Called before Run, it makes Run stop at once. The
// first reason given is kept (ShutdownReason).
func (b *Box) Shutdown(reason string) {
	a := &b.actions
	a.mu.Lock()
	first := !a.requested
	if first {
		a.requested, a.shutdown = true, reason
	}
	cancel := a.cancel
	a.mu.Unlock()
	if first {
		b.log.Info("shutdown requested", "reason", reason)
		b.hub.publish(Event{Kind: EventShutdownRequested, Detail: reason})
	}
	if cancel != nil {
		cancel()
	}
}

// ShutdownReason is the reason given to Shutdown, "" if it was not
// called. After Run returns, ShutdownFactoryReset means the data is to be
// erased by the next start (which should follow at once).
func (b *Box) ShutdownReason() string {
	b.actions.mu.Lock()
	defer b.actions.mu.Unlock()
	return b.actions.shutdown
}

// FactoryReset erases the box: accounts, rooms, history, the settings
// file in the data directory and the box's own certificates. It cannot
// pull the database from under the running services, so it writes the
// marker file FactoryResetMarker (durably) and shuts the box down; the
// next start erases the data before opening anything (applyFactoryReset).
// The settings file in the data directory is removed at once as well, so
// that the next start already reads the default settings. A settings file
// elsewhere (--config, CHATBOX_CONFIG: the installer's) is not touched.
func (b *Box) FactoryReset() error {
	dir := b.cfg.DataDir
	marker := filepath.Join(dir, FactoryResetMarker)
	err := writeFileAtomic(marker, 0o600, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "factory reset requested at %s\n", time.Now().UTC().Format(time.RFC3339))
		return err
	})
	if err != nil {
		return fmt.Errorf("factory reset: %w", err)
	}
	b.log.Warn("factory reset: the box's data will be erased as it restarts", "data", dir)
	b.hub.publish(Event{Kind: EventFactoryReset})
	if b.configPath != "" && sameFile(b.configPath, filepath.Join(dir, dataDirSettings)) {
		if err := os.Remove(b.configPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			b.log.Error("factory reset: remove the settings file (the next start will)", "err", err)
		}
	}
	b.Shutdown(ShutdownFactoryReset)
	return nil
}

// sameFile reports whether paths a and b name the same file (or would:
// b need not exist).
func sameFile(a, b string) bool {
	if fa, err := os.Stat(a); err == nil {
		if fb, err := os.Stat(b); err == nil {
			return os.SameFile(fa, fb)
		}
	}
	aa, err1 := filepath.Abs(a)
	ab, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == ab
}

// factoryResetFiles are what a factory reset erases in the data
// directory: the database with its WAL files, the settings file, the
// box's own TLS folder (CA and server keys) and the web admin's password
// and API tokens (the next visit sets the box up again). The lock file, backups and
// anything else stay.
var factoryResetFiles = []string{DBFile, DBFile + "-wal", DBFile + "-shm", DBFile + "-journal", dataDirSettings, "tls",
	webadmin.AdminFile, webadmin.SetupCodeFile, webadmin.TokensFile}

// applyFactoryReset carries out a factory reset asked for by FactoryReset:
// if dataDir holds FactoryResetMarker it erases factoryResetFiles and then
// the marker (so a power cut midway makes the next start finish the job).
// Without the marker it does nothing. Call it with the data directory
// locked, before anything in it is opened.
//
// The TLS folder goes too: a reset box starts over as from the factory,
// and the old CA key may be in backups the previous owner keeps; clients
// will have to trust the new CA, as for a new box.
func applyFactoryReset(dataDir string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	marker := filepath.Join(dataDir, FactoryResetMarker)
	if _, err := os.Lstat(marker); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("factory reset: %w", err)
	}
	log.Warn("factory reset: erasing accounts, rooms, history, settings and certificates", "data", dataDir)
	var erased []string
	for _, name := range factoryResetFiles {
		p := filepath.Join(dataDir, name)
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("factory reset: %w", err)
		}
		erased = append(erased, name)
	}
	syncDir(dataDir) // the erasures are durable before the marker goes
	if err := os.Remove(marker); err != nil {
		return fmt.Errorf("factory reset: %w", err)
	}
	syncDir(dataDir)
	log.Warn("factory reset done: the box starts as new", "erased", erased)
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// setStateFrom moves the state to s if it is one of from, and reports
// whether it was.
func (h *hub) setStateFrom(s State, detail string, from ...State) bool {
	h.mu.Lock()
	if !slices.Contains(from, h.state) {
		h.mu.Unlock()
		return false
	}
	changed := h.state != s
	h.state = s
	h.mu.Unlock()
	if changed {
		h.publish(Event{Kind: "state", State: s, Detail: detail})
	}
	return true
}
