package vec

import (
	"math"
	"testing"
)

func TestNormalize(t *testing.T) {
	cases := []struct {
		name string
		in   []float32
		want []float32
	}{
		{"a 3-4 vector becomes 0.6-0.8", []float32{3, 4}, []float32{0.6, 0.8}},
		{"a zero vector stays zero", []float32{0, 0}, []float32{0, 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			Normalize(tc.in)
			for i := range tc.want {
				if math.Abs(float64(tc.in[i]-tc.want[i])) > 1e-6 {
					t.Fatalf("got %v, want %v", tc.in, tc.want)
				}
			}
		})
	}
}

func TestCosine(t *testing.T) {
	cases := []struct {
		name string
		a, b []float32
		want float64
	}{
		{"identical unit vectors give 1", []float32{0.6, 0.8}, []float32{0.6, 0.8}, 1},
		{"orthogonal vectors give 0", []float32{1, 0}, []float32{0, 1}, 0},
		{"different lengths give 0", []float32{1, 0}, []float32{1}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Cosine(tc.a, tc.b); math.Abs(got-tc.want) > 1e-6 {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
