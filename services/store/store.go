// Package store implements chat.Store (accounts, rooms, history, the
// offline queue and vCards) over one SQLite database file, using the pure Go
// github.com/ncruces/go-sqlite3 driver.
//
// The database runs in WAL mode with synchronous=FULL: a method that writes
// returns nil only once its transaction is committed and synced, so a power
// cut loses nothing that was acknowledged. AppendMessage, the hot path, goes
// through a single writer goroutine that commits concurrent appends together
// (group commit), so that one fsync acknowledges many messages.
//
// Several Stores may use the same file at once, in one process or in several
// (the server and the chatbox command line): SQLite's locks serialise their
// writes, and a writer waits up to a few seconds for another to finish.
//
// The schema is versioned: SQL files embedded from migrations/ are applied
// in order on Open, and PRAGMA user_version records how far the file is.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/driver"

	"chatbox/services/chat"
)

const (
	// busyTimeout is how long a write waits for another connection (the
	// other process, or a reader checkpointing) to release the database.
	busyTimeout = 5 * time.Second
	// checkpointBytes is how much WAL is written before it is copied back
	// into the database (SQLite's default: 1000 pages of 4 KiB). Between
	// two checkpoints a page written many times (the newest page of the
	// messages table and of each index) is copied once.
	checkpointBytes = 4 << 20
	// journalSizeLimit bounds the WAL file left on disk after a checkpoint.
	// It is above checkpointBytes, so normal operation never truncates and
	// regrows the file.
	journalSizeLimit = 8 << 20
	// maxConns bounds the connection pool (each connection carries its own
	// SQLite instance, which costs memory on a small box); the group-commit
	// writer holds one of them for the Store's life.
	maxConns = 5
	// pageSize is the page size of a new database.
	pageSize = 1024
	// idleConnTime is how long a reader's connection may wait unused
	// before the pool closes it. A burst of logins (everyone reconnecting
	// after a restart) opens every connection the pool allows, and each
	// is a SQLite instance of its own (0.3 MB at first, up to its 2 MB
	// page cache): a minute after the burst the box gives them back. The
	// pool hands out the most recently used connection first, so a
	// steady trickle keeps one warm.
	idleConnTime = time.Minute
)

// Store is a chat.Store kept in one SQLite database file. It is safe for
// concurrent use. Close it to flush pending appends and release the file.
type Store struct {
	path string
	log  *slog.Logger
	db   *sql.DB
	q    *stmts // db's queries through kept statements

	// The group-commit writer: AppendMessage sends requests on appends, the
	// goroutine started by Open commits them in batches over wconn and
	// closes writerDone when appends is closed and drained.
	wconn      *sql.Conn
	insMsg     *sql.Stmt
	insOffline *sql.Stmt
	appends    chan *appendReq
	writerDone chan struct{}
	commits    atomic.Int64  // group commits made (logged at Close; benchmarks)
	appended   atomic.Int64  // appends those commits took
	window     time.Duration // commitWindow; tests may change it before appending

	mu     sync.RWMutex // guards closed and sending on appends
	closed bool
}

var _ chat.Store = (*Store)(nil)

