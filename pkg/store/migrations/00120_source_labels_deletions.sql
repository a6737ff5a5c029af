-- +goose Up
-- Gmail incremental sync mirrors label changes and deletions. A message
-- deleted at its source is kept (the user's copy is never destroyed
-- silently) and marked: email_origins.deleted_at per origin, and
-- emails.deleted_at_source once every source origin of the email is gone.
ALTER TABLE email_origins ADD COLUMN deleted_at timestamptz;
ALTER TABLE emails ADD COLUMN deleted_at_source timestamptz;
CREATE INDEX email_origins_external_idx ON email_origins (source_id, external_id);

-- +goose Down
DROP INDEX IF EXISTS email_origins_external_idx;
ALTER TABLE emails DROP COLUMN deleted_at_source;
ALTER TABLE email_origins DROP COLUMN deleted_at;
