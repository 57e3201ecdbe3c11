-- Chat history: one row per stored message, numbered per room.
CREATE TABLE messages (
    room      TEXT    NOT NULL,
    id        INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    nick      TEXT    NOT NULL,
    text      TEXT    NOT NULL,
    client_id TEXT,
    PRIMARY KEY (room, id)
) WITHOUT ROWID;

-- A resend with the same client id is stored once.
CREATE UNIQUE INDEX messages_room_client_id ON messages (room, client_id) WHERE client_id IS NOT NULL;
