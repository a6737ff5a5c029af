-- +goose Up
-- Vectors of more than one model, side by side: the lite model (word
-- vectors, 100 dimensions) on a box without MiniLM, MiniLM (384) once it is
-- downloaded, both while mail is re-embedded from one into the other.
-- The column loses its fixed dimension; each dimension gets its own partial
-- HNSW index (half precision, as in 00230), which a kNN query uses by naming
-- the dimension (vector_dims(embedding) = n, embedding::halfvec(n)).
-- Rebuilding the 384 index takes ~1.5 min per 100k mails on 2 cores.
DROP INDEX IF EXISTS embeddings_hnsw_idx;
ALTER TABLE embeddings ALTER COLUMN embedding TYPE vector;
CREATE INDEX embeddings_hnsw_384_idx ON embeddings USING hnsw ((embedding::halfvec(384)) halfvec_cosine_ops)
    WHERE vector_dims(embedding) = 384;
CREATE INDEX embeddings_hnsw_100_idx ON embeddings USING hnsw ((embedding::halfvec(100)) halfvec_cosine_ops)
    WHERE vector_dims(embedding) = 100;

-- One row per email and model that embedded it (chunks may be 0: an email
-- with no text): what "this email is embedded by model m" means, so a
-- re-embed knows what is left without counting chunks.
CREATE TABLE email_embeddings (
    email_id    text NOT NULL REFERENCES emails(id) ON DELETE CASCADE,
    model       text NOT NULL,
    chunks      integer NOT NULL,
    embedded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (email_id, model)
);
CREATE INDEX email_embeddings_model_idx ON email_embeddings (model, email_id);
INSERT INTO email_embeddings (email_id, model, chunks, embedded_at)
    SELECT email_id, model, count(*), max(created_at) FROM embeddings GROUP BY email_id, model;

-- The embedding models in use (one row, owned by the embedder service):
-- active is what search, the classifier and the agents compare with; target,
-- when set, is the model all mail is being re-embedded into, which becomes
-- active once every embedded email has its vectors. preference is what the
-- user chose in Settings → Models (auto = MiniLM when downloaded, else lite).
CREATE TABLE embedding_state (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    preference   text NOT NULL DEFAULT 'auto',
    active_model text NOT NULL DEFAULT '',
    active_dim   integer NOT NULL DEFAULT 0,
    target_model text NOT NULL DEFAULT '',
    target_dim   integer NOT NULL DEFAULT 0,
    reason       text NOT NULL DEFAULT '',   -- why the active model is not the preferred one
    blocked      text NOT NULL DEFAULT '',   -- why no model can run at all (the stage waits)
    started_at   timestamptz,                -- when the re-embed into target began
    switched_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO embedding_state (active_model, active_dim)
    SELECT coalesce((SELECT model FROM email_embeddings GROUP BY model ORDER BY count(*) DESC LIMIT 1), ''),
           coalesce((SELECT vector_dims(embedding) FROM embeddings e
                     WHERE e.model = (SELECT model FROM email_embeddings GROUP BY model ORDER BY count(*) DESC LIMIT 1) LIMIT 1), 0);

-- +goose Down
DROP TABLE embedding_state;
DROP TABLE email_embeddings;
DROP INDEX IF EXISTS embeddings_hnsw_100_idx;
DROP INDEX IF EXISTS embeddings_hnsw_384_idx;
DELETE FROM embeddings WHERE vector_dims(embedding) <> 384;
ALTER TABLE embeddings ALTER COLUMN embedding TYPE vector(384);
CREATE INDEX embeddings_hnsw_idx ON embeddings USING hnsw ((embedding::halfvec(384)) halfvec_cosine_ops);
