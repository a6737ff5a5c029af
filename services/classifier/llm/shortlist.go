package llm

import (
	"context"
	"fmt"
	"sort"
	"strings"
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
	max      int
	sections map[taxonomy.Section]*sectionCands
	texts    map[taxonomy.Section][]string // category path texts of the ranked sections

	// base is the space always at hand: the fallback embedder's, or the only
	// embedder's when there is no fallback (then primary is nil).
	base    *space
	primary *core.Preferred[*space]
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

// spaceBuildTimeout bounds embedding every category path with the primary embedder.
const spaceBuildTimeout = 15 * time.Minute

func newShortlister(ctx context.Context, cfg Config) (*shortlister, error) {
	s := &shortlister{max: cfg.Shortlist, sections: map[taxonomy.Section]*sectionCands{}, texts: map[taxonomy.Section][]string{}}
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
	first := cfg.Embedder
	if cfg.FallbackEmbedder != nil {
		first = cfg.FallbackEmbedder
		s.primary = &core.Preferred[*space]{
			Primary: cfg.Embedder, Build: s.build, Status: cfg.EmbedderStatus, Log: cfg.Logger, User: "shortlist",
			Cooldown: cfg.EmbedderRetry, BuildTimeout: spaceBuildTimeout,
		}
	}
	var err error
	if s.base, err = s.build(ctx, first); err != nil {
		return nil, err
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
// (starting its preparation in the background when it is not), else the base.
func (s *shortlister) pick(ctx context.Context) *space {
	if s.primary != nil {
		if sp, ok := s.primary.Get(ctx); ok {
			return sp
		}
	}
	return s.base
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
	if err != nil && sp != s.base {
		s.primary.Failed(ctx, err)
		sp = s.base
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
	if s.primary != nil {
		if _, m, ok := s.primary.Ready(); ok {
			return m
		}
	}
	return s.base.model
}
