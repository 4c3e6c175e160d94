package appliance

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"chatbox"
	"chatbox/webadmin"
)

// TestSettingsHelp: every setting has its help from chatbox.example.toml,
// the file embedded being the one at the repository's root.
func TestSettingsHelp(t *testing.T) {
	root, err := os.ReadFile(examplePath)
	if err != nil || string(root) != chatbox.ExampleSettings {
		t.Fatalf("the embedded example differs from %s (%v)", examplePath, err)
	}
	help := settingsHelp(chatbox.ExampleSettings)
	keys := leafSettingKeys()
	if len(keys) < 30 || slices.Contains(keys, "limits") {
		t.Fatalf("keys %v", keys)
	}
	for _, k := range keys {
		if help[k] == "" {
			t.Errorf("no help for %s", k)
		}
	}
	if h := help["limits.message_burst"]; strings.Contains(h, "#") || strings.Contains(h, "message_burst =") {
		t.Errorf("help of limits.message_burst: %q", h)
	}
	if !strings.Contains(help["domain"], "address in the chat world") {
		t.Errorf("help of domain (a key shown commented out): %q", help["domain"])
	}
}

func settingsOf(t *testing.T, path string) map[string]string {
	t.Helper()
	list, err := EditableSettings(path, "testhost")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, s := range list {
		m[s.Key] = s.Value
	}
	return m
}

