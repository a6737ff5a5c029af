package llm

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/pkg/vec"
	"github.com/ownyou/home/services/classifier/core"
)

// shortlister picks, per batch and section, the candidate categories offered
// to the model: whole small sections and the fact sections, and for large ones
// (interests, purchase intent, content) the categories nearest to the batch's
// emails by embedding similarity, taken round-robin over the emails so every
// email gets its best matches. Any category of the taxonomy can therefore be
// chosen.
//
// Category paths are embedded once per embedding model (a space). With a
// fallback embedder, the primary one (the embedder service over NATS) is
// prepared in the background and used once ready; until then, and for a
// cool-down after any failure of it, batches are ranked in the fallback's
// space (word vectors), and the change is reported through status.
type shortlister struct {
	primary, fallback core.Embedder
	max               int
	sections          map[taxonomy.Section]*sectionCands
	texts             map[taxonomy.Section][]string // category path texts of the ranked sections
	status            func(ctx context.Context, fallback bool, reason error)
	log               *slog.Logger
	cooldown          time.Duration
	buildTimeout      time.Duration

	mu            sync.Mutex
	spaces        map[string]*space // by model id
	fallbackSpace *space
	building      bool
	retryAt       time.Time
	onFallback    bool
}

type sectionCands struct {
	cats  []*taxonomy.Category
	whole bool
	pos   map[string]int
}

// space is one embedding model's category vectors.
type space struct {
	emb   core.Embedder
	model string
	vecs  map[taxonomy.Section][][]float32
}

// Shortlist fallback timing.
const (
	// embedderCooldown is how long the primary embedder is left alone after it failed.
	embedderCooldown = time.Minute
	// spaceBuildTimeout bounds embedding every category path with the primary embedder.
	spaceBuildTimeout = 15 * time.Minute
)

func newShortlister(ctx context.Context, cfg Config) (*shortlister, error) {
	s := &shortlister{
		primary: cfg.Embedder, fallback: cfg.FallbackEmbedder, max: cfg.Shortlist,
		sections: map[taxonomy.Section]*sectionCands{}, texts: map[taxonomy.Section][]string{},
		status: cfg.EmbedderStatus, log: cfg.Logger, cooldown: embedderCooldown, buildTimeout: spaceBuildTimeout,
		spaces: map[string]*space{},
	}
	if cfg.EmbedderRetry > 0 {
		s.cooldown = cfg.EmbedderRetry
	}
	if s.status == nil {
		s.status = func(context.Context, bool, error) {}
	}
	for _, sec := range cfg.Sections {
		t := cfg.Taxonomies.Audience
		if sec == taxonomy.SectionContent {
			t = cfg.Taxonomies.Content
		}
		cats := t.InSection(sec)
		if len(cats) == 0 {
			return nil, fmt.Errorf("%w: section %q has no categories", ErrConfig, sec)
		}
		sc := &sectionCands{cats: cats, whole: len(cats) <= s.max || factSections[sec], pos: map[string]int{}}
		for i, c := range cats {
			sc.pos[c.ID] = i
		}
		if !sc.whole {
			texts := make([]string, len(cats))
			for i, c := range cats {
				path := c.Path
				if t.Kind == taxonomy.Audience && len(path) > 1 {
					path = path[1:]
				}
				texts[i] = strings.Join(path, " ")
			}
			s.texts[sec] = texts
		}
		s.sections[sec] = sc
	}
	// Without a fallback the one embedder must work now; with one, the
	// fallback must, and the primary is prepared when first needed.
	first := s.primary
	if s.fallback != nil {
		first = s.fallback
	}
	sp, err := s.build(ctx, first)
	if err != nil {
		return nil, err
	}
	if s.fallback != nil {
		s.fallbackSpace = sp
	} else {
		s.spaces[sp.model] = sp
	}
	return s, nil
}

// build embeds the ranked sections' category paths with emb.
func (s *shortlister) build(ctx context.Context, emb core.Embedder) (*space, error) {
	sp := &space{emb: emb, vecs: map[taxonomy.Section][][]float32{}}
	for sec, texts := range s.texts {
		vecs, err := emb.Embed(ctx, texts)
		if err != nil {
			return nil, fmt.Errorf("embed category paths: %w", err)
		}
		if len(vecs) != len(texts) {
			return nil, fmt.Errorf("embed category paths: got %d vectors for %d texts", len(vecs), len(texts))
		}
		sp.vecs[sec] = vecs
	}
	sp.model = emb.ModelID() // after the calls: a remote embedder knows its model once it has answered
	return sp, nil
}

