package intake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ownyou/home/services/ingest/mailparse"
)

// Progress is the running state of a file import.
type Progress struct {
	BytesRead int64 `json:"bytes_read"`
	Messages  int   `json:"messages"`  // messages read from the file
	Imported  int   `json:"imported"`  // new emails published
	Duplicate int   `json:"duplicate"` // already known emails
	Errors    int   `json:"errors"`    // messages skipped with a recorded error
}

// Recorder receives an import's progress and per-message errors. Calls
// come from several goroutines.
type Recorder interface {
	// Progress reports running totals (throttled); it doubles as heartbeat.
	Progress(ctx context.Context, p Progress) error
	// MessageError records one skipped message (too large, unparseable).
	MessageError(ctx context.Context, rm *mailparse.RawMessage, err error) error
}

// StreamOptions tune ImportStream.
type StreamOptions struct {
	Workers       int           // parallel parse+store+publish; default 4
	ProgressEvery time.Duration // default 500ms
}

// ImportStream drains r through p with bounded parallelism. Messages the
// reader skipped or that fail to parse are recorded through rec and the
// import goes on; a store/publish failure stops it with that error (a
// rerun is safe: dedupe makes the done part a no-op). origin maps each raw
// message to its Origin.
func ImportStream(ctx context.Context, r mailparse.Reader, p *Processor, origin func(*mailparse.RawMessage) Origin, rec Recorder, opts StreamOptions) (Progress, error) {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 500 * time.Millisecond
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var (
		mu   sync.Mutex
		prog Progress
	)
	snapshot := func() Progress {
		mu.Lock()
		defer mu.Unlock()
		prog.BytesRead = r.BytesRead()
		return prog
	}
	mk := &marker{store: p.store}
	work := make(chan *mailparse.RawMessage, opts.Workers*2)
	var wg sync.WaitGroup
	for i := 0; i < opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rm := range work {
				if err := importOne(ctx, p, mk, origin, rec, rm, &mu, &prog); err != nil {
					cancel(err)
				}
			}
		}()
	}

	ticker := time.NewTicker(opts.ProgressEvery)
	defer ticker.Stop()
	var readErr error
loop:
	for {
		rm, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = fmt.Errorf("read import file: %w", err)
			break
		}
		mu.Lock()
		prog.Messages++
		mu.Unlock()
		select {
		case work <- rm:
		case <-ctx.Done():
			break loop
		}
		select {
		case <-ticker.C:
			if err := rec.Progress(ctx, snapshot()); err != nil {
				cancel(fmt.Errorf("report progress: %w", err))
				break loop
			}
		default:
		}
	}
	close(work)
	wg.Wait()
	// Mark what was published even when stopping early, so a rerun does
	// not publish it again.
	if err := mk.flush(context.WithoutCancel(ctx)); err != nil {
		cancel(fmt.Errorf("mark published: %w", err))
	}
	final := snapshot()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return final, cause
	}
	if err := ctx.Err(); err != nil {
		return final, err
	}
	if readErr != nil {
		return final, readErr
	}
	if err := rec.Progress(ctx, final); err != nil {
		return final, fmt.Errorf("report progress: %w", err)
	}
	return final, nil
}

func importOne(ctx context.Context, p *Processor, mk *marker, origin func(*mailparse.RawMessage) Origin, rec Recorder, rm *mailparse.RawMessage, mu *sync.Mutex, prog *Progress) error {
	count := func(f func(*Progress)) { mu.Lock(); f(prog); mu.Unlock() }
	if rm.Err != nil {
		if err := rec.MessageError(ctx, rm, rm.Err); err != nil {
			return fmt.Errorf("record message error: %w", err)
		}
		count(func(p *Progress) { p.Errors++ })
		return nil
	}
	res, err := p.ProcessUnmarked(ctx, origin(rm), rm.Raw)
	switch {
	case errors.Is(err, ErrUnparseable):
		if err := rec.MessageError(ctx, rm, err); err != nil {
			return fmt.Errorf("record message error: %w", err)
		}
		count(func(p *Progress) { p.Errors++ })
		return nil
	case err != nil:
		return err
	case res.Published:
		count(func(p *Progress) { p.Imported++ })
		if err := mk.add(ctx, res.EmailID); err != nil {
			return fmt.Errorf("mark published: %w", err)
		}
	default:
		count(func(p *Progress) { p.Duplicate++ })
	}
	return nil
}

// marker batches MarkPublished calls: one round trip per 100 emails
// instead of one per email.
type marker struct {
	store Store
	mu    sync.Mutex
	ids   []string
}

func (m *marker) add(ctx context.Context, id string) error {
	m.mu.Lock()
	m.ids = append(m.ids, id)
	var batch []string
	if len(m.ids) >= 100 {
		batch, m.ids = m.ids, nil
	}
	m.mu.Unlock()
	if batch == nil {
		return nil
	}
	return m.store.MarkPublished(ctx, batch...)
}

func (m *marker) flush(ctx context.Context) error {
	m.mu.Lock()
	batch := m.ids
	m.ids = nil
	m.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	return m.store.MarkPublished(ctx, batch...)
}