func TestSaveSettings(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "chatbox.toml")
	// No file: the defaults, written as the form shows them.
	got := settingsOf(t, path)
	if got["domain"] != "testhost.local" || got["registration.pairing_window"] != "5m" || got["name"] != "chatbox" ||
		!strings.HasPrefix(got["irc.plain_listen"], `["`) || got["tls.extra_names"] != "[]" {
		t.Fatalf("defaults: %v", got)
	}

	// Refusals name each key; nothing is written.
	err := SaveSettings(path, "testhost", map[string]string{
		"limits.message_burst": "ten",
		"name":                 strings.Repeat("n", 70),
		"irc.nope":             "1",
		"log.level":            "loud",
		"irc.motd":             "two\nlines",
	})
	var probs SettingsProblems
	if !errors.As(err, &probs) {
		t.Fatalf("err %v", err)
	}
	for _, k := range []string{"limits.message_burst", "irc.nope", "irc.motd"} {
		if probs[k] == "" {
			t.Errorf("no problem for %s: %v", k, probs)
		}
	}
	if !strings.HasPrefix(probs["limits.message_burst"], "expected an integer") || strings.Contains(probs["limits.message_burst"], "--set") {
		t.Errorf("message: %q", probs["limits.message_burst"])
	}
	// Validate's problems come once the values parse.
	err = SaveSettings(path, "testhost", map[string]string{"name": strings.Repeat("n", 70), "log.level": "loud"})
	if !errors.As(err, &probs) || probs["name"] == "" || probs["log.level"] == "" || len(probs) != 2 {
		t.Fatalf("validate: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused save wrote the file")
	}

	// A file of the owner's: its keys stay, even at their default.
	os.WriteFile(path, []byte("# mine\nlan = false\n[irc]\nmotd = \"hello\"\n"), 0o644)
	err = SaveSettings(path, "testhost", map[string]string{
		"name":                        "Kitchen box",
		"irc.plain_listen":            `["127.0.0.1:7000"]`,
		"registration.pairing_window": "10m",
		"limits.message_burst":        got["limits.message_burst"], // unchanged
		"domain":                      "testhost.local",            // unchanged (the host's default)
	})
	if err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(path)
	for _, want := range []string{"lan = false", "motd = \"hello\"", `name = "Kitchen box"`, `plain_listen = ["127.0.0.1:7000"]`, `pairing_window = "10m"`} {
		if !strings.Contains(string(text), want) {
			t.Errorf("file lacks %q:\n%s", want, text)
		}
	}
	for _, no := range []string{"message_burst", "domain"} {
		if strings.Contains(string(text), no) {
			t.Errorf("file sets %s, left at its default:\n%s", no, text)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	cfg, err := Load(path, nil, "testhost")
	if err != nil || cfg.Name != "Kitchen box" || cfg.IRC.MOTD != "hello" || cfg.Registration.PairingWindow.Minutes() != 10 {
		t.Fatalf("loads as %+v, %v", cfg, err)
	}
	if got := settingsOf(t, path); got["name"] != "Kitchen box" || got["irc.plain_listen"] != `["127.0.0.1:7000"]` {
		t.Fatalf("after save: %v", got)
	}
	// An empty list turns a listener off.
	if err := SaveSettings(path, "testhost", map[string]string{"irc.plain_listen": "[]"}); err != nil {
		t.Fatal(err)
	}
	if cfg, _ := Load(path, nil, "testhost"); len(cfg.IRC.PlainListen) != 0 || cfg.Name != "Kitchen box" {
		t.Fatalf("after []: %+v", cfg.IRC)
	}
	// A file that does not load is not overwritten.
	os.WriteFile(path, []byte("name = \n"), 0o600)
	if err := SaveSettings(path, "testhost", map[string]string{"name": "x"}); err == nil {
		t.Fatal("saved over a broken file")
	}
}

// tgz builds an archive of name → content.
func tgz(t *testing.T, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for i := 0; i+1 < len(files); i += 2 {
		tw.WriteHeader(&tar.Header{Name: files[i], Mode: 0o600, Size: int64(len(files[i+1])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[i+1]))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// TestWebBoxSettingsTLSBackup: the adapter's settings, certificate and
// backup, on a running box started with a settings file.
func TestWebBoxSettingsTLSBackup(t *testing.T) {
	ctx := context.Background()
	cfg := quietConfig(t)
	cfgPath := filepath.Join(t.TempDir(), "box.toml")
	os.WriteFile(cfgPath, []byte("name = \"first\"\n"), 0o600)
	box, _, _ := runningBox(t, Options{Config: cfg, ConfigPath: cfgPath})
	wb := webBox{box}
	if err := box.Core().CreateAccount(ctx, "alice", "password-alice", false); err != nil {
		t.Fatal(err)
	}

	if pem := wb.CACertPEM(); !bytes.HasPrefix(pem, []byte("-----BEGIN CERTIFICATE-----")) || wb.CAFingerprint() != Fingerprint(box.TLS().CA.Raw) {
		t.Fatalf("CA %q %q", pem, wb.CAFingerprint())
	}

	path, list, err := wb.Settings()
	if err != nil || path != cfgPath || len(list) != len(leafSettingKeys()) || list[1].Key != "name" || list[1].Value != "first" || list[1].Help == "" {
		t.Fatalf("settings %s %v %v", path, list[:2], err)
	}
	var se webadmin.SettingsError
	if err := wb.SaveSettings(map[string]string{"limits.message_burst": "-1"}); !errors.As(err, &se) || se["limits.message_burst"] == "" {
		t.Fatalf("save: %v", err)
	}
	if err := wb.SaveSettings(map[string]string{"name": "second"}); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(cfgPath, nil, osHostname()); err != nil || c.Name != "second" {
		t.Fatalf("saved: %v %v", c.Name, err)
	}

	// A backup from the running box passes the check and restores.
	var archive bytes.Buffer
	if err := wb.Backup(ctx, &archive); err != nil {
		t.Fatal(err)
	}
	if err := wb.CheckBackup(ctx, bytes.NewReader(archive.Bytes())); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "box.tgz")
	os.WriteFile(file, archive.Bytes(), 0o600)
	other := quietConfig(t)
	otherCfg := filepath.Join(t.TempDir(), "other.toml")
	if err := Restore(ctx, other, otherCfg, file, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(otherCfg, nil, "testhost"); err != nil || c.Name != "second" {
		t.Fatalf("restored settings: %v %v", c.Name, err)
	}
	st, core, err := OpenCore(ctx, other, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := core.Account(ctx, "alice"); err != nil {
		t.Fatalf("restored account: %v", err)
	}

	// What the check refuses.
	var db []byte
	{
		gz, _ := gzip.NewReader(bytes.NewReader(archive.Bytes()))
		tr := tar.NewReader(gz)
		for h, err := tr.Next(); err == nil; h, err = tr.Next() {
			if h.Name == backupDB {
				db, _ = readAll(tr)
			}
		}
	}
	if len(db) == 0 {
		t.Fatal("no database in the backup")
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"not gzip", []byte("hello"), "not a chatbox backup"},
		{"no database", tgz(t, "chatbox.toml", "name = \"x\"\n"), "holds no database"},
		{"bad entry", tgz(t, "../etc/passwd", "x"), "unexpected entry"},
		{"bad database", tgz(t, backupDB, "not sqlite"), "not usable"},
		{"bad settings", tgz(t, backupDB, string(db), "chatbox.toml", "[limits]\nmessage_burst = \"ten\"\n"), "limits.message_burst"},
		{"truncated", archive.Bytes()[:archive.Len()/2], "damaged"},
	} {
		err := wb.CheckBackup(ctx, bytes.NewReader(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	// The check leaves nothing behind in the data directory.
	names, _ := filepath.Glob(filepath.Join(cfg.DataDir, "check-*"))
	if len(names) != 0 {
		t.Fatalf("left %v", names)
	}
}

// TestWebBoxSettingsInDataDir: a box started without a settings file
// saves to <data>/chatbox.toml, and its backups carry that file.
func TestWebBoxSettingsInDataDir(t *testing.T) {
	ctx := context.Background()
	cfg := quietConfig(t)
	box, _, _ := runningBox(t, Options{Config: cfg})
	wb := webBox{box}
	entries := func() []string {
		var archive bytes.Buffer
		if err := wb.Backup(ctx, &archive); err != nil {
			t.Fatal(err)
		}
		gz, err := gzip.NewReader(&archive)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		tr := tar.NewReader(gz)
		for h, err := tr.Next(); err == nil; h, err = tr.Next() {
			names = append(names, h.Name)
		}
		return names
	}
	if names := entries(); slices.Contains(names, backupConfig) || !slices.Contains(names, backupDB) || !slices.Contains(names, "tls/ca.pem") {
		t.Fatalf("entries %v", names)
	}
	if path, _, err := wb.Settings(); err != nil || path != filepath.Join(cfg.DataDir, "chatbox.toml") {
		t.Fatalf("path %q %v", path, err)
	}
	if err := wb.SaveSettings(map[string]string{"irc.motd": "hello"}); err != nil {
		t.Fatal(err)
	}
	if names := entries(); !slices.Contains(names, backupConfig) {
		t.Fatalf("entries %v", names)
	}
}

func readAll(tr *tar.Reader) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(tr)
	return b.Bytes(), err
}
