package llm

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/ownyou/home/pkg/vec"

	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/services/classifier/core"
)

// shortlister picks, per batch and section, the candidate categories offered
// to the model: whole small sections and the fact sections, and for large ones (interests, purchase
// intent, content) the categories nearest to the batch's emails by embedding
// similarity, taken round-robin over the emails so every email gets its best
// matches. Any category of the taxonomy can therefore be chosen.
type shortlister struct {
	emb      core.Embedder
	max      int
	sections map[taxonomy.Section]*sectionCands
}

type sectionCands struct {
	cats  []*taxonomy.Category
	vecs  [][]float32
	whole bool
	pos   map[string]int
}

func newShortlister(ctx context.Context, emb core.Embedder, tax *taxonomy.Set, sections []taxonomy.Section, max int) (*shortlister, error) {
	s := &shortlister{emb: emb, max: max, sections: map[taxonomy.Section]*sectionCands{}}
	for _, sec := range sections {
		t := tax.Audience
		if sec == taxonomy.SectionContent {
			t = tax.Content
		}
		cats := t.InSection(sec)
		if len(cats) == 0 {
			return nil, fmt.Errorf("%w: section %q has no categories", ErrConfig, sec)
		}
		sc := &sectionCands{cats: cats, whole: len(cats) <= max || factSections[sec], pos: map[string]int{}}
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
			vecs, err := emb.Embed(ctx, texts)
			if err != nil {
				return nil, fmt.Errorf("embed category paths: %w", err)
			}
			if len(vecs) != len(texts) {
				return nil, fmt.Errorf("embed category paths: got %d vectors for %d texts", len(vecs), len(texts))
			}
			sc.vecs = vecs
		}
		s.sections[sec] = sc
	}
	return s, nil
}

func (s *shortlister) emailVectors(ctx context.Context, batch []prepared) ([][]float32, error) {
	out := make([][]float32, len(batch))
	var texts []string
	var idx []int
	model, dim := s.emb.ModelID(), s.emb.Dim()
	for i, p := range batch {
		if p.email.VectorModel == model {
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
		vecs, err := s.emb.Embed(ctx, texts)
		if err != nil {
			return nil, fmt.Errorf("embed emails for shortlist: %w", err)
		}
		if len(vecs) != len(texts) {
			return nil, fmt.Errorf("embed emails for shortlist: got %d vectors for %d texts", len(vecs), len(texts))
		}
		for k, i := range idx {
			out[i] = vecs[k]
		}
	}
	return out, nil
}

func (s *shortlister) forBatch(ctx context.Context, batch []prepared) (map[taxonomy.Section][]*taxonomy.Category, error) {
	out := map[taxonomy.Section][]*taxonomy.Category{}
	var evs [][]float32
	for sec, sc := range s.sections {
		if sc.whole {
			out[sec] = sc.cats
			continue
		}
		if evs == nil {
			var err error
			if evs, err = s.emailVectors(ctx, batch); err != nil {
				return nil, err
			}
		}
		// Each email's categories ranked by similarity.
		ranked := make([][]int, len(evs))
		for i, ev := range evs {
			scores := make([]float64, len(sc.cats))
			order := make([]int, len(sc.cats))
			for j, cv := range sc.vecs {
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
