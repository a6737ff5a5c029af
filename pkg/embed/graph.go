package embed

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protowire"
)

// GraphConfig shapes a generated BERT encoder. The generated graph has the
// real all-MiniLM-L6-v2 interface: inputs input_ids, attention_mask,
// token_type_ids (int64 [batch, sequence]) and output last_hidden_state
// (float32 [batch, sequence, Hidden]); its weights are deterministic random
// numbers, so its embeddings carry no meaning — it exists for tests and
// throughput benchmarks where the real weights are unavailable.
type GraphConfig struct {
	Vocab, Hidden, Layers, Heads, FFN, MaxPos int
	// Seed makes weights reproducible.
	Seed uint64
	// Probe, when true, emits only the word-embedding lookup (no position or
	// type embeddings, LayerNorm or layers): last_hidden_state[b,s] =
	// WordEmbeddings[input_ids[b,s]], so pooled outputs can be computed by hand.
	Probe bool
	// WordEmbeddings overrides the random word embedding table (Vocab×Hidden, row-major).
	WordEmbeddings []float32
	// Int8 quantizes the graph the way onnxruntime's dynamic quantization
	// writes all-MiniLM-L6-v2's model_quint8_avx2.onnx (avx2, per tensor):
	// the word embeddings and every dense layer's weights are stored as uint8
	// (symmetric, zero point 128); a dense layer quantizes its input at run
	// time (DynamicQuantizeLinear), multiplies with MatMulInteger and rescales
	// the int32 result, and looked-up embeddings pass DequantizeLinear. The
	// underlying weights are those of the fp32 graph with the same Seed.
	Int8 bool
}

// TinyGraph is a one-layer encoder with MiniLM's vocabulary and output width, for unit tests.
func TinyGraph() GraphConfig {
	return GraphConfig{Vocab: 30522, Hidden: 384, Layers: 1, Heads: 12, FFN: 384, MaxPos: 512, Seed: 1}
}

// MiniLMGraph has all-MiniLM-L6-v2's exact shapes (6 layers, hidden 384, 12
// heads, FFN 1536, vocab 30522), so its throughput matches the real model's.
func MiniLMGraph() GraphConfig {
	return GraphConfig{Vocab: 30522, Hidden: 384, Layers: 6, Heads: 12, FFN: 1536, MaxPos: 512, Seed: 1}
}

// ONNX enum values (onnx.proto).
const (
	onnxFloat = 1
	onnxUint8 = 2
	onnxInt64 = 7

	attrFloat = 1
	attrInt   = 2
	attrInts  = 7
)

