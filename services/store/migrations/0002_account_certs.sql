-- 0002_account_certs: client certificates that log an account in (SASL
-- EXTERNAL), by the SHA-256 fingerprint of the certificate (lower-case
-- hex, no separators).
CREATE TABLE account_certs (
    fingerprint  TEXT    NOT NULL PRIMARY KEY,
    account      TEXT    NOT NULL REFERENCES accounts (name) ON DELETE CASCADE,
    added        INTEGER
) WITHOUT ROWID;

CREATE INDEX account_certs_account ON account_certs (account);
