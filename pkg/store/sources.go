package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Source kinds.
const (
	SourceGmail = "gmail"
	SourceIMAP  = "imap"
	// SourceOutlook is an Outlook.com or Microsoft 365 mailbox read through
	// Microsoft Graph.
	SourceOutlook = "outlook"
	SourceFile    = "file"
)

// Source statuses. A source in SourceSyncing always has a live run that
// heartbeats; FailStaleRuns turns a silent one into SourceFailed.
const (
	SourceIdle      = "idle"
	SourceSyncing   = "syncing"
	SourcePaused    = "paused"
	SourceFailed    = "failed"
	SourceReconnect = "reconnect_needed"
)

// ErrRunSuperseded means a sync run lost its claim on the source (declared
// stale, paused, or the source was deleted): it must stop without writing.
var ErrRunSuperseded = errors.New("sync run superseded")

// ErrSourceExists means a source of that kind and account already exists.
var ErrSourceExists = errors.New("source already exists")

// Source is a mailbox or file origin and its sync state. Its encrypted
// secret is never part of it.
type Source struct {
	ID            string          `json:"id"`
	Kind          string          `json:"kind"`
	Account       string          `json:"account"`
	Name          string          `json:"name"`
	Status        string          `json:"status"`
	Config        json.RawMessage `json:"config"`
	Cursor        json.RawMessage `json:"cursor"`
	LastSuccessAt *time.Time      `json:"last_success_at,omitempty"`
	LastError     string          `json:"last_error,omitempty"`
	LastErrorAt   *time.Time      `json:"last_error_at,omitempty"`
	HeartbeatAt   *time.Time      `json:"heartbeat_at,omitempty"`
	RunStartedAt  *time.Time      `json:"run_started_at,omitempty"`
	NextSyncAt    *time.Time      `json:"next_sync_at,omitempty"`
	SyncRequested bool            `json:"sync_requested"`
	EmailsCount   int64           `json:"emails_count"`
	ErrorsCount   int64           `json:"errors_count"`
	LastRun       json.RawMessage `json:"last_run"`
	HasSecret     bool            `json:"has_secret"`
	CreatedAt     time.Time       `json:"created_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
}

const sourceCols = `id, kind, account, name, status, config, cursor, last_success_at, last_error, last_error_at, heartbeat_at,
	run_started_at, next_sync_at, sync_requested, emails_count, errors_count, last_run, secret IS NOT NULL, created_at, updated_at`

func scanSource(row pgx.Row) (Source, error) {
	var s Source
	err := row.Scan(&s.ID, &s.Kind, &s.Account, &s.Name, &s.Status, &s.Config, &s.Cursor, &s.LastSuccessAt, &s.LastError, &s.LastErrorAt,
		&s.HeartbeatAt, &s.RunStartedAt, &s.NextSyncAt, &s.SyncRequested, &s.EmailsCount, &s.ErrorsCount, &s.LastRun, &s.HasSecret, &s.CreatedAt, &s.UpdatedAt)
	return s, err
}

// CreateSource inserts a source (status idle, due for a first sync now)
// with its encrypted secret, which may be nil. A source of the same kind and
// non-empty account gives ErrSourceExists.
func (db *DB) CreateSource(ctx context.Context, s Source, secret []byte) (Source, error) {
	if s.Config == nil {
		s.Config = json.RawMessage(`{}`)
	}
	if s.Account != "" {
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM sources WHERE kind = $1 AND account = $2`, s.Kind, s.Account).Scan(&n); err != nil {
			return Source{}, fmt.Errorf("create source: %w", err)
		}
		if n > 0 {
			return Source{}, fmt.Errorf("create source %s %s: %w", s.Kind, s.Account, ErrSourceExists)
		}
	}
	out, err := scanSource(db.Pool.QueryRow(ctx, `
		INSERT INTO sources (id, kind, account, name, config, secret, next_sync_at)
		VALUES ($1, $2, $3, $4, $5, $6, now())
		RETURNING `+sourceCols, s.ID, s.Kind, s.Account, s.Name, s.Config, secret))
	if err != nil {
		return Source{}, fmt.Errorf("create source: %w", err)
	}
	return out, nil
}

