package appliance

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestInterruptedRestoreIsFinished: a restore that died after staging and
// moving only some files is completed by the next Open (or the next
// restore) before the database is opened; the marker and the staging
// folder go.
func TestInterruptedRestoreIsFinished(t *testing.T) {
	dir := t.TempDir()
	staged := filepath.Join(dir, "restore-123")
	for _, p := range []string{filepath.Join(staged, "tls")} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, data string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The settings file was already moved before the crash; the CA and
	// the database were not.
	write(filepath.Join(staged, "tls", "ca.pem"), "restored CA")
	write(filepath.Join(dir, DBFile+"-wal"), "old WAL that must not be replayed")
	write(filepath.Join(dir, "chatbox.toml"), "name = \"restored\"\n")
	plan := restorePlan{Staged: "restore-123", Config: filepath.Join(dir, "chatbox.toml"),
		Files: []string{"chatbox.toml", "tls/ca.pem"}}
	data, _ := json.Marshal(plan)
	write(filepath.Join(dir, RestoreMarker), string(data))

	if err := applyPendingRestore(dir, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "tls", "ca.pem")); string(got) != "restored CA" {
		t.Fatalf("the CA was not moved into place: %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "chatbox.toml")); string(got) != "name = \"restored\"\n" {
		t.Fatalf("settings: %q", got)
	}
	for _, gone := range []string{RestoreMarker, "restore-123"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", gone, err)
		}
	}
	// Nothing pending: nothing done.
	if err := applyPendingRestore(dir, nil); err != nil {
		t.Fatal(err)
	}

	// A damaged marker stops the start with what to do.
	write(filepath.Join(dir, RestoreMarker), "{")
	cfg := quietConfig(t)
	cfg.DataDir = dir
	if _, err := Open(context.Background(), Options{Config: cfg}); err == nil {
		t.Fatal("Open went on with a damaged restore marker")
	}
}
