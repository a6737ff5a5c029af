package embed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// ErrOverloaded is returned by TryEmbed when the queue cannot take the request now.
var ErrOverloaded = errors.New("embedder overloaded: queue full, retry later")

// ErrTooLarge is returned for a request with more inputs than the queue holds.
var ErrTooLarge = errors.New("embedding request too large")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("embedder closed")

// BatchConfig tunes dynamic micro-batching.
type BatchConfig struct {
	// MaxBatch is the most sequences run together (default 32).
	MaxBatch int
	// MaxTokens bounds the tokens (sum of lengths) in one batch (default 4096).
	MaxTokens int
	// MaxWait is how long the first queued sequence waits for company (default 5ms).
	MaxWait time.Duration
	// Queue bounds the sequences queued or running (default 1024).
	Queue int
}

func (c BatchConfig) withDefaults() BatchConfig {
	if c.MaxBatch <= 0 {
		c.MaxBatch = 32
	}
	if c.MaxTokens <= 0 {
		c.MaxTokens = 4096
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 5 * time.Millisecond
	}
	if c.Queue <= 0 {
		c.Queue = 1024
	}
	return c
}

// runFunc embeds one padded batch.
type runFunc func(encs []Encoding) ([][]float32, error)

type batchItem struct {
	ctx context.Context
	enc Encoding
	idx int
	res chan<- batchResult
}

type batchResult struct {
	idx int
	vec []float32
	err error
}

// Batcher gathers sequences from concurrent callers into batches, by size and
// a short wait, and runs them one batch at a time. When nobody else is
// embedding, a request runs at once on its caller's goroutine instead of
// waiting for company that is not coming. Its methods are safe for concurrent
// use; callers block until their vectors are computed.
type Batcher struct {
	cfg  BatchConfig
	run  runFunc
	sem  *semaphore.Weighted
	in   chan batchItem
	stop chan struct{}
	done chan struct{}
	once sync.Once
	log  *slog.Logger

	// model is held while a batch runs, by the worker or an inline caller.
	model sync.Mutex
	// queued counts sequences handed to the worker and not yet run.
	queued atomic.Int64
	// alone is set when the last batch ran without company (an inline run
	// nobody queued behind, or a lone sequence nobody joined in MaxWait), so
	// concurrency is low and waiting for company would only add latency.
	alone atomic.Bool
	// lastRun is when the last batch finished (UnixNano).
	lastRun atomic.Int64
}

