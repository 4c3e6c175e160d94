-- 0005_invites: invitations to create an account (XEP-0401, `chatbox
-- invite`). token is the secret; creator and contact are accounts (NULL:
-- the box, no contact) and the invitation goes with its creator; account
-- is a reserved name (NULL: any). A row lives while uses > 0 and until
-- expires (Unix nanoseconds).
CREATE TABLE account_invites (
    token    TEXT    NOT NULL PRIMARY KEY,
    creator  TEXT    REFERENCES accounts (name) ON DELETE CASCADE,
    contact  TEXT    REFERENCES accounts (name) ON DELETE SET NULL,
    account  TEXT,
    created  INTEGER NOT NULL,
    expires  INTEGER NOT NULL,
    uses     INTEGER NOT NULL CHECK (uses >= 0)
);
CREATE INDEX account_invites_expires ON account_invites (expires);
CREATE INDEX account_invites_creator ON account_invites (creator);
