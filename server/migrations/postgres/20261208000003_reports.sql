-- Messages members reported to a room's moderators: open until a moderator
-- resolves or dismisses them.
CREATE TABLE reports (
    id         BIGSERIAL PRIMARY KEY,
    room       TEXT    NOT NULL,
    message_id BIGINT  NOT NULL,
    reporter   TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    created_ms BIGINT  NOT NULL,
    closed_by  TEXT,
    closed_ms  BIGINT
);

CREATE INDEX reports_room_status ON reports (room, status, id);
