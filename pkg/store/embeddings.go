package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
)

// Embedding model preferences (Settings → Models).
const (
	// EmbedPreferAuto uses MiniLM when its files are verified, else the lite model.
	EmbedPreferAuto = "auto"
	// EmbedPreferMiniLM asks for MiniLM; the lite model stands in while it is missing.
	EmbedPreferMiniLM = "minilm"
	// EmbedPreferLite uses the lite model (word vectors) on purpose: weak CPUs.
	EmbedPreferLite = "lite"
)

// EmbeddingState is which embedding models are in use: search, the
// classifier and the agents compare vectors of Active; when Target is set,
// all mail is being re-embedded into it and it becomes Active once done.
type EmbeddingState struct {
	Preference  string     `json:"preference"`
	ActiveModel string     `json:"active_model"`
	ActiveDim   int        `json:"active_dim"`
	TargetModel string     `json:"target_model,omitempty"`
	TargetDim   int        `json:"target_dim,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	Blocked     string     `json:"blocked,omitempty"` // why no model runs: the embedder stage waits
	StartedAt   *time.Time `json:"started_at,omitempty"`
	SwitchedAt  *time.Time `json:"switched_at,omitempty"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// GetEmbeddingState returns the embedding models in use.
func (db *DB) GetEmbeddingState(ctx context.Context) (EmbeddingState, error) {
	var s EmbeddingState
	err := db.Pool.QueryRow(ctx, `
		SELECT preference, active_model, active_dim, target_model, target_dim, reason, blocked, started_at, switched_at, updated_at
		FROM embedding_state`).Scan(&s.Preference, &s.ActiveModel, &s.ActiveDim, &s.TargetModel, &s.TargetDim, &s.Reason, &s.Blocked,
		&s.StartedAt, &s.SwitchedAt, &s.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return EmbeddingState{Preference: EmbedPreferAuto}, nil
	}
	if err != nil {
		return s, fmt.Errorf("embedding state: %w", err)
	}
	return s, nil
}

// SetEmbeddingPreference records the user's choice of embedding model.
func (db *DB) SetEmbeddingPreference(ctx context.Context, pref string) error {
	switch pref {
	case EmbedPreferAuto, EmbedPreferMiniLM, EmbedPreferLite:
	default:
		return fmt.Errorf("embedding preference %q: want auto, minilm or lite", pref)
	}
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO embedding_state (preference) VALUES ($1)
		ON CONFLICT (id) DO UPDATE SET preference = $1, updated_at = now()`, pref)
	if err != nil {
		return fmt.Errorf("set embedding preference: %w", err)
	}
	return nil
}

// UseEmbeddingModel makes model active at once and drops any re-embed
// target: for a box with no vectors yet, a switch abandoned or finished, or
// an active model that can no longer be loaded. reason says why it is not
// the preferred model ("" when it is).
func (db *DB) UseEmbeddingModel(ctx context.Context, model string, dim int, reason string) error {
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO embedding_state (active_model, active_dim, reason, switched_at) VALUES ($1, $2, $3, now())
		ON CONFLICT (id) DO UPDATE SET active_model = $1, active_dim = $2, reason = $3, target_model = '', target_dim = 0, started_at = NULL, blocked = '',
			switched_at = CASE WHEN embedding_state.active_model = $1 THEN embedding_state.switched_at ELSE now() END,
			updated_at = now()`, model, dim, reason)
	if err != nil {
		return fmt.Errorf("use embedding model: %w", err)
	}
	return nil
}

// SetEmbeddingReason records why the active model is not the preferred one.
func (db *DB) SetEmbeddingReason(ctx context.Context, reason string) error {
	_, err := db.Pool.Exec(ctx, `UPDATE embedding_state SET reason = $1, updated_at = now() WHERE reason IS DISTINCT FROM $1`, reason)
	if err != nil {
		return fmt.Errorf("set embedding reason: %w", err)
	}
	return nil
}

