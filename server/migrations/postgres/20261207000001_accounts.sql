-- Accounts: a name reserved server-wide (compared by `name_key`: NFKC,
-- lower case), with an argon2id password hash (PHC string).
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    name          TEXT   NOT NULL,
    name_key      TEXT   NOT NULL UNIQUE,
    password_hash TEXT   NOT NULL,
    created_ms    BIGINT NOT NULL
);

-- Signed-in sessions: the SHA-256 of the cookie's random token, never the token.
CREATE TABLE sessions (
    token_hash TEXT   NOT NULL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);

CREATE INDEX sessions_user ON sessions (user_id);
