package appliance

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"chatbox/services/store"
)

// A backup is a gzipped tar archive holding:
//
//	chatbox.db     a consistent snapshot of the database
//	chatbox.toml   the settings file, when the box runs with one
//	tls/*.pem      the box's CA and certificate, so clients keep trusting it
const (
	backupDB     = DBFile
	backupConfig = "chatbox.toml"
	backupTLS    = "tls/"
)

// Backup writes an archive of the box to dest while the box may be
// running.
func Backup(ctx context.Context, cfg Config, configPath, dest string, log *slog.Logger) error {
	st, err := store.Open(ctx, filepath.Join(cfg.DataDir, DBFile), log)
	if err != nil {
		return err
	}
	defer st.Close()
	tmpDir, err := os.MkdirTemp(cfg.DataDir, "backup-")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	snap := filepath.Join(tmpDir, DBFile)
	if err := st.Snapshot(ctx, snap); err != nil {
		return fmt.Errorf("backup: snapshot the database: %w", err)
	}
	files := []struct{ name, path string }{{backupDB, snap}}
	if configPath != "" {
		files = append(files, struct{ name, path string }{backupConfig, configPath})
	}
	pems, _ := filepath.Glob(filepath.Join(cfg.DataDir, "tls", "*.pem"))
	for _, p := range pems {
		files = append(files, struct{ name, path string }{backupTLS + filepath.Base(p), p})
	}
	return writeFileAtomic(dest, 0o600, func(w io.Writer) error {
		gz := gzip.NewWriter(w)
		tw := tar.NewWriter(gz)
		for _, f := range files {
			if err := addFile(tw, f.name, f.path); err != nil {
				return err
			}
		}
		if err := tw.Close(); err != nil {
			return err
		}
		return gz.Close()
	})
}

func addFile(tw *tar.Writer, name, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: fi.Size(), ModTime: fi.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// Restore replaces the box's database, certificate and settings with an
// archive's. The box must be stopped. The settings go to configPath, or
// to <data>/chatbox.toml when the box runs without a file.
func Restore(ctx context.Context, cfg Config, configPath, src string, log *slog.Logger) error {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer lock.Unlock()
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("restore: %s is not a chatbox backup (%v)", src, err)
	}
	tmpDir, err := os.MkdirTemp(cfg.DataDir, "restore-")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tr := tar.NewReader(gz)
	var got []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("restore: %s is damaged: %v", src, err)
		}
		name := h.Name
		ok := name == backupDB || name == backupConfig ||
			(strings.HasPrefix(name, backupTLS) && !strings.Contains(name[len(backupTLS):], "/") && strings.HasSuffix(name, ".pem") && !strings.Contains(name, ".."))
		if !ok || h.Typeflag != tar.TypeReg {
			return fmt.Errorf("restore: %s holds an unexpected entry %q; is it a chatbox backup?", src, name)
		}
		dest := filepath.Join(tmpDir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(dest), 0o700)
		if err := writeFileAtomic(dest, 0o600, func(w io.Writer) error { _, err := io.Copy(w, tr); return err }); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		got = append(got, name)
	}
	if _, err := os.Stat(filepath.Join(tmpDir, backupDB)); err != nil {
		return fmt.Errorf("restore: %s holds no database; is it a chatbox backup?", src)
	}
	// Check the database before replacing anything.
	st, err := store.Open(ctx, filepath.Join(tmpDir, backupDB), log)
	if err != nil {
		return fmt.Errorf("restore: the database in %s is not usable: %w", src, err)
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if configPath == "" {
		configPath = filepath.Join(cfg.DataDir, backupConfig)
	}
	dbPath := filepath.Join(cfg.DataDir, DBFile)
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(dbPath + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("restore: %w", err)
		}
	}
	for _, name := range got {
		from := filepath.Join(tmpDir, filepath.FromSlash(name))
		to := filepath.Join(cfg.DataDir, filepath.FromSlash(name))
		switch {
		case name == backupConfig:
			// The settings file may live on another file system: copy it.
			data, err := os.ReadFile(from)
			if err != nil {
				return fmt.Errorf("restore %s: %w", name, err)
			}
			if err := writeFileAtomic(configPath, 0o600, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
				return fmt.Errorf("restore %s: %w", name, err)
			}
			continue
		case strings.HasPrefix(name, backupTLS):
			os.MkdirAll(filepath.Join(cfg.DataDir, "tls"), 0o700)
		case name == backupDB:
			os.Remove(from + "-wal")
			os.Remove(from + "-shm")
		}
		if err := os.Rename(from, to); err != nil {
			return fmt.Errorf("restore %s: %w", name, err)
		}
	}
	log.Info("restored", "from", src, "at", time.Now().Format(time.RFC3339), "files", len(got))
	return nil
}
