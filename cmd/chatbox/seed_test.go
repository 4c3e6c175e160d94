package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSeedConfigCopiesOnce(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "image.toml")
	if err := os.WriteFile(src, []byte("lan = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "perm", "chatbox", "chatbox.toml")
	if err := seedConfig(src, dst); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "lan = true\n" {
		t.Fatalf("copy = %q, want %q", b, "lan = true\n")
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	// The owner's edits are kept: an existing file is never overwritten.
	if err := os.WriteFile(dst, []byte("lan = false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := seedConfig(src, dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "lan = false\n" {
		t.Fatalf("after a second seed: %q, want the owner's %q", b, "lan = false\n")
	}
	ents, err := os.ReadDir(filepath.Dir(dst))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("data directory holds %d entries, want only chatbox.toml (no temporary file left)", len(ents))
	}
}

func TestSeedConfigMissingSource(t *testing.T) {
	dir := t.TempDir()
	err := seedConfig(filepath.Join(dir, "nope.toml"), filepath.Join(dir, "data", "chatbox.toml"))
	if err == nil || !strings.Contains(err.Error(), "make image") {
		t.Fatalf("err = %v, want one that says to rebuild the image", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "chatbox.toml")); !os.IsNotExist(err) {
		t.Errorf("a settings file was made from nothing: %v", err)
	}
}
