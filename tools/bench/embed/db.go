package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	pgxvec "github.com/pgvector/pgvector-go/pgx"

	"github.com/ownyou/home/pkg/pgserver"
	"github.com/ownyou/home/pkg/store"
)

// openBenchDB connects to url, or — when url is empty — to a private Postgres
// kept under $OWNYOU_DATA_DIR/bench/search-pg, so the 100k-email corpus is
// loaded once and reused by later runs. Migrations are applied either way.
func openBenchDB(ctx context.Context, url string) (*pgxpool.Pool, func(), error) {
	stop := func() {}
	if url == "" {
		dataDir := os.Getenv("OWNYOU_DATA_DIR")
		if dataDir == "" {
			dataDir = ".data"
		}
		dir := filepath.Join(dataDir, "bench", "search-pg")
		// pgserver creates a missing dir 0700 and then requires o+x on it when
		// run as root; create it 0755 first (as testkit does).
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("bench postgres: %w", err)
		}
		// The settings the native stack runs with (pgserver.Tuned): on a
		// machine with ≥ 4 GB a 1 GB buffer cache holds the HNSW index
		// (≈210 MB at 100k emails, half precision) and the hot heap.
		srv, err := pgserver.Start(ctx, pgserver.Options{Dir: dir, Port: 5499})
		if err != nil {
			return nil, nil, fmt.Errorf("bench postgres: %w", err)
		}
		stop = func() { _ = srv.Stop() }
		if err := srv.CreateDatabase(ctx, "bench", ""); err != nil {
			stop()
			return nil, nil, err
		}
		url = srv.URL("bench")
	}
	if err := store.Migrate(ctx, url, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		stop()
		return nil, nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("bench db: %w", err)
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error { return pgxvec.RegisterTypes(ctx, c) }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		stop()
		return nil, nil, err
	}
	return pool, func() { pool.Close(); stop() }, nil
}
