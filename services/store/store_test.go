package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ncruces/go-sqlite3/driver"

	"chatbox/services/chat"
)

// openTest opens a store at path (a new file in a temporary directory if
// path is empty) and closes it when the test ends.
func openTest(t testing.TB, path string) *Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "chatbox.db")
	}
	s, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// rawDB opens path with no store logic, for tests that tamper with a file.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := driver.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func count(t testing.TB, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func userVersion(t testing.TB, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// at is a time as the store returns it: UTC, no monotonic reading.
func at(sec int) time.Time {
	return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second)
}

func creds(seed byte) chat.Credentials {
	b := func(n byte) []byte { return bytes.Repeat([]byte{seed + n}, 32) }
	return chat.Credentials{
		SHA256: chat.SCRAMKeys{Salt: b(1)[:16], Iterations: 4096, StoredKey: b(2), ServerKey: b(3)},
		SHA1:   chat.SCRAMKeys{Salt: b(4)[:16], Iterations: 4096, StoredKey: b(5)[:20], ServerKey: b(6)[:20]},
	}
}

func mustCreateAccount(t testing.TB, s *Store, name string) {
	t.Helper()
	if err := s.CreateAccount(context.Background(), chat.Account{Name: name, Created: at(0)}, creds(1)); err != nil {
		t.Fatal(err)
	}
}

func TestOpenMigratesAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chatbox.db")
	s, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || SchemaVersion() != len(ms) {
		t.Fatalf("SchemaVersion() = %d with %d migrations", SchemaVersion(), len(ms))
	}
	if v := userVersion(t, s.db); v != len(ms) {
		t.Fatalf("fresh database at version %d, want %d", v, len(ms))
	}
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	mustCreateAccount(t, s, "alice")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s = openTest(t, path)
	if v := userVersion(t, s.db); v != len(ms) {
		t.Fatalf("reopened database at version %d, want %d", v, len(ms))
	}
	if _, _, err := s.Account(context.Background(), "alice"); err != nil {
		t.Fatalf("account lost on reopen: %v", err)
	}
}

func TestPragmas(t *testing.T) {
	s := openTest(t, "")
	for pragma, want := range map[string]string{
		"journal_mode": "wal",
		"synchronous":  "2", // FULL
		"foreign_keys": "1",
		"busy_timeout": "5000",
	} {
		var got string
		if err := s.db.QueryRow(`PRAGMA ` + pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chatbox.db")
	s, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	latest := SchemaVersion()
	db := rawDB(t, path)
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, latest+2)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	_, err = Open(context.Background(), path, nil)
	want := fmt.Sprintf("database schema version %d is newer than this chatbox (%d): upgrade chatbox or restore a backup", latest+2, latest)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open of a newer database: %v, want an error naming %s and saying %q", err, path, want)
	}
}

