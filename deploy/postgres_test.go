package deploy_test

import (
	"strings"
	"testing"
)

func TestPostgresRunsTunedForSearchAndTheEnvSizesIt(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want []string
	}{
		{"defaults", nil, []string{"shared_buffers=512MB", "effective_cache_size=1GB", "work_mem=16MB", "maintenance_work_mem=256MB", "random_page_cost=1.1", "jit=off"}},
		{"sized by .env", []string{"OWNYOU_PG_SHARED_BUFFERS=2GB", "OWNYOU_PG_EFFECTIVE_CACHE_SIZE=6GB", "OWNYOU_PG_RANDOM_PAGE_COST=4"},
			[]string{"shared_buffers=2GB", "effective_cache_size=6GB", "random_page_cost=4", "jit=off"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := strings.Join(load(t, tc.env).Services["postgres"].Command, " ")
			for _, w := range tc.want {
				if !strings.Contains(cmd, "-c "+w) {
					t.Errorf("postgres command %q lacks -c %s", cmd, w)
				}
			}
		})
	}
}
