// Package store is the system's state in PostgreSQL with pgvector: the
// connection pool (pgvector types registered), the schema migrations embedded
// in the binary and applied at start, and the queries services share. Every
// write is an idempotent upsert keyed by a deterministic id, so a redelivered
// message changes nothing.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver goose uses
	"github.com/klauspost/compress/zstd"
	pgxvec "github.com/pgvector/pgvector-go/pgx"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned when a looked-up row does not exist.
var ErrNotFound = errors.New("not found")

// Config is the database part of a service's configuration.
type Config struct {
	URL      string `env:"DATABASE_URL" help:"PostgreSQL URL (with pgvector); the native stack starts a private server under the data dir when empty" secret:"true"`
	MaxConns int32  `env:"OWNYOU_DB_MAX_CONNS" envDefault:"10" help:"connections in this process's pool"`
}

// DB is the connection pool plus the shared queries. It is safe for concurrent use.
type DB struct {
	Pool *pgxpool.Pool
	log  *slog.Logger
	zenc *zstd.Encoder
	zdec *zstd.Decoder
}

// Open applies pending migrations (under a Postgres advisory lock, so replicas
// starting together migrate once) and opens the pool.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*DB, error) {
	if cfg.URL == "" {
		return nil, errors.New("open database: DATABASE_URL is empty")
	}
	if log == nil {
		log = slog.Default()
	}
	if err := Migrate(ctx, cfg.URL, log); err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if cfg.MaxConns > 0 {
		pcfg.MaxConns = cfg.MaxConns
	}
	pcfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error { return pgxvec.RegisterTypes(ctx, c) }
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("zstd: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return &DB{Pool: pool, log: log, zenc: enc, zdec: dec}, nil
}

// migrateProgressEvery is how often Migrate says it is still running.
const migrateProgressEvery = 15 * time.Second

// Migrate applies every pending migration in migrations/. Migrations may be
// applied out of order, so a later release can add one below the newest.
func Migrate(ctx context.Context, url string, log *slog.Logger) error {
	sqlDB, err := sql.Open("pgx", url)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer sqlDB.Close()
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, sub,
		goose.WithSessionLocker(locker), goose.WithAllowOutofOrder(true), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	// Some migrations rebuild an index over every mail (minutes on a large
	// mailbox, with nothing else to show): say what is pending first, and
	// that it is still going while it runs.
	statuses, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("migrate: status: %w", err)
	}
	var pending []string
	for _, st := range statuses {
		if st.State == goose.StatePending {
			pending = append(pending, filepath.Base(st.Source.Path))
		}
	}
	if len(pending) == 0 {
		return nil
	}
	log.InfoContext(ctx, "applying migrations; the service starts when they are done", "pending", pending)
	stop := make(chan struct{})
	defer close(stop)
	go func(start time.Time) {
		t := time.NewTicker(migrateProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				log.InfoContext(ctx, "migrations still running (rebuilding an index over every mail takes minutes on a large mailbox)", "elapsed", time.Since(start).Round(time.Second))
			}
		}
	}(time.Now())
	results, err := p.Up(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, r := range results {
		log.InfoContext(ctx, "migration applied", "version", r.Source.Version, "file", r.Source.Path, "took", r.Duration.Round(time.Millisecond))
	}
	return nil
}

// Close closes the pool; call it after every consumer has stopped.
func (db *DB) Close() {
	db.Pool.Close()
}

// Ready checks the database answers.
func (db *DB) Ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := db.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// Compress returns raw zstd-compressed, for storing a raw message.
func (db *DB) Compress(raw []byte) []byte { return db.zenc.EncodeAll(raw, nil) }

// Decompress reverses Compress.
func (db *DB) Decompress(z []byte) ([]byte, error) {
	out, err := db.zdec.DecodeAll(z, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	return out, nil
}
