-- +goose Up
-- Full-text search over emails (pkg/search): a stored tsvector weighting the
-- subject (A) over the sender (B) and the body (C). The body is capped so a
-- huge mail can never exceed tsvector's 1 MB limit and fail its insert.
ALTER TABLE emails ADD COLUMN search_tsv tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english'::regconfig, subject), 'A') ||
    setweight(to_tsvector('simple'::regconfig, from_name || ' ' || replace(replace(from_addr, '@', ' '), '.', ' ')), 'B') ||
    setweight(to_tsvector('english'::regconfig, left(body_text, 100000)), 'C')
) STORED;
CREATE INDEX emails_search_tsv_idx ON emails USING gin (search_tsv);

-- Sender filter: substring match on address and name (pg_trgm is a trusted
-- contrib extension, so the database owner may create it).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX emails_from_trgm_idx ON emails USING gin ((from_addr || ' ' || from_name) gin_trgm_ops);

-- +goose Down
DROP INDEX IF EXISTS emails_from_trgm_idx;
DROP INDEX IF EXISTS emails_search_tsv_idx;
ALTER TABLE emails DROP COLUMN IF EXISTS search_tsv;