// Open opens the database at path, creating the file if it is missing,
// and brings its schema up to date. A nil log discards log messages.
//
// Open reads only the header and the schema, so that it takes the same few
// milliseconds with a million messages as with none: damage elsewhere in
// the file shows when a query reaches it, or earlier with QuickCheck, which
// reads every page (the server runs it in the background once it serves;
// a restore runs it before it replaces anything).
func Open(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// SQLite reads a name starting with "file:" as a URI; an absolute path
	// never does, so the file name is taken literally.
	db, err := driver.Open(abs, configure)
	if err != nil {
		return nil, openError(abs, err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(idleConnTime)

	s := &Store{
		path:       abs,
		log:        log,
		db:         db,
		q:          newStmts(db),
		appends:    make(chan *appendReq, maxBatch),
		writerDone: make(chan struct{}),
		window:     commitWindow,
	}
	if err := s.init(ctx); err != nil {
		db.Close()
		return nil, err
	}
	go s.runWriter()
	return s, nil
}

// configure prepares every new connection: it runs before the connection
// is first used.
func configure(c *sqlite3.Conn) error {
	if err := c.BusyTimeout(busyTimeout); err != nil {
		return err
	}
	if err := c.Exec(fmt.Sprintf(
		`PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA journal_size_limit = %d;`,
		journalSizeLimit)); err != nil {
		return err
	}
	return setAutoCheckpoint(c)
}

// setAutoCheckpoint makes c checkpoint after checkpointBytes of WAL,
// whatever the page size (a new database has 1 KiB pages, an older one 4
// KiB). The page size of a file not created yet reads as SQLite's default:
// init sets the writer's connection again once the file exists.
func setAutoCheckpoint(c *sqlite3.Conn) error {
	stmt, _, err := c.Prepare(`PRAGMA page_size`)
	if err != nil {
		return err
	}
	ps := int64(4096)
	if stmt.Step() {
		ps = stmt.ColumnInt64(0)
	}
	if err := errors.Join(stmt.Err(), stmt.Close()); err != nil {
		return err
	}
	return c.Exec(fmt.Sprintf(`PRAGMA wal_autocheckpoint = %d`, checkpointBytes/max(512, ps)))
}

// init switches the file to WAL, checks it, migrates it and takes the
// writer's connection.
func (s *Store) init(ctx context.Context) error {
	// A new database gets small pages, which must be chosen before the
	// first table (and before WAL mode, which writes the header).
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf(`PRAGMA page_size = %d`, pageSize)); err != nil {
		return openError(s.path, err)
	}
	var mode string
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode); err != nil {
		return openError(s.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("open database %s: cannot switch to WAL journal mode (got %q): is the data directory on a local, writable file system?", s.path, mode)
	}
	version, err := s.migrate(ctx)
	if err != nil {
		return err
	}
	if err := s.prepareWriter(ctx); err != nil {
		return openError(s.path, err)
	}
	s.wconn, err = s.db.Conn(ctx)
	if err != nil {
		return openError(s.path, err)
	}
	// The writer's connection may predate the file (see configure).
	if err := s.wconn.Raw(func(dc any) error { return setAutoCheckpoint(dc.(driver.Conn).Raw()) }); err != nil {
		s.wconn.Close()
		return openError(s.path, err)
	}
	// SQLite falls back to read-only when the file is not writable; say so
	// now rather than at the first message.
	var readOnly bool
	if err := s.wconn.Raw(func(dc any) error {
		readOnly, _ = dc.(driver.Conn).Raw().ReadOnly("main")
		return nil
	}); err != nil {
		return openError(s.path, err)
	}
	if readOnly {
		s.wconn.Close()
		return fmt.Errorf("open database %s: the file is read-only: is the data directory writable?", s.path)
	}
	s.log.Info("database open", "path", s.path, "schema", version)
	return nil
}

// QuickCheck runs PRAGMA quick_check, which reads every page and checks
// the B-trees but not index contents (integrity_check would, at a much
// higher cost on a large history). It reads the whole file: about a second
// per 100 MB on an SD card. A damaged database gives an error naming the
// first problems found and what to do.
func (s *Store) QuickCheck(ctx context.Context) error {
	return s.check(ctx, "quick_check")
}

// IntegrityCheck runs PRAGMA integrity_check: every page, every B-tree and
// every index entry against its table. It reads the whole database (slow on
// a large history; Open runs the cheaper quick_check). A damaged database
// gives an error naming the first problems found.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	return s.check(ctx, "integrity_check")
}

