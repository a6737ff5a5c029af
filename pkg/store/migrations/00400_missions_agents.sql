-- +goose Up
-- Mission cards: the primary action apart from the secondary ones, labelled
-- facts, the category served, when the card's event happens, the user's note,
-- and when the card's last change was published (an outbox mark: a change
-- whose publish failed is published on the next attempt).
ALTER TABLE missions
    ADD COLUMN primary_action jsonb,
    ADD COLUMN details        jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN category       text NOT NULL DEFAULT '',
    ADD COLUMN confidence     real NOT NULL DEFAULT 0,
    ADD COLUMN event_at       timestamptz,
    ADD COLUMN feedback_note  text NOT NULL DEFAULT '',
    ADD COLUMN published_at   timestamptz;
CREATE INDEX missions_agent_idx ON missions (agent, status);
CREATE INDEX missions_event_idx ON missions (event_at) WHERE event_at IS NOT NULL;

-- One agent run: what triggered it, how it ended, what it used and made.
CREATE TABLE agent_runs (
    id         text PRIMARY KEY,
    agent      text NOT NULL,
    trigger    text NOT NULL,
    subject    text NOT NULL DEFAULT '',
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    outcome    text NOT NULL,                  -- running | ok | failed | timeout | budget_exceeded
    error      text NOT NULL DEFAULT '',
    tool_calls integer NOT NULL DEFAULT 0,
    llm_calls  integer NOT NULL DEFAULT 0,
    cards      integer NOT NULL DEFAULT 0,
    card_ids   text[] NOT NULL DEFAULT '{}',
    rejected   text[] NOT NULL DEFAULT '{}',
    limits     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX agent_runs_recent_idx ON agent_runs (started_at DESC);
CREATE INDEX agent_runs_ok_idx ON agent_runs (agent, subject, ended_at DESC) WHERE outcome = 'ok';

-- A user's free-text request and what became of it.
CREATE TABLE agent_requests (
    id         text PRIMARY KEY,
    text       text NOT NULL,
    agent      text NOT NULL DEFAULT '',
    entities   jsonb NOT NULL DEFAULT '{}',
    status     text NOT NULL DEFAULT 'queued', -- queued | running | done | failed | no_intent
    run_id     text NOT NULL DEFAULT '',
    error      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE agent_requests, agent_runs;
DROP INDEX missions_event_idx, missions_agent_idx;
ALTER TABLE missions DROP COLUMN primary_action, DROP COLUMN details, DROP COLUMN category, DROP COLUMN confidence,
    DROP COLUMN event_at, DROP COLUMN feedback_note, DROP COLUMN published_at;
