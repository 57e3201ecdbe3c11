-- Chat history: one row per stored message, numbered per room.
CREATE TABLE messages (
    room      TEXT   NOT NULL,
    id        BIGINT NOT NULL,
    ts        BIGINT NOT NULL,
    nick      TEXT   NOT NULL,
    text      TEXT   NOT NULL,
    client_id TEXT,
    PRIMARY KEY (room, id)
);

-- A resend with the same client id is stored once.
CREATE UNIQUE INDEX messages_room_client_id ON messages (room, client_id) WHERE client_id IS NOT NULL;

-- Each room's last id. Its row is locked by the transaction that stores into
-- the room until it commits: writers of one room, on any node, take turns,
-- so ids are assigned once each, in commit order, with no gap.
CREATE TABLE rooms (
    room    TEXT   NOT NULL PRIMARY KEY,
    last_id BIGINT NOT NULL
);

-- Facts about the database itself. `epoch` is made once, with the database:
-- message ids only mean something within one epoch (see chat_shared::Epoch).
CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

INSERT INTO meta (key, value) VALUES ('epoch', replace(gen_random_uuid()::text, '-', ''));
