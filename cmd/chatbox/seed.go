package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// seedConfig copies the settings file src to dst (the data directory's
// chatbox.toml) unless dst exists: the SD image ships its settings on a
// read-only root file system (seedSettings) and the web admin edits the
// copy on /perm. After a factory reset erased the copy, the next start
// makes it again. The copy is written to a temporary file, synced and
// renamed, so a power cut never leaves half a settings file.
func seedConfig(src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("read the image's settings %s: %w (the SD image is incomplete: rebuild it with make image)", src, err)
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory %s: %w (is /perm mounted? the image's /perm file system is made by make image)", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".chatbox.toml-*")
	if err != nil {
		return fmt.Errorf("copy settings into %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing to remove
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("copy settings to %s: %w", dst, err)
	}
	return nil
}
