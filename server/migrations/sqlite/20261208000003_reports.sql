-- Messages members reported to a room's moderators: open until a moderator
-- resolves or dismisses them.
CREATE TABLE reports (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    room       TEXT    NOT NULL,
    message_id INTEGER NOT NULL,
    reporter   TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    closed_by  TEXT,
    closed_ms  INTEGER
);

CREATE INDEX reports_room_status ON reports (room, status, id);
