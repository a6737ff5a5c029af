package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AgentRun is the stored record of one agent run.
type AgentRun struct {
	ID        string          `json:"id"`
	Agent     string          `json:"agent"`
	Trigger   string          `json:"trigger"`
	Subject   string          `json:"subject"`
	StartedAt time.Time       `json:"started_at"`
	EndedAt   *time.Time      `json:"ended_at,omitempty"`
	Outcome   string          `json:"outcome"`
	Error     string          `json:"error,omitempty"`
	ToolCalls int             `json:"tool_calls"`
	LLMCalls  int             `json:"llm_calls"`
	Cards     int             `json:"cards"`
	CardIDs   []string        `json:"card_ids"`
	Rejected  []string        `json:"rejected"`
	Notes     []string        `json:"notes"`
	Limits    json.RawMessage `json:"limits"`
}

// SaveAgentRun upserts a run record by id.
func (db *DB) SaveAgentRun(ctx context.Context, r AgentRun) error {
	if len(r.Limits) == 0 {
		r.Limits = json.RawMessage(`{}`)
	}
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO agent_runs (id, agent, trigger, subject, started_at, ended_at, outcome, error, tool_calls, llm_calls, cards, card_ids, rejected, notes, limits)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)
		ON CONFLICT (id) DO UPDATE SET ended_at = EXCLUDED.ended_at, outcome = EXCLUDED.outcome, error = EXCLUDED.error,
			tool_calls = EXCLUDED.tool_calls, llm_calls = EXCLUDED.llm_calls, cards = EXCLUDED.cards,
			card_ids = EXCLUDED.card_ids, rejected = EXCLUDED.rejected, notes = EXCLUDED.notes`,
		r.ID, r.Agent, r.Trigger, r.Subject, r.StartedAt, r.EndedAt, r.Outcome, r.Error, r.ToolCalls, r.LLMCalls, r.Cards,
		nonNil(r.CardIDs), nonNil(r.Rejected), nonNil(r.Notes), r.Limits)
	if err != nil {
		return fmt.Errorf("save agent run: %w", err)
	}
	return nil
}

// LastOKAgentRun returns when agent last finished a successful run on
// subject; zero if never.
func (db *DB) LastOKAgentRun(ctx context.Context, agent, subject string) (time.Time, error) {
	var t *time.Time
	err := db.Pool.QueryRow(ctx, `SELECT max(ended_at) FROM agent_runs WHERE agent = $1 AND subject = $2 AND outcome = 'ok'`, agent, subject).Scan(&t)
	if err != nil {
		return time.Time{}, fmt.Errorf("last agent run: %w", err)
	}
	return deref(t), nil
}

const runCols = `id, agent, trigger, subject, started_at, ended_at, outcome, error, tool_calls, llm_calls, cards, card_ids, rejected, notes, limits`

func scanRun(row pgx.Row) (AgentRun, error) {
	var r AgentRun
	err := row.Scan(&r.ID, &r.Agent, &r.Trigger, &r.Subject, &r.StartedAt, &r.EndedAt, &r.Outcome, &r.Error, &r.ToolCalls, &r.LLMCalls,
		&r.Cards, &r.CardIDs, &r.Rejected, &r.Notes, &r.Limits)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	return r, err
}

// AgentRuns returns recent runs, newest first, optionally of one agent.
func (db *DB) AgentRuns(ctx context.Context, agent string, limit int) ([]AgentRun, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := db.Pool.Query(ctx, `SELECT `+runCols+` FROM agent_runs WHERE $1 = '' OR agent = $1 ORDER BY started_at DESC, id LIMIT $2`, agent, limit)
	if err != nil {
		return nil, fmt.Errorf("list agent runs: %w", err)
	}
	defer rows.Close()
	out := []AgentRun{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("list agent runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list agent runs: %w", err)
	}
	return out, nil
}

// AgentRunByID returns one run, or ErrNotFound.
func (db *DB) AgentRunByID(ctx context.Context, id string) (AgentRun, error) {
	r, err := scanRun(db.Pool.QueryRow(ctx, `SELECT `+runCols+` FROM agent_runs WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return r, fmt.Errorf("read agent run: %w", err)
	}
	return r, err
}

// AgentRequest is a user's free-text request to the agents.
type AgentRequest struct {
	ID        string          `json:"id"`
	Text      string          `json:"text"`
	Agent     string          `json:"agent,omitempty"`
	Entities  json.RawMessage `json:"entities"`
	Status    string          `json:"status"` // queued | running | done | failed | no_intent
	RunID     string          `json:"run_id,omitempty"`
	Error     string          `json:"error,omitempty"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// CreateAgentRequest stores a new request as queued; repeating it with the
// same id changes nothing.
func (db *DB) CreateAgentRequest(ctx context.Context, id, text string) error {
	if _, err := db.Pool.Exec(ctx, `INSERT INTO agent_requests (id, text) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, id, text); err != nil {
		return fmt.Errorf("create agent request: %w", err)
	}
	return nil
}

// UpdateAgentRequest records what became of a request.
func (db *DB) UpdateAgentRequest(ctx context.Context, r AgentRequest) error {
	if len(r.Entities) == 0 {
		r.Entities = json.RawMessage(`{}`)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE agent_requests SET agent = $2, entities = $3, status = $4, run_id = $5, error = $6, updated_at = now() WHERE id = $1`,
		r.ID, r.Agent, r.Entities, r.Status, r.RunID, r.Error); err != nil {
		return fmt.Errorf("update agent request: %w", err)
	}
	return nil
}

// AgentRequestByID returns one request, or ErrNotFound.
func (db *DB) AgentRequestByID(ctx context.Context, id string) (AgentRequest, error) {
	var r AgentRequest
	err := db.Pool.QueryRow(ctx, `SELECT id, text, agent, entities, status, run_id, error, created_at, updated_at FROM agent_requests WHERE id = $1`, id).
		Scan(&r.ID, &r.Text, &r.Agent, &r.Entities, &r.Status, &r.RunID, &r.Error, &r.CreatedAt, &r.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read agent request: %w", err)
	}
	return r, nil
}
