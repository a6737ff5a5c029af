// Command pipeline is the pipeline load test behind `make loadtest`: it runs
// the native stack as separate OS processes — the same service binaries compose
// runs, several per stage, joined through OWNYOU_NATS_URL and DATABASE_URL to an
// embedded JetStream server and a private Postgres it starts itself — imports a
// generated mailbox through the gateway and prints how long the pipeline took:
//
//	BENCH pipeline_100_emails_seconds <seconds> s
//	BENCH pipeline_100_emails_llm_seconds <seconds> s
//
// The first run classifies with the local backend; the second ("llm") with 4
// classifier processes against a fake OpenAI-compatible server answering each
// call after 2 s. Flags: -emails (100), -workers (processes per worker stage,
// 2), -mode (local, llm, both), -llm-latency (2s), -llm-classifiers (4),
// -timeout (5m per run).
//
// The environment is passed on to the services (OWNYOU_MODEL_DIR, …). Without
// all-MiniLM-L6-v2 in the model cache the embedder runs a generated graph of
// its shapes (see embedModelEnv).
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ownyou/home/internal/testmail"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/embed"
	"github.com/ownyou/home/pkg/models"
	"github.com/ownyou/home/pkg/pgserver"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/services/classifier/fakeoai"
)

func main() {
	emails := flag.Int("emails", 100, "emails in the imported mailbox")
	workers := flag.Int("workers", 2, "processes per worker stage (ingest, embedder, classifier, agents)")
	mode := flag.String("mode", "both", "local (local classifier), llm (fake OpenAI-compatible server) or both")
	latency := flag.Duration("llm-latency", 2*time.Second, "latency of every LLM call in the llm run")
	llmClassifiers := flag.Int("llm-classifiers", 4, "classifier processes in the llm run")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long, per run")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var runs []runOptions
	if *mode == "local" || *mode == "both" {
		runs = append(runs, runOptions{emails: *emails, workers: *workers, classifiers: *workers})
	}
	if *mode == "llm" || *mode == "both" {
		runs = append(runs, runOptions{emails: *emails, workers: *workers, classifiers: *llmClassifiers, llmLatency: *latency})
	}
	if len(runs) == 0 {
		fmt.Fprintln(os.Stderr, "loadtest pipeline: -mode is local, llm or both")
		os.Exit(2)
	}
	for _, o := range runs {
		rctx, cancel := context.WithTimeout(ctx, *timeout)
		err := run(rctx, o)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest pipeline:", err)
			os.Exit(1)
		}
	}
}

// runOptions is one timed import: with llmLatency > 0 the classifiers use a
// fake OpenAI-compatible server (services/classifier/fakeoai, real wire
// format) that answers every call after that latency.
type runOptions struct {
	emails, workers, classifiers int
	llmLatency                   time.Duration
}

var stages = []string{"ingest", "embedder", "classifier", "agents"}

// embedModelEnv returns the embedder settings for the run: none when
// OWNYOU_EMBED_MODEL is set or all-MiniLM-L6-v2 is in the model cache;
// otherwise (weights not downloadable, as on the development machines) a
// generated graph of MiniLM's shapes — same inputs, layers and sizes, random
// weights — and the real tokenizer vocabulary, so the timing is the real
// model's work, and it says so.
func embedModelEnv(tmp string, log *slog.Logger) ([]string, error) {
	if os.Getenv("OWNYOU_EMBED_MODEL") != "" {
		return nil, nil
	}
	if _, err := os.Stat(filepath.Join(models.CacheDir(), "all-MiniLM-L6-v2", "model.onnx")); err == nil {
		return nil, nil
	}
	vocab, err := models.MiniLMVocab()
	if err != nil {
		return nil, fmt.Errorf("no all-MiniLM-L6-v2 in the model cache and no vocabulary for a stand-in: %w", err)
	}
	graph, err := embed.GenerateGraph(embed.MiniLMGraph())
	if err != nil {
		return nil, fmt.Errorf("generate stand-in graph: %w", err)
	}
	path := filepath.Join(tmp, "minilm-shaped.onnx")
	if err := os.WriteFile(path, graph, 0o644); err != nil {
		return nil, err
	}
	log.Warn("all-MiniLM-L6-v2 is not in the model cache: the embedder runs a generated graph of its shapes (random weights; same work per email)", "graph", path)
	return []string{"OWNYOU_EMBED_MODEL=" + path, "OWNYOU_EMBED_VOCAB=" + vocab}, nil
}

