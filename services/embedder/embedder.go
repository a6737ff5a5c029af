// Package embedder is the embedding stage: it consumes emails.ingested,
// embeds each email's subject and overlapping body windows with the
// in-process ONNX transformer (one ORT session per process, micro-batched
// across concurrent messages), upserts the vectors with their model id and
// character ranges, and publishes emails.embedded. It also answers embedding
// requests from other services on bus.SubjectEmbed with a bounded queue.
//
// Parity with sentence-transformers on the real all-MiniLM-L6-v2 weights is
// tested only where those weights are in the model cache; elsewhere tests run
// on generated graphs of the same shape (docs/search.md says what that covers).
package embedder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	manifests "github.com/ownyou/home/models"
	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/embed"
	"github.com/ownyou/home/pkg/models"
	"github.com/ownyou/home/pkg/store"
)

// Stage is this service's name in email_stages and the dead letters.
const Stage = bus.ConsumerEmbedder

// Config is the embedder's configuration (environment OWNYOU_…).
type Config struct {
	app.Common
	ModelDir     string        `env:"OWNYOU_MODEL_DIR" help:"model cache filled by make models (default <OWNYOU_DATA_DIR>/models)"`
	Model        string        `env:"OWNYOU_EMBED_MODEL" envDefault:"fp32" help:"fp32 or int8 (all-MiniLM-L6-v2 from the model cache), or the path of a BERT-shaped .onnx"`
	Vocab        string        `env:"OWNYOU_EMBED_VOCAB" help:"WordPiece vocab.txt (default: the cache's all-MiniLM-L6-v2/vocab.txt)"`
	ORTLib       string        `env:"OWNYOU_ORT_LIB" help:"ONNX Runtime library (default <model dir>/onnxruntime/libonnxruntime.so.1.24.3)"`
	Threads      int           `env:"OWNYOU_EMBED_THREADS" envDefault:"2" help:"ONNX Runtime intra-op threads"`
	InterThreads int           `env:"OWNYOU_EMBED_INTER_THREADS" envDefault:"1" help:"ONNX Runtime inter-op threads"`
	GoProcs      int           `env:"OWNYOU_EMBED_GOMAXPROCS" envDefault:"0" help:"Go threads of a standalone embedder process (its GOMAXPROCS): 0 = the CPUs OWNYOU_EMBED_THREADS leave free, at least 1, so Go's scheduler does not take cores from ONNX Runtime; a GOMAXPROCS variable wins; not used when all services share one process"`
	Spin         bool          `env:"OWNYOU_EMBED_SPIN" envDefault:"false" help:"let ONNX Runtime's intra-op threads spin while waiting for work: a lone embedding is ~20% faster, but a spinning thread holds a core the other services need (the whole pipeline is ~10% slower on 2 cores)"`
	MaxTokens    int           `env:"OWNYOU_EMBED_MAX_TOKENS" envDefault:"128" help:"tokens per window, [CLS]/[SEP] included"`
	Overlap      int           `env:"OWNYOU_EMBED_CHUNK_OVERLAP" envDefault:"16" help:"word pieces shared by consecutive windows"`
	MaxChunks    int           `env:"OWNYOU_EMBED_MAX_CHUNKS" envDefault:"16" help:"body windows embedded per email (the rest stays keyword-searchable)"`
	MaxBatch     int           `env:"OWNYOU_EMBED_BATCH" envDefault:"32" help:"sequences per ONNX batch"`
	BatchWait    time.Duration `env:"OWNYOU_EMBED_BATCH_WAIT" envDefault:"5ms" help:"how long a sequence waits for batch company"`
	Queue        int           `env:"OWNYOU_EMBED_QUEUE" envDefault:"1024" help:"sequences queued for the model at most"`
	WaitForModel bool          `env:"OWNYOU_EMBED_WAIT_FOR_MODEL" envDefault:"false" help:"when the model cannot be loaded, keep running not-ready (emails wait in the stream) and retry every minute instead of exiting; the native stack turns this on"`
	Concurrency  int           `env:"OWNYOU_EMBEDDER_CONCURRENCY" envDefault:"16" help:"emails embedded at once by this process (their windows share ONNX batches)"`
	Requests     int           `env:"OWNYOU_EMBED_REQUESTS" envDefault:"8" help:"embedding requests served at once; more are refused as overloaded"`
	MaxTexts     int           `env:"OWNYOU_EMBED_REQUEST_MAX_TEXTS" envDefault:"256" help:"texts per embedding request at most"`
}

