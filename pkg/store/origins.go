package store

import (
	"context"
	"fmt"
)

// SetOriginLabels replaces the labels of the message externalID of source
// sourceID (the complete set after a change at the source) on its origin
// and, for emails that source first delivered, on the email. It reports how
// many emails it changed: 0 when the message was never stored or already
// had these labels (so calling it again changes nothing).
func (db *DB) SetOriginLabels(ctx context.Context, sourceID, externalID string, labels []string) (int64, error) {
	tag, err := db.Pool.Exec(ctx, `
		WITH o AS (
			UPDATE email_origins SET labels = $3
			WHERE source_id = $1 AND external_id = $2 AND labels IS DISTINCT FROM $3
			RETURNING email_id)
		UPDATE emails e SET labels = $3 FROM o
		WHERE e.id = o.email_id AND e.source_id = $1 AND e.labels IS DISTINCT FROM $3`,
		sourceID, externalID, nonNilS(labels))
	if err != nil {
		return 0, fmt.Errorf("set origin labels: %w", err)
	}
	return tag.RowsAffected(), nil
}

// MarkOriginDeleted records that the message externalID was deleted at
// source sourceID. The email is kept; once no source still holds it, its
// DeletedAtSource is set. It reports how many origins it newly marked: 0
// when the message was never stored or was already marked (idempotent).
func (db *DB) MarkOriginDeleted(ctx context.Context, sourceID, externalID string) (int64, error) {
	var n int64
	err := db.Pool.QueryRow(ctx, `
		WITH o AS (
			UPDATE email_origins SET deleted_at = now()
			WHERE source_id = $1 AND external_id = $2 AND deleted_at IS NULL
			RETURNING email_id),
		e AS (
			UPDATE emails e SET deleted_at_source = now() FROM o
			WHERE e.id = o.email_id AND e.deleted_at_source IS NULL
			  AND NOT EXISTS (SELECT 1 FROM email_origins x
			                  WHERE x.email_id = o.email_id AND x.source_id IS NOT NULL AND x.deleted_at IS NULL
			                    AND NOT (x.source_id = $1 AND x.external_id = $2))
			RETURNING 1)
		SELECT (SELECT count(*) FROM o) + 0 * (SELECT count(*) FROM e)`, sourceID, externalID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("mark origin deleted: %w", err)
	}
	return n, nil
}
