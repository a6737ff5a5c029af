package search

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ownyou/home/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// testPool is a fresh migrated database (all migrations, 00200 included).
func testPool(t testing.TB) *pgxpool.Pool { return testkit.DB(t).Pool }
