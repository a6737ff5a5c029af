// Command ingest runs the ingest service alone, as its own process (one container
// per stage in compose, each scaling its own replicas).
package main

import (
	"context"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/ops"
	"github.com/ownyou/home/services/ingest"
)

func main() { app.Exit(run) }

func run(ctx context.Context, args []string) error {
	var cfg struct {
		ingest.Config
		Ops ops.Config
	}
	return app.Main(ctx, "ingest", args, &cfg, func() (app.Common, []app.Builder) {
		return cfg.Common, []app.Builder{ingest.Builder(cfg.Config), ops.Builder(cfg.Ops, false, "ingest")}
	})
}
