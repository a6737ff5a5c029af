// Command outlook measures a full sync of an Outlook mailbox through the
// real ingest service and Graph client against graphfake, which serves
// Exchange's per-mailbox limits: 4 requests in flight and 10,000 requests
// per 10 minutes (BENCH_OUTLOOK_RATE requests/s, default 16.7). Each message
// costs one MIME request, so the quota, not the code, sets the pace; the
// figures say whether the sync keeps to it and what memory it needs. It
// prints emails/s, the requests answered 429, and the peak RSS.
// BENCH_OUTLOOK_MESSAGES overrides the 10,000 messages.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/oauth2"

	"github.com/ownyou/home/internal/benchkit"
	"github.com/ownyou/home/internal/testmail"
	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/googleoauth/oauthfake"
	"github.com/ownyou/home/pkg/msgraph/graphfake"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/services/ingest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench outlook:", err)
		os.Exit(1)
	}
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

func run() error {
	signal.Ignore(syscall.SIGPIPE)
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	n := envInt("BENCH_OUTLOOK_MESSAGES", 10000)
	quota := 10000.0 / 600
	if v, err := strconv.ParseFloat(os.Getenv("BENCH_OUTLOOK_RATE"), 64); err == nil && v > 0 {
		quota = v
	}
	inf, err := benchkit.Start(ctx, "outlook", 5498)
	if err != nil {
		return err
	}
	defer inf.Close()

	of := oauthfake.New("cid", "secret")
	of.RotateRefresh = true
	defer of.Close()
	gf := graphfake.New("bench@contoso.test")
	defer gf.Close()
	gf.Authorize, gf.Limit, gf.Latency = of.ValidAccess, 4, 20*time.Millisecond
	gf.SetRate(quota)
	folders := []string{gf.Folder("inbox"), gf.Folder("archive"), gf.AddFolder("", "Receipts"), gf.Folder("sentitems")}
	for i, m := range testmail.Messages(n) {
		gf.Add(folders[i%len(folders)], m.Raw())
	}

	var cfg ingest.Config
	cfg.DataDir = filepath.Join(inf.Dir, "data")
	cfg.MaxMessageBytes, cfg.MaxSyncs, cfg.Workers = 25<<20, 1, 8
	cfg.SyncInterval, cfg.RetryAfter, cfg.StaleAfter, cfg.HeartbeatEvery, cfg.PollEvery = time.Hour, time.Minute, 5*time.Minute, 20*time.Second, 200*time.Millisecond
	cfg.MicrosoftClientID, cfg.MicrosoftClientSecret, cfg.MicrosoftTokenURL, cfg.GraphEndpoint = "cid", "secret", of.TokenURL(), gf.Endpoint()
	// The client's own pacing: 90% of the quota, as in production.
	cfg.GraphConcurrency, cfg.GraphRate, cfg.GraphMaxAttempts, cfg.GraphBackoffMax = 4, 0.9*quota, 8, 64*time.Second
	svc, err := ingest.New(cfg, app.Deps{Common: cfg.Common, DB: inf.DB, Bus: inf.Bus, Log: inf.Log})
	if err != nil {
		return err
	}
	tok, _ := json.Marshal(&oauth2.Token{RefreshToken: of.IssueRefreshToken(), TokenType: "Bearer"})
	sealed, err := svc.SealSecret("bench", tok)
	if err != nil {
		return err
	}
	if _, err := inf.DB.CreateSource(ctx, store.Source{ID: "bench", Kind: store.SourceOutlook, Account: "bench@contoso.test"}, sealed); err != nil {
		return err
	}
	runtime.GC()
	benchkit.ResetPeakRSS()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- svc.Run(runCtx) }()
	var src store.Source
	for {
		if src, err = inf.DB.GetSource(ctx, "bench"); err != nil {
			return err
		}
		if src.LastSuccessAt != nil || src.Status == store.SourceFailed || src.Status == store.SourceReconnect {
			break
		}
		if ctx.Err() != nil || time.Since(start) > time.Hour {
			return fmt.Errorf("sync did not finish: %+v", src)
		}
		time.Sleep(100 * time.Millisecond)
	}
	el := time.Since(start)
	peak := benchkit.RSSKB("VmHWM")
	stop()
	<-done
	if src.Status != store.SourceIdle || src.EmailsCount != int64(n) {
		return fmt.Errorf("sync ended %s with %d of %d emails: %s", src.Status, src.EmailsCount, n, src.LastError)
	}
	fmt.Printf("BENCH outlook_full_sync_emails_per_s %.1f emails/s\n", float64(n)/el.Seconds())
	fmt.Printf("BENCH outlook_full_sync_quota_use %.0f %%\n", 100*float64(n+gf.Calls("delta")+gf.Calls("folders"))/el.Seconds()/quota)
	fmt.Printf("BENCH outlook_full_sync_throttled %d requests\n", gf.Calls("throttled"))
	fmt.Printf("BENCH outlook_full_sync_peak_rss %d MB\n", peak/1024)
	return nil
}