// GenerateGraph serializes a BERT-shaped ONNX model (IR 8, opset 17) for cfg.
func GenerateGraph(cfg GraphConfig) ([]byte, error) {
	if cfg.Vocab <= 0 || cfg.Hidden <= 0 || cfg.MaxPos <= 0 {
		return nil, fmt.Errorf("generate graph: vocab, hidden and max positions must be positive")
	}
	if !cfg.Probe && (cfg.Heads <= 0 || cfg.Hidden%cfg.Heads != 0 || cfg.FFN <= 0) {
		return nil, fmt.Errorf("generate graph: hidden %d must be a positive multiple of heads %d, FFN > 0", cfg.Hidden, cfg.Heads)
	}
	if cfg.WordEmbeddings != nil && len(cfg.WordEmbeddings) != cfg.Vocab*cfg.Hidden {
		return nil, fmt.Errorf("generate graph: word embeddings have %d values, want %d", len(cfg.WordEmbeddings), cfg.Vocab*cfg.Hidden)
	}
	g := &graphBuilder{rng: rand.New(rand.NewPCG(cfg.Seed, 0x6f776e796f75)), int8: cfg.Int8}
	H := int64(cfg.Hidden)
	word := cfg.WordEmbeddings
	if word == nil {
		word = g.randn(cfg.Vocab * cfg.Hidden)
	}
	var x string
	if cfg.Int8 {
		q, scale, zp := g.initU8("embeddings.word_embeddings.weight", []int64{int64(cfg.Vocab), H}, word)
		x = g.node("DequantizeLinear", []string{g.node("Gather", []string{q, "input_ids"}, attrI("axis", 0)), scale, zp})
	} else {
		wordT := g.initF32("embeddings.word_embeddings.weight", []int64{int64(cfg.Vocab), H}, word)
		x = g.node("Gather", []string{wordT, "input_ids"}, attrI("axis", 0))
	}
	if !cfg.Probe {
		posT := g.initF32("embeddings.position_embeddings.weight", []int64{int64(cfg.MaxPos), H}, g.randn(cfg.MaxPos*cfg.Hidden))
		typeT := g.initF32("embeddings.token_type_embeddings.weight", []int64{2, H}, g.randn(2*cfg.Hidden))
		shape := g.node("Shape", []string{"input_ids"})
		seqLen := g.node("Slice", []string{shape, g.constI64([]int64{1}), g.constI64([]int64{2}), g.constI64([]int64{0})})
		pos := g.node("Slice", []string{posT, g.constI64([]int64{0}), seqLen, g.constI64([]int64{0})})
		typ := g.node("Gather", []string{typeT, "token_type_ids"}, attrI("axis", 0))
		x = g.node("Add", []string{g.node("Add", []string{x, typ}), pos})
		x = g.layerNorm("embeddings.LayerNorm", x, cfg.Hidden)

		// Additive attention mask [batch,1,1,seq]: 0 where attended, -10000 on padding.
		m := g.node("Unsqueeze", []string{"attention_mask", g.constI64([]int64{1, 2})})
		m = g.node("Cast", []string{m}, attrI("to", onnxFloat))
		m = g.node("Sub", []string{g.constF32(1), m})
		mask := g.node("Mul", []string{m, g.constF32(-10000)})

		heads, dh := int64(cfg.Heads), H/int64(cfg.Heads)
		split := g.constI64([]int64{0, 0, heads, dh})
		merge := g.constI64([]int64{0, 0, H})
		scale := g.constF32(float32(math.Sqrt(float64(dh))))
		for l := 0; l < cfg.Layers; l++ {
			p := fmt.Sprintf("encoder.layer.%d.", l)
			q := g.linear(p+"attention.self.query", x, cfg.Hidden, cfg.Hidden)
			k := g.linear(p+"attention.self.key", x, cfg.Hidden, cfg.Hidden)
			v := g.linear(p+"attention.self.value", x, cfg.Hidden, cfg.Hidden)
			q = g.node("Transpose", []string{g.node("Reshape", []string{q, split})}, attrInts64("perm", 0, 2, 1, 3))
			k = g.node("Transpose", []string{g.node("Reshape", []string{k, split})}, attrInts64("perm", 0, 2, 3, 1))
			v = g.node("Transpose", []string{g.node("Reshape", []string{v, split})}, attrInts64("perm", 0, 2, 1, 3))
			s := g.node("Div", []string{g.node("MatMul", []string{q, k}), scale})
			s = g.node("Add", []string{s, mask})
			probs := g.node("Softmax", []string{s}, attrI("axis", -1))
			ctx := g.node("MatMul", []string{probs, v})
			ctx = g.node("Reshape", []string{g.node("Transpose", []string{ctx}, attrInts64("perm", 0, 2, 1, 3)), merge})
			a := g.linear(p+"attention.output.dense", ctx, cfg.Hidden, cfg.Hidden)
			x = g.layerNorm(p+"attention.output.LayerNorm", g.node("Add", []string{a, x}), cfg.Hidden)
			h := g.linear(p+"intermediate.dense", x, cfg.Hidden, cfg.FFN)
			h = g.gelu(h)
			o := g.linear(p+"output.dense", h, cfg.FFN, cfg.Hidden)
			x = g.layerNorm(p+"output.LayerNorm", g.node("Add", []string{o, x}), cfg.Hidden)
		}
	}
	g.nodes = append(g.nodes, nodeProto("Identity", "last_hidden_state_identity", []string{x}, []string{"last_hidden_state"}))

	var graph []byte
	for _, n := range g.nodes {
		graph = protowire.AppendTag(graph, 1, protowire.BytesType)
		graph = protowire.AppendBytes(graph, n)
	}
	graph = appendString(graph, 2, "ownyou_bert_generated")
	for _, t := range g.inits {
		graph = protowire.AppendTag(graph, 5, protowire.BytesType)
		graph = protowire.AppendBytes(graph, t)
	}
	for _, in := range []string{"input_ids", "attention_mask", "token_type_ids"} {
		graph = appendMsg(graph, 11, valueInfo(in, onnxInt64, "batch", "sequence"))
	}
	graph = appendMsg(graph, 12, valueInfo("last_hidden_state", onnxFloat, "batch", "sequence", cfg.Hidden))

	var model []byte
	model = protowire.AppendTag(model, 1, protowire.VarintType)
	model = protowire.AppendVarint(model, 8) // IR version 8
	model = appendString(model, 2, "ownyou-gengraph")
	model = appendString(model, 3, "1")
	model = appendString(model, 6, fmt.Sprintf("generated BERT-shaped encoder with random weights: %+v", GraphConfig{Vocab: cfg.Vocab, Hidden: cfg.Hidden, Layers: cfg.Layers, Heads: cfg.Heads, FFN: cfg.FFN, MaxPos: cfg.MaxPos, Seed: cfg.Seed, Probe: cfg.Probe, Int8: cfg.Int8}))
	model = appendMsg(model, 7, graph)
	var opset []byte
	opset = appendString(opset, 1, "")
	opset = protowire.AppendTag(opset, 2, protowire.VarintType)
	opset = protowire.AppendVarint(opset, 17)
	model = appendMsg(model, 8, opset)
	return model, nil
}

