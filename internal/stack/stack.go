// Package stack assembles the whole system in one process — the native stack
// behind `make run` and the end-to-end tests: a private Postgres under the data
// dir (unless DATABASE_URL is given), an embedded JetStream server (unless
// OWNYOU_NATS_URL is given), and all five services.
package stack

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/ops"
	"github.com/ownyou/home/pkg/pgserver"
	"github.com/ownyou/home/services/agents"
	"github.com/ownyou/home/services/classifier"
	"github.com/ownyou/home/services/embedder"
	"github.com/ownyou/home/services/gateway"
	"github.com/ownyou/home/services/ingest"
)

// Config is every service's configuration plus the native stack's own knobs.
type Config struct {
	Ingest     ingest.Config
	Embedder   embedder.Config
	Classifier classifier.Config
	Agents     agents.Config
	Gateway    gateway.Config
	Ops        ops.Config
	NATSListen string `env:"OWNYOU_NATS_LISTEN" envDefault:"127.0.0.1:4222" help:"native stack: where the embedded NATS server listens when OWNYOU_NATS_URL is not set"`
	PGPort     int    `env:"OWNYOU_PG_PORT" envDefault:"5433" help:"native stack: port number of the private Postgres (unix socket under the data dir)"`
	PGBin      string `env:"OWNYOU_PG_BIN" envDefault:"/usr/lib/postgresql/15/bin" help:"native stack: PostgreSQL server binaries"`
	PGUser     string `env:"OWNYOU_PG_USER" envDefault:"postgres" help:"native stack: user the private Postgres runs as when started by root"`
	// ExternalNATS is set when OWNYOU_NATS_URL was given explicitly.
	ExternalNATS bool `env:"-"`
}

// Infra is the infrastructure the stack started itself.
type Infra struct {
	pg   *pgserver.Server
	nats *bus.EmbeddedServer
}

// StartInfra starts what cfg does not point elsewhere: the private Postgres and
// the embedded NATS. It fills in the URLs in every service's config.
func StartInfra(ctx context.Context, cfg *Config, log *slog.Logger) (*Infra, error) {
	inf := &Infra{}
	dataDir, err := filepath.Abs(cfg.Gateway.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	common := cfg.Gateway.Common
	common.DataDir = dataDir
	if common.DB.URL == "" {
		log.Info("starting private postgres", "dir", filepath.Join(dataDir, "pg"))
		pg, err := pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(dataDir, "pg"), BinDir: cfg.PGBin, Port: cfg.PGPort, RunAs: cfg.PGUser})
		if err != nil {
			return nil, err
		}
		inf.pg = pg
		if err := pg.CreateDatabase(ctx, "ownyou", ""); err != nil {
			inf.Stop(log)
			return nil, err
		}
		common.DB.URL = pg.URL("ownyou")
	}
	if !cfg.ExternalNATS {
		ns, err := bus.StartEmbedded(filepath.Join(dataDir, "nats"), cfg.NATSListen)
		if err != nil {
			inf.Stop(log)
			return nil, err
		}
		inf.nats = ns
		common.Bus.URL = ns.URL()
		log.Info("embedded nats started", "url", ns.URL())
	}
	cfg.SetCommon(common)
	return inf, nil
}

// SetCommon sets the common block of every service.
func (c *Config) SetCommon(common app.Common) {
	c.Ingest.Common = common
	c.Embedder.Common = common
	c.Classifier.Common = common
	c.Agents.Common = common
	c.Gateway.Common = common
}

// Stop stops the embedded NATS server, then Postgres; call it after the
// services have shut down.
func (inf *Infra) Stop(log *slog.Logger) {
	if inf.nats != nil {
		inf.nats.Shutdown()
		log.Info("embedded nats stopped")
	}
	if inf.pg != nil {
		if err := inf.pg.Stop(); err != nil {
			log.Error("stop postgres", "err", err)
		} else {
			log.Info("private postgres stopped")
		}
	}
}

// OpsBuilder returns the operations service of the native stack: a heartbeat
// for each of the five services, the periodic reconcile and, when
// OWNYOU_BACKUP_DIR is set, scheduled backups.
func OpsBuilder(cfg Config) app.Builder {
	return ops.Builder(cfg.Ops, true, "ingest", "embedder", "classifier", "agents", "gateway")
}

// Builders returns all five services in pipeline order.
func Builders(cfg Config) []app.Builder {
	return []app.Builder{
		ingest.Builder(cfg.Ingest),
		embedder.Builder(cfg.Embedder),
		classifier.Builder(cfg.Classifier),
		agents.Builder(cfg.Agents),
		gateway.Builder(cfg.Gateway),
	}
}