// FindSource returns the source of kind for account.
func (db *DB) FindSource(ctx context.Context, kind, account string) (Source, error) {
	s, err := scanSource(db.Pool.QueryRow(ctx, `SELECT `+sourceCols+` FROM sources WHERE kind = $1 AND account = $2 ORDER BY created_at LIMIT 1`, kind, account))
	if errors.Is(err, pgx.ErrNoRows) {
		return Source{}, fmt.Errorf("source %s %s: %w", kind, account, ErrNotFound)
	}
	if err != nil {
		return Source{}, fmt.Errorf("find source: %w", err)
	}
	return s, nil
}

// GetSource returns one source.
func (db *DB) GetSource(ctx context.Context, id string) (Source, error) {
	s, err := scanSource(db.Pool.QueryRow(ctx, `SELECT `+sourceCols+` FROM sources WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Source{}, fmt.Errorf("source %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Source{}, fmt.Errorf("get source: %w", err)
	}
	return s, nil
}

// ListSources returns every source, oldest first.
func (db *DB) ListSources(ctx context.Context) ([]Source, error) {
	rows, err := db.Pool.Query(ctx, `SELECT `+sourceCols+` FROM sources ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Source, error) { return scanSource(r) })
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	if out == nil {
		out = []Source{}
	}
	return out, nil
}

// SourceSecret returns a source's encrypted secret (nil when none).
func (db *DB) SourceSecret(ctx context.Context, id string) ([]byte, error) {
	var secret []byte
	err := db.Pool.QueryRow(ctx, `SELECT secret FROM sources WHERE id = $1`, id).Scan(&secret)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("source %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("source secret: %w", err)
	}
	return secret, nil
}