// SetEmbeddingBlocked records why the embedder cannot run any model ("" when
// it can again): the stage's mail waits, and the Pipeline screen says why.
func (db *DB) SetEmbeddingBlocked(ctx context.Context, reason string) error {
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO embedding_state (blocked) VALUES ($1)
		ON CONFLICT (id) DO UPDATE SET blocked = $1, updated_at = now() WHERE embedding_state.blocked IS DISTINCT FROM $1`, reason)
	if err != nil {
		return fmt.Errorf("set embedding blocked: %w", err)
	}
	return nil
}

// StartReembed sets model as the target all mail is re-embedded into; a
// target already set to model keeps its start time. Setting the active model
// as target clears the target instead.
func (db *DB) StartReembed(ctx context.Context, model string, dim int) error {
	_, err := db.Pool.Exec(ctx, `
		UPDATE embedding_state SET blocked = '',
			target_model = CASE WHEN active_model = $1 THEN '' ELSE $1 END,
			target_dim = CASE WHEN active_model = $1 THEN 0 ELSE $2 END,
			started_at = CASE WHEN active_model = $1 THEN NULL WHEN target_model = $1 THEN started_at ELSE now() END,
			updated_at = now()`, model, dim)
	if err != nil {
		return fmt.Errorf("start re-embed: %w", err)
	}
	return nil
}

// FinishReembed makes the target model active if it still is target; it
// reports whether it switched.
func (db *DB) FinishReembed(ctx context.Context, target string) (bool, error) {
	tag, err := db.Pool.Exec(ctx, `
		UPDATE embedding_state SET active_model = target_model, active_dim = target_dim, target_model = '', target_dim = 0,
			switched_at = now(), updated_at = now(), reason = ''
		WHERE target_model = $1 AND $1 <> ''`, target)
	if err != nil {
		return false, fmt.Errorf("finish re-embed: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// EmbeddedChunk is one stored vector of an email: chunk 0 is the subject,
// 1… body windows with their character range in body_text.
type EmbeddedChunk struct {
	N, Start, End int
	Vec           []float32
}

// StoreEmbeddings replaces an email's vectors of model with chunks and
// records the email as embedded by model (also with no chunks). Vectors of
// other models stay. Idempotent.
func (db *DB) StoreEmbeddings(ctx context.Context, emailID, model string, chunks []EmbeddedChunk) error {
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM embeddings WHERE email_id = $1 AND model = $2`, emailID, model); err != nil {
			return err
		}
		if len(chunks) > 0 {
			rows := make([][]any, len(chunks))
			for i, c := range chunks {
				rows[i] = []any{emailID, model, c.N, c.Start, c.End, pgvector.NewVector(c.Vec)}
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"embeddings"}, []string{"email_id", "model", "chunk", "text_start", "text_end", "embedding"}, pgx.CopyFromRows(rows)); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO email_embeddings (email_id, model, chunks) VALUES ($1, $2, $3)
			ON CONFLICT (email_id, model) DO UPDATE SET chunks = $3, embedded_at = now()`, emailID, model, len(chunks))
		return err
	})
	if err != nil {
		return fmt.Errorf("store vectors of %s: %w", emailID, err)
	}
	return nil
}

// EmailVectors is one email's vectors of a model, for StoreEmbeddingsBatch.
type EmailVectors struct {
	EmailID string
	Chunks  []EmbeddedChunk
}

// StoreEmbeddingsBatch is StoreEmbeddings for many emails of one model in
// one transaction (one COPY): what re-embedding a mailbox needs.
func (db *DB) StoreEmbeddingsBatch(ctx context.Context, model string, batch []EmailVectors) error {
	if len(batch) == 0 {
		return nil
	}
	ids := make([]string, len(batch))
	counts := make([]int32, len(batch))
	var rows [][]any
	for i, b := range batch {
		ids[i], counts[i] = b.EmailID, int32(len(b.Chunks))
		for _, c := range b.Chunks {
			rows = append(rows, []any{b.EmailID, model, c.N, c.Start, c.End, pgvector.NewVector(c.Vec)})
		}
	}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM embeddings WHERE email_id = ANY($1) AND model = $2`, ids, model); err != nil {
			return err
		}
		if len(rows) > 0 {
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{"embeddings"}, []string{"email_id", "model", "chunk", "text_start", "text_end", "embedding"}, pgx.CopyFromRows(rows)); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO email_embeddings (email_id, model, chunks) SELECT id, $2, n FROM unnest($1::text[], $3::int[]) AS u(id, n)
			ON CONFLICT (email_id, model) DO UPDATE SET chunks = EXCLUDED.chunks, embedded_at = now()`, ids, model, counts)
		return err
	})
	if err != nil {
		return fmt.Errorf("store vectors of %d emails: %w", len(batch), err)
	}
	return nil
}

// EmailText is what an embedding model reads of an email.
type EmailText struct {
	ID, Subject, Body string
}

// EmailTexts returns the subject and body of the emails with ids that
// exist, in no particular order.
func (db *DB) EmailTexts(ctx context.Context, ids []string) ([]EmailText, error) {
	rows, err := db.Pool.Query(ctx, `SELECT id, subject, body_text FROM emails WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("email texts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EmailText, error) {
		var t EmailText
		return t, r.Scan(&t.ID, &t.Subject, &t.Body)
	})
	if err != nil {
		return nil, fmt.Errorf("email texts: %w", err)
	}
	return out, nil
}