// pick returns the space to rank a batch in: the primary's when it is ready
// (starting its preparation in the background when it is not), else the fallback's.
func (s *shortlister) pick(ctx context.Context) *space {
	if s.fallback == nil {
		for _, sp := range s.spaces {
			return sp
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Before(s.retryAt) {
		return s.fallbackSpace
	}
	if sp := s.spaces[s.primary.ModelID()]; sp != nil {
		return sp
	}
	if !s.building {
		s.building = true
		go s.prepare(context.WithoutCancel(ctx))
	}
	return s.fallbackSpace
}

// prepare builds the primary's space in the background.
func (s *shortlister) prepare(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.buildTimeout)
	defer cancel()
	sp, err := s.build(ctx, s.primary)
	s.mu.Lock()
	s.building = false
	if err == nil {
		s.spaces = map[string]*space{sp.model: sp} // an older model's space is of no further use
	}
	s.mu.Unlock()
	if err != nil {
		s.failed(ctx, err)
		return
	}
	s.log.InfoContext(ctx, "shortlist uses the embedder service", "model", sp.model)
	s.setFallback(ctx, false, nil)
}

// failed puts the primary on cool-down and reports the fallback.
func (s *shortlister) failed(ctx context.Context, err error) {
	s.mu.Lock()
	s.retryAt = time.Now().Add(s.cooldown)
	s.mu.Unlock()
	s.log.WarnContext(ctx, "embedder service not usable for the shortlist; using word vectors", "err", err, "retry_in", s.cooldown)
	s.setFallback(ctx, true, err)
}

func (s *shortlister) setFallback(ctx context.Context, on bool, reason error) {
	s.mu.Lock()
	changed := s.onFallback != on
	s.onFallback = on
	s.mu.Unlock()
	if changed {
		s.status(ctx, on, reason)
	}
}

func (s *shortlister) emailVectors(ctx context.Context, sp *space, batch []prepared) ([][]float32, error) {
	out := make([][]float32, len(batch))
	var texts []string
	var idx []int
	dim := 0
	for _, vs := range sp.vecs {
		if len(vs) > 0 {
			dim = len(vs[0])
			break
		}
	}
	for i, p := range batch {
		if p.email.VectorModel == sp.model && sp.model != "" {
			v := make([]float32, dim)
			n := 0
			for _, c := range p.email.Chunks {
				if len(c.Vector) == dim {
					for j, x := range c.Vector {
						v[j] += x
					}
					n++
				}
			}
			if n > 0 {
				vec.Normalize(v)
				out[i] = v
				continue
			}
		}
		texts = append(texts, p.subject+". "+p.excerpt)
		idx = append(idx, i)
	}
	if len(texts) > 0 {
		vecs, err := sp.emb.Embed(ctx, texts)
		if err != nil {
			return nil, fmt.Errorf("embed emails for shortlist: %w", err)
		}
		if len(vecs) != len(texts) {
			return nil, fmt.Errorf("embed emails for shortlist: got %d vectors for %d texts", len(vecs), len(texts))
		}
		if m := sp.emb.ModelID(); m != sp.model {
			return nil, fmt.Errorf("embed emails for shortlist: the embedder now runs %q, the category vectors are of %q", m, sp.model)
		}
		for k, i := range idx {
			out[i] = vecs[k]
		}
	}
	return out, nil
}

// forBatch returns the candidates per section for a batch, and the model id
// of the space they were ranked in.
func (s *shortlister) forBatch(ctx context.Context, batch []prepared) (map[taxonomy.Section][]*taxonomy.Category, string, error) {
	sp := s.pick(ctx)
	out, err := s.rank(ctx, sp, batch)
	if err != nil && s.fallback != nil && sp != s.fallbackSpace {
		s.failed(ctx, err)
		sp = s.fallbackSpace
		out, err = s.rank(ctx, sp, batch)
	}
	if err != nil {
		return nil, "", err
	}
	return out, sp.model, nil
}

func (s *shortlister) rank(ctx context.Context, sp *space, batch []prepared) (map[taxonomy.Section][]*taxonomy.Category, error) {
	out := map[taxonomy.Section][]*taxonomy.Category{}
	var evs [][]float32
	for sec, sc := range s.sections {
		if sc.whole {
			out[sec] = sc.cats
			continue
		}
		if evs == nil {
			var err error
			if evs, err = s.emailVectors(ctx, sp, batch); err != nil {
				return nil, err
			}
		}
		cvs := sp.vecs[sec]
		// Each email's categories ranked by similarity.
		ranked := make([][]int, len(evs))
		for i, ev := range evs {
			scores := make([]float64, len(sc.cats))
			order := make([]int, len(sc.cats))
			for j, cv := range cvs {
				scores[j] = vec.Cosine(ev, cv)
				order[j] = j
			}
			sort.Slice(order, func(a, b int) bool { return scores[order[a]] > scores[order[b]] })
			ranked[i] = order
		}
		chosen := map[int]bool{}
		for r := 0; len(chosen) < s.max && r < len(sc.cats); r++ {
			for i := range ranked {
				if len(chosen) >= s.max {
					break
				}
				chosen[ranked[i][r]] = true
			}
		}
		list := make([]*taxonomy.Category, 0, len(chosen))
		for j := range chosen {
			list = append(list, sc.cats[j])
		}
		sort.Slice(list, func(a, b int) bool { return sc.pos[list[a].ID] < sc.pos[list[b].ID] })
		out[sec] = list
	}
	return out, nil
}

// model is the id of the embedding model the next batch is ranked with.
func (s *shortlister) model() string {
	if s.fallback == nil {
		for m := range s.spaces {
			return m
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Now().Before(s.retryAt) {
		return s.fallbackSpace.model
	}
	if sp := s.spaces[s.primary.ModelID()]; sp != nil {
		return sp.model
	}
	return s.fallbackSpace.model
}
