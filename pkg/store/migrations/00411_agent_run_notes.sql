-- +goose Up
-- What a run could not do but worked around (e.g. the semantic leg of the
-- evidence search was unavailable and it used keywords only).
ALTER TABLE agent_runs ADD COLUMN notes text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE agent_runs DROP COLUMN notes;
