package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrImportBusy means another live run (one that heartbeated within the
// stale limit) is importing the file.
var ErrImportBusy = errors.New("import is running elsewhere")

// ErrImportFinished means the import is already done.
var ErrImportFinished = errors.New("import already done")

// ClaimImport starts run runID of an import reading upload object: status
// running, counters and recorded errors reset (a rerun reads the file from
// the start; stored emails dedupe), attempts counted, heartbeat now. It
// takes over a running import whose run has not heartbeated for staleAfter.
// It returns the attempt number, or ErrNotFound, ErrImportFinished or
// ErrImportBusy.
func (db *DB) ClaimImport(ctx context.Context, id, runID, object string, staleAfter time.Duration) (attempt int, err error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("claim import: %w", err)
	}
	defer tx.Rollback(ctx)
	var status string
	var stale bool
	err = tx.QueryRow(ctx, `SELECT status, COALESCE(heartbeat_at, updated_at) < now() - $2::interval FROM imports WHERE id = $1 FOR UPDATE`,
		id, staleAfter).Scan(&status, &stale)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("import %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("claim import: %w", err)
	}
	switch {
	case status == ImportDone:
		return 0, fmt.Errorf("import %s: %w", id, ErrImportFinished)
	case status == ImportRunning && !stale:
		return 0, fmt.Errorf("import %s: %w", id, ErrImportBusy)
	}
	err = tx.QueryRow(ctx, `UPDATE imports SET status = $2, run_id = $3, object = $4, attempts = attempts + 1, heartbeat_at = now(),
		started_at = now(), finished_at = NULL, bytes_read = 0, messages = 0, imported = 0, duplicates = 0, errors = 0, error = '', updated_at = now()
		WHERE id = $1 RETURNING attempts`, id, ImportRunning, runID, object).Scan(&attempt)
	if err != nil {
		return 0, fmt.Errorf("claim import: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM import_errors WHERE import_id = $1`, id); err != nil {
		return 0, fmt.Errorf("claim import: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("claim import: %w", err)
	}
	return attempt, nil
}

// HeartbeatImport records that run runID of an import is alive, with its
// counters. It returns ErrRunSuperseded when the run lost the import
// (declared stale and failed or taken over): the run must stop.
func (db *DB) HeartbeatImport(ctx context.Context, id, runID string, p ImportProgress) error {
	tag, err := db.Pool.Exec(ctx, `UPDATE imports SET heartbeat_at = now(), bytes_read = $3, messages = $4, imported = $5, duplicates = $6, errors = $7,
		updated_at = now() WHERE id = $1 AND run_id = $2 AND status = $8`,
		id, runID, p.BytesRead, p.Messages, p.Imported, p.Duplicates, p.Errors, ImportRunning)
	if err != nil {
		return fmt.Errorf("import heartbeat: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("import %s run %s: %w", id, runID, ErrRunSuperseded)
	}
	return nil
}

// FinishImportRun records how run runID of an import ended (done, or failed
// with errMsg) and its final counters; ErrRunSuperseded when the run no
// longer holds the import (nothing is written).
func (db *DB) FinishImportRun(ctx context.Context, id, runID string, p ImportProgress, status, errMsg string) error {
	tag, err := db.Pool.Exec(ctx, `UPDATE imports SET bytes_read = $3, messages = $4, imported = $5, duplicates = $6, errors = $7,
		status = $8, error = $9, run_id = '', finished_at = now(), updated_at = now() WHERE id = $1 AND run_id = $2 AND status = $10`,
		id, runID, p.BytesRead, p.Messages, p.Imported, p.Duplicates, p.Errors, status, errMsg, ImportRunning)
	if err != nil {
		return fmt.Errorf("finish import: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("import %s run %s: %w", id, runID, ErrRunSuperseded)
	}
	return nil
}

// StaleImport is a running import whose run stopped heartbeating.
type StaleImport struct {
	ID          string
	Filename    string
	Object      string // upload in the imports bucket
	Attempts    int    // runs started so far
	HeartbeatAt time.Time
}

// StaleImports lists running imports whose run has not heartbeated for
// staleAfter (at most 100), for FailStaleImport.
func (db *DB) StaleImports(ctx context.Context, staleAfter time.Duration) ([]StaleImport, error) {
	rows, err := db.Pool.Query(ctx, `
		SELECT id, filename, COALESCE(NULLIF(object, ''), id), attempts, COALESCE(heartbeat_at, updated_at)
		FROM imports WHERE status = $2 AND COALESCE(heartbeat_at, updated_at) < now() - $1::interval
		ORDER BY COALESCE(heartbeat_at, updated_at) LIMIT 100`, staleAfter, ImportRunning)
	if err != nil {
		return nil, fmt.Errorf("stale imports: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StaleImport, error) {
		var s StaleImport
		return s, r.Scan(&s.ID, &s.Filename, &s.Object, &s.Attempts, &s.HeartbeatAt)
	})
	if err != nil {
		return nil, fmt.Errorf("stale imports: %w", err)
	}
	return out, nil
}

// FailStaleImport marks a running import whose run has not heartbeated for
// staleAfter as failed, fencing the dead run out, with the reason followed by
// outcome (what the caller does about it: "retrying", "giving up"). It
// reports false, writing nothing, when the import is no longer a stale run
// (it heartbeated, finished, or another sweeper failed it first).
func (db *DB) FailStaleImport(ctx context.Context, id string, staleAfter time.Duration, outcome string) (bool, error) {
	tag, err := db.Pool.Exec(ctx, `
		UPDATE imports SET status = $3, run_id = '', finished_at = now(), updated_at = now(),
			error = 'the import stopped responding: no heartbeat since ' ||
				to_char(COALESCE(heartbeat_at, updated_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') ||
				' UTC (the ingest process stopped or crashed while reading the file); ' || $5
		WHERE id = $1 AND status = $4 AND COALESCE(heartbeat_at, updated_at) < now() - $2::interval`,
		id, staleAfter, ImportFailed, ImportRunning, outcome)
	if err != nil {
		return false, fmt.Errorf("fail stale import: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// NoteImportFailure replaces the error of a failed import that no run has
// claimed since; it is a no-op once a new run started.
func (db *DB) NoteImportFailure(ctx context.Context, id, msg string) error {
	_, err := db.Pool.Exec(ctx, `UPDATE imports SET error = $2, updated_at = now() WHERE id = $1 AND status = $3 AND run_id = ''`,
		id, msg, ImportFailed)
	if err != nil {
		return fmt.Errorf("note import failure: %w", err)
	}
	return nil
}
