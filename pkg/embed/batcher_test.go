package embed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeRun records batch sizes and returns each sequence's first id as its vector.
type fakeRun struct {
	mu      sync.Mutex
	sizes   []int
	delay   time.Duration
	fail    error
	block   chan struct{}
	entered chan struct{} // receives once per run call, when set
}

func (f *fakeRun) run(encs []Encoding) ([][]float32, error) {
	if f.entered != nil {
		f.entered <- struct{}{}
	}
	if f.block != nil {
		<-f.block
	}
	time.Sleep(f.delay)
	f.mu.Lock()
	f.sizes = append(f.sizes, len(encs))
	f.mu.Unlock()
	if f.fail != nil {
		return nil, f.fail
	}
	out := make([][]float32, len(encs))
	for i, e := range encs {
		out[i] = []float32{float32(e.IDs[0]), float32(len(e.IDs))}
	}
	return out, nil
}

func enc(id int64, n int) Encoding {
	ids := make([]int64, n)
	ids[0] = id
	return Encoding{IDs: ids, AttentionMask: make([]int64, n), TypeIDs: make([]int64, n)}
}

func TestBatcherGroupsConcurrentCallersAndKeepsOrder(t *testing.T) {
	f := &fakeRun{delay: time.Millisecond}
	b := newBatcher(BatchConfig{MaxBatch: 16, MaxWait: 100 * time.Millisecond}, f.run, slog.Default())
	defer b.Close()
	var wg sync.WaitGroup
	var bad atomic.Int32
	for c := 0; c < 32; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := b.Do(context.Background(), []Encoding{enc(int64(c), 10), enc(int64(c+100), 10)}, false)
			if err != nil || got[0][0] != float32(c) || got[1][0] != float32(c+100) {
				bad.Add(1)
			}
		}()
	}
	wg.Wait()
	if bad.Load() > 0 {
		t.Fatalf("%d callers got wrong or misordered vectors", bad.Load())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	total, biggest := 0, 0
	for _, s := range f.sizes {
		total += s
		biggest = max(biggest, s)
	}
	if total != 64 || biggest < 8 || biggest > 16 {
		t.Fatalf("batch sizes %v: want 64 items in batches of up to 16, some ≥ 8", f.sizes)
	}
}

