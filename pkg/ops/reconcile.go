package ops

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
)

// reconcileLockID is the Postgres advisory lock that keeps two reconcile runs
// (two replicas, or a periodic and an on-demand run) from overlapping.
const reconcileLockID = 0x6f796f7063 // "oyopc"

// ReconcileOptions configure a Reconciler.
type ReconcileOptions struct {
	Batch int           // most emails re-published per stage per run; default 500
	Grace time.Duration // only emails whose previous step is at least this old; default 15m
	Log   *slog.Logger
}

// Reconciler finds emails that reached a stage's input but have no row for
// the stage in email_stages (the message was lost, or never published) and
// re-publishes them on the stage's input subject. Emails marked failed are
// left alone: they are dead letters for the user to retry. Re-publishing is
// idempotent: the Msg-Id is deterministic and every handler upserts. Safe for
// concurrent use; concurrent runs are serialized by an advisory lock.
type Reconciler struct {
	db  *store.DB
	b   *bus.Bus
	o   ReconcileOptions
	mu  sync.Mutex
	run Result
}

// Result says what one reconcile run re-published, per stage.
type Result struct {
	Republished map[string]int `json:"republished"`
	Skipped     bool           `json:"skipped,omitempty"` // another run held the lock
	At          time.Time      `json:"at"`
}

// NewReconciler returns a reconciler over db and b.
func NewReconciler(db *store.DB, b *bus.Bus, o ReconcileOptions) *Reconciler {
	if o.Batch <= 0 {
		o.Batch = 500
	}
	if o.Grace < 0 {
		o.Grace = 0
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Reconciler{db: db, b: b, o: o}
}

// stageInput describes how an email reaches a stage: the query of emails that
// should have a row for it, and how to publish the stage's input message.
type stageInput struct {
	stage   string
	missing string // SQL: $1 grace cutoff, $2 limit; returns email ids
	publish func(ctx context.Context, b *bus.Bus, id string) error
}

func stageInputs() []stageInput {
	after := func(prev, stage string) string {
		return `SELECT p.email_id FROM email_stages p
			WHERE p.stage = '` + prev + `' AND p.status = 'done' AND p.updated_at < $1
			AND NOT EXISTS (SELECT 1 FROM email_stages s WHERE s.email_id = p.email_id AND s.stage = '` + stage + `')
			ORDER BY p.updated_at LIMIT $2`
	}
	return []stageInput{
		{
			stage: bus.ConsumerEmbedder,
			missing: `SELECT e.id FROM emails e WHERE e.ingested_at < $1
				AND NOT EXISTS (SELECT 1 FROM email_stages s WHERE s.email_id = e.id AND s.stage = 'embedder')
				ORDER BY e.ingested_at LIMIT $2`,
			publish: func(ctx context.Context, b *bus.Bus, id string) error {
				return bus.Publish(ctx, b, bus.EmailsIngested, id, bus.EmailIngested{EmailID: id})
			},
		},
		{
			stage:   bus.ConsumerClassifier,
			missing: after(bus.ConsumerEmbedder, bus.ConsumerClassifier),
			publish: func(ctx context.Context, b *bus.Bus, id string) error {
				return bus.Publish(ctx, b, bus.EmailsEmbedded, id, bus.EmailEmbedded{EmailID: id})
			},
		},
		{
			stage:   bus.ConsumerAgents,
			missing: after(bus.ConsumerClassifier, bus.ConsumerAgents),
			publish: func(ctx context.Context, b *bus.Bus, id string) error {
				return bus.Publish(ctx, b, bus.EmailsClassified, id, bus.EmailClassified{EmailID: id})
			},
		},
	}
}

// Once runs one bounded reconcile pass: for each stage, at most Batch missing
// emails are re-published. It returns Skipped when another run holds the lock.
func (r *Reconciler) Once(ctx context.Context) (Result, error) {
	res := Result{Republished: map[string]int{}, At: time.Now().UTC()}
	conn, err := r.db.Pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("reconcile: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, reconcileLockID).Scan(&locked); err != nil {
		return res, fmt.Errorf("reconcile: lock: %w", err)
	}
	if !locked {
		res.Skipped = true
		return res, nil
	}
	defer func() {
		_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, reconcileLockID)
	}()
	cutoff := time.Now().Add(-r.o.Grace)
	for _, in := range stageInputs() {
		rows, err := conn.Query(ctx, in.missing, cutoff, r.o.Batch)
		if err != nil {
			return res, fmt.Errorf("reconcile %s: %w", in.stage, err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return res, fmt.Errorf("reconcile %s: %w", in.stage, err)
		}
		for _, id := range ids {
			if err := in.publish(ctx, r.b, id); err != nil {
				return res, fmt.Errorf("reconcile %s: %w", in.stage, err)
			}
			res.Republished[in.stage]++
		}
		if len(ids) > 0 {
			r.o.Log.InfoContext(ctx, "reconcile re-published emails missing a stage", "stage", in.stage, "emails", len(ids))
		}
	}
	r.mu.Lock()
	r.run = res
	r.mu.Unlock()
	return res, nil
}

// Last returns the result of the last completed run (zero before the first).
func (r *Reconciler) Last() Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.run
}

// RunEvery runs Once at start and then every interval until ctx is cancelled;
// a failed run is logged and tried again at the next tick.
func (r *Reconciler) RunEvery(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := r.Once(ctx); err != nil && ctx.Err() == nil {
			r.o.Log.ErrorContext(ctx, "reconcile failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ServeHTTP runs one reconcile pass on demand (mount it as POST
// /api/ops/reconcile) and answers the Result as JSON, or
// {"error":{"code":"reconcile_failed","message":…}} with status 500.
func (r *Reconciler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	res, err := r.Once(req.Context())
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		r.o.Log.ErrorContext(req.Context(), "reconcile on demand failed", "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "reconcile_failed", "message": err.Error()}})
		return
	}
	_ = json.NewEncoder(w).Encode(res)
}
