-- +goose Up
-- Keyword search ranks every full-text match (pkg/search), reading each
-- match's tsvector. Kept in the heap row (compressed if need be, out of line
-- only past ~8 kB) instead of TOAST, ranking needs no TOAST lookup per match;
-- the body text, read only for the final page's snippets, is moved out first.
-- Applies to rows written from now on (catalog change only, no rewrite).
ALTER TABLE emails ALTER COLUMN search_tsv SET STORAGE MAIN;

-- +goose Down
ALTER TABLE emails ALTER COLUMN search_tsv SET STORAGE EXTENDED;
