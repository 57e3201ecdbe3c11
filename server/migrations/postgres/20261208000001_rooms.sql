-- Rooms someone created (rooms nobody created are open to everyone and
-- have no row): private ones admit their members only. The creator owns it.
CREATE TABLE created_rooms (
    name       TEXT    NOT NULL PRIMARY KEY,
    private    BOOLEAN NOT NULL,
    owner_id   BIGINT  NOT NULL REFERENCES users (id),
    created_ms BIGINT  NOT NULL
);

-- Who is a member of a created room, and as what: member, moderator, owner.
CREATE TABLE room_members (
    room      TEXT   NOT NULL REFERENCES created_rooms (name) ON DELETE CASCADE,
    user_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      TEXT   NOT NULL,
    joined_ms BIGINT NOT NULL,
    PRIMARY KEY (room, user_id)
);

CREATE INDEX room_members_user ON room_members (user_id);

-- Invite links: the SHA-256 of the link's 128-bit code, never the code.
CREATE TABLE room_invites (
    id         BIGSERIAL PRIMARY KEY,
    code_hash  TEXT   NOT NULL UNIQUE,
    room       TEXT   NOT NULL REFERENCES created_rooms (name) ON DELETE CASCADE,
    created_by BIGINT NOT NULL REFERENCES users (id),
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT,
    uses_left  BIGINT
);

CREATE INDEX room_invites_room ON room_invites (room);
