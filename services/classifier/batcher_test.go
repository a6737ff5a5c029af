package classifier

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestBatcherGroupsConcurrentCallsAndReturnsEachResult(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	b := newBatcher(10, 200*time.Millisecond, func(_ context.Context, ids []string) map[string]error {
		mu.Lock()
		sizes = append(sizes, len(ids))
		mu.Unlock()
		res := map[string]error{}
		for _, id := range ids {
			if id == "bad" {
				res[id] = errors.New("bad")
			}
		}
		return res
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go b.loop(ctx)
	var wg sync.WaitGroup
	errs := make([]error, 25)
	for i := 0; i < 25; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint(i)
			if i == 7 {
				id = "bad"
			}
			errs[i] = b.Do(ctx, id)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i == 7) != (err != nil) {
			t.Errorf("call %d err = %v", i, err)
		}
	}
	if len(sizes) != 3 || sizes[0] != 10 || sizes[1] != 10 || sizes[2] != 5 {
		t.Errorf("batch sizes = %v, want [10 10 5]", sizes)
	}
}
