package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ReplaceSourceCredentials stores new credentials the user gave for a
// source (a changed password, or a switch to OAuth): config replaces the
// source's config and secret its encrypted secret. A running sync loses its
// claim (it used the old credentials); a source waiting for reconnection,
// failed or syncing becomes idle and due now; a paused one stays paused.
// It returns the updated source, or ErrNotFound.
func (db *DB) ReplaceSourceCredentials(ctx context.Context, id string, config json.RawMessage, secret []byte) (Source, error) {
	s, err := scanSource(db.Pool.QueryRow(ctx, `
		UPDATE sources SET config = $2, secret = $3, updated_at = now(), last_error = '', run_id = '',
			status = CASE WHEN status IN ('reconnect_needed', 'failed', 'syncing') THEN 'idle' ELSE status END,
			next_sync_at = now()
		WHERE id = $1 RETURNING `+sourceCols, id, config, secret))
	if errors.Is(err, pgx.ErrNoRows) {
		return Source{}, fmt.Errorf("source %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Source{}, fmt.Errorf("replace source credentials: %w", err)
	}
	return s, nil
}

// SetRunSecret stores a secret a sync run refreshed (a new OAuth token) only
// while the run still holds its claim, so a run that started with old
// credentials never overwrites ones the user replaced meanwhile. It returns
// ErrRunSuperseded when the run lost its claim.
func (db *DB) SetRunSecret(ctx context.Context, sourceID, runID string, secret []byte) error {
	tag, err := db.Pool.Exec(ctx, `UPDATE sources SET secret = $3, updated_at = now() WHERE id = $1 AND run_id = $2 AND status = 'syncing'`,
		sourceID, runID, secret)
	if err != nil {
		return fmt.Errorf("set run secret: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrRunSuperseded
	}
	return nil
}
