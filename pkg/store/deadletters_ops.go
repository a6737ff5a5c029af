package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// GetDeadLetter returns one dead letter, resolved or not.
func (db *DB) GetDeadLetter(ctx context.Context, id int64) (DeadLetter, error) {
	var d DeadLetter
	err := db.Pool.QueryRow(ctx, `SELECT id, stage, subject, msg_id, key, payload, error, attempts, created_at FROM dead_letters WHERE id = $1`, id).
		Scan(&d.ID, &d.Stage, &d.Subject, &d.MsgID, &d.Key, &d.Payload, &d.Error, &d.Attempts, &d.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return DeadLetter{}, fmt.Errorf("dead letter %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("get dead letter: %w", err)
	}
	return d, nil
}

// ResolveDeadLetter marks a dead letter resolved (its message was re-published);
// resolving one twice is harmless. A later failure of the same message reopens it.
func (db *DB) ResolveDeadLetter(ctx context.Context, id int64) error {
	if _, err := db.Pool.Exec(ctx, `UPDATE dead_letters SET resolved_at = now(), updated_at = now() WHERE id = $1 AND resolved_at IS NULL`, id); err != nil {
		return fmt.Errorf("resolve dead letter: %w", err)
	}
	return nil
}

// ReopenDeadLetter undoes ResolveDeadLetter when the re-publish it preceded failed.
func (db *DB) ReopenDeadLetter(ctx context.Context, id int64) error {
	if _, err := db.Pool.Exec(ctx, `UPDATE dead_letters SET resolved_at = NULL, updated_at = now() WHERE id = $1`, id); err != nil {
		return fmt.Errorf("reopen dead letter: %w", err)
	}
	return nil
}
