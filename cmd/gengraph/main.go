// Command gengraph writes a BERT-shaped ONNX encoder with deterministic
// random weights and all-MiniLM-L6-v2's interface (input_ids,
// attention_mask, token_type_ids → last_hidden_state [batch, seq, 384]):
//
//	go run ./cmd/gengraph -size tiny|minilm [-int8] -o file.onnx
//
// "minilm" has the real model's shapes (6 layers, hidden 384, 12 heads, FFN
// 1536, vocab 30522) for throughput benchmarks; its embeddings mean nothing.
// -int8 writes the same weights quantized the way model_quint8_avx2.onnx is
// (uint8 weights, DynamicQuantizeLinear + MatMulInteger; see embed.GraphConfig.Int8).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ownyou/home/pkg/embed"
)

func main() {
	size := flag.String("size", "tiny", "tiny or minilm")
	out := flag.String("o", "", "output .onnx file")
	seed := flag.Uint64("seed", 1, "weight seed")
	int8 := flag.Bool("int8", false, "quantize weights to uint8 as the int8 (avx2) model variant is")
	flag.Parse()
	if err := run(*size, *out, *seed, *int8); err != nil {
		fmt.Fprintln(os.Stderr, "gengraph:", err)
		os.Exit(1)
	}
}

func run(size, out string, seed uint64, int8 bool) error {
	var cfg embed.GraphConfig
	switch size {
	case "tiny":
		cfg = embed.TinyGraph()
	case "minilm":
		cfg = embed.MiniLMGraph()
	default:
		return fmt.Errorf("unknown size %q (want tiny or minilm)", size)
	}
	if out == "" {
		return fmt.Errorf("missing -o file")
	}
	cfg.Seed, cfg.Int8 = seed, int8
	b, err := embed.GenerateGraph(cfg)
	if err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return os.Rename(tmp, out)
}