func newBatcher(cfg BatchConfig, run runFunc, log *slog.Logger) *Batcher {
	cfg = cfg.withDefaults()
	b := &Batcher{
		cfg: cfg, run: run, log: log,
		sem:  semaphore.NewWeighted(int64(cfg.Queue)),
		in:   make(chan batchItem, cfg.Queue),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	go b.loop()
	return b
}

// Do embeds encs, waiting for queue space (blocking) or failing fast with
// ErrOverloaded (tryOnly). Results are in input order.
func (b *Batcher) Do(ctx context.Context, encs []Encoding, tryOnly bool) ([][]float32, error) {
	n := int64(len(encs))
	if n == 0 {
		return nil, nil
	}
	if n > int64(b.cfg.Queue) {
		return nil, fmt.Errorf("%w: %d inputs, queue holds %d", ErrTooLarge, n, b.cfg.Queue)
	}
	select {
	case <-b.stop:
		return nil, ErrClosed
	default:
	}
	if tryOnly {
		if !b.sem.TryAcquire(n) {
			return nil, ErrOverloaded
		}
	} else if err := b.sem.Acquire(ctx, n); err != nil {
		return nil, fmt.Errorf("wait for embedder queue: %w", err)
	}
	res := make(chan batchResult, n)
	items := make([]batchItem, n)
	for i, e := range encs {
		items[i] = batchItem{ctx: ctx, enc: e, idx: i, res: res}
	}
	if !b.runInline(items) {
		b.queued.Add(n)
		for _, it := range items {
			b.in <- it
		}
	}
	out := make([][]float32, n)
	var firstErr error
	for range n {
		select {
		case r := <-res:
			if r.err != nil && firstErr == nil {
				firstErr = r.err
			}
			out[r.idx] = r.vec
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-b.done:
			return nil, ErrClosed
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// runInline runs items on the caller's goroutine when the batcher is idle:
// the model free, nothing queued, and no concurrent traffic lately (the last
// batch ran alone, or nothing ran for longer than MaxWait). It reports
// whether it ran them; results go to the items' channel.
func (b *Batcher) runInline(items []batchItem) bool {
	if len(items) > b.cfg.MaxBatch || b.queued.Load() != 0 {
		return false
	}
	idle := time.Since(time.Unix(0, b.lastRun.Load())) > b.cfg.MaxWait
	if !idle && !b.alone.Load() {
		return false
	}
	if !b.model.TryLock() {
		return false
	}
	defer b.model.Unlock()
	if b.queued.Load() != 0 {
		return false
	}
	select {
	case <-b.stop:
		return false
	default:
	}
	b.runBatch(items)
	b.lastRun.Store(time.Now().UnixNano())
	// Still alone if nobody queued up while it ran.
	b.alone.Store(b.queued.Load() == 0)
	return true
}

// Close stops the worker after the batch in flight and waits for any inline
// run; queued callers get ErrClosed.
func (b *Batcher) Close() {
	b.once.Do(func() { close(b.stop) })
	<-b.done
	b.model.Lock()
	defer b.model.Unlock()
}

func (b *Batcher) loop() {
	defer close(b.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var first batchItem
		select {
		case first = <-b.in:
		case <-b.stop:
			b.drain()
			return
		}
		batch := []batchItem{first}
		tokens := len(first.enc.IDs)
		timedOut := false
		timer.Reset(b.cfg.MaxWait)
	collect:
		for len(batch) < b.cfg.MaxBatch && tokens < b.cfg.MaxTokens {
			select {
			case it := <-b.in:
				batch = append(batch, it)
				tokens += len(it.enc.IDs)
			case <-timer.C:
				timedOut = true
				break collect
			case <-b.stop:
				break collect
			}
		}
		if !timedOut {
			timer.Stop()
		}
		b.alone.Store(len(batch) == 1 && (timedOut || b.cfg.MaxBatch == 1))
		b.model.Lock()
		b.runBatch(batch)
		b.lastRun.Store(time.Now().UnixNano())
		b.model.Unlock()
		b.queued.Add(-int64(len(batch)))
	}
}

// runBatch drops items whose caller gave up, sorts the rest by length and
// runs them in groups whose padding overhead stays small.
func (b *Batcher) runBatch(batch []batchItem) {
	live := batch[:0]
	for _, it := range batch {
		if err := it.ctx.Err(); err != nil {
			it.res <- batchResult{idx: it.idx, err: err}
			b.sem.Release(1)
			continue
		}
		live = append(live, it)
	}
	slices.SortStableFunc(live, func(x, y batchItem) int { return len(x.enc.IDs) - len(y.enc.IDs) })
	for start := 0; start < len(live); {
		end, real := start+1, len(live[start].enc.IDs)
		for end < len(live) {
			l := len(live[end].enc.IDs)
			// padded cost if added: every row padded to l
			if l*(end-start+1) > (real+l)*5/4+64 {
				break
			}
			real += l
			end++
		}
		b.runGroup(live[start:end])
		start = end
	}
}

func (b *Batcher) runGroup(group []batchItem) {
	encs := make([]Encoding, len(group))
	for i, it := range group {
		encs[i] = it.enc
	}
	vecs, err := b.run(encs)
	if err == nil && len(vecs) != len(group) {
		err = fmt.Errorf("embed batch: got %d vectors for %d inputs", len(vecs), len(group))
	}
	if err != nil {
		b.log.Error("embed batch failed", "size", len(group), "err", err)
	}
	for i, it := range group {
		r := batchResult{idx: it.idx, err: err}
		if err == nil {
			r.vec = vecs[i]
		}
		it.res <- r
	}
	b.sem.Release(int64(len(group)))
}

func (b *Batcher) drain() {
	for {
		select {
		case it := <-b.in:
			it.res <- batchResult{idx: it.idx, err: ErrClosed}
			b.sem.Release(1)
		default:
			return
		}
	}
}
