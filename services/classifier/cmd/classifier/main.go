// Command classifier runs the classifier service alone, as its own process (one container
// per stage in compose, each scaling its own replicas).
package main

import (
	"context"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/ops"
	"github.com/ownyou/home/services/classifier"
)

func main() { app.Exit(run) }

func run(ctx context.Context, args []string) error {
	var cfg struct {
		classifier.Config
		Ops ops.Config
	}
	return app.Main(ctx, "classifier", args, &cfg, func() (app.Common, []app.Builder) {
		return cfg.Common, []app.Builder{classifier.Builder(cfg.Config), ops.Builder(cfg.Ops, false, "classifier")}
	})
}
