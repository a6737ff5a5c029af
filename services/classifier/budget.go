package classifier

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ownyou/home/services/classifier/llm"
)

// dbBudget is the monthly LLM token budget shared by every classifier
// process through the llm_usage table; level changes are logged once per
// process and written to classifier_status for the user to see.
type dbBudget struct {
	pool  *pgxpool.Pool
	limit int64
	now   func() time.Time
	log   *slog.Logger

	mu    sync.Mutex
	level string
}

func (b *dbBudget) month() string { return b.now().UTC().Format("2006-01") }

func (b *dbBudget) used(ctx context.Context) (int64, error) {
	var used int64
	err := b.pool.QueryRow(ctx, `SELECT coalesce(sum(prompt_tokens + completion_tokens), 0)::bigint FROM llm_usage WHERE month = $1`, b.month()).Scan(&used)
	if err != nil {
		return 0, fmt.Errorf("read token usage: %w", err)
	}
	return used, nil
}

// Allow implements llm.Budget.
func (b *dbBudget) Allow(ctx context.Context, backfill bool) error {
	if b.limit <= 0 {
		return nil
	}
	used, err := b.used(ctx)
	if err != nil {
		return err
	}
	level := llm.LevelOf(used, b.limit)
	if err := b.setLevel(ctx, level, used); err != nil {
		return err
	}
	switch level {
	case llm.LevelStopped:
		return llm.ErrBudgetExhausted
	case llm.LevelDefer:
		if backfill {
			return llm.ErrBudgetDeferred
		}
	}
	return nil
}

// Record implements llm.Budget.
func (b *dbBudget) Record(ctx context.Context, op string, u llm.Usage) error {
	if _, err := b.pool.Exec(ctx, `
		INSERT INTO llm_usage (month, op, prompt_tokens, completion_tokens, calls) VALUES ($1, $2, $3, $4, 1)
		ON CONFLICT (month, op) DO UPDATE SET prompt_tokens = llm_usage.prompt_tokens + EXCLUDED.prompt_tokens,
			completion_tokens = llm_usage.completion_tokens + EXCLUDED.completion_tokens, calls = llm_usage.calls + 1, updated_at = now()`,
		b.month(), op, u.Prompt, u.Completion); err != nil {
		return fmt.Errorf("record token usage: %w", err)
	}
	if b.limit <= 0 {
		return nil
	}
	used, err := b.used(ctx)
	if err != nil {
		return err
	}
	return b.setLevel(ctx, llm.LevelOf(used, b.limit), used)
}

// setLevel logs and records a level change (once per process and change).
func (b *dbBudget) setLevel(ctx context.Context, level string, used int64) error {
	b.mu.Lock()
	changed := level != b.level
	b.level = level
	b.mu.Unlock()
	if !changed {
		return nil
	}
	msg := ""
	switch level {
	case llm.LevelWarn:
		msg = "LLM token budget over 50% for this month"
		b.log.WarnContext(ctx, msg, "used", used, "limit", b.limit)
	case llm.LevelDefer:
		msg = "LLM token budget over 95%: backfill of old mail uses the local classifier"
		b.log.WarnContext(ctx, msg, "used", used, "limit", b.limit)
	case llm.LevelStopped:
		msg = "LLM token budget exhausted: the local classifier is used until next month"
		b.log.ErrorContext(ctx, msg, "used", used, "limit", b.limit)
	}
	if _, err := b.pool.Exec(ctx, `
		INSERT INTO classifier_status (id, budget_level, budget_used, budget_limit, message, updated_at) VALUES ('classifier', $1, $2, $3, $4, now())
		ON CONFLICT (id) DO UPDATE SET budget_level = $1, budget_used = $2, budget_limit = $3, message = $4, updated_at = now()`,
		level, used, b.limit, msg); err != nil {
		return fmt.Errorf("record budget status: %w", err)
	}
	return nil
}
