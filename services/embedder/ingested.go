package embedder

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/embed"
	"github.com/ownyou/home/pkg/store"
)

// HandleIngested embeds one email: chunk 0 is the subject, chunks 1… are
// overlapping body windows with their character ranges in body_text. It
// replaces the email's vectors (so a redelivery, a changed chunking or a new
// model leaves exactly one consistent set), publishes emails.embedded and
// marks the stage done. Safe to run twice; the bus acks on nil.
func (s *Service) HandleIngested(ctx context.Context, m bus.EmailIngested) error {
	if m.EmailID == "" {
		return bus.Permanent(errors.New("emails.ingested without email_id"))
	}
	n, err := s.embedEmail(ctx, m.EmailID)
	if err != nil {
		return err
	}
	out := bus.EmailEmbedded{EmailID: m.EmailID, Model: s.emb.ModelID(), Chunks: n}
	if err := bus.Publish(ctx, s.bus, bus.EmailsEmbedded, m.EmailID, out); err != nil {
		return fmt.Errorf("publish emails.embedded: %w", err)
	}
	return s.db.MarkStageDone(ctx, m.EmailID, Stage)
}

// embedEmail computes and stores one email's vectors, replacing any it had
// (from this or an earlier model), and returns how many chunks it stored.
// Errors for a missing email are Permanent.
func (s *Service) embedEmail(ctx context.Context, id string) (int, error) {
	m := bus.EmailIngested{EmailID: id}
	e, err := s.db.GetEmail(ctx, m.EmailID)
	if errors.Is(err, store.ErrNotFound) {
		return 0, bus.Permanent(fmt.Errorf("email %s not found", m.EmailID))
	}
	if err != nil {
		return 0, fmt.Errorf("load email %s: %w", m.EmailID, err)
	}
	tok := s.emb.Tokenizer()
	type chunk struct {
		n, start, end int
	}
	var chunks []chunk
	var encs []embed.Encoding
	if pieces := tok.PieceIDs(e.Subject); len(pieces) > 0 {
		chunks = append(chunks, chunk{n: 0})
		encs = append(encs, tok.Wrap(pieces))
	}
	spans, truncated := tok.ChunkSpans(e.BodyText, embed.ChunkConfig{Overlap: s.cfg.Overlap, MaxChunks: s.cfg.MaxChunks})
	for i, sp := range spans {
		chunks = append(chunks, chunk{n: i + 1, start: sp.Start, end: sp.End})
		encs = append(encs, sp.Enc)
	}
	if truncated {
		s.log.InfoContext(ctx, "long email: only the first windows embedded", "email", m.EmailID, "windows", len(spans))
	}
	vecs, err := s.emb.EmbedEncodings(ctx, encs)
	if err != nil {
		return 0, fmt.Errorf("embed email %s: %w", m.EmailID, err)
	}
	model := s.emb.ModelID()
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM embeddings WHERE email_id = $1`, m.EmailID); err != nil {
			return err
		}
		if len(chunks) == 0 {
			return nil
		}
		rows := make([][]any, len(chunks))
		for i, c := range chunks {
			rows[i] = []any{m.EmailID, model, c.n, c.start, c.end, pgvector.NewVector(vecs[i])}
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"embeddings"}, []string{"email_id", "model", "chunk", "text_start", "text_end", "embedding"}, pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store vectors of %s: %w", m.EmailID, err)
	}
	s.chunks.Add(float64(len(chunks)))
	return len(chunks), nil
}
