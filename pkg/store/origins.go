package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
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

// MarkOriginsListed stamps the stored origins of source sourceID among
// externalIDs as listed by the full sync sync; ids never stored are ignored.
// Idempotent.
func (db *DB) MarkOriginsListed(ctx context.Context, sourceID string, sync int64, externalIDs []string) error {
	if len(externalIDs) == 0 {
		return nil
	}
	if _, err := db.Pool.Exec(ctx, `
		UPDATE email_origins SET listed_sync = $2
		WHERE source_id = $1 AND external_id = ANY($3) AND listed_sync IS DISTINCT FROM $2`,
		sourceID, sync, externalIDs); err != nil {
		return fmt.Errorf("mark origins listed: %w", err)
	}
	return nil
}

// UnlistedOrigins returns the external ids of source sourceID's stored,
// not deleted origins that the full sync sync has not listed.
func (db *DB) UnlistedOrigins(ctx context.Context, sourceID string, sync int64) ([]string, error) {
	rows, err := db.Pool.Query(ctx, `
		SELECT external_id FROM email_origins
		WHERE source_id = $1 AND deleted_at IS NULL AND listed_sync IS DISTINCT FROM $2
		ORDER BY external_id`, sourceID, sync)
	if err != nil {
		return nil, fmt.Errorf("unlisted origins: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("unlisted origins: %w", err)
	}
	return ids, nil
}

// StoredOrigins returns which of externalIDs source sourceID has stored
// (deleted at the source or not), so a resync need not fetch them again.
func (db *DB) StoredOrigins(ctx context.Context, sourceID string, externalIDs []string) ([]string, error) {
	if len(externalIDs) == 0 {
		return nil, nil
	}
	rows, err := db.Pool.Query(ctx, `
		SELECT external_id FROM email_origins WHERE source_id = $1 AND external_id = ANY($2)`, sourceID, externalIDs)
	if err != nil {
		return nil, fmt.Errorf("stored origins: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("stored origins: %w", err)
	}
	return ids, nil
}
