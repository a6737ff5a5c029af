// Command opsctl runs the operations jobs by hand against a deployment:
//
//	opsctl backup              # pg_dump now into OWNYOU_BACKUP_DIR
//	opsctl restore FILE|latest # replace the database with a backup (stop the services first)
//	opsctl list                # list the backups
//	opsctl reconcile           # re-publish emails missing a stage, once
//	opsctl status              # workers alive, stage queues, stalled stages and sources (JSON)
//
// It reads the same environment as the services (DATABASE_URL, OWNYOU_NATS_URL,
// OWNYOU_BACKUP_DIR, …; see --help). In compose:
// docker compose -f deploy/compose.yaml run --rm gateway opsctl backup
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/config"
	"github.com/ownyou/home/pkg/ops"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/telemetry"
)

// Config is what opsctl reads from the environment.
type Config struct {
	DB        store.Config
	Bus       bus.Config
	Ops       ops.Config
	Telemetry telemetry.Config
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil && !errors.Is(err, config.ErrHelp) {
		fmt.Fprintln(os.Stderr, "opsctl:", err)
		os.Exit(1)
	}
}

const usage = "usage: opsctl backup | restore FILE|latest | list | reconcile | status"

func run(ctx context.Context, args []string, out io.Writer) error {
	var cfg Config
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, rest := args[0], args[1:]
	if cmd == "-h" || cmd == "--help" || cmd == "help" {
		fmt.Fprintln(out, usage)
		fmt.Fprintln(out)
		config.Usage(out, "opsctl", &cfg)
		return config.ErrHelp
	}
	var file string
	if cmd == "restore" {
		if len(rest) != 1 {
			return errors.New("usage: opsctl restore FILE|latest")
		}
		file, rest = rest[0], nil
	}
	if err := config.Load(&cfg, "opsctl", rest, out); err != nil {
		return err
	}
	log, err := telemetry.NewLogger(os.Stderr, cfg.Telemetry)
	if err != nil {
		return err
	}
	backups := &ops.Backups{URL: cfg.DB.URL, Dir: cfg.Ops.BackupDir, Keep: cfg.Ops.BackupKeep, PGBin: cfg.Ops.PGBin, Log: log}
	switch cmd {
	case "backup":
		f, err := backups.Backup(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, f)
		return nil
	case "list":
		all, err := backups.List()
		if err != nil {
			return err
		}
		for _, f := range all {
			fmt.Fprintln(out, f)
		}
		return nil
	case "restore":
		if file == "latest" {
			if file, err = backups.Latest(); err != nil {
				return err
			}
		}
		if err := backups.Restore(ctx, file); err != nil {
			return err
		}
		fmt.Fprintln(out, "restored", file)
		return nil
	case "reconcile", "status":
		return withInfra(ctx, cfg, log, func(db *store.DB, b *bus.Bus) error {
			var v any
			var err error
			if cmd == "reconcile" {
				v, err = ops.NewReconciler(db, b, ops.ReconcileOptions{Batch: cfg.Ops.ReconcileBatch, Grace: cfg.Ops.ReconcileGrace, Log: log}).Once(ctx)
			} else {
				v, err = ops.Snapshot(ctx, db, b, cfg.Ops.StallAfter, time.Now())
			}
			if err != nil {
				return err
			}
			enc := json.NewEncoder(out)
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		})
	default:
		return fmt.Errorf("unknown command %q; %s", cmd, usage)
	}
}

func withInfra(ctx context.Context, cfg Config, log *slog.Logger, fn func(*store.DB, *bus.Bus) error) error {
	db, err := store.Open(ctx, cfg.DB, log)
	if err != nil {
		return err
	}
	defer db.Close()
	b, err := bus.Connect(ctx, cfg.Bus, bus.Options{Log: log, DeadLetter: db, Name: "opsctl"})
	if err != nil {
		return err
	}
	defer func() { _ = b.Drain() }()
	return fn(db, b)
}