type graphBuilder struct {
	rng   *rand.Rand
	nodes [][]byte
	inits [][]byte
	n     int
	int8  bool // dense layers and word embeddings quantized (GraphConfig.Int8)
}

// randn draws n values from N(0, 0.02²), BERT's initializer range.
func (g *graphBuilder) randn(n int) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(g.rng.NormFloat64() * 0.02)
	}
	return out
}

func (g *graphBuilder) fresh(prefix string) string {
	g.n++
	return fmt.Sprintf("%s_%d", prefix, g.n)
}

// node appends one node with a fresh output name and returns that name.
func (g *graphBuilder) node(op string, inputs []string, attrs ...[]byte) string {
	out := g.fresh(op)
	g.nodes = append(g.nodes, nodeProto(op, out+"_node", inputs, []string{out}, attrs...))
	return out
}

// nodeOuts appends one node with n fresh outputs and returns their names.
func (g *graphBuilder) nodeOuts(op string, inputs []string, n int, attrs ...[]byte) []string {
	base := g.fresh(op)
	outs := make([]string, n)
	for i := range outs {
		outs[i] = fmt.Sprintf("%s_out%d", base, i)
	}
	g.nodes = append(g.nodes, nodeProto(op, base+"_node", inputs, outs, attrs...))
	return outs
}

func (g *graphBuilder) linear(name, x string, in, out int) string {
	dims, w := []int64{int64(in), int64(out)}, g.randn(in*out)
	if !g.int8 {
		wT := g.initF32(name+".weight", dims, w)
		b := g.initF32(name+".bias", []int64{int64(out)}, make([]float32, out))
		return g.node("Add", []string{g.node("MatMul", []string{x, wT}), b})
	}
	// onnxruntime's dynamic MatMul quantization (QOperator, IntegerOps):
	// y = float(MatMulInteger(xq, wq, xzp, wzp)) · (xscale · wscale).
	wq, wScale, wZP := g.initU8(name+".weight", dims, w)
	b := g.initF32(name+".bias", []int64{int64(out)}, make([]float32, out))
	xq := g.nodeOuts("DynamicQuantizeLinear", []string{x}, 3)
	prod := g.node("Cast", []string{g.node("MatMulInteger", []string{xq[0], wq, xq[2], wZP})}, attrI("to", onnxFloat))
	y := g.node("Mul", []string{prod, g.node("Mul", []string{xq[1], wScale})})
	return g.node("Add", []string{y, b})
}

// initU8 stores w as uint8 with one symmetric scale for the tensor and zero
// point 128 (onnxruntime's QUInt8 symmetric weights), returning the names of
// the quantized tensor, its scale and its zero point.
func (g *graphBuilder) initU8(name string, dims []int64, w []float32) (q, scale, zp string) {
	var absMax float64
	for _, x := range w {
		absMax = max(absMax, math.Abs(float64(x)))
	}
	sc := 2 * absMax / 255
	if sc == 0 {
		sc = 1
	}
	raw := make([]byte, len(w))
	for i, x := range w {
		raw[i] = byte(min(max(math.RoundToEven(float64(x)/sc)+128, 0), 255))
	}
	q, zp = name+"_quantized", name+"_zero_point"
	g.inits = append(g.inits, tensorProto(q, onnxUint8, dims, raw), tensorProto(zp, onnxUint8, nil, []byte{128}))
	return q, g.initF32(name+"_scale", nil, []float32{float32(sc)}), zp
}

func (g *graphBuilder) layerNorm(name, x string, h int) string {
	ones := make([]float32, h)
	for i := range ones {
		ones[i] = 1
	}
	gamma := g.initF32(name+".weight", []int64{int64(h)}, ones)
	beta := g.initF32(name+".bias", []int64{int64(h)}, make([]float32, h))
	return g.node("LayerNormalization", []string{x, gamma, beta}, attrI("axis", -1), attrF("epsilon", 1e-12))
}

