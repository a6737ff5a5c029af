// Command classifier load-tests the classifier service: it starts a private
// Postgres, an embedded JetStream server and a fake OpenAI-compatible server
// with a fixed latency per call, then runs 1, 2 and 4 classifier processes
// (this binary re-executed with -worker: the real service code in separate
// processes sharing one durable consumer) over the same emails, and prints
// emails/s, the speedup over one process and the efficiency against the ideal
// time (calls × latency ÷ total LLM concurrency) as BENCH lines.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/pgserver"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/services/classifier"
	"github.com/ownyou/home/services/classifier/eval"
	"github.com/ownyou/home/services/classifier/fakeoai"
)

type opts struct {
	procs          []int
	emails         int
	quick          int
	latency        time.Duration
	batch          int
	concurrency    int
	llmConcurrency int
	batchWait      time.Duration
}

func main() {
	worker := flag.Bool("worker", false, "run one classifier process (used by the driver)")
	procs := flag.String("procs", "1,2,4", "process counts to run")
	emails := flag.Int("emails", 2400, "emails per throughput run (a backfill is thousands of emails: long enough that the ramp-up and the last partial batches do not dominate)")
	quick := flag.Int("quick", 100, "emails for the latency run with the largest process count (0 = skip)")
	latency := flag.Duration("latency", 2*time.Second, "fake LLM latency per call")
	batch := flag.Int("batch", 25, "emails per batch (OWNYOU_CLASSIFIER_BATCH_SIZE)")
	conc := flag.Int("concurrency", 75, "messages in flight per process (3 batches of 25: one being judged while the next two fill the LLM slots)")
	llmConc := flag.Int("llm-concurrency", 4, "LLM calls in flight per process")
	batchWait := flag.Duration("batch-wait", 1500*time.Millisecond, "longest wait for a batch to fill (OWNYOU_CLASSIFIER_BATCH_WAIT)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *worker {
		if err := runWorker(ctx, log); err != nil {
			log.Error("worker failed", "err", err)
			os.Exit(1)
		}
		return
	}
	o := opts{emails: *emails, quick: *quick, latency: *latency, batch: *batch, concurrency: *conc, llmConcurrency: *llmConc, batchWait: *batchWait}
	for _, p := range strings.Split(*procs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "bad -procs:", p)
			os.Exit(2)
		}
		o.procs = append(o.procs, n)
	}
	if err := drive(ctx, log, o); err != nil {
		log.Error("loadtest failed", "err", err)
		os.Exit(1)
	}
}

// runWorker is one classifier process configured from the environment the driver sets.
func runWorker(ctx context.Context, log *slog.Logger) error {
	var cfg classifier.Config
	var common app.Common
	if err := envConfig(&cfg, &common); err != nil {
		return err
	}
	db, err := store.Open(ctx, common.DB, log)
	if err != nil {
		return err
	}
	defer db.Close()
	b, err := bus.Connect(ctx, common.Bus, bus.Options{Log: log, DeadLetter: db, Name: "loadtest-worker"})
	if err != nil {
		return err
	}
	defer b.Drain()
	cfg.Common = common
	svc, err := classifier.New(cfg, app.Deps{Common: common, DB: db, Bus: b, Log: log})
	if err != nil {
		return err
	}
	fmt.Println("READY")
	return svc.Run(ctx)
}

func envConfig(cfg *classifier.Config, common *app.Common) error {
	atoi := func(k string) int { n, _ := strconv.Atoi(os.Getenv(k)); return n }
	common.DataDir = os.Getenv("OWNYOU_DATA_DIR")
	common.DB.URL = os.Getenv("DATABASE_URL")
	common.DB.MaxConns = 10
	common.Bus = bus.Config{URL: os.Getenv("OWNYOU_NATS_URL"), DuplicateWindow: 2 * time.Minute, Retention: time.Hour, MaxDeliver: 5,
		AckWait: 30 * time.Second, BackoffBase: 200 * time.Millisecond, BackoffMax: 2 * time.Second, DrainTimeout: 10 * time.Second}
	cfg.WordVecPath = os.Getenv("OWNYOU_WORDVEC_PATH")
	cfg.ModelCache = os.Getenv("OWNYOU_MODEL_DIR")
	cfg.TaxonomyDir = os.Getenv("OWNYOU_TAXONOMY_DIR")
	cfg.Concurrency = atoi("OWNYOU_CLASSIFIER_CONCURRENCY")
	cfg.BatchSize = atoi("OWNYOU_CLASSIFIER_BATCH_SIZE")
	cfg.BatchWait, _ = time.ParseDuration(os.Getenv("OWNYOU_CLASSIFIER_BATCH_WAIT"))
	cfg.LLMBaseURL = os.Getenv("OWNYOU_LLM_BASE_URL")
	cfg.LLMModel = "fakeoai"
	cfg.LLMConcurrency = atoi("OWNYOU_LLM_CONCURRENCY")
	cfg.LLMTimeout = 60 * time.Second
	cfg.LLMBatchTokens = 100000 // batches are bounded by BatchSize here
	if common.DB.URL == "" || common.Bus.URL == "" || cfg.LLMBaseURL == "" {
		return errors.New("worker: DATABASE_URL, OWNYOU_NATS_URL and OWNYOU_LLM_BASE_URL are required")
	}
	return nil
}

