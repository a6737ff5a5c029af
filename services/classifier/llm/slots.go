package llm

import (
	"context"
	"sync"
)

// slots bounds the LLM calls in flight in a process. Waiting callers are
// served in order, urgent ones first: a batch's judge call (the last step
// before its emails are acked) overtakes the section calls of later batches,
// so a batch never waits behind work that started after it, and the slots
// stay busy with the next batch's calls while a judge runs. Safe for
// concurrent use.
type slots struct {
	mu      sync.Mutex
	free    int
	waiting [2][]chan struct{} // [0] urgent, [1] normal; FIFO each
}

func newSlots(n int) *slots { return &slots{free: n} }

// acquire takes a slot, blocking until one is free or ctx is done.
func (s *slots) acquire(ctx context.Context, urgent bool) error {
	q := 1
	if urgent {
		q = 0
	}
	s.mu.Lock()
	if s.free > 0 && len(s.waiting[0]) == 0 && len(s.waiting[1]) == 0 {
		s.free--
		s.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	s.waiting[q] = append(s.waiting[q], ch)
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for i, c := range s.waiting[q] {
			if c == ch {
				s.waiting[q] = append(s.waiting[q][:i], s.waiting[q][i+1:]...)
				s.mu.Unlock()
				return ctx.Err()
			}
		}
		s.mu.Unlock()
		s.release() // granted as ctx ended: hand it on
		return ctx.Err()
	}
}

// release returns a slot, handing it to the first urgent waiter, else the
// first normal one.
func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for q := range s.waiting {
		if len(s.waiting[q]) > 0 {
			ch := s.waiting[q][0]
			s.waiting[q] = s.waiting[q][1:]
			close(ch)
			return
		}
	}
	s.free++
}
