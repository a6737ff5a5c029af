package classifier

import (
	"context"
	"time"
)

// batcher gathers the email ids of concurrent bus handlers into batches of up
// to size ids, waiting at most wait for a batch to fill, and runs each batch
// in its own goroutine; every handler blocks until its batch returns and gets
// its own email's error. Safe for concurrent use.
type batcher struct {
	in   chan batchReq
	size int
	wait time.Duration
	run  func(ctx context.Context, ids []string) map[string]error
}

type batchReq struct {
	ctx  context.Context
	id   string
	done chan error
}

func newBatcher(size int, wait time.Duration, run func(context.Context, []string) map[string]error) *batcher {
	return &batcher{in: make(chan batchReq), size: max(size, 1), wait: wait, run: run}
}

// Do submits id and waits for its result.
func (b *batcher) Do(ctx context.Context, id string) error {
	r := batchReq{ctx: ctx, id: id, done: make(chan error, 1)}
	select {
	case b.in <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop collects batches until ctx is cancelled.
func (b *batcher) loop(ctx context.Context) {
	for {
		var batch []batchReq
		select {
		case r := <-b.in:
			batch = append(batch, r)
		case <-ctx.Done():
			return
		}
		timer := time.NewTimer(b.wait)
	fill:
		for len(batch) < b.size {
			select {
			case r := <-b.in:
				batch = append(batch, r)
			case <-timer.C:
				break fill
			case <-ctx.Done():
				break fill
			}
		}
		timer.Stop()
		go b.flush(batch)
	}
}

func (b *batcher) flush(batch []batchReq) {
	ids := make([]string, 0, len(batch))
	seen := map[string]bool{}
	for _, r := range batch {
		if !seen[r.id] {
			seen[r.id] = true
			ids = append(ids, r.id)
		}
	}
	// The batch outlives any one handler's context; handlers that gave up
	// simply stop waiting. A detached context keeps tracing values.
	res := b.run(context.WithoutCancel(batch[0].ctx), ids)
	for _, r := range batch {
		r.done <- res[r.id]
	}
}
