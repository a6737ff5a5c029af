package embedder

import "testing"

func TestProcessGoProcs(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		cpus int
		want int
	}{
		{"default on two cores with two intra-op threads: one", Config{Threads: 2}, 2, 1},
		{"set explicitly: as set", Config{Threads: 2, GoProcs: 3}, 2, 3},
		{"eight cores, two intra-op threads: six", Config{Threads: 2}, 8, 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.ProcessGoProcs(tc.cpus); got != tc.want {
				t.Errorf("ProcessGoProcs(%d) = %d, want %d", tc.cpus, got, tc.want)
			}
		})
	}
}
