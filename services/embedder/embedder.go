// Package embedder is the embedder service: it consumes emails.ingested, stores chunk vectors of each email in pgvector and publishes emails.embedded. (Skeleton: the ONNX model is wired in by the embedder work; until then it only advances the stage.)
package embedder

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
)

// Config is the embedder service's configuration.
type Config struct {
	app.Common
	Concurrency int `env:"OWNYOU_EMBEDDER_CONCURRENCY" envDefault:"4" help:"messages handled at once by this process"`
}

// Service is the embedder stage.
type Service struct {
	cfg Config
	db  *store.DB
	bus *bus.Bus
	log *slog.Logger
}

// New builds the embedder service.
func New(cfg Config, d app.Deps) (*Service, error) {
	return &Service{cfg: cfg, db: d.DB, bus: d.Bus, log: d.Log.With("stage", bus.ConsumerEmbedder)}, nil
}

// Builder is the app.Builder of the embedder service.
func Builder(cfg Config) app.Builder {
	return app.Builder{Name: "embedder", Build: func(_ context.Context, d app.Deps) (app.Service, error) { return New(cfg, d) }}
}

// Run consumes its stage's subject until ctx is cancelled, then drains.
func (s *Service) Run(ctx context.Context) error {
	c, err := bus.Consume(ctx, s.bus, bus.EmailsIngested, bus.ConsumeOptions{Durable: bus.ConsumerEmbedder, Concurrency: s.cfg.Concurrency}, s.handle)
	if err != nil {
		return fmt.Errorf("embedder: %w", err)
	}
	<-ctx.Done()
	c.Stop()
	return nil
}

func (s *Service) handle(ctx context.Context, m bus.EmailIngested) error {
	if err := s.db.MarkStageDone(ctx, m.EmailID, bus.ConsumerEmbedder); err != nil {
		return err
	}
	return bus.Publish(ctx, s.bus, bus.EmailsEmbedded, m.EmailID, bus.EmailEmbedded{EmailID: m.EmailID})
}
