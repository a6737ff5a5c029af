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
	Workers       int           // parallel parse+store+publish workers; default 4
	ProgressEvery time.Duration // default 500ms
	// ChunkMessages and ChunkBytes bound a worker's chunk: the parsed
	// messages it stores in one round trip and publishes before waiting for
	// the acks. Defaults 100 messages, 4 MiB of raw mail (with 8 workers, at most 32 MiB of mail in flight).
	ChunkMessages int
	ChunkBytes    int
}

// ImportStream drains r through p with bounded parallelism. Each worker
// parses messages into a chunk, then stores the chunk (one round trip when
// the Store is a BatchStore), publishes the events it needs (asynchronously
// when the Publisher is a BatchPublisher), waits for every ack and only
// then marks the chunk published and counts it in the progress. Messages
// the reader skipped or that fail to parse are recorded through rec and the
// import goes on; a store/publish failure stops it with that error (a rerun
// is safe: dedupe makes the done part a no-op, and an unmarked chunk is
// published again under the same Msg-Ids). origin maps each raw message to
// its Origin.
func ImportStream(ctx context.Context, r mailparse.Reader, p *Processor, origin func(*mailparse.RawMessage) Origin, rec Recorder, opts StreamOptions) (Progress, error) {
	if opts.Workers <= 0 {
		opts.Workers = 4
	}
	if opts.ProgressEvery <= 0 {
		opts.ProgressEvery = 500 * time.Millisecond
	}
	if opts.ChunkMessages <= 0 {
		opts.ChunkMessages = 100
	}
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = 4 << 20
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
	count := func(f func(*Progress)) { mu.Lock(); f(&prog); mu.Unlock() }
	work := make(chan *mailparse.RawMessage, opts.Workers*2)
	var wg sync.WaitGroup
	for i := 0; i < opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{p: p, rec: rec, origin: origin, count: count, opts: opts}
			for rm := range work {
				if ctx.Err() != nil {
					continue // drain: the import is stopping
				}
				if err := w.add(ctx, rm); err != nil {
					cancel(err)
				}
			}
			if ctx.Err() == nil {
				if err := w.flush(ctx); err != nil {
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
		count(func(p *Progress) { p.Messages++ })
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

// worker is one ImportStream worker and its chunk of parsed emails.
type worker struct {
	p      *Processor
	rec    Recorder
	origin func(*mailparse.RawMessage) Origin
	count  func(func(*Progress))
	opts   StreamOptions

	chunk []*Email
	bytes int
}

// add parses rm into the chunk (or records why it cannot be imported) and
// stores the chunk once it is full.
func (w *worker) add(ctx context.Context, rm *mailparse.RawMessage) error {
	if rm.Err != nil {
		return w.skip(ctx, rm, rm.Err)
	}
	e, err := w.p.parse(w.origin(rm), rm.Raw)
	if err != nil {
		return w.skip(ctx, rm, err)
	}
	w.chunk = append(w.chunk, e)
	w.bytes += len(rm.Raw)
	if len(w.chunk) >= w.opts.ChunkMessages || w.bytes >= w.opts.ChunkBytes {
		return w.flush(ctx)
	}
	return nil
}

func (w *worker) skip(ctx context.Context, rm *mailparse.RawMessage, cause error) error {
	if err := w.rec.MessageError(ctx, rm, cause); err != nil {
		return fmt.Errorf("record message error: %w", err)
	}
	w.count(func(p *Progress) { p.Errors++ })
	return nil
}

// flush stores and publishes the chunk; only a chunk whose events are all
// acknowledged and marked counts as imported.
func (w *worker) flush(ctx context.Context) error {
	if len(w.chunk) == 0 {
		return nil
	}
	published, duplicate, err := w.p.storeChunk(ctx, w.chunk)
	if err != nil {
		return err
	}
	w.count(func(p *Progress) { p.Imported += published; p.Duplicate += duplicate })
	clear(w.chunk)
	w.chunk, w.bytes = w.chunk[:0], 0
	return nil
}
