-- +goose Up
-- Profile rows keep the undecayed confidence at the last evidence (raw_confidence)
-- next to the decayed one (confidence, refreshed by the classifier), the tier
-- path for display, and the exclusive group the category belongs to.
ALTER TABLE profile
    ADD COLUMN raw_confidence real NOT NULL DEFAULT 0,
    ADD COLUMN path           text NOT NULL DEFAULT '',
    ADD COLUMN group_key      text NOT NULL DEFAULT '',
    ADD COLUMN is_primary     boolean NOT NULL DEFAULT false;
CREATE INDEX profile_group_idx ON profile (group_key) WHERE group_key <> '';

-- LLM token usage per calendar month (UTC) and operation, shared by all
-- classifier processes for the monthly budget.
CREATE TABLE llm_usage (
    month             text NOT NULL,             -- 2026-11
    op                text NOT NULL,             -- classify | judge
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    calls             bigint NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (month, op)
);

-- What the classifier is doing, for the user: backend, model, budget state.
CREATE TABLE classifier_status (
    id           text PRIMARY KEY,               -- 'classifier'
    backend      text NOT NULL DEFAULT '',
    model        text NOT NULL DEFAULT '',
    budget_level text NOT NULL DEFAULT 'ok',     -- ok | warn | defer | stopped
    budget_used  bigint NOT NULL DEFAULT 0,
    budget_limit bigint NOT NULL DEFAULT 0,
    message      text NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE classifier_status, llm_usage;
DROP INDEX profile_group_idx;
ALTER TABLE profile DROP COLUMN raw_confidence, DROP COLUMN path, DROP COLUMN group_key, DROP COLUMN is_primary;
