package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	pgxvec "github.com/pgvector/pgvector-go/pgx"
)

// openBenchDB connects to url (schema already migrated) — TEMPORARY until the backbone's store/pgserver land.
func openBenchDB(ctx context.Context, url string) (*pgxpool.Pool, func(), error) {
	if url == "" {
		return nil, nil, errors.New("search figures need DATABASE_URL")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, nil, fmt.Errorf("bench db: %w", err)
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error { return pgxvec.RegisterTypes(ctx, c) }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	_ = slog.Default()
	return pool, pool.Close, nil
}
