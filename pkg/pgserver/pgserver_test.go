package pgserver_test

import (
	"context"
	"testing"

	"github.com/ownyou/home/pkg/pgserver"
	"github.com/ownyou/home/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func TestTunedSizesTheBufferCacheByMemory(t *testing.T) {
	const gb = 1 << 30
	tests := []struct {
		name             string
		ram              int64
		shared, cache    string
		maintenance, jit string
	}{
		{"small NAS keeps the 128 MB floor", gb / 4, "128MB", "128MB", "64MB", "off"},
		{"2 GB NAS gets a quarter", 2 * gb, "512MB", "1024MB", "128MB", "off"},
		{"big machine is capped at 1 GB", 32 * gb, "1024MB", "16384MB", "512MB", "off"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := pgserver.Tuned(tc.ram)
			if s["shared_buffers"] != tc.shared || s["effective_cache_size"] != tc.cache || s["maintenance_work_mem"] != tc.maintenance || s["jit"] != tc.jit {
				t.Fatalf("Tuned(%d) = %v", tc.ram, s)
			}
		})
	}
}

func TestStartedServerRunsWithTunedAndGivenSettings(t *testing.T) {
	db := testkit.DB(t)
	want := map[string]string{
		"jit":              "off",   // from Tuned
		"random_page_cost": "1.1",   // from Tuned
		"shared_buffers":   "128MB", // testkit's Settings override Tuned
		"fsync":            "off",   // testkit's Settings
		"work_mem":         "16MB",  // from Tuned
	}
	for name, v := range want {
		var got string
		if err := db.Pool.QueryRow(context.Background(), "SELECT current_setting($1)", name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != v {
			t.Errorf("%s = %s, want %s", name, got, v)
		}
	}
}
