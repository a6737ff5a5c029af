package ops

import (
	"slices"
	"testing"
)

func TestSplitPassword(t *testing.T) {
	tests := []struct {
		name, in, wantDSN string
		wantEnv           []string
	}{
		{"url password moves to PGPASSWORD", "postgres://ownyou:s3cr%40t@postgres:5432/ownyou?sslmode=disable", "postgres://ownyou@postgres:5432/ownyou?sslmode=disable", []string{"PGPASSWORD=s3cr@t"}},
		{"url without password is unchanged", "postgres://postgres@/db?host=%2Ftmp%2Frun&port=5432", "postgres://postgres@/db?host=%2Ftmp%2Frun&port=5432", nil},
		{"keyword dsn is unchanged", "host=/tmp dbname=x", "host=/tmp dbname=x", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dsn, env := splitPassword(tt.in)
			if dsn != tt.wantDSN || !slices.Equal(env, tt.wantEnv) {
				t.Errorf("splitPassword(%q) = %q, %v; want %q, %v", tt.in, dsn, env, tt.wantDSN, tt.wantEnv)
			}
		})
	}
}