// ProcessGoProcs is the GOMAXPROCS of a process that runs only the
// embedder, on cpus CPUs (runtime.GOMAXPROCS(0)): GoProcs when set, else
// what the intra-op threads leave free (embed.GoProcs).
func (c Config) ProcessGoProcs(cpus int) int {
	if c.GoProcs > 0 {
		return c.GoProcs
	}
	return embed.GoProcs(cpus, c.Threads)
}

// Service runs the stage. Build it with New; Run until the context ends.
type Service struct {
	cfg Config
	db  *store.DB
	bus *bus.Bus
	emb *embed.ONNX
	log *slog.Logger
	sem chan struct{}

	chunks   prometheus.Counter
	requests *prometheus.CounterVec
}

// ErrConfig reports an unusable configuration.
var ErrConfig = errors.New("embedder config")

// ModelFiles resolves cfg to the model, vocabulary and ORT library paths and
// the model's name, verifying manifest files by sha256; errors name `make models`.
func ModelFiles(cfg Config, dataDir string) (model, vocab, lib, name string, err error) {
	return modelFiles(cfg, dataDir, manifests.Manifests)
}

// modelFiles is ModelFiles with the manifests read from fsys.
func modelFiles(cfg Config, dataDir string, fsys fs.FS) (model, vocab, lib, name string, err error) {
	dir := cfg.ModelDir
	if dir == "" {
		dir = filepath.Join(dataDir, "models")
	}
	all, err := models.Load(fsys)
	if err != nil {
		return "", "", "", "", err
	}
	f := &models.Fetcher{Dir: dir}
	minilm, err := models.Select(all, "all-minilm-l6-v2")
	if err != nil {
		return "", "", "", "", err
	}
	switch cfg.Model {
	case "fp32", "":
		name = "all-minilm-l6-v2-fp32"
		model, err = f.Locate(minilm[0], "all-MiniLM-L6-v2/model.onnx")
	case "int8":
		name = "all-minilm-l6-v2-int8"
		model, err = f.Locate(minilm[0], "all-MiniLM-L6-v2/model_quint8_avx2.onnx")
	default:
		name = "custom-" + filepath.Base(cfg.Model)
		model = cfg.Model
	}
	if err != nil {
		return "", "", "", "", err
	}
	vocab = cfg.Vocab
	if vocab == "" {
		if vocab, err = f.Locate(minilm[0], "all-MiniLM-L6-v2/vocab.txt"); err != nil {
			return "", "", "", "", err
		}
	}
	lib = cfg.ORTLib
	if lib == "" {
		ort, err := models.Select(all, "onnxruntime")
		if err != nil {
			return "", "", "", "", err
		}
		if lib, err = f.Locate(ort[0], models.ORTLibPath); err != nil {
			return "", "", "", "", err
		}
	}
	return model, vocab, lib, name, nil
}

