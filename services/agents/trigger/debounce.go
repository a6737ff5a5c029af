package trigger

import (
	"slices"
	"sync"
	"time"
)

// Debouncer batches data triggers: triggers of the same kind arriving
// within quiet of each other are merged (mail ids and categories unioned)
// and fired once, at the latest maxWait after the first. Safe for
// concurrent use; fire runs on the debouncer's timer goroutine.
type Debouncer struct {
	quiet, maxWait time.Duration
	fire           func(Trigger)

	mu      sync.Mutex
	pending map[Kind]*batch
	stopped bool
}

type batch struct {
	t     Trigger
	first time.Time
	timer *time.Timer
}

// NewDebouncer returns a debouncer that calls fire with merged triggers.
func NewDebouncer(quiet, maxWait time.Duration, fire func(Trigger)) *Debouncer {
	return &Debouncer{quiet: quiet, maxWait: maxWait, fire: fire, pending: map[Kind]*batch{}}
}

// Add queues a trigger for merging.
func (d *Debouncer) Add(t Trigger) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	b := d.pending[t.Kind]
	if b == nil {
		b = &batch{t: t, first: time.Now()}
		d.pending[t.Kind] = b
		b.timer = time.AfterFunc(d.quiet, func() { d.flushKind(t.Kind) })
		return
	}
	b.t.EmailIDs = union(b.t.EmailIDs, t.EmailIDs)
	b.t.Categories = union(b.t.Categories, t.Categories)
	if t.At.After(b.t.At) {
		b.t.At = t.At
	}
	wait := d.quiet
	if left := d.maxWait - time.Since(b.first); left < wait {
		wait = max(left, 0)
	}
	b.timer.Reset(wait)
}

func (d *Debouncer) flushKind(k Kind) {
	d.mu.Lock()
	b := d.pending[k]
	delete(d.pending, k)
	d.mu.Unlock()
	if b != nil {
		d.fire(b.t)
	}
}

// Flush fires every pending batch now.
func (d *Debouncer) Flush() {
	d.mu.Lock()
	var kinds []Kind
	for k, b := range d.pending {
		b.timer.Stop()
		kinds = append(kinds, k)
	}
	d.mu.Unlock()
	for _, k := range kinds {
		d.flushKind(k)
	}
}

// Discard drops pending batches without firing them and ignores later
// Adds; for a caller whose triggers are durable elsewhere.
func (d *Debouncer) Discard() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for k, b := range d.pending {
		b.timer.Stop()
		delete(d.pending, k)
	}
	d.stopped = true
}

// Stop flushes pending batches and ignores later Adds.
func (d *Debouncer) Stop() {
	d.Flush()
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
