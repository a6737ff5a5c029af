package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ownyou/home/pkg/bus"
)

// Email stage statuses.
const (
	StageDone   = "done"
	StageFailed = "failed"
)

// MarkStageDone records that stage finished the email (clearing an earlier failure).
func (db *DB) MarkStageDone(ctx context.Context, emailID, stage string) error {
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO email_stages (email_id, stage, status, attempts) VALUES ($1, $2, 'done', 1)
		ON CONFLICT (email_id, stage) DO UPDATE SET status = 'done', error = '', attempts = email_stages.attempts + 1, updated_at = now()`,
		emailID, stage)
	if err != nil {
		return fmt.Errorf("mark stage %s: %w", stage, err)
	}
	return nil
}

// RecordDeadLetter stores a dead letter (once per stage and message) and, when
// it is about an email, marks that email failed at the stage; when it is a
// file import's request, marks that import failed with the error (unless it
// is done). It implements bus.DeadLetterRecorder.
func (db *DB) RecordDeadLetter(ctx context.Context, dl bus.DeadLetter) error {
	payload := dl.Payload
	if !json.Valid(payload) {
		payload, _ = json.Marshal(string(payload))
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `
		INSERT INTO dead_letters (stage, subject, msg_id, key, payload, error, attempts) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (stage, msg_id) DO UPDATE SET error = EXCLUDED.error, attempts = EXCLUDED.attempts, payload = EXCLUDED.payload,
			updated_at = now(), resolved_at = NULL`,
		dl.Stage, dl.Subject, dl.MsgID, dl.Key, payload, dl.Error, dl.Attempts); err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	if dl.Key != "" && isEmailStage(dl.Stage) {
		if _, err := tx.Exec(ctx, `
			INSERT INTO email_stages (email_id, stage, status, error, attempts)
			SELECT id, $2, 'failed', $3, $4 FROM emails WHERE id = $1
			ON CONFLICT (email_id, stage) DO UPDATE SET status = 'failed', error = EXCLUDED.error, attempts = EXCLUDED.attempts, updated_at = now()`,
			dl.Key, dl.Stage, dl.Error, dl.Attempts); err != nil {
			return fmt.Errorf("dead letter: mark stage: %w", err)
		}
	}
	if dl.Key != "" && dl.Stage == bus.ConsumerIngestImports {
		if _, err := tx.Exec(ctx, `
			UPDATE imports SET status = $2, run_id = '', finished_at = now(), updated_at = now(),
				error = 'import gave up after ' || $3::int || ' attempts: ' || $4
			WHERE id = $1 AND status <> $5`,
			dl.Key, ImportFailed, dl.Attempts, dl.Error, ImportDone); err != nil {
			return fmt.Errorf("dead letter: mark import: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("dead letter: %w", err)
	}
	return nil
}

func isEmailStage(stage string) bool {
	for _, s := range bus.Stages() {
		if s.Consumer != "" && s.Name == stage {
			return true
		}
	}
	return false
}

// DeadLetter is a stored dead letter.
type DeadLetter struct {
	ID        int64           `json:"id"`
	Stage     string          `json:"stage"`
	Subject   string          `json:"subject"`
	MsgID     string          `json:"msg_id"`
	Key       string          `json:"key"`
	Payload   json.RawMessage `json:"payload"`
	Error     string          `json:"error"`
	Attempts  int             `json:"attempts"`
	CreatedAt time.Time       `json:"created_at"`
}

// ListDeadLetters returns unresolved dead letters, newest first; stage may be empty.
func (db *DB) ListDeadLetters(ctx context.Context, stage string, limit int) ([]DeadLetter, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := db.Pool.Query(ctx, `SELECT id, stage, subject, msg_id, key, payload, error, attempts, created_at FROM dead_letters
		WHERE resolved_at IS NULL AND ($1 = '' OR stage = $1) ORDER BY id DESC LIMIT $2`, stage, limit)
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	defer rows.Close()
	out := []DeadLetter{}
	for rows.Next() {
		var d DeadLetter
		if err := rows.Scan(&d.ID, &d.Stage, &d.Subject, &d.MsgID, &d.Key, &d.Payload, &d.Error, &d.Attempts, &d.CreatedAt); err != nil {
			return nil, fmt.Errorf("list dead letters: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// StageCount is one stage's progress over all emails.
type StageCount struct {
	Name      string `json:"name"`
	Processed int64  `json:"processed"`
	Total     int64  `json:"total"`
	Failed    int64  `json:"failed"`
	Pending   int64  `json:"pending"`
}

// PipelineCounts returns per-stage counts in pipeline order. For ingest,
// processed is the emails stored and failed the messages that could not be;
// for later stages, total is every stored email.
func (db *DB) PipelineCounts(ctx context.Context) ([]StageCount, error) {
	var emails, ingestFailed, queuedImports int64
	err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM emails), (SELECT count(*) FROM import_errors),
		(SELECT count(*) FROM imports WHERE status IN ('uploading','queued','running'))`).Scan(&emails, &ingestFailed, &queuedImports)
	if err != nil {
		return nil, fmt.Errorf("pipeline counts: %w", err)
	}
	byStage := map[string][2]int64{}
	rows, err := db.Pool.Query(ctx, `SELECT stage, count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'failed')
		FROM email_stages GROUP BY stage`)
	if err != nil {
		return nil, fmt.Errorf("pipeline counts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var stage string
		var done, failed int64
		if err := rows.Scan(&stage, &done, &failed); err != nil {
			return nil, fmt.Errorf("pipeline counts: %w", err)
		}
		byStage[stage] = [2]int64{done, failed}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pipeline counts: %w", err)
	}
	var out []StageCount
	for _, s := range bus.Stages() {
		if s.Consumer == "" {
			out = append(out, StageCount{Name: s.Name, Processed: emails, Failed: ingestFailed, Total: emails + ingestFailed, Pending: queuedImports})
			continue
		}
		c := byStage[s.Name]
		pending := emails - c[0] - c[1]
		if pending < 0 {
			pending = 0
		}
		out = append(out, StageCount{Name: s.Name, Processed: c[0], Failed: c[1], Total: emails, Pending: pending})
	}
	return out, nil
}
