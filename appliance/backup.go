package appliance

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
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
	files := append([]archived{{backupDB, snap}}, backupFiles(cfg, configPath)...)
	return writeFileAtomic(dest, 0o600, func(w io.Writer) error { return writeArchive(w, files) })
}

type archived struct{ name, path string }

// backupFiles lists what a backup holds besides the database snapshot:
// the settings file (if any) and the box's TLS files.
func backupFiles(cfg Config, configPath string) []archived {
	var files []archived
	if configPath != "" {
		files = append(files, archived{backupConfig, configPath})
	}
	pems, _ := filepath.Glob(filepath.Join(cfg.DataDir, "tls", "*.pem"))
	for _, p := range pems {
		files = append(files, archived{backupTLS + filepath.Base(p), p})
	}
	return files
}

// writeArchive writes files as a gzipped tar to w.
func writeArchive(w io.Writer, files []archived) error {
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
}

// Backup writes the archive `chatbox backup` makes to w, from the running
// box's store (the web admin's download). The settings file is the one
// SettingsPath names, if it exists.
func (b *Box) Backup(ctx context.Context, w io.Writer) error {
	tmpDir, err := os.MkdirTemp(b.cfg.DataDir, "backup-")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	snap := filepath.Join(tmpDir, DBFile)
	if err := b.store.Snapshot(ctx, snap); err != nil {
		return fmt.Errorf("backup: snapshot the database: %w", err)
	}
	// The settings file the web admin saves to goes too, once there is one.
	configPath := b.SettingsPath()
	if _, err := os.Stat(configPath); err != nil {
		configPath = ""
	}
	return writeArchive(w, append([]archived{{backupDB, snap}}, backupFiles(b.cfg, configPath)...))
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
	if err := applyPendingRestore(cfg.DataDir, log); err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	tmpDir, err := os.MkdirTemp(cfg.DataDir, "restore-")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	staged := false // once the marker names it, the staging folder stays until the restore is done
	defer func() {
		if !staged {
			os.RemoveAll(tmpDir)
		}
	}()
	got, err := unpackBackup(ctx, f, src, tmpDir, log)
	if err != nil {
		return err
	}
	if configPath == "" {
		configPath = filepath.Join(cfg.DataDir, backupConfig)
	}
	if configPath, err = filepath.Abs(configPath); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	// From here the restore is finished even if chatbox dies midway: the
	// marker names the unpacked files, and the next start (or restore)
	// completes the moves before anything opens the database.
	plan := restorePlan{Staged: filepath.Base(tmpDir), Config: configPath, Files: got}
	if err := writeFileAtomic(filepath.Join(cfg.DataDir, RestoreMarker), 0o600, func(w io.Writer) error {
		return json.NewEncoder(w).Encode(plan)
	}); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	staged = true
	syncDir(cfg.DataDir)
	if err := finishRestore(cfg.DataDir, plan); err != nil {
		return err
	}
	log.Info("restored", "from", src, "at", time.Now().Format(time.RFC3339), "files", len(got))
	return nil
}

// RestoreMarker, in the data directory, says a restore was unpacked and
// is being moved into place (see restorePlan).
const RestoreMarker = "restore-pending.json"

// restorePlan is what RestoreMarker holds: the staging folder (in the
// data directory), where the settings file goes, and the archive's
// entries.
type restorePlan struct {
	Staged string   `json:"staged"`
	Config string   `json:"config"`
	Files  []string `json:"files"`
}

// finishRestore moves a staged restore into place. Each step can be done
// again after a crash: a file already moved is not in the staging folder
// any more and is skipped. It removes the marker and the staging folder
// last.
func finishRestore(dataDir string, plan restorePlan) error {
	tmpDir := filepath.Join(dataDir, plan.Staged)
	if plan.Staged == "" || filepath.Base(plan.Staged) != plan.Staged {
		return fmt.Errorf("restore: %s names a bad staging folder %q", RestoreMarker, plan.Staged)
	}
	dbPath := filepath.Join(dataDir, DBFile)
	for _, name := range plan.Files {
		from := filepath.Join(tmpDir, filepath.FromSlash(name))
		if _, err := os.Lstat(from); errors.Is(err, fs.ErrNotExist) {
			continue // moved before a crash
		}
		to := filepath.Join(dataDir, filepath.FromSlash(name))
		switch {
		case name == backupConfig:
			// The settings file may live on another file system: copy it.
			data, err := os.ReadFile(from)
			if err != nil {
				return fmt.Errorf("restore %s: %w", name, err)
			}
			if err := writeFileAtomic(plan.Config, 0o600, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
				return fmt.Errorf("restore %s: %w", name, err)
			}
			if err := os.Remove(from); err != nil {
				return fmt.Errorf("restore %s: %w", name, err)
			}
			continue
		case strings.HasPrefix(name, backupTLS):
			os.MkdirAll(filepath.Join(dataDir, "tls"), 0o700)
		case name == backupDB:
			// The old database's WAL must not be replayed onto the new one.
			for _, suffix := range []string{"-wal", "-shm"} {
				if err := os.Remove(dbPath + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("restore: %w", err)
				}
			}
			os.Remove(from + "-wal")
			os.Remove(from + "-shm")
		}
		if err := os.Rename(from, to); err != nil {
			return fmt.Errorf("restore %s: %w", name, err)
		}
	}
	syncDir(dataDir)
	syncDir(filepath.Join(dataDir, "tls"))
	if err := os.Remove(filepath.Join(dataDir, RestoreMarker)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("restore: %w", err)
	}
	syncDir(dataDir)
	os.RemoveAll(tmpDir)
	return nil
}

