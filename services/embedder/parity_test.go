package embedder

import (
	"context"
	"math"
	"testing"

	"github.com/ownyou/home/pkg/embed"
	"github.com/ownyou/home/pkg/models"
	"github.com/ownyou/home/pkg/vec"
)

// helloWorldST is the start of all-MiniLM-L6-v2's sentence embedding of
// "hello world" (mean pooling, L2-normalized, as sentence-transformers
// computes it), as published in qdrant/fastembed's test suite
// (tests/test_text_onnx_embeddings.py, CANONICAL_VECTOR_VALUES, compared
// there with atol 1e-3). It was not computed here: the weights cannot be
// downloaded on the machines this project is built on.
var helloWorldST = []float32{-0.034478, 0.03102, 0.00673, 0.02611, -0.039362}

// TestRealWeightsMatchSentenceTransformers runs only where `make models` has
// put the real all-MiniLM-L6-v2 weights in the model cache (sha256-verified);
// elsewhere it skips, and parity with sentence-transformers is unchecked.
func TestRealWeightsMatchSentenceTransformers(t *testing.T) {
	cfg := Config{Model: "fp32", ModelDir: models.CacheDir()}
	model, vocab, lib, name, err := ModelFiles(cfg, "")
	if err != nil {
		t.Skipf("real all-MiniLM-L6-v2 weights not in the model cache %s, parity with sentence-transformers not checked: %v", cfg.ModelDir, err)
	}
	fp32 := embedWith(t, model, vocab, lib, name)
	for i, want := range helloWorldST {
		if d := math.Abs(float64(fp32[i] - want)); d > 1e-3 {
			t.Fatalf("hello world: dim %d = %.6f, sentence-transformers %.6f", i, fp32[i], want)
		}
	}
	cfg.Model = "int8"
	model, vocab, lib, name, err = ModelFiles(cfg, "")
	if err != nil {
		t.Skipf("int8 weights not in the model cache: %v", err)
	}
	if c := vec.Cosine(embedWith(t, model, vocab, lib, name), fp32); c < 0.98 {
		t.Fatalf("hello world: cosine(int8, fp32) = %.4f, want ≥ 0.98", c)
	}
}

func embedWith(t *testing.T, model, vocab, lib, name string) []float32 {
	t.Helper()
	e, err := embed.New(embed.Config{ModelPath: model, ModelName: name, VocabPath: vocab, Session: embed.SessionConfig{Library: lib, IntraOpThreads: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	v, err := e.Embed(context.Background(), []string{"hello world"})
	if err != nil {
		t.Fatal(err)
	}
	return v[0]
}
