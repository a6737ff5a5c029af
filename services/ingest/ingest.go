// Package ingest is the ingest service: it turns mail from uploaded files (and,
// through later work, Gmail and IMAP sources) into normalized email records,
// stores each once, and publishes emails.ingested for every new email.
package ingest

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
)

// Config is the ingest service's configuration.
type Config struct {
	app.Common
	Concurrency     int   `env:"OWNYOU_INGEST_CONCURRENCY" envDefault:"2" help:"imports handled at once by this process"`
	MaxMessageBytes int64 `env:"OWNYOU_INGEST_MAX_MESSAGE_BYTES" envDefault:"26214400" help:"larger messages are recorded as errors, not stored"`
}

// Service imports files announced on imports.requested.
type Service struct {
	cfg Config
	db  *store.DB
	bus *bus.Bus
	log *slog.Logger
}

// New builds the ingest service.
func New(cfg Config, d app.Deps) (*Service, error) {
	return &Service{cfg: cfg, db: d.DB, bus: d.Bus, log: d.Log.With("stage", "ingest")}, nil
}

// Builder is the app.Builder of the ingest service.
func Builder(cfg Config) app.Builder {
	return app.Builder{Name: "ingest", Build: func(_ context.Context, d app.Deps) (app.Service, error) { return New(cfg, d) }}
}

// Run consumes import requests until ctx is cancelled, then drains.
func (s *Service) Run(ctx context.Context) error {
	c, err := bus.Consume(ctx, s.bus, bus.ImportsRequested, bus.ConsumeOptions{Durable: bus.ConsumerIngestImports, Concurrency: s.cfg.Concurrency}, s.handleImport)
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	<-ctx.Done()
	c.Stop()
	return nil
}

// progressEvery is how often a running import writes its counters.
const progressEvery = time.Second