// applyPendingRestore finishes a restore a crash interrupted; Open runs it
// before opening the database.
func applyPendingRestore(dataDir string, log *slog.Logger) error {
	data, err := os.ReadFile(filepath.Join(dataDir, RestoreMarker))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	var plan restorePlan
	if err := json.Unmarshal(data, &plan); err != nil {
		return fmt.Errorf("restore: %s is damaged (%v): restore the backup again with chatbox restore", RestoreMarker, err)
	}
	if log != nil {
		log.Warn("finishing a pending restore (staged by the web admin, or interrupted)", "data", dataDir, "files", len(plan.Files))
	}
	return finishRestore(dataDir, plan)
}

// maxBackupExpanded bounds what a backup may hold once unpacked, so that a
// crafted archive cannot fill the disk.
const maxBackupExpanded = 8 << 30

// unpackBackup unpacks the archive r (named src in messages) into tmpDir
// and checks it the way Restore does: only the expected entries, a
// database that opens (quick_check, schema). It returns the entries.
func unpackBackup(ctx context.Context, r io.Reader, src, tmpDir string, log *slog.Logger) ([]string, error) {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("restore: %s is not a chatbox backup (%v)", src, err)
	}
	tr := tar.NewReader(gz)
	var got []string
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("restore: %s is damaged: %v", src, err)
		}
		name := h.Name
		ok := name == backupDB || name == backupConfig ||
			(strings.HasPrefix(name, backupTLS) && !strings.Contains(name[len(backupTLS):], "/") && strings.HasSuffix(name, ".pem") && !strings.Contains(name, ".."))
		if !ok || h.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("restore: %s holds an unexpected entry %q; is it a chatbox backup?", src, name)
		}
		if total += h.Size; h.Size < 0 || total > maxBackupExpanded {
			return nil, fmt.Errorf("restore: %s unpacks to more than %d GiB; is it a chatbox backup?", src, maxBackupExpanded>>30)
		}
		dest := filepath.Join(tmpDir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(dest), 0o700)
		if err := writeFileAtomic(dest, 0o600, func(w io.Writer) error { _, err := io.Copy(w, tr); return err }); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("restore: %s is damaged: it ends in the middle of %s", src, name)
			}
			return nil, fmt.Errorf("restore: %w", err)
		}
		got = append(got, name)
	}
	if _, err := os.Stat(filepath.Join(tmpDir, backupDB)); err != nil {
		return nil, fmt.Errorf("restore: %s holds no database; is it a chatbox backup?", src)
	}
	// Check the database before replacing anything.
	st, err := store.Open(ctx, filepath.Join(tmpDir, backupDB), log)
	if err != nil {
		return nil, fmt.Errorf("restore: the database in %s is not usable: %w", src, err)
	}
	if err := st.QuickCheck(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("restore: the database in %s is not usable: %w", src, err)
	}
	if err := st.Close(); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	return got, nil
}

// CheckBackup checks an archive without restoring it (the web admin's dry
// run): Restore's checks, and the settings file it holds, if any, must
// load and validate. hostname gives the default domain. It unpacks into a
// temporary folder of the data directory, removed before it returns.
func CheckBackup(ctx context.Context, cfg Config, r io.Reader, hostname string, log *slog.Logger) error {
	tmpDir, err := os.MkdirTemp(cfg.DataDir, "check-")
	if err != nil {
		return fmt.Errorf("check backup: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	// Messages name the files inside the archive, not the temporary copies.
	local := func(err error) error {
		return errors.New(strings.ReplaceAll(err.Error(), tmpDir+string(filepath.Separator), ""))
	}
	got, err := unpackBackup(ctx, r, "the file", tmpDir, log)
	if err != nil {
		return local(err)
	}
	if slices.Contains(got, backupConfig) {
		if err := CheckConfigFile(filepath.Join(tmpDir, backupConfig), hostname); err != nil {
			return local(fmt.Errorf("restore: the settings in the file do not load: %w", err))
		}
	}
	return nil
}