// EmailsMissingModel returns up to limit emails past the embedder stage
// (ids after afterID, in id order) that model has not embedded.
func (db *DB) EmailsMissingModel(ctx context.Context, model, afterID string, limit int) ([]string, error) {
	rows, err := db.Pool.Query(ctx, `
		SELECT s.email_id FROM email_stages s
		WHERE s.stage = 'embedder' AND s.status = 'done' AND s.email_id > $2
		  AND NOT EXISTS (SELECT 1 FROM email_embeddings x WHERE x.email_id = s.email_id AND x.model = $1)
		ORDER BY s.email_id LIMIT $3`, model, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("emails missing model: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("emails missing model: %w", err)
	}
	return ids, nil
}

// EmbeddingCoverage counts the emails past the embedder stage and how many
// of them model has embedded.
func (db *DB) EmbeddingCoverage(ctx context.Context, model string) (done, total int64, err error) {
	err = db.Pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM email_stages s WHERE s.stage = 'embedder' AND s.status = 'done'),
		       (SELECT count(*) FROM email_stages s JOIN email_embeddings x ON x.email_id = s.email_id AND x.model = $1
		        WHERE s.stage = 'embedder' AND s.status = 'done')`, model).Scan(&total, &done)
	if err != nil {
		return 0, 0, fmt.Errorf("embedding coverage: %w", err)
	}
	return done, total, nil
}

// DeleteOtherModels deletes up to batch emails' vectors of models other than
// keep (the models in use), and returns how many emails it cleared; call it
// until it returns 0.
func (db *DB) DeleteOtherModels(ctx context.Context, keep []string, batch int) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			DELETE FROM email_embeddings WHERE (email_id, model) IN (
				SELECT email_id, model FROM email_embeddings WHERE NOT (model = ANY($1)) LIMIT $2)
			RETURNING email_id, model`, keep, batch)
		if err != nil {
			return err
		}
		type pair struct{ id, model string }
		gone, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pair, error) {
			var p pair
			return p, r.Scan(&p.id, &p.model)
		})
		if err != nil {
			return err
		}
		n = int64(len(gone))
		ids, models := make([]string, len(gone)), make([]string, len(gone))
		for i, p := range gone {
			ids[i], models[i] = p.id, p.model
		}
		_, err = tx.Exec(ctx, `
			DELETE FROM embeddings e USING unnest($1::text[], $2::text[]) AS g(id, model)
			WHERE e.email_id = g.id AND e.model = g.model`, ids, models)
		if err != nil {
			return err
		}
		if n < int64(batch) {
			// Vectors written before email_embeddings existed, or orphans.
			_, err = tx.Exec(ctx, `DELETE FROM embeddings WHERE NOT (model = ANY($1))`, keep)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete old vectors: %w", err)
	}
	return n, nil
}
