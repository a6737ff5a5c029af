-- +goose Up
-- A Gmail full sync (the first one, or after Gmail's history expired) lists
-- every message; it stamps each stored origin it lists with the sync's
-- start history id, so at its end the messages it did not list (deleted or
-- trashed meanwhile, with no history left to say so) can be checked.
ALTER TABLE email_origins ADD COLUMN listed_sync bigint;

-- +goose Down
ALTER TABLE email_origins DROP COLUMN listed_sync;