// swapHandler lets each run use a fresh fake server (fresh call counts).
type swapHandler struct {
	h atomic.Pointer[fakeoai.Server]
}

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.Load().ServeHTTP(w, r) }

func drive(ctx context.Context, log *slog.Logger, o opts) error {
	dir, err := os.MkdirTemp("", "oyload-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	_ = os.Chmod(dir, 0o755)
	pgDir, err := os.MkdirTemp("", "oyload-pg-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(pgDir)
	if err := os.Chmod(pgDir, 0o755); err != nil { // the server runs as user postgres when we are root
		return err
	}
	pg, err := pgserver.Start(ctx, pgserver.Options{Dir: pgDir, Settings: map[string]string{"fsync": "off", "synchronous_commit": "off"}})
	if err != nil {
		return err
	}
	defer pg.Stop()
	if err := pg.CreateDatabase(ctx, "loadtest", ""); err != nil {
		return err
	}
	url := pg.URL("loadtest")
	db, err := store.Open(ctx, store.Config{URL: url, MaxConns: 5}, log)
	if err != nil {
		return err
	}
	defer db.Close()
	ns, err := bus.StartEmbedded(filepath.Join(dir, "nats"), "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	bcfg := bus.Config{URL: ns.URL(), DuplicateWindow: 2 * time.Minute, Retention: time.Hour, MaxDeliver: 5, AckWait: 30 * time.Second,
		BackoffBase: 200 * time.Millisecond, BackoffMax: 2 * time.Second, DrainTimeout: 10 * time.Second}
	b, err := bus.Connect(ctx, bcfg, bus.Options{Log: log, Name: "loadtest-driver"})
	if err != nil {
		return err
	}
	defer b.Drain()
	sw := &swapHandler{}
	sw.h.Store(&fakeoai.Server{Latency: o.latency})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: sw, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	ids, err := insertEmails(ctx, db, max(o.emails, o.quick))
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	env := append(os.Environ(),
		"DATABASE_URL="+url, "OWNYOU_NATS_URL="+ns.URL(), "OWNYOU_LLM_BASE_URL=http://"+ln.Addr().String()+"/v1",
		"OWNYOU_DATA_DIR="+filepath.Join(dir, "data"),
		"OWNYOU_CLASSIFIER_CONCURRENCY="+strconv.Itoa(o.concurrency), "OWNYOU_CLASSIFIER_BATCH_SIZE="+strconv.Itoa(o.batch),
		"OWNYOU_LLM_CONCURRENCY="+strconv.Itoa(o.llmConcurrency), "OWNYOU_CLASSIFIER_BATCH_WAIT="+o.batchWait.String())
	run := func(n, emails int) (time.Duration, int, error) {
		fake := &fakeoai.Server{Latency: o.latency}
		sw.h.Store(fake)
		if err := reset(ctx, db, b); err != nil {
			return 0, 0, err
		}
		stopWorkers, err := startWorkers(ctx, self, env, n)
		if err != nil {
			return 0, 0, err
		}
		defer stopWorkers()
		t0 := time.Now()
		for i := 0; i < emails; i++ {
			if err := bus.Publish(ctx, b, bus.EmailsEmbedded, fmt.Sprintf("embedded:%s:%d", ids[i], t0.UnixNano()), bus.EmailEmbedded{EmailID: ids[i]}); err != nil {
				return 0, 0, err
			}
		}
		for {
			var done int
			if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM email_stages WHERE stage = 'classifier' AND status = 'done'`).Scan(&done); err != nil {
				return 0, 0, err
			}
			if done >= emails {
				break
			}
			if time.Since(t0) > 15*time.Minute {
				return 0, 0, fmt.Errorf("%d processes: only %d of %d emails classified after 15 min", n, done, emails)
			}
			select {
			case <-ctx.Done():
				return 0, 0, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		return time.Since(t0), len(fake.Calls()), nil
	}
	var base float64
	for _, n := range o.procs {
		el, calls, err := run(n, o.emails)
		if err != nil {
			return err
		}
		if calls == 0 {
			return fmt.Errorf("%d processes made no LLM calls: the workers ran degraded (word vectors missing? set OWNYOU_WORDVEC_PATH); nothing was measured", n)
		}
		rate := float64(o.emails) / el.Seconds()
		ideal := time.Duration(calls) * o.latency / time.Duration(n*o.llmConcurrency)
		fmt.Printf("BENCH loadtest_classifier_p%d_emails_per_s %.2f emails/s\n", n, rate)
		fmt.Printf("BENCH loadtest_classifier_p%d_seconds %.2f s\n", n, el.Seconds())
		fmt.Printf("BENCH loadtest_classifier_p%d_llm_calls %d calls\n", n, calls)
		fmt.Printf("BENCH loadtest_classifier_p%d_efficiency %.3f ratio\n", n, ideal.Seconds()/el.Seconds())
		if base == 0 {
			base = rate
		}
		fmt.Printf("BENCH loadtest_classifier_p%d_speedup %.2f x\n", n, rate/base)
	}
	if o.quick > 0 {
		n := o.procs[len(o.procs)-1]
		el, _, err := run(n, o.quick)
		if err != nil {
			return err
		}
		fmt.Printf("BENCH loadtest_classifier_%d_emails_p%d_seconds %.2f s\n", o.quick, n, el.Seconds())
	}
	return nil
}

// insertEmails stores n emails built from the labeled set.
func insertEmails(ctx context.Context, db *store.DB, n int) ([]string, error) {
	set, err := eval.Set()
	if err != nil {
		return nil, err
	}
	ids := make([]string, n)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		l := set[i%len(set)]
		ids[i] = fmt.Sprintf("load-%05d", i)
		if _, err := db.Pool.Exec(ctx, `
			INSERT INTO emails (id, message_id, content_hash, subject, from_addr, body_text, sort_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
			ids[i], ids[i]+"@loadtest", ids[i], l.Subject, l.From, l.Body, base.Add(time.Duration(i)*time.Hour)); err != nil {
			return nil, fmt.Errorf("insert email: %w", err)
		}
	}
	return ids, nil
}

// reset clears the classifier's results and its durable consumer between runs.
func reset(ctx context.Context, db *store.DB, b *bus.Bus) error {
	if _, err := db.Pool.Exec(ctx, `TRUNCATE classifications, profile, email_stages, llm_usage`); err != nil {
		return fmt.Errorf("reset tables: %w", err)
	}
	js := b.JetStream()
	_ = js.DeleteConsumer(ctx, bus.StreamEmails, bus.ConsumerClassifier)
	s, err := js.Stream(ctx, bus.StreamEmails)
	if err != nil {
		return fmt.Errorf("reset stream: %w", err)
	}
	if err := s.Purge(ctx); err != nil {
		return fmt.Errorf("reset stream: %w", err)
	}
	return nil
}

// startWorkers starts n worker processes and waits until each is consuming.
func startWorkers(ctx context.Context, self string, env []string, n int) (func(), error) {
	var cmds []*exec.Cmd
	stop := func() {
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		for _, c := range cmds {
			done := make(chan struct{})
			go func() { _ = c.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = c.Process.Kill()
				<-done
			}
		}
	}
	for i := 0; i < n; i++ {
		c := exec.CommandContext(ctx, self, "-worker")
		c.Env = env
		c.Stderr = os.Stderr
		out, err := c.StdoutPipe()
		if err != nil {
			stop()
			return nil, err
		}
		if err := c.Start(); err != nil {
			stop()
			return nil, err
		}
		cmds = append(cmds, c)
		ready := make(chan error, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if sc.Text() == "READY" {
					ready <- nil
					_, _ = io.Copy(io.Discard, out)
					return
				}
			}
			ready <- errors.New("worker exited before READY")
		}()
		select {
		case err := <-ready:
			if err != nil {
				stop()
				return nil, err
			}
		case <-time.After(2 * time.Minute):
			stop()
			return nil, errors.New("worker not ready after 2 min")
		}
	}
	return stop, nil
}