func TestMigrationSteps(t *testing.T) {
	steps := fstest.MapFS{
		"migrations/0001_a.sql": {Data: []byte(`CREATE TABLE a (x INTEGER);`)},
		"migrations/0002_b.sql": {Data: []byte(`CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (1);`)},
		"migrations/0003_c.sql": {Data: []byte(`ALTER TABLE b ADD COLUMN z TEXT;`)},
	}
	ms, err := loadMigrations(steps)
	if err != nil {
		t.Fatal(err)
	}
	// Apply the first step only, as an older chatbox would, then all.
	s := &Store{path: filepath.Join(t.TempDir(), "m.db"), log: slog.New(slog.DiscardHandler)}
	s.db = rawDB(t, s.path)
	if v, err := s.applyMigrations(context.Background(), ms[:1]); err != nil || v != 1 {
		t.Fatalf("first step: version %d, %v", v, err)
	}
	if v, err := s.applyMigrations(context.Background(), ms); err != nil || v != 3 {
		t.Fatalf("remaining steps: version %d, %v", v, err)
	}
	if v, err := s.applyMigrations(context.Background(), ms); err != nil || v != 3 {
		t.Fatalf("idempotent re-run: version %d, %v", v, err)
	}
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM a`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("step 2 ran %d times (%v), want once", n, err)
	}

	// A failing step leaves the database at the previous version.
	bad := append(ms[:3:3], migration{version: 4, name: "0004_bad.sql", sql: `CREATE TABLE d (w); INSERT INTO nope VALUES (1);`})
	if _, err := s.applyMigrations(context.Background(), bad); err == nil || !strings.Contains(err.Error(), "0004_bad.sql") {
		t.Fatalf("bad step: %v, want an error naming it", err)
	}
	if v := userVersion(t, s.db); v != 3 {
		t.Fatalf("after a failed step at version %d, want 3", v)
	}
	if err := s.db.QueryRow(`SELECT count(*) FROM d`).Scan(&n); err == nil {
		t.Fatal("failed step left its table behind")
	}

	for name, fsys := range map[string]fstest.MapFS{
		"gap":      {"migrations/0001_a.sql": {}, "migrations/0003_c.sql": {}},
		"dup":      {"migrations/0001_a.sql": {}, "migrations/0001_b.sql": {}},
		"badname":  {"migrations/init.sql": {}},
		"zero":     {"migrations/0000_a.sql": {}},
		"no-under": {"migrations/0001.sql": {}},
	} {
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("loadMigrations accepted %s", name)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()

	// A missing directory.
	missing := filepath.Join(dir, "nope", "chatbox.db")
	_, err := Open(context.Background(), missing, nil)
	if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "writable") {
		t.Errorf("Open in a missing directory: %v", err)
	}

	// A file that is not a database.
	junk := filepath.Join(dir, "junk.db")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not a database "), 500), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), junk, nil)
	if err == nil || !strings.Contains(err.Error(), junk) || !strings.Contains(err.Error(), "chatbox restore") {
		t.Errorf("Open of a junk file: %v", err)
	}
}

func TestOpenDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chatbox.db")
	s, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		m := &chat.Message{ID: fmt.Sprint("m", i), Room: "general", Time: at(i), Body: strings.Repeat("x", 200)}
		if err := s.AppendMessage(context.Background(), m, nil); err != nil {
			t.Fatal(err)
		}
	}
	s.Close() // checkpoints the WAL into the file

	// Scribble over the middle of the file, past the schema.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	if st.Size() < 16*4096 {
		t.Fatalf("database only %d bytes", st.Size())
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, 3*4096), st.Size()/2); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// Open reads only the header and the schema, which are intact; the
	// quick check reads every page.
	s, err = Open(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("Open of a database damaged past its schema: %v", err)
	}
	defer s.Close()
	err = s.QuickCheck(context.Background())
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chatbox restore") {
		t.Fatalf("QuickCheck of a damaged database: %v", err)
	}
}

func TestAccounts(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")

	created := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*3600))
	if err := s.CreateAccount(ctx, chat.Account{Name: "bob", Created: created, Admin: true}, creds(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, chat.Account{Name: "alice"}, chat.Credentials{}); err != nil {
		t.Fatal(err)
	}
	err := s.CreateAccount(ctx, chat.Account{Name: "bob"}, creds(2))
	if !errors.Is(err, chat.ErrExists) || !strings.Contains(err.Error(), `"bob"`) {
		t.Fatalf("duplicate CreateAccount: %v", err)
	}
	if err := s.CreateAccount(ctx, chat.Account{}, creds(2)); err == nil {
		t.Fatal("CreateAccount with an empty name succeeded")
	}

	a, c, err := s.Account(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "bob" || !a.Admin || !a.Created.Equal(created) || a.Created.Location() != time.UTC {
		t.Errorf("Account(bob) = %+v", a)
	}
	if !reflect.DeepEqual(c, creds(1)) {
		t.Errorf("credentials: got %+v, want %+v", c, creds(1))
	}
	a, c, err = s.Account(ctx, "alice")
	if err != nil || !a.Created.IsZero() || a.Admin || len(c.SHA256.StoredKey) != 0 {
		t.Errorf("Account(alice) = %+v, %+v, %v", a, c, err)
	}
	if _, _, err := s.Account(ctx, "carol"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("Account(carol): %v", err)
	}

	list, err := s.Accounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "alice" || list[1].Name != "bob" || !list[1].Admin {
		t.Errorf("Accounts() = %+v", list)
	}

	if err := s.SetCredentials(ctx, "alice", creds(7)); err != nil {
		t.Fatal(err)
	}
	if _, c, _ := s.Account(ctx, "alice"); !reflect.DeepEqual(c, creds(7)) {
		t.Errorf("after SetCredentials: %+v", c)
	}
	if err := s.SetCredentials(ctx, "carol", creds(7)); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("SetCredentials(carol): %v", err)
	}

	if err := s.DeleteAccount(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx, "alice"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("second DeleteAccount: %v", err)
	}
	if _, _, err := s.Account(ctx, "alice"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("Account after delete: %v", err)
	}
}

func TestVCards(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	mustCreateAccount(t, s, "alice")

	if _, err := s.VCard(ctx, "alice"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("VCard before set: %v", err)
	}
	card := bytes.Repeat([]byte("<vCard/>\x00\xff"), 10000) // binary, avatar-sized
	if err := s.SetVCard(ctx, "alice", card); err != nil {
		t.Fatal(err)
	}
	got, err := s.VCard(ctx, "alice")
	if err != nil || !bytes.Equal(got, card) {
		t.Fatalf("VCard = %d bytes, %v", len(got), err)
	}
	if err := s.SetVCard(ctx, "alice", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.VCard(ctx, "alice"); string(got) != "v2" {
		t.Errorf("VCard after replace = %q", got)
	}
	if err := s.SetVCard(ctx, "alice", nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.VCard(ctx, "alice"); err != nil || got == nil || len(got) != 0 {
		t.Errorf("empty VCard = %q, %v", got, err)
	}
	if err := s.SetVCard(ctx, "nobody", []byte("x")); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("SetVCard for a missing account: %v", err)
	}
}

func TestDeleteAccountCascades(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	for _, name := range []string{"alice", "bob", "carol"} {
		mustCreateAccount(t, s, name)
	}
	if err := s.CreateRoom(ctx, chat.Room{Name: "general", Created: at(0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAffiliation(ctx, "general", "alice", chat.AffOwner); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAffiliation(ctx, "general", "bob", chat.AffMember); err != nil {
		t.Fatal(err)
	}
	if err := s.SetVCard(ctx, "alice", []byte("card")); err != nil {
		t.Fatal(err)
	}
	appendAll(t, s, []*chat.Message{
		{ID: "room-by-alice", Room: "general", From: "alice", Time: at(1)},
		{ID: "a-to-b", To: "bob", From: "alice", Time: at(2)},
		{ID: "b-to-a", To: "alice", From: "bob", Time: at(3)},
		{ID: "b-to-c", To: "carol", From: "bob", Time: at(4)},
	}, map[string][]string{
		"room-by-alice": {"bob"},
		"a-to-b":        {"bob"},
		"b-to-a":        {"alice"},
		"b-to-c":        {"carol"},
	})
	lastSeq := count(t, s, `SELECT max(seq) FROM messages`)

	if err := s.DeleteAccount(ctx, "alice"); err != nil {
		t.Fatal(err)
	}

	if _, err := s.VCard(ctx, "alice"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("vCard survived: %v", err)
	}
	r, err := s.Room(ctx, "general")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Affiliations, map[string]chat.Affiliation{"bob": chat.AffMember}) {
		t.Errorf("affiliations after delete: %v", r.Affiliations)
	}
	if n := count(t, s, `SELECT count(*) FROM offline WHERE account = 'alice'`); n != 0 {
		t.Errorf("%d offline rows of alice survived", n)
	}
	for _, id := range []string{"a-to-b", "b-to-a"} {
		if _, err := s.MessageByID(ctx, id); !errors.Is(err, chat.ErrNotFound) {
			t.Errorf("direct message %s survived: %v", id, err)
		}
	}
	if h := history(t, s, chat.HistoryQuery{Account: "bob", Peer: "alice"}); len(h) != 0 {
		t.Errorf("conversation survived: %v", ids(h))
	}
	if h := history(t, s, chat.HistoryQuery{Account: "bob", Peer: "carol"}); len(h) != 1 {
		t.Errorf("others' conversation: %v", ids(h))
	}
	if h := history(t, s, chat.HistoryQuery{Room: "general"}); len(h) != 1 || h[0].From != "alice" {
		t.Errorf("room history: %v", ids(h))
	}
	// bob's queue lost alice's direct message but kept the room message.
	off, err := s.Offline(ctx, "bob", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(off); !reflect.DeepEqual(got, []string{"room-by-alice"}) {
		t.Errorf("bob's offline queue: %v", got)
	}

	// A new alice starts clean, and seqs are not reused.
	mustCreateAccount(t, s, "alice")
	if off, _ := s.Offline(ctx, "alice", 0); len(off) != 0 {
		t.Errorf("new alice inherits an offline queue: %v", ids(off))
	}
	if _, err := s.VCard(ctx, "alice"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("new alice inherits a vCard: %v", err)
	}
	if err := s.DeleteAccount(ctx, "carol"); err != nil { // b-to-c was the newest message
		t.Fatal(err)
	}
	m := &chat.Message{ID: "after", Room: "general", Time: at(9)}
	if err := s.AppendMessage(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if m.Seq <= int64(lastSeq) {
		t.Errorf("new message got seq %d, already used by a deleted message (max was %d)", m.Seq, lastSeq)
	}
}

func TestRooms(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")

	room := chat.Room{
		Name:    "general",
		Topic:   "hello",
		TopicBy: "alice",
		TopicAt: at(5),
		Created: at(1),
		Settings: chat.RoomSettings{
			Persistent: true, MembersOnly: true, Password: "sekrit", MaxUsers: 12,
			TopicLocked: true, MaxHistory: 50, Description: "the main room", AnyoneInvite: true,
		},
		Affiliations: map[string]chat.Affiliation{"alice": chat.AffOwner, "bob": chat.AffMember},
		Masks: []chat.MaskEntry{
			{List: chat.ListBan, Mask: "*!*@bad.example", SetBy: "alice", SetAt: at(2), Reason: "spam"},
		},
	}
	if err := s.CreateRoom(ctx, room); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateRoom(ctx, chat.Room{Name: "general"}); !errors.Is(err, chat.ErrExists) {
		t.Fatalf("duplicate CreateRoom: %v", err)
	}
	if err := s.CreateRoom(ctx, chat.Room{Name: "attic"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Room(ctx, "general")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, room) {
		t.Fatalf("Room round trip:\n got %+v\nwant %+v", got, room)
	}
	if _, err := s.Room(ctx, "nope"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("Room(nope): %v", err)
	}

	// UpdateRoom replaces topic and settings, nothing else.
	upd := chat.Room{Name: "general", Topic: "new topic", TopicBy: "bob", TopicAt: at(9),
		Settings: chat.RoomSettings{Moderated: true}, Created: at(100)}
	if err := s.UpdateRoom(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Room(ctx, "general")
	if got.Topic != "new topic" || got.TopicBy != "bob" || !got.TopicAt.Equal(at(9)) ||
		got.Settings != upd.Settings || !got.Created.Equal(at(1)) || len(got.Affiliations) != 2 || len(got.Masks) != 1 {
		t.Errorf("after UpdateRoom: %+v", got)
	}
	if err := s.UpdateRoom(ctx, chat.Room{Name: "nope"}); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("UpdateRoom(nope): %v", err)
	}

	// Affiliations.
	if err := s.SetAffiliation(ctx, "general", "bob", chat.AffAdmin); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAffiliation(ctx, "general", "mallory", chat.AffOutcast); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAffiliation(ctx, "general", "alice", chat.AffNone); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAffiliation(ctx, "general", "nobody", chat.AffNone); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAffiliation(ctx, "nope", "bob", chat.AffMember); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("SetAffiliation in a missing room: %v", err)
	}
	if err := s.SetAffiliation(ctx, "general", "bob", "king"); err == nil {
		t.Error("SetAffiliation accepted an unknown affiliation")
	}
	got, _ = s.Room(ctx, "general")
	if want := map[string]chat.Affiliation{"bob": chat.AffAdmin, "mallory": chat.AffOutcast}; !reflect.DeepEqual(got.Affiliations, want) {
		t.Errorf("affiliations = %v, want %v", got.Affiliations, want)
	}

	// Masks.
	e := chat.MaskEntry{List: chat.ListInvite, Mask: "friend!*@*", SetBy: "bob", SetAt: at(3)}
	if err := s.AddMask(ctx, "general", e); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMask(ctx, "general", chat.MaskEntry{List: chat.ListBan, Mask: "friend!*@*"}); err != nil {
		t.Fatalf("same mask on another list: %v", err)
	}
	if err := s.AddMask(ctx, "general", chat.MaskEntry{List: chat.ListInvite, Mask: "FRIEND!*@*"}); !errors.Is(err, chat.ErrExists) {
		t.Errorf("duplicate mask (other case): %v", err)
	}
	if err := s.AddMask(ctx, "nope", e); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("AddMask in a missing room: %v", err)
	}
	if err := s.AddMask(ctx, "general", chat.MaskEntry{List: "grey", Mask: "x"}); err == nil {
		t.Error("AddMask accepted an unknown list")
	}
	if err := s.RemoveMask(ctx, "general", chat.ListBan, "friend!*@*"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveMask(ctx, "general", chat.ListBan, "friend!*@*"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("second RemoveMask: %v", err)
	}
	got, _ = s.Room(ctx, "general")
	wantMasks := []chat.MaskEntry{room.Masks[0], e}
	if !reflect.DeepEqual(got.Masks, wantMasks) {
		t.Errorf("masks = %+v, want %+v", got.Masks, wantMasks)
	}

	rooms, err := s.Rooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rooms) != 2 || rooms[0].Name != "attic" || rooms[1].Name != "general" ||
		!reflect.DeepEqual(rooms[1], got) || len(rooms[0].Affiliations) != 0 || rooms[0].Affiliations == nil {
		t.Errorf("Rooms() = %+v", rooms)
	}

	// DeleteRoom takes the history along, and only this room's.
	mustCreateAccount(t, s, "bob")
	appendAll(t, s, []*chat.Message{
		{ID: "g1", Room: "general", Time: at(1)},
		{ID: "g2", Room: "general", Time: at(2)},
		{ID: "a1", Room: "attic", Time: at(3)},
	}, map[string][]string{"g2": {"bob"}, "a1": {"bob"}})
	if err := s.DeleteRoom(ctx, "general"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRoom(ctx, "general"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("second DeleteRoom: %v", err)
	}
	if _, err := s.Room(ctx, "general"); !errors.Is(err, chat.ErrNotFound) {
		t.Errorf("Room after delete: %v", err)
	}
	for _, table := range []string{"room_affiliations", "room_masks", "messages"} {
		if n := count(t, s, `SELECT count(*) FROM `+table+` WHERE room = 'general'`); n != 0 {
			t.Errorf("%d rows of %s survived DeleteRoom", n, table)
		}
	}
	if off, _ := s.Offline(ctx, "bob", 0); !reflect.DeepEqual(ids(off), []string{"a1"}) {
		t.Errorf("bob's offline queue after DeleteRoom: %v", ids(off))
	}
	if h := history(t, s, chat.HistoryQuery{Room: "attic"}); len(h) != 1 {
		t.Errorf("other room's history: %v", ids(h))
	}
	if err := s.CreateRoom(ctx, chat.Room{Name: "general"}); err != nil {
		t.Fatal(err)
	}
	if h := history(t, s, chat.HistoryQuery{Room: "general"}); len(h) != 0 {
		t.Errorf("recreated room inherits history: %v", ids(h))
	}
}

func TestOpenReadOnlyFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes to read-only files")
	}
	path := filepath.Join(t.TempDir(), "chatbox.db")
	s, err := Open(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), path, nil)
	if err == nil || !strings.Contains(err.Error(), "writable") {
		t.Fatalf("Open of a read-only file: %v", err)
	}
}

// TestPageSize: a new database has small pages (fewer bytes written per
// commit); one made with another page size keeps it, and either
// checkpoints after checkpointBytes of WAL.
func TestPageSize(t *testing.T) {
	pragma := func(db interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}, name string) int {
		t.Helper()
		var v int
		if err := db.QueryRowContext(context.Background(), `PRAGMA `+name).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	s := openTest(t, "")
	if ps := pragma(s.db, "page_size"); ps != pageSize {
		t.Errorf("new database: page_size %d, want %d", ps, pageSize)
	}
	if n := pragma(s.wconn, "wal_autocheckpoint"); n != checkpointBytes/pageSize {
		t.Errorf("new database: writer's wal_autocheckpoint %d, want %d", n, checkpointBytes/pageSize)
	}

	// A database of an earlier chatbox, with 4 KiB pages.
	path := filepath.Join(t.TempDir(), "old.db")
	db := rawDB(t, path)
	if _, err := db.Exec(`PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER); DROP TABLE t`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s = openTest(t, path)
	if ps := pragma(s.db, "page_size"); ps != 4096 {
		t.Errorf("older database: page_size %d, want 4096 (kept)", ps)
	}
	for _, c := range []interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}{s.db, s.wconn} {
		if n := pragma(c, "wal_autocheckpoint"); n != checkpointBytes/4096 {
			t.Errorf("older database: wal_autocheckpoint %d, want %d", n, checkpointBytes/4096)
		}
	}
	mustCreateAccount(t, s, "alice")
}

// TestMigrateMessagesTime opens a database made by schema 6 (the one
// before messages_time) holding messages: they are kept, and counting and
// pruning by time use the new index.
func TestMigrateMessagesTime(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatbox.db")
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 7 || ms[6].name != "0007_messages_time.sql" {
		t.Fatalf("migration 7 is %v", ms[6:])
	}
	// Schema 6, filled the way that build filled it.
	s6, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s6.db.ExecContext(ctx, `DROP INDEX messages_time; DROP INDEX accounts_admin; PRAGMA user_version = 6`); err != nil {
		t.Fatal(err)
	}
	mustCreateAccount(t, s6, "bob")
	var msgs []*chat.Message
	for i := range 20 {
		msgs = append(msgs, &chat.Message{ID: fmt.Sprint("g", i), Room: "general", From: "alice", Time: at(i), Body: fmt.Sprint("line ", i)})
	}
	msgs = append(msgs, &chat.Message{ID: "d", From: "alice", To: "bob", Time: at(15), Body: "hi"})
	appendAll(t, s6, msgs, nil)
	if err := s6.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTest(t, path)
	if v := userVersion(t, s.db); v != len(ms) {
		t.Fatalf("migrated database at version %d, want %d", v, len(ms))
	}
	if n := count(t, s, `SELECT count(*) FROM messages INDEXED BY messages_time WHERE time >= ?`, at(0).UnixNano()); n != 21 {
		t.Errorf("messages_time holds %d messages, want 21", n)
	}
	page, err := s.History(ctx, chat.HistoryQuery{Room: "general", Limit: 50})
	if err != nil || len(page) != 20 || page[7].Body != "line 7" || !page[7].Time.Equal(at(7)) {
		t.Fatalf("history after the migration: %d messages, %v", len(page), err)
	}
	if n, err := s.CountMessagesSince(ctx, at(15)); err != nil || n != 6 {
		t.Errorf("CountMessagesSince(at(15)) = %d, %v; want 6", n, err)
	}
	for _, q := range []string{
		`SELECT count(*) FROM messages WHERE time >= ?`,
		`DELETE FROM messages WHERE time < ? AND seq NOT IN (SELECT seq FROM offline)`,
	} {
		plan := queryPlan(t, s, q, at(0).UnixNano())
		if !strings.Contains(plan, "messages_time") {
			t.Errorf("%s: plan %q does not use messages_time", q, plan)
		}
	}
	if n, err := s.PruneHistory(ctx, at(10)); err != nil || n != 10 {
		t.Errorf("PruneHistory(at(10)) = %d, %v; want 10", n, err)
	}
}

// queryPlan is EXPLAIN QUERY PLAN's details, one per line.
func queryPlan(t testing.TB, s *Store, query string, args ...any) string {
	t.Helper()
	rows, err := s.db.Query(`EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
	}
	return strings.Join(lines, "\n")
}