func (s *Store) check(ctx context.Context, pragma string) error {
	rows, err := s.db.QueryContext(ctx, `PRAGMA `+pragma)
	if err != nil {
		return openError(s.path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return openError(s.path, err)
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return openError(s.path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("database %s is damaged (%s: %s): restore a backup with `chatbox restore`",
			s.path, pragma, strings.Join(problems, "; "))
	}
	return nil
}

// openError explains a failure to open or first read the database, with a
// hint of what to do about it.
func openError(path string, err error) error {
	var hint string
	switch {
	case errors.Is(err, sqlite3.CANTOPEN), errors.Is(err, sqlite3.READONLY),
		errors.Is(err, sqlite3.PERM), errors.Is(err, sqlite3.IOERR):
		hint = "is the data directory present and writable?"
	case errors.Is(err, sqlite3.NOTADB), errors.Is(err, sqlite3.CORRUPT):
		hint = "the file is damaged or is not a chatbox database: restore a backup with `chatbox restore`"
	case errors.Is(err, sqlite3.BUSY), errors.Is(err, sqlite3.LOCKED):
		hint = "another process keeps the database locked: is a second chatbox stuck?"
	case errors.Is(err, sqlite3.FULL):
		hint = "the disk is full: free some space"
	}
	if hint == "" {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	return fmt.Errorf("open database %s: %w: %s", path, err, hint)
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close stops the writer once the appends already queued are committed,
// then closes the database. Appends after Close fail; Close is idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.appends)
	s.mu.Unlock()

	<-s.writerDone
	err := errors.Join(s.q.Close(), s.insMsg.Close(), s.insOffline.Close(), s.wconn.Close(), s.db.Close())
	if err != nil {
		return fmt.Errorf("close database %s: %w", s.path, err)
	}
	s.log.Info("database closed", "path", s.path, "appends", s.appended.Load(), "group_commits", s.commits.Load())
	return nil
}

// Snapshot writes a consistent copy of the database, as of one instant, to
// the new file dest (which must not exist), syncs it and returns. Other
// connections keep reading and writing meanwhile. This is the database part
// of a backup.
func (s *Store) Snapshot(ctx context.Context, dest string) error {
	abs, err := filepath.Abs(dest)
	if err != nil {
		return fmt.Errorf("snapshot database to %s: %w", dest, err)
	}
	if _, err := os.Lstat(abs); err == nil {
		return fmt.Errorf("snapshot database to %s: %w: choose a new file name", abs, os.ErrExist)
	}
	// VACUUM INTO reads the database in one read transaction (a consistent
	// snapshot that does not block writers in WAL mode) into a compact
	// new file.
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, abs); err != nil {
		return fmt.Errorf("snapshot database to %s: %w: is the destination directory writable, with room to spare?", abs, err)
	}
	if err := syncFile(abs); err != nil {
		return fmt.Errorf("snapshot database to %s: %w", abs, err)
	}
	if err := syncFile(filepath.Dir(abs)); err != nil {
		return fmt.Errorf("snapshot database to %s: sync directory: %w", abs, err)
	}
	s.log.Info("database snapshot written", "path", s.path, "dest", abs)
	return nil
}

// syncFile flushes a file or directory to stable storage.
func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	err = f.Sync()
	return errors.Join(err, f.Close())
}

// withTx runs fn in an immediate (write) transaction and commits it.
func (s *Store) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, rollback(tx))
	}
	return tx.Commit()
}

// withReadTx runs fn in a read-only transaction: what fn reads is one
// consistent snapshot.
func (s *Store) withReadTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer rollback(tx)
	return fn(tx)
}

// rollback rolls tx back, ignoring that it may already be done.
func rollback(tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	return errors.Is(err, sqlite3.CONSTRAINT_UNIQUE) || errors.Is(err, sqlite3.CONSTRAINT_PRIMARYKEY)
}

// isForeignKey reports whether err is a FOREIGN KEY violation (the row
// refers to a parent that does not exist).
func isForeignKey(err error) bool {
	return errors.Is(err, sqlite3.CONSTRAINT_FOREIGNKEY)
}

// Times are stored as Unix nanoseconds, which cover the years 1678 to 2261;
// the zero time.Time is stored as NULL.
var (
	minTime = time.Unix(0, -1<<63).UTC()
	maxTime = time.Unix(0, 1<<63-1).UTC()
)

// dbTime encodes t for a column.
func dbTime(t time.Time) (any, error) {
	if t.IsZero() {
		return nil, nil
	}
	if t.Before(minTime) || t.After(maxTime) {
		return nil, fmt.Errorf("time %s is outside the years 1678 to 2261 the store can keep", t)
	}
	return t.UnixNano(), nil
}

// goTime decodes a column written by dbTime, in UTC.
func goTime(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// blob turns a nil slice into an empty one: database/sql binds nil as NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
