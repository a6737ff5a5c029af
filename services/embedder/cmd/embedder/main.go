// Command embedder runs the embedder service alone, as its own process (one container
// per stage in compose, each scaling its own replicas).
package main

import (
	"context"
	"os"
	"runtime"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/ops"
	"github.com/ownyou/home/services/embedder"
)

func main() { app.Exit(run) }

func run(ctx context.Context, args []string) error {
	var cfg struct {
		embedder.Config
		Ops ops.Config
	}
	return app.Main(ctx, "embedder", args, &cfg, func() (app.Common, []app.Builder) {
		// This process's work is ONNX Runtime's: leave its intra-op
		// threads their cores (an explicit GOMAXPROCS is the operator's).
		if os.Getenv("GOMAXPROCS") == "" {
			runtime.GOMAXPROCS(cfg.ProcessGoProcs(runtime.GOMAXPROCS(0)))
		}
		return cfg.Common, []app.Builder{embedder.Builder(cfg.Config), ops.Builder(cfg.Ops, false, "embedder")}
	})
}
