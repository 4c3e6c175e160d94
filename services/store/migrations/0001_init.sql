-- 0001_init: the first chatbox schema.
--
-- Conventions:
--   * times are INTEGER Unix nanoseconds (UTC); NULL stands for the zero
--     time.Time;
--   * names (accounts, rooms) are stored as the core gives them (already
--     folded by chat.Fold) and compared byte for byte;
--   * small keyed tables are WITHOUT ROWID so that a row costs one B-tree.

-- Accounts keep only salted SCRAM keys, never a password.
CREATE TABLE accounts (
    name               TEXT    NOT NULL PRIMARY KEY,
    created            INTEGER,
    admin              INTEGER NOT NULL DEFAULT 0,
    sha256_salt        BLOB    NOT NULL DEFAULT x'',
    sha256_iterations  INTEGER NOT NULL DEFAULT 0,
    sha256_stored_key  BLOB    NOT NULL DEFAULT x'',
    sha256_server_key  BLOB    NOT NULL DEFAULT x'',
    sha1_salt          BLOB    NOT NULL DEFAULT x'',
    sha1_iterations    INTEGER NOT NULL DEFAULT 0,
    sha1_stored_key    BLOB    NOT NULL DEFAULT x'',
    sha1_server_key    BLOB    NOT NULL DEFAULT x''
) WITHOUT ROWID;

-- Rooms; settings is chat.RoomSettings as JSON.
CREATE TABLE rooms (
    name      TEXT    NOT NULL PRIMARY KEY,
    topic     TEXT    NOT NULL DEFAULT '',
    topic_by  TEXT    NOT NULL DEFAULT '',
    topic_at  INTEGER,
    created   INTEGER,
    settings  TEXT    NOT NULL DEFAULT '{}'
) WITHOUT ROWID;

-- Non-none affiliations. account is not a foreign key: XEP-0045 lets an
-- affiliation name an account that does not exist (yet); DeleteAccount
-- removes the rows explicitly.
CREATE TABLE room_affiliations (
    room        TEXT NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    account     TEXT NOT NULL,
    affiliation TEXT NOT NULL CHECK (affiliation IN ('owner', 'admin', 'member', 'outcast')),
    PRIMARY KEY (room, account)
) WITHOUT ROWID;
CREATE INDEX room_affiliations_account ON room_affiliations (account);

-- Ban, ban-exception and invite-exception lists. Masks match
-- case-insensitively, so they are unique case-insensitively too.
CREATE TABLE room_masks (
    room    TEXT NOT NULL REFERENCES rooms (name) ON DELETE CASCADE,
    list    TEXT NOT NULL CHECK (list IN ('ban', 'except', 'invex')),
    mask    TEXT NOT NULL COLLATE NOCASE,
    set_by  TEXT NOT NULL DEFAULT '',
    set_at  INTEGER,
    reason  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (room, list, mask)
) WITHOUT ROWID;

-- History: room messages (room set) and direct messages (to_account and
-- conv set). conv is the conversation key of a direct message, the two
-- account names sorted and joined by a NUL byte (a BLOB), so that one index
-- serves the conversation in both directions. The partial indexes only hold
-- the rows they serve, so a message touches the table and three indexes.
-- An index on (room) is implicitly an index on (room, seq): seq is the rowid.
CREATE TABLE messages (
    seq           INTEGER PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,
    time          INTEGER,
    from_account  TEXT    NOT NULL DEFAULT '',
    from_nick     TEXT    NOT NULL DEFAULT '',
    room          TEXT,
    to_account    TEXT,
    conv          BLOB,
    kind          TEXT    NOT NULL DEFAULT '',
    body          TEXT    NOT NULL DEFAULT '',
    extra         TEXT    NOT NULL DEFAULT '',
    CHECK ((room IS NULL) <> (to_account IS NULL)),
    CHECK ((to_account IS NULL) = (conv IS NULL))
);
CREATE INDEX messages_room      ON messages (room)       WHERE room IS NOT NULL;
CREATE INDEX messages_room_time ON messages (room, time) WHERE room IS NOT NULL;
CREATE INDEX messages_conv      ON messages (conv)       WHERE conv IS NOT NULL;
CREATE INDEX messages_conv_time ON messages (conv, time) WHERE conv IS NOT NULL;

-- seq_floor remembers the highest seq ever deleted, so that seqs are never
-- reused after the newest messages are deleted (AUTOINCREMENT would cost a
-- write of sqlite_sequence on every commit instead).
CREATE TABLE seq_floor (
    id   INTEGER PRIMARY KEY CHECK (id = 0),
    seq  INTEGER NOT NULL
);

-- Offline queue. seq is not a foreign key (that would need one more index
-- write per queued row); rows are removed explicitly with their message.
CREATE TABLE offline (
    account  TEXT    NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (account, seq)
) WITHOUT ROWID;

-- One opaque profile document per account.
CREATE TABLE vcards (
    account  TEXT NOT NULL PRIMARY KEY REFERENCES accounts (name) ON DELETE CASCADE,
    data     BLOB NOT NULL
);