// gelu is the exact erf GELU as exported from PyTorch: x·0.5·(1+erf(x/√2)).
func (g *graphBuilder) gelu(x string) string {
	e := g.node("Erf", []string{g.node("Div", []string{x, g.constF32(float32(math.Sqrt2))})})
	return g.node("Mul", []string{g.node("Mul", []string{x, g.node("Add", []string{e, g.constF32(1)})}), g.constF32(0.5)})
}

func (g *graphBuilder) constF32(v float32) string {
	return g.initF32(g.fresh("const_f"), nil, []float32{v})
}

func (g *graphBuilder) constI64(v []int64) string {
	name := g.fresh("const_i")
	var raw []byte
	for _, x := range v {
		raw = binary.LittleEndian.AppendUint64(raw, uint64(x))
	}
	g.inits = append(g.inits, tensorProto(name, onnxInt64, []int64{int64(len(v))}, raw))
	return name
}

func (g *graphBuilder) initF32(name string, dims []int64, data []float32) string {
	raw := make([]byte, 0, 4*len(data))
	for _, f := range data {
		raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(f))
	}
	g.inits = append(g.inits, tensorProto(name, onnxFloat, dims, raw))
	return name
}

func tensorProto(name string, dtype int, dims []int64, raw []byte) []byte {
	var t []byte
	for _, d := range dims {
		t = protowire.AppendTag(t, 1, protowire.VarintType)
		t = protowire.AppendVarint(t, uint64(d))
	}
	t = protowire.AppendTag(t, 2, protowire.VarintType)
	t = protowire.AppendVarint(t, uint64(dtype))
	t = appendString(t, 8, name)
	t = protowire.AppendTag(t, 9, protowire.BytesType)
	return protowire.AppendBytes(t, raw)
}

func nodeProto(op, name string, inputs, outputs []string, attrs ...[]byte) []byte {
	var n []byte
	for _, in := range inputs {
		n = appendString(n, 1, in)
	}
	for _, out := range outputs {
		n = appendString(n, 2, out)
	}
	n = appendString(n, 3, name)
	n = appendString(n, 4, op)
	for _, a := range attrs {
		n = appendMsg(n, 5, a)
	}
	return n
}

func attrI(name string, v int64) []byte {
	a := appendString(nil, 1, name)
	a = protowire.AppendTag(a, 3, protowire.VarintType)
	a = protowire.AppendVarint(a, uint64(v))
	a = protowire.AppendTag(a, 20, protowire.VarintType)
	return protowire.AppendVarint(a, attrInt)
}

func attrF(name string, v float32) []byte {
	a := appendString(nil, 1, name)
	a = protowire.AppendTag(a, 2, protowire.Fixed32Type)
	a = protowire.AppendFixed32(a, math.Float32bits(v))
	a = protowire.AppendTag(a, 20, protowire.VarintType)
	return protowire.AppendVarint(a, attrFloat)
}

func attrInts64(name string, vs ...int64) []byte {
	a := appendString(nil, 1, name)
	for _, v := range vs {
		a = protowire.AppendTag(a, 8, protowire.VarintType)
		a = protowire.AppendVarint(a, uint64(v))
	}
	a = protowire.AppendTag(a, 20, protowire.VarintType)
	return protowire.AppendVarint(a, attrInts)
}

// valueInfo describes a tensor input/output; dims are int (fixed) or string (symbolic).
func valueInfo(name string, elem int, dims ...any) []byte {
	var shape []byte
	for _, d := range dims {
		var dim []byte
		switch d := d.(type) {
		case int:
			dim = protowire.AppendTag(dim, 1, protowire.VarintType)
			dim = protowire.AppendVarint(dim, uint64(d))
		case string:
			dim = appendString(dim, 2, d)
		}
		shape = appendMsg(shape, 1, dim)
	}
	var tensor []byte
	tensor = protowire.AppendTag(tensor, 1, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, uint64(elem))
	tensor = appendMsg(tensor, 2, shape)
	typ := appendMsg(nil, 1, tensor)
	v := appendString(nil, 1, name)
	return appendMsg(v, 2, typ)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMsg(b []byte, num protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

// WriteGraph generates cfg's graph into dir/name and returns its path.
func WriteGraph(dir, name string, cfg GraphConfig) (string, error) {
	b, err := GenerateGraph(cfg)
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return "", fmt.Errorf("write graph: %w", err)
	}
	return p, nil
}
