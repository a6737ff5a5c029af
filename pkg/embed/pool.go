package embed

import "math"

// MeanPoolNormalize averages hidden [rows, seq, dim] over positions whose
// mask is 1 and L2-normalizes each mean (sentence-transformers' Pooling +
// Normalize: the mask count is clamped at 1e-9 and the norm at 1e-12).
// Accumulation is in float64 so results do not depend on padding length.
func MeanPoolNormalize(hidden []float32, mask []int64, rows, seq, dim int) [][]float32 {
	out := make([][]float32, rows)
	acc := make([]float64, dim)
	for r := 0; r < rows; r++ {
		clear(acc)
		var n float64
		for s := 0; s < seq; s++ {
			if mask[r*seq+s] == 0 {
				continue
			}
			n++
			h := hidden[(r*seq+s)*dim : (r*seq+s+1)*dim]
			for d, v := range h {
				acc[d] += float64(v)
			}
		}
		n = math.Max(n, 1e-9)
		var norm float64
		for d := range acc {
			acc[d] /= n
			norm += acc[d] * acc[d]
		}
		norm = math.Max(math.Sqrt(norm), 1e-12)
		v := make([]float32, dim)
		for d := range acc {
			v[d] = float32(acc[d] / norm)
		}
		out[r] = v
	}
	return out
}
