package core

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Preferred keeps a value built with a primary embedder (the embedder
// service's MiniLM over NATS) ready beside its user's own fallback (word
// vectors): the value is built in the background once per primary model id,
// the primary is left alone for Cooldown after any failure, and every switch
// between primary and fallback is reported through Status. Safe for
// concurrent use; the exported fields are set before first use.
type Preferred[T any] struct {
	Primary Embedder
	// Build makes the value with the primary embedder.
	Build func(ctx context.Context, emb Embedder) (T, error)
	// Status is told of every switch to (true) or from (false) the fallback; may be nil.
	Status func(ctx context.Context, fallback bool, reason error)
	Log    *slog.Logger
	// User names what uses the value in log lines ("shortlist").
	User string
	// Cooldown is how long the primary is left alone after it failed (default 1m).
	Cooldown time.Duration
	// BuildTimeout bounds one build (default 15m).
	BuildTimeout time.Duration

	mu         sync.Mutex
	val        T
	model      string // primary model id val was built with; "" = none
	building   bool
	retryAt    time.Time
	onFallback bool
}

// Get returns the value for the primary's current model. When there is none
// (or the primary is cooling down) ok is false and the caller uses its
// fallback; a build then starts in the background unless one runs already.
func (p *Preferred[T]) Get(ctx context.Context) (val T, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if val, _, ok = p.readyLocked(); ok || time.Now().Before(p.retryAt) {
		return val, ok
	}
	if !p.building {
		p.building = true
		go p.prepare(context.WithoutCancel(ctx))
	}
	return val, false
}

// Ready is Get without starting a build: the value and its model id when the
// primary is usable and ready for its current model.
func (p *Preferred[T]) Ready() (val T, model string, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.readyLocked()
}

func (p *Preferred[T]) readyLocked() (val T, model string, ok bool) {
	if time.Now().Before(p.retryAt) || p.model == "" || p.model != p.Primary.ModelID() {
		return val, "", false
	}
	return p.val, p.model, true
}

// Failed puts the primary on cool-down after err (from a build or from using
// the value) and reports the switch to the fallback.
func (p *Preferred[T]) Failed(ctx context.Context, err error) {
	cooldown := p.Cooldown
	if cooldown <= 0 {
		cooldown = time.Minute
	}
	p.mu.Lock()
	p.retryAt = time.Now().Add(cooldown)
	p.mu.Unlock()
	p.Log.WarnContext(ctx, "embedder service not usable for the "+p.User+"; using word vectors", "err", err, "retry_in", cooldown)
	p.setFallback(ctx, true, err)
}

func (p *Preferred[T]) prepare(ctx context.Context) {
	timeout := p.BuildTimeout
	if timeout <= 0 {
		timeout = 15 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	val, err := p.Build(ctx, p.Primary)
	model := p.Primary.ModelID() // after the build: a remote embedder knows its model once it has answered
	p.mu.Lock()
	p.building = false
	if err == nil {
		p.val, p.model = val, model // an older model's value is of no further use
	}
	p.mu.Unlock()
	if err != nil {
		p.Failed(ctx, err)
		return
	}
	p.Log.InfoContext(ctx, p.User+" uses the embedder service", "model", model)
	p.setFallback(ctx, false, nil)
}

func (p *Preferred[T]) setFallback(ctx context.Context, on bool, reason error) {
	p.mu.Lock()
	changed := p.onFallback != on
	p.onFallback = on
	p.mu.Unlock()
	if changed && p.Status != nil {
		p.Status(ctx, on, reason)
	}
}
