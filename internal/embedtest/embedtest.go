// Package embedtest runs the real embedder service for other services'
// tests: its real code on the generated tiny BERT-shaped graph (no weights
// in tests), answering embed.request on a test bus.
package embedtest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/embed"
	"github.com/ownyou/home/pkg/embedclient"
	"github.com/ownyou/home/pkg/models"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
	"github.com/ownyou/home/services/embedder"
)

// Start runs the embedder service on db and b until the test ends, waits
// until it answers embed.request and returns its model id.
func Start(t testing.TB, db *store.DB, b *bus.Bus) (model string) {
	t.Helper()
	graphPath, err := embed.WriteGraph(t.TempDir(), "tiny.onnx", embed.TinyGraph())
	if err != nil {
		t.Fatal(err)
	}
	cfg := embedder.Config{
		Common: app.Common{DataDir: t.TempDir()},
		Model:  graphPath, Vocab: filepath.Join(testkit.SharedDir(t), "models", "all-MiniLM-L6-v2", "vocab.txt"), ORTLib: models.ORTLib(),
		Threads: 2, InterThreads: 1, MaxTokens: 32, Overlap: 4, MaxChunks: 4, MaxBatch: 16, BatchWait: 2 * time.Millisecond,
		Queue: 256, Concurrency: 8, Requests: 8, MaxTexts: 64,
	}
	svc, err := embedder.New(cfg, app.Deps{DB: db, Bus: b, Log: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, svc)
	c := embedclient.New(b.Conn(), time.Second)
	testkit.Eventually(t, 20*time.Second, func() bool {
		m, _, err := c.Info(context.Background())
		model = m
		return err == nil
	}, "embedder never answered")
	return model
}
