// Package vec holds the small float32 vector operations the embedders and the
// classifier share. Functions are pure and safe for concurrent use.
package vec

import "math"

// Normalize scales v to unit length in place; a zero vector stays zero.
func Normalize(v []float32) {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	if n == 0 {
		return
	}
	inv := float32(1 / math.Sqrt(n))
	for i := range v {
		v[i] *= inv
	}
}

// Cosine returns the dot product of a and b, which is their cosine when both
// are unit vectors (as every embedder returns); vectors of different lengths
// give 0.
func Cosine(a, b []float32) float64 {
	if len(a) != len(b) {
		return 0
	}
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}