// TestMigrateAccountsAdmin opens a database made by schema 7 (before
// accounts_admin): the index is made, Admins reads it instead of the
// whole table, and its answers follow SetAdmin and DeleteAccount.
func TestMigrateAccountsAdmin(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chatbox.db")
	s7, err := Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s7.db.ExecContext(ctx, `DROP INDEX accounts_admin; PRAGMA user_version = 7`); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"carol", "alice", "bob", "dave"} {
		mustCreateAccount(t, s7, n)
	}
	for _, n := range []string{"carol", "alice"} {
		if err := s7.SetAdmin(ctx, n, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := s7.Close(); err != nil {
		t.Fatal(err)
	}

	s := openTest(t, path)
	var plan []string
	rows, err := s.db.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT name FROM accounts WHERE admin ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, parent, unused int
		var detail string
		rows.Scan(&id, &parent, &unused, &detail)
		plan = append(plan, detail)
	}
	rows.Close()
	if !strings.Contains(strings.Join(plan, "; "), "accounts_admin") {
		t.Errorf("Admins' query plan %q does not use accounts_admin", plan)
	}
	admins := func() string {
		t.Helper()
		names, err := s.Admins(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(names, ",")
	}
	if got := admins(); got != "alice,carol" {
		t.Fatalf("Admins after the migration: %s, want alice,carol", got)
	}
	if err := s.SetAdmin(ctx, "dave", true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdmin(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	if got := admins(); got != "dave" {
		t.Fatalf("Admins after the changes: %s, want dave", got)
	}
}
