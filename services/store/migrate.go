package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// migrationFS holds the schema migrations, named NNNN_what.sql and numbered
// from 1 without gaps. Migration N brings the schema from version N-1 to N.
// A migration, once released, is never edited: change the schema by adding
// the next file.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one step of the schema.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads and orders the embedded migrations.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_what.sql", base)
		}
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(text)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d: migrations must be numbered from 1 without gaps or duplicates", m.name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion is the schema version this build of chatbox writes.
func SchemaVersion() int {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return 0
	}
	return len(ms)
}

// migrate brings the database up to the latest schema and returns its
// version. Each migration runs in its own immediate transaction, which
// re-reads the version first, so two processes opening the same file at
// once do not both apply a step.
func (s *Store) migrate(ctx context.Context) (int, error) {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return 0, fmt.Errorf("open database %s: built-in schema: %w", s.path, err)
	}
	return s.applyMigrations(ctx, ms)
}

// applyMigrations applies the steps of ms the database lacks.
func (s *Store) applyMigrations(ctx context.Context, ms []migration) (int, error) {
	latest := len(ms)
	var current int
	if err := s.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&current); err != nil {
		return 0, openError(s.path, err)
	}
	if current > latest {
		return 0, newerSchemaError(s.path, current, latest)
	}
	for current < latest {
		applied, err := s.applyNext(ctx, ms)
		if err != nil {
			return 0, err
		}
		if applied > current {
			s.log.Info("database schema migrated", "path", s.path, "from", current, "to", applied)
		}
		current = applied
	}
	return current, nil
}

// applyNext applies, in one transaction, the migration after the version
// the database is at, and returns the version it is at afterwards.
func (s *Store) applyNext(ctx context.Context, ms []migration) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, openError(s.path, err)
	}
	defer rollback(tx)

	var current int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&current); err != nil {
		return 0, openError(s.path, err)
	}
	if current > len(ms) {
		return 0, newerSchemaError(s.path, current, len(ms))
	}
	if current == len(ms) {
		return current, nil // another process got there first
	}
	m := ms[current]
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return 0, fmt.Errorf("open database %s: migration %s: %w", s.path, m.name, err)
	}
	// PRAGMA takes no parameters; the version is an integer we made.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, m.version)); err != nil {
		return 0, fmt.Errorf("open database %s: migration %s: %w", s.path, m.name, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("open database %s: migration %s: %w", s.path, m.name, err)
	}
	return m.version, nil
}

func newerSchemaError(path string, have, know int) error {
	return fmt.Errorf("open database %s: database schema version %d is newer than this chatbox (%d): upgrade chatbox or restore a backup",
		path, have, know)
}
