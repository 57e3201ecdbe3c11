-- Facts about the database itself. `epoch` is made once, with the database:
-- message ids only mean something within one epoch (see chat_shared::Epoch).
CREATE TABLE meta (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

INSERT INTO meta (key, value) VALUES ('epoch', lower(hex(randomblob(16))));
