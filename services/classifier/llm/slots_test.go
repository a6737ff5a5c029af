package llm

import (
	"context"
	"testing"
	"time"
)

func TestSlotsServeUrgentWaitersFirstThenInOrder(t *testing.T) {
	s := newSlots(1)
	ctx := context.Background()
	if err := s.acquire(ctx, false); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 3)
	// Queue two normal waiters, then an urgent one.
	for _, w := range []struct {
		name   string
		urgent bool
	}{{"section-1", false}, {"section-2", false}, {"judge", true}} {
		want := countWaiting(s) + 1
		go func(name string, urgent bool) {
			if err := s.acquire(ctx, urgent); err != nil {
				order <- "error " + name
				return
			}
			order <- name
			s.release()
		}(w.name, w.urgent)
		waitFor(t, func() bool { return countWaiting(s) == want })
	}
	s.release()
	got := []string{<-order, <-order, <-order}
	if want := []string{"judge", "section-1", "section-2"}; got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("order = %v, want %v", got, want)
	}
	// Every waiter releases its slot after reporting: all of them come back.
	waitFor(t, func() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.free == 1 })
}

func TestSlotsGiveUpOnCancelWithoutLosingASlot(t *testing.T) {
	s := newSlots(1)
	if err := s.acquire(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.acquire(ctx, true) }()
	waitFor(t, func() bool { return countWaiting(s) == 1 })
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("cancelled acquire succeeded")
	}
	s.release()
	s.mu.Lock()
	free := s.free
	s.mu.Unlock()
	if countWaiting(s) != 0 || free != 1 {
		t.Errorf("after cancel and release: waiting %d, free %d; want 0, 1", countWaiting(s), free)
	}
}

func countWaiting(s *slots) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiting[0]) + len(s.waiting[1])
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}
