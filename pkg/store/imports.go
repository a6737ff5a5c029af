package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Import statuses.
const (
	ImportUploading = "uploading"
	ImportQueued    = "queued"
	ImportRunning   = "running"
	ImportDone      = "done"
	ImportFailed    = "failed"
)

// Import is an uploaded file's import and its progress.
type Import struct {
	ID         string        `json:"id"`
	Filename   string        `json:"filename"`
	Status     string        `json:"status"`
	BytesTotal int64         `json:"bytes_total"`
	BytesRead  int64         `json:"bytes_read"`
	Messages   int           `json:"messages"`
	Imported   int           `json:"imported"`
	Duplicates int           `json:"duplicates"`
	Errors     int           `json:"errors"`
	Error      string        `json:"error,omitempty"`
	CreatedAt  time.Time     `json:"created_at"`
	StartedAt  *time.Time    `json:"started_at,omitempty"`
	FinishedAt *time.Time    `json:"finished_at,omitempty"`
	ErrorList  []ImportError `json:"error_list,omitempty"`
}

// ImportError is one message of an import that could not be stored.
type ImportError struct {
	Position  int64     `json:"position"`
	MessageID string    `json:"message_id,omitempty"`
	Error     string    `json:"error"`
	CreatedAt time.Time `json:"created_at"`
}

// ImportProgress is a running import's counters, written as it goes.
type ImportProgress struct {
	BytesRead  int64
	Messages   int
	Imported   int
	Duplicates int
	Errors     int
}

// CreateImport records a new import in status (uploading or queued); an
// existing id is left as it is.
func (db *DB) CreateImport(ctx context.Context, id, filename, status string, bytesTotal int64) error {
	_, err := db.Pool.Exec(ctx, `INSERT INTO imports (id, filename, status, bytes_total) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
		id, filename, status, bytesTotal)
	if err != nil {
		return fmt.Errorf("create import: %w", err)
	}
	return nil
}

// QueueImport marks an uploaded import as waiting for the ingest service.
func (db *DB) QueueImport(ctx context.Context, id string, bytesTotal int64) error {
	_, err := db.Pool.Exec(ctx, `UPDATE imports SET status = $2, bytes_total = $3, updated_at = now() WHERE id = $1`, id, ImportQueued, bytesTotal)
	if err != nil {
		return fmt.Errorf("queue import: %w", err)
	}
	return nil
}

// StartImport marks an import running, restarting its counters (a redelivered
// import is read again from the start; stored emails dedupe).
func (db *DB) StartImport(ctx context.Context, id string) error {
	_, err := db.Pool.Exec(ctx, `UPDATE imports SET status = $2, started_at = now(), bytes_read = 0, messages = 0, imported = 0,
		duplicates = 0, errors = 0, error = '', updated_at = now() WHERE id = $1`, id, ImportRunning)
	if err != nil {
		return fmt.Errorf("start import: %w", err)
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM import_errors WHERE import_id = $1`, id); err != nil {
		return fmt.Errorf("start import: %w", err)
	}
	return nil
}

// UpdateImportProgress writes a running import's counters.
func (db *DB) UpdateImportProgress(ctx context.Context, id string, p ImportProgress) error {
	_, err := db.Pool.Exec(ctx, `UPDATE imports SET bytes_read = $2, messages = $3, imported = $4, duplicates = $5, errors = $6, updated_at = now() WHERE id = $1`,
		id, p.BytesRead, p.Messages, p.Imported, p.Duplicates, p.Errors)
	if err != nil {
		return fmt.Errorf("import progress: %w", err)
	}
	return nil
}

// FinishImport records an import's final counters and status (done, or failed
// with errMsg).
func (db *DB) FinishImport(ctx context.Context, id string, p ImportProgress, status, errMsg string) error {
	_, err := db.Pool.Exec(ctx, `UPDATE imports SET bytes_read = $2, messages = $3, imported = $4, duplicates = $5, errors = $6,
		status = $7, error = $8, finished_at = now(), updated_at = now() WHERE id = $1`,
		id, p.BytesRead, p.Messages, p.Imported, p.Duplicates, p.Errors, status, errMsg)
	if err != nil {
		return fmt.Errorf("finish import: %w", err)
	}
	return nil
}

// AddImportError records why one message of an import was not stored.
func (db *DB) AddImportError(ctx context.Context, importID string, position int64, messageID, msg string) error {
	_, err := db.Pool.Exec(ctx, `INSERT INTO import_errors (import_id, position, message_id, error) VALUES ($1, $2, $3, $4)`,
		importID, position, messageID, msg)
	if err != nil {
		return fmt.Errorf("import error: %w", err)
	}
	return nil
}

// GetImport returns an import with up to 100 of its errors.
func (db *DB) GetImport(ctx context.Context, id string) (Import, error) {
	var im Import
	err := db.Pool.QueryRow(ctx, `SELECT id, filename, status, bytes_total, bytes_read, messages, imported, duplicates, errors, error,
		created_at, started_at, finished_at FROM imports WHERE id = $1`, id).Scan(&im.ID, &im.Filename, &im.Status, &im.BytesTotal, &im.BytesRead,
		&im.Messages, &im.Imported, &im.Duplicates, &im.Errors, &im.Error, &im.CreatedAt, &im.StartedAt, &im.FinishedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Import{}, fmt.Errorf("import %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Import{}, fmt.Errorf("get import: %w", err)
	}
	rows, err := db.Pool.Query(ctx, `SELECT position, message_id, error, created_at FROM import_errors WHERE import_id = $1 ORDER BY id LIMIT 100`, id)
	if err != nil {
		return Import{}, fmt.Errorf("get import errors: %w", err)
	}
	im.ErrorList, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ImportError, error) {
		var e ImportError
		return e, r.Scan(&e.Position, &e.MessageID, &e.Error, &e.CreatedAt)
	})
	if err != nil {
		return Import{}, fmt.Errorf("get import errors: %w", err)
	}
	return im, nil
}
