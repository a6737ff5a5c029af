package embedder

import (
	"context"
	"errors"
	"fmt"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
)

// HandleIngested embeds one email with the active model — and with the
// target model during a switch, so new mail needs no re-embedding — stores
// the vectors (chunk 0 the subject, 1… overlapping body windows with their
// character ranges in body_text), publishes emails.embedded and marks the
// stage done. Safe to run twice; the bus acks on nil.
func (s *Service) HandleIngested(ctx context.Context, m bus.EmailIngested) error {
	if m.EmailID == "" {
		return bus.Permanent(errors.New("emails.ingested without email_id"))
	}
	active, target := s.models()
	n, err := s.embedInto(ctx, m.EmailID, active, target)
	if err != nil {
		return err
	}
	out := bus.EmailEmbedded{EmailID: m.EmailID, Model: active.ID(), Chunks: n}
	if err := bus.Publish(ctx, s.bus, bus.EmailsEmbedded, m.EmailID, out); err != nil {
		return fmt.Errorf("publish emails.embedded: %w", err)
	}
	return s.db.MarkStageDone(ctx, m.EmailID, Stage)
}

// embedInto computes and stores one email's vectors for each model (nil
// models are skipped), replacing what that model stored before, and
// returns how many chunks the first model stored. Errors for a missing
// email are Permanent.
func (s *Service) embedInto(ctx context.Context, id string, ms ...model) (int, error) {
	e, err := s.db.GetEmail(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return 0, bus.Permanent(fmt.Errorf("email %s not found", id))
	}
	if err != nil {
		return 0, fmt.Errorf("load email %s: %w", id, err)
	}
	first := -1
	for _, m := range ms {
		if m == nil {
			continue
		}
		chunks, truncated, err := m.EmbedEmail(ctx, e.Subject, e.BodyText)
		if err != nil {
			return 0, fmt.Errorf("embed email %s: %w", id, err)
		}
		if truncated {
			s.log.DebugContext(ctx, "long email: only the first windows embedded", "email", id, "model", m.ID())
		}
		if err := s.db.StoreEmbeddings(ctx, id, m.ID(), chunks); err != nil {
			return 0, err
		}
		s.chunks.Add(float64(len(chunks)))
		if first < 0 {
			first = len(chunks)
		}
	}
	return max(first, 0), nil
}