// SetSourceSecret replaces a source's encrypted secret (a refreshed or
// reconnected OAuth token). With reconnected, a source waiting for
// reconnection becomes idle and due for a sync now.
func (db *DB) SetSourceSecret(ctx context.Context, id string, secret []byte, reconnected bool) error {
	q := `UPDATE sources SET secret = $2, updated_at = now() WHERE id = $1`
	if reconnected {
		q = `UPDATE sources SET secret = $2, updated_at = now(), last_error = '',
			status = CASE WHEN status IN ('reconnect_needed', 'failed') THEN 'idle' ELSE status END,
			next_sync_at = now() WHERE id = $1`
	}
	tag, err := db.Pool.Exec(ctx, q, id, secret)
	if err != nil {
		return fmt.Errorf("set source secret: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("source %s: %w", id, ErrNotFound)
	}
	return nil
}

// RequestSync asks for a sync of the source as soon as possible (unless
// paused); full forgets the cursor first.
func (db *DB) RequestSync(ctx context.Context, id string, full bool) (Source, error) {
	s, err := scanSource(db.Pool.QueryRow(ctx, `
		UPDATE sources SET sync_requested = true, full_resync = full_resync OR $2, next_sync_at = now(), updated_at = now()
		WHERE id = $1 RETURNING `+sourceCols, id, full))
	if errors.Is(err, pgx.ErrNoRows) {
		return Source{}, fmt.Errorf("source %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Source{}, fmt.Errorf("request sync: %w", err)
	}
	return s, nil
}

// PauseSource stops scheduling syncs; a running sync stops at its next heartbeat.
func (db *DB) PauseSource(ctx context.Context, id string) (Source, error) {
	s, err := scanSource(db.Pool.QueryRow(ctx, `
		UPDATE sources SET status = 'paused', sync_requested = false, updated_at = now() WHERE id = $1 RETURNING `+sourceCols, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Source{}, fmt.Errorf("source %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Source{}, fmt.Errorf("pause source: %w", err)
	}
	return s, nil
}

// ResumeSource makes a paused source idle and due now; other statuses are kept.
func (db *DB) ResumeSource(ctx context.Context, id string) (Source, error) {
	s, err := scanSource(db.Pool.QueryRow(ctx, `
		UPDATE sources SET status = CASE WHEN status = 'paused' THEN 'idle' ELSE status END,
			run_id = CASE WHEN status = 'paused' THEN '' ELSE run_id END,
			next_sync_at = now(), updated_at = now() WHERE id = $1 RETURNING `+sourceCols, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Source{}, fmt.Errorf("source %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Source{}, fmt.Errorf("resume source: %w", err)
	}
	return s, nil
}

// DeleteSource removes a source, its failures and origins. With purgeMail
// it also deletes the emails that no other source or import holds. It
// returns how many emails were deleted.
func (db *DB) DeleteSource(ctx context.Context, id string, purgeMail bool) (int64, error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("delete source: %w", err)
	}
	defer tx.Rollback(ctx)
	var purged int64
	if purgeMail {
		tag, err := tx.Exec(ctx, `
			DELETE FROM emails e WHERE e.id IN (SELECT email_id FROM email_origins WHERE source_id = $1)
			AND NOT EXISTS (SELECT 1 FROM email_origins o WHERE o.email_id = e.id AND o.source_id IS DISTINCT FROM $1)`, id)
		if err != nil {
			return 0, fmt.Errorf("delete source mail: %w", err)
		}
		purged = tag.RowsAffected()
	}
	tag, err := tx.Exec(ctx, `DELETE FROM sources WHERE id = $1`, id)
	if err != nil {
		return 0, fmt.Errorf("delete source: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return 0, fmt.Errorf("source %s: %w", id, ErrNotFound)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("delete source: %w", err)
	}
	return purged, nil
}

// Claim is a source claimed for one sync run.
type Claim struct {
	Source     Source
	Secret     []byte
	RunID      string
	FullResync bool // the user asked to forget the cursor
}

// ClaimDueSource claims one source of the given kinds that is due (idle or
// failed, and requested or past next_sync_at), marking it syncing under
// runID. Replicas never claim the same source. It returns ErrNotFound when
// nothing is due.
func (db *DB) ClaimDueSource(ctx context.Context, runID string, kinds []string) (Claim, error) {
	var c Claim
	row := db.Pool.QueryRow(ctx, `
		WITH due AS (
			SELECT id, full_resync FROM sources
			WHERE status IN ('idle', 'failed') AND kind = ANY($2)
			  AND (sync_requested OR next_sync_at <= now())
			ORDER BY sync_requested DESC, next_sync_at NULLS FIRST
			LIMIT 1 FOR UPDATE SKIP LOCKED)
		UPDATE sources s SET status = 'syncing', run_id = $1, run_started_at = now(), heartbeat_at = now(),
			sync_requested = false, full_resync = false, updated_at = now()
		FROM due WHERE s.id = due.id
		RETURNING due.full_resync, s.secret, `+prefixed("s.", sourceCols), runID, kinds)
	var secret []byte
	var full bool
	dest := []any{&full, &secret}
	s := Source{}
	dest = append(dest, &s.ID, &s.Kind, &s.Account, &s.Name, &s.Status, &s.Config, &s.Cursor, &s.LastSuccessAt, &s.LastError, &s.LastErrorAt,
		&s.HeartbeatAt, &s.RunStartedAt, &s.NextSyncAt, &s.SyncRequested, &s.EmailsCount, &s.ErrorsCount, &s.LastRun, &s.HasSecret, &s.CreatedAt, &s.UpdatedAt)
	err := row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Claim{}, ErrNotFound
	}
	if err != nil {
		return Claim{}, fmt.Errorf("claim source: %w", err)
	}
	c.Source, c.Secret, c.RunID, c.FullResync = s, secret, runID, full
	return c, nil
}

// HeartbeatRun proves the run is alive and stores its running stats. It
// returns ErrRunSuperseded when the run lost its claim (stale, paused, deleted).
func (db *DB) HeartbeatRun(ctx context.Context, sourceID, runID string, stats any) error {
	b, err := json.Marshal(stats)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	tag, err := db.Pool.Exec(ctx, `UPDATE sources SET heartbeat_at = now(), last_run = $3 WHERE id = $1 AND run_id = $2 AND status = 'syncing'`,
		sourceID, runID, b)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrRunSuperseded
	}
	return nil
}

// SaveSourceCursor stores the run's cursor (and counts as a heartbeat).
func (db *DB) SaveSourceCursor(ctx context.Context, sourceID, runID string, cursor any) error {
	b, err := json.Marshal(cursor)
	if err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	tag, err := db.Pool.Exec(ctx, `UPDATE sources SET cursor = $3, heartbeat_at = now() WHERE id = $1 AND run_id = $2 AND status = 'syncing'`,
		sourceID, runID, b)
	if err != nil {
		return fmt.Errorf("save cursor: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrRunSuperseded
	}
	return nil
}

// RunOutcome is how a sync run ended.
type RunOutcome struct {
	Status     string    // SourceIdle on success, SourceFailed or SourceReconnect
	Error      string    // why, for failures
	NextSyncAt time.Time // when the scheduler should run it again
	Stats      any       // the run's totals, stored as last_run
}

// FinishRun records a run's end, unless it was superseded. A source paused
// during the run stays paused.
func (db *DB) FinishRun(ctx context.Context, sourceID, runID string, o RunOutcome) error {
	b, err := json.Marshal(o.Stats)
	if err != nil {
		return fmt.Errorf("finish run: %w", err)
	}
	ok := o.Status == SourceIdle
	tag, err := db.Pool.Exec(ctx, `
		UPDATE sources SET
			status = CASE WHEN status = 'paused' THEN 'paused' ELSE $3 END,
			run_id = '', last_run = $6, next_sync_at = $5, updated_at = now(), heartbeat_at = now(),
			last_success_at = CASE WHEN $7 THEN now() ELSE last_success_at END,
			last_error = CASE WHEN $7 THEN '' ELSE $4 END,
			last_error_at = CASE WHEN $7 THEN last_error_at ELSE now() END,
			errors_count = errors_count + CASE WHEN $7 THEN 0 ELSE 1 END
		WHERE id = $1 AND run_id = $2`, sourceID, runID, o.Status, o.Error, o.NextSyncAt, b, ok)
	if err != nil {
		return fmt.Errorf("finish run: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrRunSuperseded
	}
	return nil
}

// FailStaleRuns marks every syncing source whose run has not heartbeated
// for staleAfter as failed, with the reason, and due for a retry after
// retryIn. It returns the ids it failed.
func (db *DB) FailStaleRuns(ctx context.Context, staleAfter, retryIn time.Duration) ([]string, error) {
	rows, err := db.Pool.Query(ctx, `
		UPDATE sources SET status = 'failed', run_id = '',
			last_error = 'sync stalled: no heartbeat since ' || to_char(heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC; retrying',
			last_error_at = now(), errors_count = errors_count + 1,
			next_sync_at = now() + $2::interval, updated_at = now()
		WHERE status = 'syncing' AND (heartbeat_at IS NULL OR heartbeat_at < now() - $1::interval)
		RETURNING id`, staleAfter, retryIn)
	if err != nil {
		return nil, fmt.Errorf("fail stale runs: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("fail stale runs: %w", err)
	}
	return ids, nil
}

// SourceFailure is one message of a source that failed to fetch.
type SourceFailure struct {
	ExternalID  string    `json:"external_id"`
	Error       string    `json:"error"`
	Attempts    int       `json:"attempts"`
	Permanent   bool      `json:"permanent"`
	LastAt      time.Time `json:"last_at"`
	NextRetryAt time.Time `json:"next_retry_at"`
}

// RecordSourceFailure records (or counts again) a failed message; it is
// retried after a backoff that doubles per attempt (1 min … 24 h) unless
// permanent.
func (db *DB) RecordSourceFailure(ctx context.Context, sourceID, externalID, msg string, permanent bool) error {
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO source_failures (source_id, external_id, error, permanent, next_retry_at)
		VALUES ($1, $2, $3, $4, now() + interval '1 minute')
		ON CONFLICT (source_id, external_id) DO UPDATE SET
			error = EXCLUDED.error, permanent = EXCLUDED.permanent, attempts = source_failures.attempts + 1, last_at = now(),
			next_retry_at = now() + least(interval '24 hours', interval '1 minute' * power(2, source_failures.attempts))`,
		sourceID, externalID, msg, permanent)
	if err != nil {
		return fmt.Errorf("record source failure: %w", err)
	}
	return nil
}

// DueSourceFailures lists retryable failures of a source whose retry time
// has come, optionally only external ids starting with prefix.
func (db *DB) DueSourceFailures(ctx context.Context, sourceID, prefix string, limit int) ([]string, error) {
	rows, err := db.Pool.Query(ctx, `
		SELECT external_id FROM source_failures
		WHERE source_id = $1 AND NOT permanent AND next_retry_at <= now() AND starts_with(external_id, $2)
		ORDER BY next_retry_at LIMIT $3`, sourceID, prefix, limit)
	if err != nil {
		return nil, fmt.Errorf("due source failures: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("due source failures: %w", err)
	}
	return ids, nil
}

// ClearSourceFailure forgets a failure once the message was delivered.
func (db *DB) ClearSourceFailure(ctx context.Context, sourceID, externalID string) error {
	if _, err := db.Pool.Exec(ctx, `DELETE FROM source_failures WHERE source_id = $1 AND external_id = $2`, sourceID, externalID); err != nil {
		return fmt.Errorf("clear source failure: %w", err)
	}
	return nil
}

// ListSourceFailures returns up to limit failures of a source, newest first.
func (db *DB) ListSourceFailures(ctx context.Context, sourceID string, limit int) ([]SourceFailure, error) {
	rows, err := db.Pool.Query(ctx, `SELECT external_id, error, attempts, permanent, last_at, next_retry_at
		FROM source_failures WHERE source_id = $1 ORDER BY last_at DESC LIMIT $2`, sourceID, limit)
	if err != nil {
		return nil, fmt.Errorf("list source failures: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SourceFailure, error) {
		var f SourceFailure
		return f, r.Scan(&f.ExternalID, &f.Error, &f.Attempts, &f.Permanent, &f.LastAt, &f.NextRetryAt)
	})
	if err != nil {
		return nil, fmt.Errorf("list source failures: %w", err)
	}
	return out, nil
}

// EmailOrigin is one place an email was seen.
type EmailOrigin struct {
	EmailID    string
	SourceID   string // set for synced mail
	ImportID   string // set for imported files
	ExternalID string
	Labels     []string
}

// AddEmailOrigin records where an email was seen; a new origin of a source
// adds one to the source's email count. It reports whether the origin was new.
func (db *DB) AddEmailOrigin(ctx context.Context, o EmailOrigin) (bool, error) {
	origin := "source:" + o.SourceID
	if o.SourceID == "" {
		origin = "import:" + o.ImportID
	}
	// One round trip: insert the origin and, when it is new and belongs to a
	// source, count it on the source.
	var added int
	err := db.Pool.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO email_origins (email_id, origin, source_id, import_id, external_id, labels)
			VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), $5, $6) ON CONFLICT DO NOTHING
			RETURNING source_id),
		counted AS (
			UPDATE sources s SET emails_count = emails_count + 1 FROM ins WHERE s.id = ins.source_id RETURNING 1)
		SELECT (SELECT count(*) FROM ins) + 0 * (SELECT count(*) FROM counted)`,
		o.EmailID, origin, o.SourceID, o.ImportID, o.ExternalID, nonNilS(o.Labels)).Scan(&added)
	if err != nil {
		return false, fmt.Errorf("add email origin: %w", err)
	}
	return added > 0, nil
}

// MarkPublishedMany is MarkPublished for a batch of email ids (one round trip).
func (db *DB) MarkPublishedMany(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE emails SET published_at = now() WHERE id = ANY($1) AND published_at IS NULL`, ids); err != nil {
		return fmt.Errorf("mark published: %w", err)
	}
	return nil
}

// SaveOAuthState stores an OAuth web-flow state for ttl.
func (db *DB) SaveOAuthState(ctx context.Context, state, provider, verifier, sourceID string, ttl time.Duration) error {
	_, err := db.Pool.Exec(ctx, `INSERT INTO oauth_states (state, provider, verifier, source_id, expires_at) VALUES ($1, $2, $3, $4, now() + $5::interval)`,
		state, provider, verifier, sourceID, ttl)
	if err != nil {
		return fmt.Errorf("save oauth state: %w", err)
	}
	_, _ = db.Pool.Exec(ctx, `DELETE FROM oauth_states WHERE expires_at < now()`)
	return nil
}

// TakeOAuthState consumes a state (once); an unknown or expired state is ErrNotFound.
func (db *DB) TakeOAuthState(ctx context.Context, state string) (provider, verifier, sourceID string, err error) {
	err = db.Pool.QueryRow(ctx, `DELETE FROM oauth_states WHERE state = $1 AND expires_at > now() RETURNING provider, verifier, source_id`, state).
		Scan(&provider, &verifier, &sourceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", "", fmt.Errorf("oauth state: %w", ErrNotFound)
	}
	if err != nil {
		return "", "", "", fmt.Errorf("oauth state: %w", err)
	}
	return provider, verifier, sourceID, nil
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}
