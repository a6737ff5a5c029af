// Command ownyou runs the whole OwnYou Home system natively in one process:
// a private Postgres under the data dir, an embedded JetStream server and all
// five services. `make run` starts it; Ctrl-C stops everything cleanly and the
// next start continues with the same data.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/ownyou/home/internal/stack"
	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/config"
	"github.com/ownyou/home/pkg/telemetry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, config.ErrHelp) {
		fmt.Fprintln(os.Stderr, "ownyou:", err)
	}
	os.Exit(app.ExitCode(err))
}

func run(ctx context.Context, args []string) error {
	var cfg stack.Config
	if err := config.Load(&cfg, "ownyou", args, os.Stdout); err != nil {
		return err
	}
	_, cfg.ExternalNATS = os.LookupEnv("OWNYOU_NATS_URL")
	if _, set := os.LookupEnv("OWNYOU_EMBED_WAIT_FOR_MODEL"); !set {
		// Natively, a missing model (no `make models` yet) must not stop mail
		// import: the embedder waits, not ready, and says why.
		cfg.Embedder.WaitForModel = true
	}
	log, err := telemetry.NewLogger(os.Stderr, cfg.Gateway.Telemetry)
	if err != nil {
		return err
	}
	log.Info("starting native stack", config.LogAttrs(cfg)...)
	infra, err := stack.StartInfra(ctx, &cfg, log)
	if err != nil {
		return err
	}
	err = app.Run(ctx, "ownyou", cfg.Gateway.Common, log, append(stack.Builders(cfg), stack.OpsBuilder(cfg))...)
	infra.Stop(log)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("stopped cleanly")
	return nil
}
