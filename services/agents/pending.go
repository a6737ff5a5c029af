package agents

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ownyou/home/pkg/store"
)

// pendingBatch bounds how many pending new-mail triggers one batch takes;
// a larger backlog is worked through batch after batch.
const pendingBatch = 5000

// pendingTrigger is a classified mail the agents have not yet looked at
// (table agent_pending_triggers, migration 00410).
type pendingTrigger struct {
	EmailID    string
	Categories []string // category names
	SeenAt     time.Time
}

// addPending records a classified mail as a pending trigger seen at at (the
// agents' clock, which run start times use too). Idempotent by email id: a
// redelivery refreshes the row (its categories and seen_at), which keeps it
// pending for a batch that had already read the old row.
func addPending(ctx context.Context, db *store.DB, emailID string, categories []string, at time.Time) error {
	if categories == nil {
		categories = []string{}
	}
	if _, err := db.Pool.Exec(ctx, `
		INSERT INTO agent_pending_triggers (email_id, categories, seen_at) VALUES ($1, $2, $3)
		ON CONFLICT (email_id) DO UPDATE SET categories = EXCLUDED.categories, seen_at = EXCLUDED.seen_at`,
		emailID, categories, at); err != nil {
		return fmt.Errorf("record pending trigger %s: %w", emailID, err)
	}
	return nil
}

// loadPending returns up to limit pending triggers, oldest first.
func loadPending(ctx context.Context, db *store.DB, limit int) ([]pendingTrigger, error) {
	rows, err := db.Pool.Query(ctx, `SELECT email_id, categories, seen_at FROM agent_pending_triggers ORDER BY seen_at, email_id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("load pending triggers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pendingTrigger, error) {
		var p pendingTrigger
		err := r.Scan(&p.EmailID, &p.Categories, &p.SeenAt)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("load pending triggers: %w", err)
	}
	return out, nil
}

// donePending deletes the triggers a batch covered, unless a row was
// refreshed (the mail redelivered) after the batch read it.
func donePending(ctx context.Context, db *store.DB, ps []pendingTrigger) error {
	ids := make([]string, len(ps))
	seen := make([]time.Time, len(ps))
	for i, p := range ps {
		ids[i], seen[i] = p.EmailID, p.SeenAt
	}
	if _, err := db.Pool.Exec(ctx, `
		DELETE FROM agent_pending_triggers p USING unnest($1::text[], $2::timestamptz[]) AS d(id, seen)
		WHERE p.email_id = d.id AND p.seen_at = d.seen`, ids, seen); err != nil {
		return fmt.Errorf("clear pending triggers: %w", err)
	}
	return nil
}

// okRunStartedAfter reports whether a successful run of agent on subject
// started after t: that run read the whole mailbox after the mail seen at t
// was stored, so it has acted on it.
func okRunStartedAfter(ctx context.Context, db *store.DB, agent, subject string, t time.Time) (bool, error) {
	var ok bool
	if err := db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM agent_runs WHERE agent = $1 AND subject = $2 AND outcome = 'ok' AND started_at > $3)`,
		agent, subject, t).Scan(&ok); err != nil {
		return false, fmt.Errorf("read last run: %w", err)
	}
	return ok, nil
}