func run(ctx context.Context, o runOptions) error {
	n, workers := o.emails, o.workers
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	tmp, err := os.MkdirTemp("", "oyload-")
	if err == nil {
		err = os.Chmod(tmp, 0o755) // the private Postgres runs as another user when we are root
	}
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	bin := filepath.Join(tmp, "bin")
	log.Info("building the service binaries", "dir", bin)
	pkgs := []string{"build", "-o", bin + "/"}
	for _, s := range append(stages, "gateway") {
		pkgs = append(pkgs, "./services/"+s+"/cmd/"+s)
	}
	build := exec.CommandContext(ctx, "go", pkgs...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}

	// pgserver wants its directory reachable by the server's user.
	if err := os.Mkdir(filepath.Join(tmp, "pg"), 0o755); err != nil {
		return err
	}
	pg, err := pgserver.Start(ctx, pgserver.Options{Dir: filepath.Join(tmp, "pg"), Settings: map[string]string{"max_connections": "400"}})
	if err != nil {
		return err
	}
	defer pg.Stop()
	if err := pg.CreateDatabase(ctx, "ownyou", ""); err != nil {
		return err
	}
	dbURL := pg.URL("ownyou")
	// Migrate once up front so the processes do not all wait on the lock.
	if err := store.Migrate(ctx, dbURL, log); err != nil {
		return err
	}
	ns, err := bus.StartEmbedded(filepath.Join(tmp, "nats"), "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ns.Shutdown()

	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	token, err := randomToken()
	if err != nil {
		return err
	}
	env := append(os.Environ(),
		"DATABASE_URL="+dbURL,
		"OWNYOU_NATS_URL="+ns.URL(),
		"OWNYOU_DATA_DIR="+filepath.Join(tmp, "data"),
		"OWNYOU_ADMIN_ADDR=127.0.0.1:0",
		"OWNYOU_DB_MAX_CONNS=8",
		"OWNYOU_LOG_LEVEL=warn",
		"OWNYOU_HTTP_ADDR="+httpAddr,
		"OWNYOU_ADMIN_TOKEN="+token,
	)
	modelEnv, err := embedModelEnv(tmp, log)
	if err != nil {
		return err
	}
	env = append(env, modelEnv...)
	if o.llmLatency > 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: &fakeoai.Server{Latency: o.llmLatency}, ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
		env = append(env, "OWNYOU_LLM_BASE_URL=http://"+ln.Addr().String()+"/v1", "OWNYOU_LLM_MODEL=fake", "OWNYOU_LLM_API_KEY=loadtest")
		log.Info("classifiers use a fake OpenAI-compatible server", "latency", o.llmLatency, "processes", o.classifiers)
	}
	var procs []*exec.Cmd
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			_ = p.Wait()
		}
	}()
	start := func(name string, i int) error {
		cmd := exec.Command(filepath.Join(bin, name))
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = prefixed(name, i), prefixed(name, i)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", name, err)
		}
		procs = append(procs, cmd)
		return nil
	}
	if err := start("gateway", 0); err != nil {
		return err
	}
	for _, s := range stages {
		count := workers
		if s == "classifier" {
			count = o.classifiers
		}
		for i := range count {
			if err := start(s, i); err != nil {
				return err
			}
		}
	}
	log.Info("stack started", "processes", len(procs), "gateway", httpAddr)
	base := "http://" + httpAddr
	if err := waitFor(ctx, func() (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/pipeline", nil)
		if err != nil {
			return false, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	}); err != nil {
		return fmt.Errorf("gateway never answered: %w", err)
	}

	var mbox bytes.Buffer
	if err := testmail.WriteMbox(&mbox, testmail.Messages(n)); err != nil {
		return err
	}
	db, err := store.Open(ctx, store.Config{URL: dbURL, MaxConns: 2}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer db.Close()

	began := time.Now()
	if err := upload(ctx, base, token, mbox.Bytes()); err != nil {
		return err
	}
	var last []store.StageCount
	err = waitFor(ctx, func() (bool, error) {
		counts, err := db.PipelineCounts(ctx)
		if err != nil {
			return false, err
		}
		last = counts
		for _, c := range counts {
			if c.Total < int64(n) || c.Processed+c.Failed < c.Total {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("pipeline did not finish: %w (stages: %+v)", err, last)
	}
	elapsed := time.Since(began)
	for _, c := range last {
		if c.Failed > 0 {
			log.Warn("stage had failures", "stage", c.Name, "failed", c.Failed)
		}
	}
	name := fmt.Sprintf("pipeline_%d_emails", n)
	if o.llmLatency > 0 {
		name += "_llm"
	}
	fmt.Printf("BENCH %s_seconds %.3f s\n", name, elapsed.Seconds())
	fmt.Printf("BENCH %s_workers_per_stage %d processes\n", name, workers)
	fmt.Printf("BENCH %s_classifier_processes %d processes\n", name, o.classifiers)
	return nil
}

// randomToken returns the admin API token the run's gateway accepts.
func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func upload(ctx context.Context, base, token string, content []byte) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", "loadtest.mbox")
	if err != nil {
		return err
	}
	if _, err := fw.Write(content); err != nil {
		return err
	}
	if err := mw.Close(); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v1/imports", &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("upload: %s: %s", resp.Status, b)
	}
	return nil
}

func waitFor(ctx context.Context, cond func() (bool, error)) error {
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// prefixed writes a child's output to stderr, each line tagged with the process.
func prefixed(name string, i int) io.Writer {
	return &lineWriter{prefix: fmt.Sprintf("[%s-%d] ", name, i)}
}

type lineWriter struct {
	prefix string
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(w.buf[:i]), "\r")
		fmt.Fprintln(os.Stderr, w.prefix+line)
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}
