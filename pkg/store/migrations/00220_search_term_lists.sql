-- +goose Up
-- Keyword search ranks every match of its query, so a query made only of
-- words found in a large share of the mail ranks tens of thousands of rows.
-- For such "common" terms pkg/search keeps, per term, the mails that rank
-- highest for it alone; a query of common terms then ranks those lists plus
-- the mail that arrived since they were computed (docs/search.md).

-- Terms found in at least Config.CommonTermDocs mails, with their document
-- count and the score of the last mail in their list.
CREATE TABLE search_common_terms (
    lexeme    text PRIMARY KEY,
    ndoc      integer NOT NULL,
    listed    integer NOT NULL,
    min_score real NOT NULL
);

-- The top Config.CommonTermTop mails per common term by ts_rank_cd for that
-- term alone, with that score and the mail's date: mail is never rewritten,
-- so a one-word query is answered from here without reading the mails. No
-- foreign key: a deleted mail is skipped at query time and dropped by the
-- next refresh.
CREATE TABLE search_term_top (
    lexeme   text NOT NULL,
    email_id text NOT NULL,
    score    real NOT NULL,
    sort_at  timestamptz NOT NULL
);
-- In keyword search's order, so a query reads the first n entries only.
CREATE UNIQUE INDEX search_term_top_rank_idx ON search_term_top (lexeme, score DESC, sort_at DESC, email_id);

-- One row: when the lists were computed, and from when on mail is not in
-- them yet (the refresh's start less a margin for transactions in flight).
CREATE TABLE search_term_state (
    id            boolean PRIMARY KEY DEFAULT true CHECK (id),
    refreshed_at  timestamptz NOT NULL,
    covers_before timestamptz NOT NULL,
    mails         bigint NOT NULL,
    took_ms       integer NOT NULL
);

-- Finds the mail that arrived since the lists were computed.
CREATE INDEX emails_ingested_idx ON emails (ingested_at);

-- +goose Down
DROP INDEX IF EXISTS emails_ingested_idx;
DROP TABLE IF EXISTS search_term_state;
DROP TABLE IF EXISTS search_term_top;
DROP TABLE IF EXISTS search_common_terms;