// New loads the model (failing with a message naming the fix when files are
// missing or corrupt) and prepares the stage.
func New(cfg Config, d app.Deps) (*Service, error) {
	db, b, log, dataDir := d.DB, d.Bus, d.Log.With("stage", Stage), cfg.DataDir
	if cfg.Requests < 1 || cfg.MaxTexts < 1 || cfg.Concurrency < 1 {
		return nil, fmt.Errorf("%w: OWNYOU_EMBED_REQUESTS, OWNYOU_EMBED_REQUEST_MAX_TEXTS and OWNYOU_EMBED_CONCURRENCY must be ≥ 1", ErrConfig)
	}
	model, vocab, lib, name, err := ModelFiles(cfg, dataDir)
	if err != nil {
		return nil, fmt.Errorf("embedder: %w", err)
	}
	emb, err := embed.New(embed.Config{
		ModelPath: model, ModelName: name, VocabPath: vocab, MaxLen: cfg.MaxTokens,
		Chunk:   embed.ChunkConfig{Overlap: cfg.Overlap, MaxChunks: cfg.MaxChunks},
		Session: embed.SessionConfig{Library: lib, IntraOpThreads: cfg.Threads, InterOpThreads: cfg.InterThreads, NoSpin: !cfg.Spin},
		Batch:   embed.BatchConfig{MaxBatch: cfg.MaxBatch, MaxWait: cfg.BatchWait, Queue: cfg.Queue},
		Log:     log,
	})
	if err != nil {
		return nil, err
	}
	log.Info("embedder model loaded", "model", emb.ModelID(), "path", model, "dim", emb.Dim(), "ort", lib)
	s := &Service{cfg: cfg, db: db, bus: b, emb: emb, log: log, sem: make(chan struct{}, cfg.Requests),
		chunks: prometheus.NewCounter(prometheus.CounterOpts{Name: "ownyou_embedder_chunks_total", Help: "Email chunks (subject and body windows) embedded."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ownyou_embedder_requests_total", Help: "Embedding requests answered, by result."},
			[]string{"result"}),
	}
	if d.Metrics != nil {
		for _, c := range []prometheus.Collector{s.chunks, s.requests} {
			if err := d.Metrics.Register(c); err != nil {
				log.Warn("register metric", "err", err)
			}
		}
	}
	return s, nil
}

// Builder is the app.Builder of the embedder service. With WaitForModel, a
// model that cannot be loaded yet gives a waiting service instead of an error.
func Builder(cfg Config) app.Builder {
	return app.Builder{Name: "embedder", Build: func(_ context.Context, d app.Deps) (app.Service, error) {
		s, err := New(cfg, d)
		if err != nil && cfg.WaitForModel && !errors.Is(err, ErrConfig) {
			return newWaiting(cfg, d, err), nil
		}
		if err == nil && d.Health != nil {
			d.Health.Add("model", func(context.Context) error { return nil })
		}
		return s, err
	}}
}

// ModelID is the id stored with every vector this service writes.
func (s *Service) ModelID() string { return s.emb.ModelID() }

// Run consumes emails.ingested and serves embedding requests until ctx ends,
// then drains both and releases the model.
func (s *Service) Run(ctx context.Context) error {
	defer s.emb.Close()
	sub, err := s.bus.Conn().QueueSubscribe(bus.SubjectEmbed, bus.QueueEmbedder, s.serveRequest)
	if err != nil {
		return fmt.Errorf("embedder: subscribe %s: %w", bus.SubjectEmbed, err)
	}
	if err := s.bus.Conn().Flush(); err != nil { // the server knows the subscription before Run goes on
		s.log.Warn("embed requests: flush", "err", err)
	}
	cons, err := bus.Consume(ctx, s.bus, bus.EmailsIngested, bus.ConsumeOptions{Durable: bus.ConsumerEmbedder, Concurrency: s.cfg.Concurrency}, s.HandleIngested)
	if err != nil {
		_ = sub.Unsubscribe()
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return fmt.Errorf("embedder: %w", err)
	}
	backfillDone := make(chan struct{})
	go func() {
		defer close(backfillDone)
		s.backfill(ctx)
	}()
	<-ctx.Done()
	<-backfillDone
	if err := sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.log.Warn("embed requests drain", "err", err)
	}
	cons.Stop()
	// Requests in flight finish before the model is released.
	for i := 0; i < cap(s.sem); i++ {
		s.sem <- struct{}{}
	}
	return nil
}
