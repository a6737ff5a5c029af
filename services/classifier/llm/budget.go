package llm

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Budget errors: the caller retries deferred work later; stopped work waits
// for the next month or a higher budget. Both are visible in Status.
var (
	ErrBudgetDeferred  = errors.New("llm: token budget at 95%: backfill deferred")
	ErrBudgetExhausted = errors.New("llm: monthly token budget exhausted")
)

// Budget levels.
const (
	LevelOK      = "ok"
	LevelWarn    = "warn"    // ≥ 50 %
	LevelDefer   = "defer"   // ≥ 95 %: backfill deferred
	LevelStopped = "stopped" // ≥ 100 %
)

// Usage is the token count of one call.
type Usage struct {
	Prompt, Completion int
}

// Total is prompt plus completion tokens.
func (u Usage) Total() int { return u.Prompt + u.Completion }

// BudgetStatus is what the user sees.
type BudgetStatus struct {
	Month string
	Used  int64
	Limit int64 // 0 = unlimited
	Level string
	ByOp  map[string]int64
}

// Budget accounts token usage per operation against a monthly limit.
// Implementations are safe for concurrent use.
type Budget interface {
	// Allow returns nil, ErrBudgetDeferred (backfill at ≥ 95 %) or ErrBudgetExhausted.
	Allow(ctx context.Context, backfill bool) error
	// Record adds one call's usage to op ("classify", "judge").
	Record(ctx context.Context, op string, u Usage) error
}

// LevelOf maps used/limit to a budget level.
func LevelOf(used, limit int64) string {
	switch {
	case limit <= 0:
		return LevelOK
	case used >= limit:
		return LevelStopped
	case used*100 >= limit*95:
		return LevelDefer
	case used*100 >= limit*50:
		return LevelWarn
	}
	return LevelOK
}

// MemoryBudget is an in-process Budget that resets each calendar month (UTC).
// The classifier service persists usage in Postgres; this one serves tests,
// tools and single-process runs.
type MemoryBudget struct {
	Limit int64
	Now   func() time.Time
	// OnLevel, if set, is called when the level changes (e.g. to log the 50 % warning).
	OnLevel func(BudgetStatus)

	mu    sync.Mutex
	month string
	used  int64
	byOp  map[string]int64
	level string
}

func (b *MemoryBudget) roll() {
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	m := now().UTC().Format("2006-01")
	if m != b.month {
		b.month, b.used, b.byOp, b.level = m, 0, map[string]int64{}, LevelOK
	}
}

// Allow implements Budget.
func (b *MemoryBudget) Allow(_ context.Context, backfill bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	switch LevelOf(b.used, b.Limit) {
	case LevelStopped:
		return ErrBudgetExhausted
	case LevelDefer:
		if backfill {
			return ErrBudgetDeferred
		}
	}
	return nil
}

// Record implements Budget.
func (b *MemoryBudget) Record(_ context.Context, op string, u Usage) error {
	b.mu.Lock()
	b.roll()
	b.used += int64(u.Total())
	b.byOp[op] += int64(u.Total())
	lvl := LevelOf(b.used, b.Limit)
	changed := lvl != b.level
	b.level = lvl
	st := b.statusLocked()
	b.mu.Unlock()
	if changed && b.OnLevel != nil {
		b.OnLevel(st)
	}
	return nil
}

// Status returns the current month's usage.
func (b *MemoryBudget) Status() BudgetStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	return b.statusLocked()
}

func (b *MemoryBudget) statusLocked() BudgetStatus {
	ops := make(map[string]int64, len(b.byOp))
	for k, v := range b.byOp {
		ops[k] = v
	}
	return BudgetStatus{Month: b.month, Used: b.used, Limit: b.Limit, Level: LevelOf(b.used, b.Limit), ByOp: ops}
}
