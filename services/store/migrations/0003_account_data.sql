-- 0003_account_data: documents a door keeps per account across sessions
-- (XMPP roster, blocklist, PEP nodes and items, private XML), opaque to
-- the store, under (account, collection, key). seq orders a collection by
-- last write (XEP-0060 items are listed oldest first).
CREATE TABLE account_data (
    seq         INTEGER PRIMARY KEY,
    account     TEXT    NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
    collection  TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    value       BLOB    NOT NULL,
    updated     INTEGER NOT NULL,
    UNIQUE (account, collection, key)
);
