package embedder

import (
	"context"
	"time"

	"github.com/ownyou/home/pkg/bus"
)

// backfill re-embeds, in the background, emails whose vectors come from
// another model (after a model change), so search keeps covering all mail.
// It leaves emails that were never embedded to the emails.ingested stream.
// Emails that fail are logged and skipped until the next start.
func (s *Service) backfill(ctx context.Context) {
	model := s.emb.ModelID()
	skip := map[string]bool{}
	total := 0
	for ctx.Err() == nil {
		rows, err := s.db.Pool.Query(ctx, `
			SELECT DISTINCT em.email_id FROM embeddings em
			WHERE em.model <> $1 AND NOT (em.email_id = ANY($2))
			LIMIT 64`, model, keys(skip))
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("re-embed backfill: query", "err", err)
			}
			return
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err == nil {
				ids = append(ids, id)
			}
		}
		rows.Close()
		if len(ids) == 0 {
			if total > 0 {
				s.log.Info("re-embed backfill done", "model", model, "emails", total)
			}
			return
		}
		for _, id := range ids {
			if _, err := s.embedEmail(ctx, id); err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("re-embed backfill: email skipped", "email", id, "err", err, "permanent", bus.IsPermanent(err))
				skip[id] = true
				continue
			}
			total++
		}
		if total > 0 && total%1000 < len(ids) {
			s.log.Info("re-embed backfill progress", "model", model, "emails", total)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond): // leave room for live traffic
		}
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
