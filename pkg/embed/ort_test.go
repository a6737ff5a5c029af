package embed

import (
	"math"
	"os"
	"sync"
	"testing"

	"github.com/ownyou/home/pkg/models"
)

// testORTLib returns the ONNX Runtime library for tests: $OWNYOU_ORT_LIB or the
// model cache filled by `go run ./cmd/models fetch onnxruntime`.
func testORTLib(t testing.TB) string {
	t.Helper()
	lib := models.ORTLib()
	if _, err := os.Stat(lib); err != nil {
		t.Fatalf("ONNX Runtime library missing (%v): run `go run ./cmd/models fetch onnxruntime` or set %s", err, EnvORTLib)
	}
	return lib
}

var (
	tinyOnce  sync.Once
	tinyModel []byte
	tinyErr   error
)

func tinyGraph(t testing.TB) []byte {
	t.Helper()
	tinyOnce.Do(func() { tinyModel, tinyErr = GenerateGraph(TinyGraph()) })
	if tinyErr != nil {
		t.Fatal(tinyErr)
	}
	return tinyModel
}

func newTestSession(t testing.TB, model []byte) *Session {
	t.Helper()
	s, err := NewSession(SessionConfig{Library: testORTLib(t), IntraOpThreads: 2, InterOpThreads: 1}, model)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestProbeGraphPoolsByHand checks mean pooling over the attention mask and L2
// normalization against values computed by hand: the probe graph's hidden
// state is the word-embedding row of each id.
func TestProbeGraphPoolsByHand(t *testing.T) {
	const vocab, dim = 8, 4
	table := make([]float32, vocab*dim)
	// row i = (i, 1, 0, -i)
	for i := 0; i < vocab; i++ {
		table[i*dim], table[i*dim+1], table[i*dim+3] = float32(i), 1, float32(-i)
	}
	model, err := GenerateGraph(GraphConfig{Vocab: vocab, Hidden: dim, MaxPos: 16, Probe: true, WordEmbeddings: table})
	if err != nil {
		t.Fatal(err)
	}
	s := newTestSession(t, model)
	if s.Dim() != dim {
		t.Fatalf("Dim = %d", s.Dim())
	}
	encs := []Encoding{
		// mean of rows 2 and 4 = (3, 1, 0, -3); norm √19
		{IDs: []int64{2, 4}, AttentionMask: []int64{1, 1}, TypeIDs: []int64{0, 0}},
		// row 3 only; padding (id 0, then 7 masked out) must not count
		{IDs: []int64{3, 7}, AttentionMask: []int64{1, 0}, TypeIDs: []int64{0, 0}},
		// one token: row 0 = (0,1,0,0)
		{IDs: []int64{0}, AttentionMask: []int64{1}, TypeIDs: []int64{0}},
	}
	got, err := s.Embed(PadBatch(encs, 0))
	if err != nil {
		t.Fatal(err)
	}
	r19 := 1 / math.Sqrt(19)
	want := [][]float64{
		{3 * r19, 1 * r19, 0, -3 * r19},
		{3 / math.Sqrt(19), 1 / math.Sqrt(19), 0, -3 / math.Sqrt(19)},
		{0, 1, 0, 0},
	}
	for i := range want {
		for d := range want[i] {
			if math.Abs(float64(got[i][d])-want[i][d]) > 1e-6 {
				t.Fatalf("row %d = %v, want %v", i, got[i], want[i])
			}
		}
	}
}

func TestPaddedBatchEqualsSingle(t *testing.T) {
	tok := loadTokenizer(t, 128)
	s := newTestSession(t, tinyGraph(t))
	texts := []string{
		"hi",
		"Your order #12345 has shipped and will arrive on Tuesday.",
		"Meeting notes: budget review, hiring plan, and the offsite in Lisbon next month — please read before Friday.",
	}
	var encs []Encoding
	for _, tx := range texts {
		encs = append(encs, tok.Encode(tx))
	}
	batch, err := s.Embed(PadBatch(encs, tok.PadID()))
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range encs {
		single, err := s.Embed(PadBatch([]Encoding{e}, tok.PadID()))
		if err != nil {
			t.Fatal(err)
		}
		if len(single[0]) != 384 {
			t.Fatalf("dim = %d", len(single[0]))
		}
		if d := maxAbsDiff(single[0], batch[i]); d > 1e-5 {
			t.Errorf("text %d: batched vs single differ by %g", i, d)
		}
		if n := l2(batch[i]); math.Abs(n-1) > 1e-5 {
			t.Errorf("text %d: norm %g", i, n)
		}
	}
	if d := maxAbsDiff(batch[0], batch[1]); d < 1e-3 {
		t.Errorf("different texts embed identically (diff %g): graph ignores its input", d)
	}
}

func TestGeneratedGraphIsDeterministic(t *testing.T) {
	cfg := TinyGraph()
	cfg.Layers, cfg.Vocab = 1, 100
	a, err := GenerateGraph(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := GenerateGraph(cfg)
	if string(a) != string(b) {
		t.Fatal("same config produced different bytes")
	}
	cfg.Seed++
	c, _ := GenerateGraph(cfg)
	if string(a) == string(c) {
		t.Fatal("different seeds produced identical graphs")
	}
}

func TestNewSessionRejectsBadModels(t *testing.T) {
	lib := testORTLib(t)
	probeNoMask := []byte("definitely not a protobuf model")
	tests := []struct {
		name  string
		model []byte
	}{
		{"garbage bytes", probeNoMask},
		{"empty file", nil},
		{"truncated model", tinyGraph(t)[:1000]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSession(SessionConfig{Library: lib}, tc.model)
			if err == nil {
				_ = s.Close()
				t.Fatal("bad model accepted")
			}
			if !errorsIs(err, ErrModel) {
				t.Fatalf("err = %v, want ErrModel", err)
			}
		})
	}
}

func TestNewSessionMissingLibraryNamesFix(t *testing.T) {
	_, err := NewSession(SessionConfig{Library: "/nonexistent/libonnxruntime.so"}, tinyGraph(t))
	if err == nil || !errorsIs(err, ErrRuntime) {
		t.Fatalf("err = %v, want ErrRuntime", err)
	}
}

func maxAbsDiff(a, b []float32) float64 {
	var m float64
	for i := range a {
		m = math.Max(m, math.Abs(float64(a[i]-b[i])))
	}
	return m
}

func l2(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func TestGoProcsLeavesTheIntraOpThreadsTheirCores(t *testing.T) {
	cases := []struct {
		name        string
		cpus, intra int
		want        int
	}{
		{"two cores, two intra-op threads: one Go thread", 2, 2, 1},
		{"four cores, two intra-op threads: two", 4, 2, 2},
		{"more intra-op threads than cores: still one", 2, 4, 1},
		{"ORT's default (one per core): one", 8, 0, 1},
		{"one core: one", 1, 1, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := GoProcs(tc.cpus, tc.intra); got != tc.want {
				t.Errorf("GoProcs(%d, %d) = %d, want %d", tc.cpus, tc.intra, got, tc.want)
			}
		})
	}
}
