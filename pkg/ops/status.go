package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
)

func isConsumerNotFound(err error) bool { return errors.Is(err, jetstream.ErrConsumerNotFound) }

// StageStatus is one stage of the pipeline view: who works on it, what waits,
// and whether it looks stuck.
type StageStatus struct {
	Stage   string `json:"stage"`
	Workers []Beat `json:"workers"` // live workers of the stage's service
	Queue   Queue  `json:"queue"`
	Stalled bool   `json:"stalled"`
	Reason  string `json:"reason,omitempty"` // why it is flagged, in words the user can act on
}

// SourceStatus is a mail source flagged as stalled.
type SourceStatus struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Account     string    `json:"account"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	Reason      string    `json:"reason"`
}

// Status is the operational state of the deployment.
type Status struct {
	Workers        []Beat         `json:"workers"` // every live worker, any service
	Stages         []StageStatus  `json:"stages"`
	StalledSources []SourceStatus `json:"stalled_sources"`
}

// Snapshot reads the heartbeats, the stage queues and the sources and flags:
// a stage with waiting messages and no live worker; a stage with waiting
// messages whose workers handle nothing; a worker silent for stallAfter (not
// counted as live); a syncing source whose heartbeat is older than stallAfter.
func Snapshot(ctx context.Context, db *store.DB, b *bus.Bus, stallAfter time.Duration, now time.Time) (Status, error) {
	kv, err := WorkersBucket(ctx, b)
	if err != nil {
		return Status{}, err
	}
	beats, err := Workers(ctx, kv)
	if err != nil {
		return Status{}, err
	}
	st := Status{Workers: []Beat{}, Stages: []StageStatus{}, StalledSources: []SourceStatus{}}
	live := map[string][]Beat{}
	for _, w := range beats {
		if now.Sub(w.LastBeat) > stallAfter || w.Stopping {
			continue
		}
		st.Workers = append(st.Workers, w)
		live[w.Service] = append(live[w.Service], w)
	}
	for _, q := range StageQueues(ctx, b) {
		ss := StageStatus{Stage: q.Stage, Workers: live[serviceOfStage(q.Stage)], Queue: q}
		if ss.Workers == nil {
			ss.Workers = []Beat{}
		}
		waiting := q.Pending + uint64(q.AckPending)
		inflight := 0
		for _, w := range ss.Workers {
			inflight += w.InFlight
		}
		switch {
		case q.Err != nil:
			ss.Stalled, ss.Reason = true, "cannot read the stage's queue: "+q.Err.Error()
		case waiting > 0 && len(ss.Workers) == 0:
			ss.Stalled, ss.Reason = true, fmt.Sprintf("%d messages wait and no %s worker is alive", waiting, q.Stage)
		case q.Pending > 0 && inflight == 0 && q.AckPending == 0:
			ss.Stalled, ss.Reason = true, fmt.Sprintf("%d messages wait but the %s workers are not taking any", q.Pending, q.Stage)
		}
		st.Stages = append(st.Stages, ss)
	}
	rows, err := db.Pool.Query(ctx, `SELECT id, kind, account, heartbeat_at FROM sources
		WHERE status = 'syncing' AND (heartbeat_at IS NULL OR heartbeat_at < $1) ORDER BY id`, now.Add(-stallAfter))
	if err != nil {
		return Status{}, fmt.Errorf("stalled sources: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var s SourceStatus
		var hb *time.Time
		if err := rows.Scan(&s.ID, &s.Kind, &s.Account, &hb); err != nil {
			return Status{}, fmt.Errorf("stalled sources: %w", err)
		}
		s.Reason = "syncing but no progress reported"
		if hb != nil {
			s.HeartbeatAt = *hb
			s.Reason = fmt.Sprintf("syncing but silent since %s", hb.UTC().Format(time.RFC3339))
		}
		st.StalledSources = append(st.StalledSources, s)
	}
	if err := rows.Err(); err != nil {
		return Status{}, fmt.Errorf("stalled sources: %w", err)
	}
	return st, nil
}

// StatusHandler answers GET requests with the Snapshot as JSON (mount it as
// GET /api/ops/status, or merge Snapshot into the pipeline view), or with
// {"error":{"code":"status_failed","message":…}} and status 500.
func StatusHandler(db *store.DB, b *bus.Bus, stallAfter time.Duration, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := Snapshot(r.Context(), db, b, stallAfter, time.Now())
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			log.ErrorContext(r.Context(), "ops status", "err", err)
			w.WriteHeader(http.StatusInternalServerError)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": "status_failed", "message": err.Error()}})
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	})
}
