package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ShutdownRestart is the Shutdown reason Restart gives: the process opens
// the box again at once (cmd/chatbox loops), which reads the settings file
// anew and finishes a pending restore before anything opens the database.
const ShutdownRestart = "restart"

// EventRestoreStaged is published when StageRestore has put an archive in
// place for the next start.
const EventRestoreStaged = "restore.staged"

// Restart stops the services and the store, as a shutdown does, and asks
// the process to open the box again (ShutdownRestart): saved settings
// apply and a staged restore finishes. The chat sessions are told the
// server is going down; clients reconnect.
func (b *Box) Restart(why string) {
	b.log.Info("restart requested", "why", why)
	b.Shutdown(ShutdownRestart)
}

// MessagesSince counts the messages (rooms and direct) stored since t.
func (b *Box) MessagesSince(ctx context.Context, t time.Time) (int, error) {
	if b.store == nil {
		return 0, ErrNotRunning
	}
	return b.store.CountMessagesSince(ctx, t)
}

// StageRestore is the web admin's restore: it unpacks the archive r into
// the data directory and checks it as CheckBackup does (the database
// opens and passes its checks, the settings load), writes RestoreMarker
// naming it, and restarts the box (Restart). The next Open moves the
// files into place (applyPendingRestore) before it opens the database;
// a crash in between finishes the restore at the following start. The
// settings in the archive go to SettingsPath. Nothing is replaced if a
// check fails.
func (b *Box) StageRestore(ctx context.Context, r io.Reader, hostname string) error {
	dir := b.cfg.DataDir
	if _, err := os.Stat(filepath.Join(dir, RestoreMarker)); err == nil {
		return errors.New("restore: a restore is already staged; it finishes as the box restarts")
	}
	tmpDir, err := os.MkdirTemp(dir, "restore-")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	staged := false // once the marker names it, the staging folder stays until the restore is done
	defer func() {
		if !staged {
			os.RemoveAll(tmpDir)
		}
	}()
	local := func(err error) error { // name the files inside the archive, not the staging copies
		return errors.New(strings.ReplaceAll(err.Error(), tmpDir+string(filepath.Separator), ""))
	}
	got, err := unpackBackup(ctx, r, "the file", tmpDir, b.log)
	if err != nil {
		return local(err)
	}
	if slices.Contains(got, backupConfig) {
		if err := CheckConfigFile(filepath.Join(tmpDir, backupConfig), hostname); err != nil {
			return local(fmt.Errorf("restore: the settings in the file do not load: %w", err))
		}
	}
	configPath, err := filepath.Abs(b.SettingsPath())
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	plan := restorePlan{Staged: filepath.Base(tmpDir), Config: configPath, Files: got}
	if err := writeFileAtomic(filepath.Join(dir, RestoreMarker), 0o600, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(plan)
	}); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	staged = true
	syncDir(dir)
	b.log.Warn("restore staged: the box restarts to put it in place", "files", len(got))
	b.hub.publish(Event{Kind: EventRestoreStaged, Detail: strings.Join(got, " ")})
	b.Restart("restore")
	return nil
}
