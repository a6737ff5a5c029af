// Command agents runs the agents service alone, as its own process (one container
// per stage in compose, each scaling its own replicas).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/ops"
	"github.com/ownyou/home/services/agents"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	os.Exit(app.ExitCode(err))
}

func run(ctx context.Context, args []string) error {
	var cfg struct {
		agents.Config
		Ops ops.Config
	}
	return app.Main(ctx, "agents", args, &cfg, func() (app.Common, []app.Builder) {
		return cfg.Common, []app.Builder{agents.Builder(cfg.Config), ops.Builder(cfg.Ops, false, "agents")}
	})
}
