-- +goose Up
-- Full-text index for the agents' evidence search (services/agents: pgData.SearchEmails
-- uses exactly this expression). Bodies are capped so an enormous mail can
-- never exceed the tsvector size limit and fail its insert.
CREATE INDEX emails_agents_fts_idx ON emails
    USING gin (to_tsvector('simple', subject || ' ' || left(body_text, 100000)));

-- +goose Down
DROP INDEX emails_agents_fts_idx;
