// Package agents is the agents service: the trigger engine and the mission agents. It consumes emails.classified and turns the profile and the mail into mission cards. (Skeleton: the agents are wired in by the agents work; until then it only advances the stage.)
package agents

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
)

// Config is the agents service's configuration.
type Config struct {
	app.Common
	Concurrency int `env:"OWNYOU_AGENTS_CONCURRENCY" envDefault:"4" help:"messages handled at once by this process"`
}

// Service is the agents stage.
type Service struct {
	cfg Config
	db  *store.DB
	bus *bus.Bus
	log *slog.Logger
}

// New builds the agents service.
func New(cfg Config, d app.Deps) (*Service, error) {
	return &Service{cfg: cfg, db: d.DB, bus: d.Bus, log: d.Log.With("stage", bus.ConsumerAgents)}, nil
}

// Builder is the app.Builder of the agents service.
func Builder(cfg Config) app.Builder {
	return app.Builder{Name: "agents", Build: func(_ context.Context, d app.Deps) (app.Service, error) { return New(cfg, d) }}
}

// Run consumes its stage's subject until ctx is cancelled, then drains.
func (s *Service) Run(ctx context.Context) error {
	c, err := bus.Consume(ctx, s.bus, bus.EmailsClassified, bus.ConsumeOptions{Durable: bus.ConsumerAgents, Concurrency: s.cfg.Concurrency}, s.handle)
	if err != nil {
		return fmt.Errorf("agents: %w", err)
	}
	<-ctx.Done()
	c.Stop()
	return nil
}

func (s *Service) handle(ctx context.Context, m bus.EmailClassified) error {
	if err := s.db.MarkStageDone(ctx, m.EmailID, bus.ConsumerAgents); err != nil {
		return err
	}
	return error(nil)
}
