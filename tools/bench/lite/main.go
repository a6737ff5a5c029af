// Command lite measures the lite embedding model (word vectors) through
// the real embedder service: its throughput on single emails, and how fast
// a whole mailbox is re-embedded when the model changes — the switch a
// fresh box makes once MiniLM is downloaded, or back. It prints
//
//	BENCH lite_embed_emails_per_s   — emails.ingested handled one by one
//	BENCH lite_reembed_emails_per_s — background re-embedding of the mailbox
//	BENCH lite_reembed_100k_minutes — the same rate as minutes per 100k mails
//
// BENCH_LITE_MESSAGES sets the mailbox size (default 20,000; the rate is
// what matters, 100k takes five times as long). Env: OWNYOU_WORDVEC_PATH,
// OWNYOU_MODEL_DIR.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ownyou/home/internal/benchkit"
	"github.com/ownyou/home/internal/testmail"
	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/models"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/services/embedder"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench lite:", err)
		os.Exit(1)
	}
}

func run() error {
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n := 20000
	if v, err := strconv.Atoi(os.Getenv("BENCH_LITE_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	inf, err := benchkit.Start(ctx, "lite", 5496)
	if err != nil {
		return err
	}
	defer inf.Close()
	msgs := testmail.Messages(n)
	rows := make([][]any, n)
	stages := make([][]any, n)
	for i, m := range msgs {
		id := store.EmailID(m.MessageID, m.MessageID)
		rows[i] = []any{id, m.MessageID, m.MessageID, m.Subject, m.From, m.Body, m.Date, m.Date}
		stages[i] = []any{id, "embedder", "done"}
	}
	if _, err := inf.DB.Pool.CopyFrom(ctx, pgx.Identifier{"emails"}, []string{"id", "message_id", "content_hash", "subject", "from_addr", "body_text", "sent_at", "sort_at"}, pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	if _, err := inf.DB.Pool.CopyFrom(ctx, pgx.Identifier{"email_stages"}, []string{"email_id", "stage", "status"}, pgx.CopyFromRows(stages)); err != nil {
		return err
	}
	// The mailbox was embedded by a model this box no longer has: the lite
	// model takes over and re-embeds everything in the background.
	if err := inf.DB.UseEmbeddingModel(ctx, "retired-model@0", 384, ""); err != nil {
		return err
	}
	var cfg embedder.Config
	cfg.DataDir = filepath.Join(inf.Dir, "data")
	cfg.ModelDir, cfg.Model, cfg.WordVecPath = models.CacheDir(), "lite", os.Getenv("OWNYOU_WORDVEC_PATH")
	cfg.MaxChunks, cfg.Concurrency, cfg.Requests, cfg.MaxTexts = 16, 16, 8, 256
	cfg.CheckEvery, cfg.SwitchGrace, cfg.ReembedBatch = time.Hour, time.Hour, 256
	svc, err := embedder.New(cfg, app.Deps{DB: inf.DB, Bus: inf.Bus, Log: inf.Log})
	if err != nil {
		return err
	}
	runCtx, stopSvc := context.WithCancel(ctx)
	defer stopSvc()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- svc.Run(runCtx) }()
	for {
		got, total, err := inf.DB.EmbeddingCoverage(ctx, svc.ModelID())
		if err != nil {
			return err
		}
		if got >= total {
			break
		}
		if ctx.Err() != nil || time.Since(start) > 30*time.Minute {
			stopSvc()
			<-done
			return fmt.Errorf("re-embedded %d of %d", got, total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	reembed := time.Since(start)

	// One by one, as mail arrives: emails.ingested handled by the stage.
	const single = 2000
	t0 := time.Now()
	for _, m := range msgs[:single] {
		id := store.EmailID(m.MessageID, m.MessageID)
		if err := svc.HandleIngested(ctx, bus.EmailIngested{EmailID: id}); err != nil {
			return err
		}
	}
	singleRate := float64(single) / time.Since(t0).Seconds()
	stopSvc()
	<-done
	rate := float64(n) / reembed.Seconds()
	fmt.Printf("BENCH lite_embed_emails_per_s %.0f emails/s\n", singleRate)
	fmt.Printf("BENCH lite_reembed_emails_per_s %.0f emails/s\n", rate)
	fmt.Printf("BENCH lite_reembed_100k_minutes %.1f minutes\n", 100000/rate/60)
	return nil
}
