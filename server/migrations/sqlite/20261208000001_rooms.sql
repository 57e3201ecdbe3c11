-- Rooms someone created (rooms nobody created are open to everyone and
-- have no row): private ones admit their members only. The creator owns it.
CREATE TABLE created_rooms (
    name       TEXT    NOT NULL PRIMARY KEY,
    private    INTEGER NOT NULL,
    owner_id   INTEGER NOT NULL REFERENCES users (id),
    created_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- Who is a member of a created room, and as what: member, moderator, owner.
CREATE TABLE room_members (
    room      TEXT    NOT NULL REFERENCES created_rooms (name) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT    NOT NULL,
    joined_ms INTEGER NOT NULL,
    PRIMARY KEY (room, user_id)
) WITHOUT ROWID;

CREATE INDEX room_members_user ON room_members (user_id);

-- Invite links: the SHA-256 of the link's 128-bit code, never the code.
CREATE TABLE room_invites (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    code_hash  TEXT    NOT NULL UNIQUE,
    room       TEXT    NOT NULL REFERENCES created_rooms (name) ON DELETE CASCADE,
    created_by INTEGER NOT NULL REFERENCES users (id),
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    uses_left  INTEGER
);

CREATE INDEX room_invites_room ON room_invites (room);
