package embed

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ownyou/home/pkg/vec"
)

// TestInt8GraphRunsAndMatchesFP32 loads the int8-quantized generated graph
// (uint8 weights, DynamicQuantizeLinear/MatMulInteger/DequantizeLinear, as in
// model_quint8_avx2.onnx) through ONNX Runtime and checks each embedding
// stays close to the fp32 graph built from the same weights.
func TestInt8GraphRunsAndMatchesFP32(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  GraphConfig
	}{
		{"one layer", TinyGraph()},
		{"two layers, full FFN width", GraphConfig{Vocab: 30522, Hidden: 384, Layers: 2, Heads: 12, FFN: 1536, MaxPos: 512, Seed: 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp32, err := GenerateGraph(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			q := tc.cfg
			q.Int8 = true
			int8, err := GenerateGraph(q)
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range []string{"DynamicQuantizeLinear", "MatMulInteger", "DequantizeLinear"} {
				if !bytes.Contains(int8, []byte(op)) {
					t.Fatalf("int8 graph has no %s node", op)
				}
			}
			// The word embeddings dominate the file: stored as uint8 they take a quarter.
			if len(int8)*3 > len(fp32) {
				t.Fatalf("int8 graph is %d bytes, fp32 %d: weights not stored quantized", len(int8), len(fp32))
			}
			texts := []string{"quarterly invoice attached", "Flight to Lisbon confirmed for Friday", "your package shipped — track it here",
				"weekly newsletter: cooking with seasonal vegetables and a long tail of other words to fill the window", "hi"}
			want := embedGraph(t, fp32, texts)
			got := embedGraph(t, int8, texts)
			for i := range texts {
				if c := vec.Cosine(got[i], want[i]); c < 0.99 {
					t.Errorf("%q: cosine(int8, fp32) = %.4f, want > 0.99", texts[i], c)
				}
				if c := vec.Cosine(got[i], want[(i+1)%len(texts)]); c > 0.999 {
					t.Errorf("%q: int8 embedding equals another text's (%.4f): graph ignores its input", texts[i], c)
				}
			}
		})
	}
}

func embedGraph(t *testing.T, graph []byte, texts []string) [][]float32 {
	t.Helper()
	p := filepath.Join(t.TempDir(), "graph.onnx")
	if err := os.WriteFile(p, graph, 0o644); err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{ModelPath: p, ModelName: "g", VocabPath: sharedVocab(t), Session: SessionConfig{Library: testORTLib(t), IntraOpThreads: 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	out, err := e.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
