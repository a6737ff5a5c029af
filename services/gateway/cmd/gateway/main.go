// Command gateway runs the gateway service alone, as its own process (one container
// per stage in compose, each scaling its own replicas). The gateway process
// also runs the periodic reconcile and the scheduled backups.
package main

import (
	"context"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/ops"
	"github.com/ownyou/home/services/gateway"
)

func main() { app.Exit(run) }

func run(ctx context.Context, args []string) error {
	var cfg struct {
		gateway.Config
		Ops ops.Config
	}
	return app.Main(ctx, "gateway", args, &cfg, func() (app.Common, []app.Builder) {
		return cfg.Common, []app.Builder{gateway.Builder(cfg.Config), ops.Builder(cfg.Ops, true, "gateway")}
	})
}
