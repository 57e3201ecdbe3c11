-- Server administrators granted with `chat-server admin grant NAME`
-- (besides those named by --admin).
CREATE TABLE server_admins (
    user_id    INTEGER NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    granted_ms INTEGER NOT NULL
);

-- Settings any room may have, created or not: slow mode.
CREATE TABLE room_settings (
    room           TEXT    NOT NULL PRIMARY KEY,
    slow_mode_secs INTEGER NOT NULL
) WITHOUT ROWID;

-- Bans: an account (`user:<id>`) or, for guests, an address
-- (`address:<ip>`), until a moment (ms since the epoch) or for ever (NULL).
CREATE TABLE room_bans (
    room       TEXT    NOT NULL,
    target     TEXT    NOT NULL,
    label      TEXT    NOT NULL,
    until_ms   INTEGER,
    by_user    INTEGER NOT NULL REFERENCES users (id),
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (room, target)
) WITHOUT ROWID;

-- What owners, moderators and admins did, per room.
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    room   TEXT    NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL,
    detail TEXT    NOT NULL,
    at_ms  INTEGER NOT NULL
);

CREATE INDEX audit_log_room ON audit_log (room, id);
