-- 0006_box_state: small named values of the box's own that must survive a
-- restart (event mode: whether guest access is closed, chat.StateStore).
CREATE TABLE box_state (
    key    TEXT NOT NULL PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;
