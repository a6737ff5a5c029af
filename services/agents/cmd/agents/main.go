// Command agents runs the agents service alone, as its own process (one container
// per stage in compose, each scaling its own replicas).
package main

import (
	"context"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/ops"
	"github.com/ownyou/home/services/agents"
)

func main() { app.Exit(run) }

func run(ctx context.Context, args []string) error {
	var cfg struct {
		agents.Config
		Ops ops.Config
	}
	return app.Main(ctx, "agents", args, &cfg, func() (app.Common, []app.Builder) {
		return cfg.Common, []app.Builder{agents.Builder(cfg.Config), ops.Builder(cfg.Ops, false, "agents")}
	})
}
