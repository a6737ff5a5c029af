// Package ops keeps a running OwnYou Home deployment observable and repairable:
// a heartbeat of every worker process in a NATS KV bucket, a Prometheus
// collector of each stage's queue depth and consumer lag, a pipeline status
// that flags stalled stages and sources, a reconcile job that re-publishes
// emails missing a stage, and scheduled pg_dump backups with retention and a
// tested restore.
//
// Every part is built from the process's app.Deps; Builder wires the parts a
// process should run (heartbeat in every process; reconcile and backups where
// Config enables them) as one app.Service.
package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ownyou/home/pkg/app"
)

// Config is the operations part of a process's configuration.
type Config struct {
	HeartbeatInterval time.Duration `env:"OWNYOU_HEARTBEAT_INTERVAL" envDefault:"10s" help:"how often each worker records that it is alive in the NATS KV bucket"`
	StallAfter        time.Duration `env:"OWNYOU_STALL_AFTER" envDefault:"2m" help:"a worker, stage or syncing source silent this long is flagged as stalled"`
	ReconcileInterval time.Duration `env:"OWNYOU_RECONCILE_INTERVAL" envDefault:"5m" help:"how often emails missing a stage are re-published (0 disables the periodic run)"`
	ReconcileBatch    int           `env:"OWNYOU_RECONCILE_BATCH" envDefault:"500" help:"most emails re-published per stage in one reconcile run"`
	ReconcileGrace    time.Duration `env:"OWNYOU_RECONCILE_GRACE" envDefault:"15m" help:"an email is only reconciled once its previous stage is older than this"`
	BackupDir         string        `env:"OWNYOU_BACKUP_DIR" help:"where pg_dump backups are written; empty disables scheduled backups"`
	BackupInterval    time.Duration `env:"OWNYOU_BACKUP_INTERVAL" envDefault:"24h" help:"time between scheduled backups"`
	BackupKeep        int           `env:"OWNYOU_BACKUP_KEEP" envDefault:"7" help:"number of backups kept; older ones are deleted"`
	PGBin             string        `env:"OWNYOU_PG_BIN" envDefault:"/usr/lib/postgresql/15/bin" help:"directory of pg_dump and pg_restore"`
}

// Builder returns the operations service of a process running the given
// services (one name for a service binary, all five for the native stack): it
// beats one heartbeat per service, registers the queue-depth collector on the process's metrics,
// and, when runJobs is true, runs the periodic reconcile and the scheduled
// backups. Exactly one process of a deployment should pass runJobs (the
// gateway); a second one is harmless (reconcile holds an advisory lock and is
// idempotent) but makes extra backups.
func Builder(cfg Config, runJobs bool, services ...string) app.Builder {
	return app.Builder{Name: "ops", Build: func(ctx context.Context, d app.Deps) (app.Service, error) {
		return New(cfg, runJobs, d, services...)
	}}
}

// Service runs the operations parts of one process.
type Service struct {
	Heartbeats []*Heartbeat
	Reconcile  *Reconciler
	Backups    *Backups // nil unless backups are enabled
	runJobs    bool
	cfg        Config
	log        *slog.Logger
}

// New builds the operations service from the process's dependencies.
func New(cfg Config, runJobs bool, d app.Deps, services ...string) (*Service, error) {
	if len(services) == 0 {
		return nil, errors.New("ops: no service names for the heartbeat")
	}
	if d.Bus == nil || d.DB == nil {
		return nil, errors.New("ops: needs the bus and the database")
	}
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	var inflight func() int
	if d.Metrics != nil {
		inflight = InFlightFrom(d.Metrics)
	}
	var hbs []*Heartbeat
	for _, name := range services {
		hb, err := NewHeartbeat(d.Bus, HeartbeatOptions{Service: name, Interval: cfg.HeartbeatInterval, InFlight: inflight, Log: log})
		if err != nil {
			return nil, err
		}
		hbs = append(hbs, hb)
	}
	if d.Metrics != nil {
		if err := d.Metrics.Register(NewQueueCollector(d.Bus)); err != nil {
			return nil, fmt.Errorf("ops: register queue collector: %w", err)
		}
	}
	s := &Service{
		Heartbeats: hbs,
		Reconcile:  NewReconciler(d.DB, d.Bus, ReconcileOptions{Batch: cfg.ReconcileBatch, Grace: cfg.ReconcileGrace, Log: log}),
		runJobs:    runJobs,
		cfg:        cfg,
		log:        log,
	}
	if cfg.BackupDir != "" {
		s.Backups = &Backups{URL: d.Common.DB.URL, Dir: cfg.BackupDir, Keep: cfg.BackupKeep, PGBin: cfg.PGBin, Log: log}
	}
	return s, nil
}

// Run beats the heartbeat and runs the periodic jobs until ctx is cancelled.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, hb := range s.Heartbeats {
		g.Go(func() error { return hb.Run(ctx) })
	}
	if s.runJobs && s.cfg.ReconcileInterval > 0 {
		g.Go(func() error { s.Reconcile.RunEvery(ctx, s.cfg.ReconcileInterval); return nil })
	}
	if s.runJobs && s.Backups != nil && s.cfg.BackupInterval > 0 {
		g.Go(func() error { s.Backups.RunEvery(ctx, s.cfg.BackupInterval); return nil })
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
