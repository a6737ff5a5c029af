-- +goose Up
-- Sync runs are fenced by run_id: a run that was declared stale (no
-- heartbeat) and replaced can no longer move the cursor or the status.
ALTER TABLE sources
    ADD COLUMN run_id         text NOT NULL DEFAULT '',
    ADD COLUMN run_started_at timestamptz,
    ADD COLUMN next_sync_at   timestamptz,
    ADD COLUMN sync_requested boolean NOT NULL DEFAULT false,
    ADD COLUMN full_resync    boolean NOT NULL DEFAULT false,
    ADD COLUMN last_run       jsonb NOT NULL DEFAULT '{}';
CREATE INDEX sources_due_idx ON sources (next_sync_at) WHERE status IN ('idle', 'failed');

-- Messages of a source that failed to fetch, retried on later runs; they
-- never hold the source's cursor back.
CREATE TABLE source_failures (
    source_id     text NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    external_id   text NOT NULL,                  -- Gmail id, or folder/uidvalidity/uid
    error         text NOT NULL,
    attempts      integer NOT NULL DEFAULT 1,
    permanent     boolean NOT NULL DEFAULT false, -- e.g. over the size cap: listed, not retried
    first_at      timestamptz NOT NULL DEFAULT now(),
    last_at       timestamptz NOT NULL DEFAULT now(),
    next_retry_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_id, external_id)
);

-- Every place an email was seen: the same mail from Gmail and from a Takeout
-- file is one email with two origins. Deleting a source with its mail
-- removes the emails no other origin holds.
CREATE TABLE email_origins (
    email_id    text NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
    origin      text NOT NULL,                    -- source:<id> or import:<id>
    source_id   text REFERENCES sources(id) ON DELETE CASCADE,
    import_id   text REFERENCES imports(id) ON DELETE CASCADE,
    external_id text NOT NULL DEFAULT '',
    labels      text[] NOT NULL DEFAULT '{}',
    seen_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (email_id, origin, external_id)
);
CREATE INDEX email_origins_source_idx ON email_origins (source_id);

-- OAuth web-flow state between /oauth/google/start and the callback.
CREATE TABLE oauth_states (
    state      text PRIMARY KEY,
    provider   text NOT NULL,
    verifier   text NOT NULL,
    source_id  text NOT NULL DEFAULT '',          -- reconnecting an existing source
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE oauth_states, email_origins, source_failures;
DROP INDEX IF EXISTS sources_due_idx;
ALTER TABLE sources DROP COLUMN run_id, DROP COLUMN run_started_at, DROP COLUMN next_sync_at,
    DROP COLUMN sync_requested, DROP COLUMN full_resync, DROP COLUMN last_run;
