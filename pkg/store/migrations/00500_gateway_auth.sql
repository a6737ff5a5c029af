-- +goose Up
-- The household's single admin account (one row, id = 1).
CREATE TABLE auth_admin (
    id            integer PRIMARY KEY CHECK (id = 1),
    password_hash text NOT NULL,                   -- bcrypt
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Browser sessions; only a hash of the cookie value is kept.
CREATE TABLE auth_sessions (
    token_hash  text PRIMARY KEY,                  -- hex sha256 of the cookie value
    csrf_token  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX auth_sessions_expires_idx ON auth_sessions (expires_at);

-- API tokens for scripts; only a hash of the token is kept.
CREATE TABLE api_tokens (
    id           text PRIMARY KEY,
    name         text NOT NULL DEFAULT '',
    token_hash   text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz
);

-- User settings edited in the UI (LLM endpoint, budget, privacy), one JSON document per key.
CREATE TABLE settings (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE settings, api_tokens, auth_sessions, auth_admin;
