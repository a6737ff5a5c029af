package embed

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func newTestEmbedder(t *testing.T) *ONNX {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tiny.onnx")
	if err := os.WriteFile(p, tinyGraph(t), 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{ModelPath: p, ModelName: "tiny", VocabPath: sharedVocab(t), Session: SessionConfig{Library: testORTLib(t), IntraOpThreads: 2}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestEmbedderConcurrentCallsMatchSequential(t *testing.T) {
	e := newTestEmbedder(t)
	if e.Dim() != 384 || !strings.HasPrefix(e.ModelID(), "tiny@") {
		t.Fatalf("Dim %d ModelID %q", e.Dim(), e.ModelID())
	}
	texts := []string{"quarterly invoice attached", "flight to Lisbon confirmed", "your package shipped", "weekly newsletter: cooking", "hi"}
	want, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 50)
	for r := 0; r < 10; r++ {
		for i, tx := range texts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := e.Embed(context.Background(), []string{tx})
				if err != nil {
					errs <- err.Error()
					return
				}
				if d := maxAbsDiff(got[0], want[i]); d > 1e-5 {
					errs <- "concurrent result differs"
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}

func TestEmbedDocumentChunksLongMail(t *testing.T) {
	e := newTestEmbedder(t)
	long := strings.Repeat("The quarterly report shows growth in every region. ", 60)
	vecs, truncated, err := e.EmbedDocument(context.Background(), long)
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) < 4 || truncated {
		t.Fatalf("%d chunks truncated=%v, want several windows", len(vecs), truncated)
	}
	for _, v := range vecs {
		if len(v) != 384 {
			t.Fatalf("dim %d", len(v))
		}
	}
}

func TestNewReportsModelFileErrorsClearly(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.onnx")
	_ = os.WriteFile(garbage, []byte("not onnx"), 0o644)
	tests := []struct {
		name      string
		cfg       Config
		wantIs    error
		wantInMsg string
	}{
		{"missing model names make models", Config{ModelPath: filepath.Join(dir, "nope.onnx"), VocabPath: sharedVocab(t)}, os.ErrNotExist, "make models"},
		{"corrupt model", Config{ModelPath: garbage, VocabPath: sharedVocab(t)}, ErrModel, "garbage.onnx"},
		{"missing vocab", Config{ModelPath: garbage, VocabPath: filepath.Join(dir, "vocab.txt")}, os.ErrNotExist, "vocab"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Session.Library = testORTLib(t)
			_, err := New(tc.cfg)
			if !errors.Is(err, tc.wantIs) || !strings.Contains(err.Error(), tc.wantInMsg) {
				t.Fatalf("err = %v, want %v mentioning %q", err, tc.wantIs, tc.wantInMsg)
			}
		})
	}
}

func TestNewRejectsModelWithSmallerVocabulary(t *testing.T) {
	cfg := TinyGraph()
	cfg.Vocab = 1000 // the real vocab has 30522 tokens
	g, err := GenerateGraph(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "small.onnx")
	if err := os.WriteFile(p, g, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = New(Config{ModelPath: p, VocabPath: sharedVocab(t), Session: SessionConfig{Library: testORTLib(t)}})
	if !errors.Is(err, ErrModel) || !strings.Contains(err.Error(), "vocabulary") {
		t.Fatalf("err = %v, want ErrModel about the vocabulary", err)
	}
}

func BenchmarkMeanPoolNormalize18x384(b *testing.B) {
	const seq, dim = 18, 384
	hidden := make([]float32, seq*dim)
	for i := range hidden {
		hidden[i] = float32(i%97) / 97
	}
	mask := make([]int64, seq)
	for i := range mask {
		mask[i] = 1
	}
	b.ReportAllocs()
	for b.Loop() {
		MeanPoolNormalize(hidden, mask, 1, seq, dim)
	}
}
