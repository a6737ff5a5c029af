-- +goose Up
-- File import runs are fenced and heartbeated like sync runs: a run that
-- stopped heartbeating (its process died) is failed with a reason and
-- retried up to a limit, and a replaced run can no longer write.
ALTER TABLE imports
    ADD COLUMN run_id       text NOT NULL DEFAULT '',
    ADD COLUMN heartbeat_at timestamptz,
    ADD COLUMN attempts     integer NOT NULL DEFAULT 0,   -- runs started
    ADD COLUMN object       text NOT NULL DEFAULT '';     -- upload in the imports bucket
CREATE INDEX imports_running_idx ON imports (heartbeat_at) WHERE status = 'running';

-- +goose Down
DROP INDEX IF EXISTS imports_running_idx;
ALTER TABLE imports DROP COLUMN run_id, DROP COLUMN heartbeat_at, DROP COLUMN attempts, DROP COLUMN object;
