// Package classifier is the classifier service: it consumes emails.embedded, assigns IAB categories, updates the profile and publishes emails.classified. (Skeleton: the backends are wired in by the classifier work; until then it only advances the stage.)
package classifier

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
)

// Config is the classifier service's configuration.
type Config struct {
	app.Common
	Concurrency int `env:"OWNYOU_CLASSIFIER_CONCURRENCY" envDefault:"4" help:"messages handled at once by this process"`
}

// Service is the classifier stage.
type Service struct {
	cfg Config
	db  *store.DB
	bus *bus.Bus
	log *slog.Logger
}

// New builds the classifier service.
func New(cfg Config, d app.Deps) (*Service, error) {
	return &Service{cfg: cfg, db: d.DB, bus: d.Bus, log: d.Log.With("stage", bus.ConsumerClassifier)}, nil
}

// Builder is the app.Builder of the classifier service.
func Builder(cfg Config) app.Builder {
	return app.Builder{Name: "classifier", Build: func(_ context.Context, d app.Deps) (app.Service, error) { return New(cfg, d) }}
}

// Run consumes its stage's subject until ctx is cancelled, then drains.
func (s *Service) Run(ctx context.Context) error {
	c, err := bus.Consume(ctx, s.bus, bus.EmailsEmbedded, bus.ConsumeOptions{Durable: bus.ConsumerClassifier, Concurrency: s.cfg.Concurrency}, s.handle)
	if err != nil {
		return fmt.Errorf("classifier: %w", err)
	}
	<-ctx.Done()
	c.Stop()
	return nil
}

func (s *Service) handle(ctx context.Context, m bus.EmailEmbedded) error {
	if err := s.db.MarkStageDone(ctx, m.EmailID, bus.ConsumerClassifier); err != nil {
		return err
	}
	return bus.Publish(ctx, s.bus, bus.EmailsClassified, m.EmailID, bus.EmailClassified{EmailID: m.EmailID})
}