func TestBatcherRunsALoneRequestWithoutWaitingForCompany(t *testing.T) {
	f := &fakeRun{}
	b := newBatcher(BatchConfig{MaxBatch: 32, MaxWait: 2 * time.Second}, f.run, slog.Default())
	defer b.Close()
	for i := range 3 {
		start := time.Now()
		got, err := b.Do(context.Background(), []Encoding{enc(int64(i), 4)}, false)
		if err != nil || got[0][0] != float32(i) {
			t.Fatalf("call %d: %v %v", i, got, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("call %d on an idle batcher took %v: it waited for company", i, d)
		}
	}
}

func TestBatcherSplitsMixedLengthsToLimitPadding(t *testing.T) {
	f := &fakeRun{}
	b := newBatcher(BatchConfig{MaxBatch: 64, MaxWait: 50 * time.Millisecond}, f.run, slog.Default())
	defer b.Close()
	var encs []Encoding
	for i := 0; i < 8; i++ {
		encs = append(encs, enc(int64(i), 8), enc(int64(i+50), 128))
	}
	got, err := b.Do(context.Background(), encs, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range encs {
		if got[i][0] != float32(e.IDs[0]) || got[i][1] != float32(len(e.IDs)) {
			t.Fatalf("item %d got %v", i, got[i])
		}
	}
	if len(f.sizes) != 2 || f.sizes[0] != 8 || f.sizes[1] != 8 {
		t.Fatalf("batch sizes %v, want short and long runs separated [8 8]", f.sizes)
	}
}

func TestBatcherTryFailsFastWhenQueueFull(t *testing.T) {
	f := &fakeRun{block: make(chan struct{}), entered: make(chan struct{}, 4)}
	b := newBatcher(BatchConfig{MaxBatch: 4, Queue: 4, MaxWait: time.Millisecond}, f.run, slog.Default())
	defer b.Close()
	done := make(chan error, 1)
	go func() {
		_, err := b.Do(context.Background(), []Encoding{enc(1, 4), enc(2, 4), enc(3, 4), enc(4, 4)}, false)
		done <- err
	}()
	<-f.entered // the four hold the whole queue and block in run
	start := time.Now()
	_, err := b.Do(context.Background(), []Encoding{enc(5, 4)}, true)
	if !errors.Is(err, ErrOverloaded) || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("try on full queue = %v after %v, want ErrOverloaded at once", err, time.Since(start))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := b.Do(ctx, []Encoding{enc(6, 4)}, false); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocking wait = %v, want deadline exceeded", err)
	}
	close(f.block)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := b.Do(context.Background(), []Encoding{enc(7, 4)}, true); err != nil {
		t.Fatalf("after drain: %v", err)
	}
}

func TestBatcherRejectsRequestLargerThanQueue(t *testing.T) {
	b := newBatcher(BatchConfig{Queue: 2}, (&fakeRun{}).run, slog.Default())
	defer b.Close()
	_, err := b.Do(context.Background(), []Encoding{enc(1, 2), enc(2, 2), enc(3, 2)}, false)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestBatcherReportsRunErrorsToEveryCaller(t *testing.T) {
	f := &fakeRun{fail: fmt.Errorf("ort exploded")}
	b := newBatcher(BatchConfig{}, f.run, slog.Default())
	defer b.Close()
	_, err := b.Do(context.Background(), []Encoding{enc(1, 2), enc(2, 3)}, false)
	if err == nil || !strings.Contains(err.Error(), "ort exploded") {
		t.Fatalf("err = %v", err)
	}
	// The worker survives a failed batch.
	f.fail = nil
	if _, err := b.Do(context.Background(), []Encoding{enc(1, 2)}, false); err != nil {
		t.Fatal(err)
	}
}

func TestBatcherAfterCloseReturnsErrClosed(t *testing.T) {
	b := newBatcher(BatchConfig{}, (&fakeRun{}).run, slog.Default())
	b.Close()
	if _, err := b.Do(context.Background(), []Encoding{enc(1, 2)}, false); !errors.Is(err, ErrClosed) {
		t.Fatalf("err = %v", err)
	}
}

func TestChunksOverlapAndCover(t *testing.T) {
	tok := loadTokenizer(t, 10) // 8 pieces per window
	words := make([]string, 30)
	for i := range words {
		words[i] = "hello"
	}
	text := strings.Join(words, " ")
	tests := []struct {
		name      string
		cfg       ChunkConfig
		wantN     int
		truncated bool
	}{
		{"30 pieces, stride 6 → 5 windows", ChunkConfig{Overlap: 2, MaxChunks: 10}, 5, false},
		{"capped at 3 windows", ChunkConfig{Overlap: 2, MaxChunks: 3}, 3, true},
		{"no overlap → 4 windows", ChunkConfig{Overlap: 0, MaxChunks: 10}, 4, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			chunks, truncated := tok.Chunks(text, tc.cfg)
			if len(chunks) != tc.wantN || truncated != tc.truncated {
				t.Fatalf("got %d chunks truncated=%v, want %d %v", len(chunks), truncated, tc.wantN, tc.truncated)
			}
			for _, c := range chunks {
				if len(c.IDs) > 10 || c.IDs[0] != 101 || c.IDs[len(c.IDs)-1] != 102 {
					t.Fatalf("bad chunk %v", c.IDs)
				}
			}
		})
	}
	if c, tr := tok.Chunks("short text", ChunkConfig{Overlap: 2, MaxChunks: 4}); len(c) != 1 || tr {
		t.Fatalf("short text: %d chunks", len(c))
	}
}

func TestChunkSpansMatchWholeTextTokens(t *testing.T) {
	tok := loadTokenizer(t, 12)
	text := "Héllo,  wörld!\tThe quarterly\u00a0budget review: https://example.com/x?y=1 東京タワー and more words here to make several windows."
	spans, truncated := tok.ChunkSpans(text, ChunkConfig{Overlap: 3, MaxChunks: 20})
	if truncated || len(spans) < 3 {
		t.Fatalf("%d spans truncated=%v", len(spans), truncated)
	}
	// Re-joining the windows' pieces (minus overlaps) gives the whole-text tokenization.
	want := tok.PieceIDs(text)
	var got []int64
	for i, s := range spans {
		p := s.Enc.IDs[1 : len(s.Enc.IDs)-1]
		if i > 0 {
			p = p[3:]
		}
		got = append(got, p...)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("span pieces %v\nwant %v", got, want)
	}
	runes := []rune(text)
	if spans[0].Start != 0 || spans[len(spans)-1].End != len(runes) {
		t.Fatalf("spans cover [%d,%d) of %d runes", spans[0].Start, spans[len(spans)-1].End, len(runes))
	}
	for _, s := range spans {
		if s.Start >= s.End || s.End > len(runes) {
			t.Fatalf("bad span %d-%d", s.Start, s.End)
		}
		// The span text tokenizes to at least the window's pieces.
		if n := len(tok.PieceIDs(string(runes[s.Start:s.End]))); n < len(s.Enc.IDs)-2 {
			t.Fatalf("span %q has %d pieces, window %d", string(runes[s.Start:s.End]), n, len(s.Enc.IDs)-2)
		}
	}
	if s, _ := tok.ChunkSpans(" \t\n", ChunkConfig{MaxChunks: 3}); len(s) != 0 {
		t.Fatalf("blank text gave %d spans", len(s))
	}
}
