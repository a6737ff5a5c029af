-- +goose Up
-- New-mail triggers the agents service has acked but not yet acted on
-- (services/agents: the emails.classified handler upserts a row by email id
-- and acks; the debounced batch deletes the rows it covered once its runs are
-- recorded; rows left by a crash are picked up at start).
CREATE TABLE agent_pending_triggers (
    email_id   text PRIMARY KEY,
    categories text[] NOT NULL DEFAULT '{}', -- category names, for the trigger table's agent filter
    seen_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- +goose Down
DROP TABLE agent_pending_triggers;
