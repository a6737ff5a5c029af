-- +goose Up
CREATE EXTENSION IF NOT EXISTS vector;

-- Where mail comes from: a Gmail account, an IMAP account, or uploaded files.
CREATE TABLE sources (
    id              text PRIMARY KEY,
    kind            text NOT NULL,                 -- gmail | imap | file
    account         text NOT NULL DEFAULT '',
    name            text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT 'idle',  -- idle | syncing | paused | failed | reconnect_needed
    config          jsonb NOT NULL DEFAULT '{}',
    secret          bytea,                         -- encrypted credentials (AES-GCM)
    cursor          jsonb NOT NULL DEFAULT '{}',   -- sync state: history id, UIDVALIDITY/UID, …
    last_success_at timestamptz,
    last_error      text NOT NULL DEFAULT '',
    last_error_at   timestamptz,
    heartbeat_at    timestamptz,
    emails_count    bigint NOT NULL DEFAULT 0,
    errors_count    bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- One uploaded file being imported, with its progress.
CREATE TABLE imports (
    id          text PRIMARY KEY,
    source_id   text REFERENCES sources(id) ON DELETE SET NULL,
    filename    text NOT NULL DEFAULT '',
    status      text NOT NULL DEFAULT 'queued',    -- uploading | queued | running | done | failed
    bytes_total bigint NOT NULL DEFAULT 0,
    bytes_read  bigint NOT NULL DEFAULT 0,
    messages    integer NOT NULL DEFAULT 0,        -- messages read from the file
    imported    integer NOT NULL DEFAULT 0,        -- new emails stored
    duplicates  integer NOT NULL DEFAULT 0,
    errors      integer NOT NULL DEFAULT 0,
    error       text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- A message of an import (or a sync) that could not be stored, and why.
CREATE TABLE import_errors (
    id         bigserial PRIMARY KEY,
    import_id  text REFERENCES imports(id) ON DELETE CASCADE,
    source_id  text REFERENCES sources(id) ON DELETE CASCADE,
    position   bigint NOT NULL DEFAULT 0,          -- message number or byte offset in the file
    message_id text NOT NULL DEFAULT '',
    error      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX import_errors_import_idx ON import_errors (import_id);

-- Normalized emails; raw is kept zstd-compressed so the pipeline can be replayed.
CREATE TABLE emails (
    id           text PRIMARY KEY,                 -- derived from message_id + content_hash
    source_id    text REFERENCES sources(id) ON DELETE SET NULL,
    import_id    text REFERENCES imports(id) ON DELETE SET NULL,
    message_id   text NOT NULL,
    content_hash text NOT NULL,
    thread_id    text NOT NULL DEFAULT '',
    subject      text NOT NULL DEFAULT '',
    from_addr    text NOT NULL DEFAULT '',
    from_name    text NOT NULL DEFAULT '',
    to_addrs     text[] NOT NULL DEFAULT '{}',
    cc_addrs     text[] NOT NULL DEFAULT '{}',
    sent_at      timestamptz,
    date_source  text NOT NULL DEFAULT '',         -- which header or fallback gave sent_at
    sort_at      timestamptz NOT NULL,             -- sent_at, else ingested_at: the list order
    body_text    text NOT NULL DEFAULT '',
    body_html    text NOT NULL DEFAULT '',
    snippet      text NOT NULL DEFAULT '',
    attachments  jsonb NOT NULL DEFAULT '[]',
    labels       text[] NOT NULL DEFAULT '{}',
    warnings     text[] NOT NULL DEFAULT '{}',
    size_bytes   bigint NOT NULL DEFAULT 0,
    raw_zstd     bytea,
    ingested_at  timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,                      -- emails.ingested stored on the bus
    UNIQUE (message_id, content_hash)
);
CREATE INDEX emails_sort_idx ON emails (sort_at DESC, id DESC);
CREATE INDEX emails_from_idx ON emails (from_addr);

-- Each email's progress through the stages after ingest.
CREATE TABLE email_stages (
    email_id   text NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
    stage      text NOT NULL,                      -- embedder | classifier | agents
    status     text NOT NULL,                      -- done | failed
    error      text NOT NULL DEFAULT '',
    attempts   integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (email_id, stage)
);
CREATE INDEX email_stages_stage_idx ON email_stages (stage, status);

-- Chunk vectors; model says which embedding model made them.
CREATE TABLE embeddings (
    email_id   text NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
    model      text NOT NULL,
    chunk      integer NOT NULL,
    text_start integer NOT NULL DEFAULT 0,
    text_end   integer NOT NULL DEFAULT 0,
    embedding  vector(384) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (email_id, model, chunk)
);
CREATE INDEX embeddings_hnsw_idx ON embeddings USING hnsw (embedding vector_cosine_ops);

-- Categories assigned to an email, with provenance.
CREATE TABLE classifications (
    email_id       text NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
    taxonomy       text NOT NULL,                  -- audience-1.1 | content-3.1
    category_id    text NOT NULL,
    confidence     real NOT NULL,
    evidence       text NOT NULL DEFAULT '',
    judgement      text NOT NULL DEFAULT '',       -- explicit | contextual | weak | inappropriate
    backend        text NOT NULL,                  -- local | llm
    model          text NOT NULL DEFAULT '',
    prompt_version text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (email_id, taxonomy, category_id)
);
CREATE INDEX classifications_category_idx ON classifications (taxonomy, category_id);

-- The user's profile: one row per category with its current confidence.
CREATE TABLE profile (
    taxonomy          text NOT NULL,
    category_id       text NOT NULL,
    section           text NOT NULL DEFAULT '',
    confidence        real NOT NULL,
    evidence_count    integer NOT NULL DEFAULT 0,
    first_evidence_at timestamptz,
    last_evidence_at  timestamptz,
    disputed          boolean NOT NULL DEFAULT false,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (taxonomy, category_id)
);

-- Mission cards.
CREATE TABLE missions (
    id            text PRIMARY KEY,                -- derived from agent + subject key
    agent         text NOT NULL,
    kind          text NOT NULL DEFAULT '',
    subject_key   text NOT NULL DEFAULT '',
    title         text NOT NULL,
    summary       text NOT NULL DEFAULT '',
    urgency       integer NOT NULL DEFAULT 0,
    status        text NOT NULL DEFAULT 'created', -- created | presented | active | snoozed | dismissed | completed
    actions       jsonb NOT NULL DEFAULT '[]',
    evidence      jsonb NOT NULL DEFAULT '[]',
    payload       jsonb NOT NULL DEFAULT '{}',
    rating        text NOT NULL DEFAULT '',        -- meh | like | love
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    snoozed_until timestamptz
);
CREATE INDEX missions_feed_idx ON missions (status, updated_at DESC);

-- Feedback episodes on missions.
CREATE TABLE feedback (
    id         bigserial PRIMARY KEY,
    mission_id text NOT NULL REFERENCES missions(id) ON DELETE CASCADE,
    kind       text NOT NULL,                      -- rating | snooze | dismiss | complete | action
    value      text NOT NULL DEFAULT '',
    note       text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX feedback_mission_idx ON feedback (mission_id);

-- Messages a stage gave up on, with the reason; retrying one re-publishes it.
CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    stage       text NOT NULL,
    subject     text NOT NULL,
    msg_id      text NOT NULL,
    key         text NOT NULL DEFAULT '',
    payload     jsonb NOT NULL,
    error       text NOT NULL,
    attempts    integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    UNIQUE (stage, msg_id)
);

-- +goose Down
DROP TABLE dead_letters, feedback, missions, profile, classifications, embeddings,
    email_stages, emails, import_errors, imports, sources;
