// Package local is the classifier backend that needs no network: zero-shot
// classification by embedding similarity between an email and taxonomy
// category descriptions, with calibrated thresholds, plus sender/keyword rules
// for the cases they clearly decide (receipts, bookings, newsletters).
//
// It works with any core.Embedder: MiniLM through the embedder service on a
// real install, static word vectors (pkg/wordvec) in lite mode and in tests.
// A Backend is immutable after New and safe for concurrent use.
package local

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/ownyou/home/pkg/vec"

	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/services/classifier/core"
)

// PromptVersion versions the descriptions, lexicon, thresholds and rules; it is stored
// with every classification as provenance.
const PromptVersion = "local-v2"

// Name is the backend name recorded in provenance.
const Name = "local"

// Config tunes the backend. Zero values take the calibrated defaults.
type Config struct {
	Embedder   core.Embedder
	Taxonomies *taxonomy.Set
	// MinScore is the cosine an email must reach with a Tier-1 description
	// for the category to be assigned at all.
	MinScore float64
	// Margin admits further Tier-1 categories scoring within Margin of the best.
	Margin float64
	// MaxPerSection caps the categories per email and section.
	MaxPerSection int
}

// Calibrated defaults (README: "Local backend"), set on the labeled eval set
// with the word-vector embedder.
const (
	DefaultMinScore      = 0.35
	DefaultMargin        = 0.02
	DefaultMaxPerSection = 2
)

// sectionIndex holds the category vectors of one section.
type sectionIndex struct {
	section taxonomy.Section
	tax     *taxonomy.Taxonomy
	tops    []*node // Tier-1 categories with their whole-subtree description
}

type node struct {
	cat     *taxonomy.Category
	vec     []float32
	nameVec []float32 // the category's own name
	terms   []term    // hand-written typical words and phrases (lexicon.json)
	kids    []*node   // descendants, each described by its own path
}

// Backend classifies emails locally.
type Backend struct {
	cfg      Config
	sections []*sectionIndex
}

// ErrConfig reports a missing dependency.
var ErrConfig = errors.New("local classifier: bad config")

// classifiedSections are the sections the local backend assigns: content
// topics, interests and purchase intent. Demographic, household and finance
// segments need reasoning over facts that similarity cannot give.
var classifiedSections = []taxonomy.Section{taxonomy.SectionContent, taxonomy.SectionInterests, taxonomy.SectionPurchaseIntent}

// excludedTops are Tier-1 categories the local backend never assigns:
// "Genres" describes the form of media (comedy, documentary), not what a
// message is about, and "Sensitive Topics" must never be guessed by similarity.
var excludedTops = map[string]bool{"Genres": true, "Sensitive Topics": true}

// fallbackTops are Tier-1 categories whose typical words (sale, delivered,
// parcel) occur in mail about any purchase: their lexicon hits count half, so
// the merchant and what was bought decide the topic when the email says, and
// they win only when it does not ("your package has been delivered").
var fallbackTops = map[string]float64{"Shopping": 0.5}

// New embeds the category descriptions of every classified section once.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if cfg.Embedder == nil || cfg.Taxonomies == nil || cfg.Taxonomies.Audience == nil || cfg.Taxonomies.Content == nil {
		return nil, fmt.Errorf("%w: embedder and taxonomies are required", ErrConfig)
	}
	if cfg.MinScore == 0 {
		cfg.MinScore = DefaultMinScore
	}
	if cfg.Margin == 0 {
		cfg.Margin = DefaultMargin
	}
	if cfg.MaxPerSection == 0 {
		cfg.MaxPerSection = DefaultMaxPerSection
	}
	b := &Backend{cfg: cfg}
	lex, err := loadLexicon()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	for _, s := range classifiedSections {
		tax := cfg.Taxonomies.Audience
		if s == taxonomy.SectionContent {
			tax = cfg.Taxonomies.Content
		}
		idx, err := buildSection(ctx, cfg.Embedder, tax, s, lex)
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", s, err)
		}
		b.sections = append(b.sections, idx)
	}
	return b, nil
}

// Label returns the words describing a category: its tier path without the
// audience section header ("Interest", "Purchase Intent*").
func Label(tax *taxonomy.Taxonomy, c *taxonomy.Category) string {
	path := c.Path
	if tax.Kind == taxonomy.Audience && len(path) > 1 {
		path = path[1:]
	}
	return strings.Join(path, " ")
}

func buildSection(ctx context.Context, emb core.Embedder, tax *taxonomy.Taxonomy, s taxonomy.Section, lex lexicon) (*sectionIndex, error) {
	cats := tax.InSection(s)
	idx := &sectionIndex{section: s, tax: tax}
	byTop := map[string]*node{}
	var texts []string
	var owners []*node
	for _, c := range cats {
		top := tax.Top(c.ID)
		if top == nil || excludedTops[top.Name] {
			continue
		}
		tn := byTop[top.ID]
		if tn == nil {
			tn = &node{cat: top, terms: lex.terms(s, top.Name)}
			byTop[top.ID] = tn
			idx.tops = append(idx.tops, tn)
		}
		if c.ID != top.ID {
			n := &node{cat: c}
			tn.kids = append(tn.kids, n)
			texts = append(texts, Label(tax, c))
			owners = append(owners, n)
		}
	}
	for name := range lex[s] {
		found := false
		for _, tn := range idx.tops {
			found = found || strings.ToLower(tn.cat.Name) == name
		}
		if !found {
			return nil, fmt.Errorf("%w: lexicon names %q, not a Tier-1 of %s", ErrConfig, name, s)
		}
	}
	// A Tier-1 description is its name, its lexicon terms and the names of its subtree: "Travel"
	// alone says little; "Travel Air Travel Hotels Cruises Rail …" says a lot.
	for _, tn := range idx.tops {
		var b strings.Builder
		name := Label(tax, tn.cat)
		b.WriteString(name + ". " + name + ". ")
		b.WriteString(termsText(tn.terms))
		for _, k := range tn.kids {
			b.WriteString(k.cat.Name)
			b.WriteString(". ")
		}
		texts = append(texts, b.String())
		owners = append(owners, tn)
	}
	vecs, err := emb.Embed(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("embed descriptions: %w", err)
	}
	if len(vecs) != len(texts) {
		return nil, fmt.Errorf("embed descriptions: got %d vectors for %d texts", len(vecs), len(texts))
	}
	for i, n := range owners {
		n.vec = vecs[i]
	}
	var names []string
	var nodes []*node
	for _, tn := range idx.tops {
		names = append(names, tn.cat.Name)
		nodes = append(nodes, tn)
		for _, k := range tn.kids {
			names = append(names, k.cat.Name)
			nodes = append(nodes, k)
		}
	}
	nv, err := emb.Embed(ctx, names)
	if err != nil {
		return nil, fmt.Errorf("embed names: %w", err)
	}
	for i, n := range nodes {
		n.nameVec = nv[i]
	}
	return idx, nil
}

// Name is "local".
func (b *Backend) Name() string { return Name }

// Classify assigns content topics, interests and purchase intent to each
// email. It reuses an email's stored chunk vectors when they were made by the
// same embedding model, and embeds subject and text otherwise.
func (b *Backend) Classify(ctx context.Context, emails []core.Email) ([]core.Classification, error) {
	vecs, err := b.emailVectors(ctx, emails)
	if err != nil {
		return nil, err
	}
	var out []core.Classification
	for i, e := range emails {
		sig := detectSignals(e)
		var interest *node // the email's best interest, which intent should agree with
		for _, idx := range b.sections {
			if idx.section == taxonomy.SectionPurchaseIntent && !sig.transactional {
				continue // intent needs an order, booking, quote or appointment
			}
			cls, best := b.classifySection(idx, e, vecs[i], sig, interest)
			if idx.section == taxonomy.SectionInterests {
				interest = best
			}
			out = append(out, cls...)
		}
	}
	return out, nil
}

// emailVector is an email's embedding(s): the whole message and its subject.
type emailVector struct {
	whole   []float32
	subject []float32
	words   [][]float32 // content-word vectors when the embedder has them
	weights []float64
	tokens  tokenText // subject, sender and cleaned body, for lexicon terms
}

// WordVectors is implemented by static word-vector embedders (pkg/wordvec):
// with it, the backend also lets each word of the email vote for the
// categories it is close to, which a single averaged vector blurs.
type WordVectors interface {
	Vector(word string) ([]float32, bool)
	Weight(word string) float64
}

func (b *Backend) emailVectors(ctx context.Context, emails []core.Email) ([]emailVector, error) {
	out := make([]emailVector, len(emails))
	var texts []string
	var slots []*[]float32
	model := b.cfg.Embedder.ModelID()
	bodies := make([]string, len(emails))
	for i, e := range emails {
		bodies[i] = cleanText(e.Text)
		out[i].tokens = newTokenText(tokenize(e.Subject + " . " + senderWords(e.From) + " . " + bodies[i]))
		if e.VectorModel == model && hasVectors(e.Chunks) {
			out[i].whole = meanVector(e.Chunks, b.cfg.Embedder.Dim())
		} else {
			subj := strings.Join(contentTokens(e.Subject), " ")
			texts = append(texts, subj+". "+subj+". "+strings.Join(contentTokens(bodies[i]), " "))
			slots = append(slots, &out[i].whole)
		}
		texts = append(texts, e.Subject)
		slots = append(slots, &out[i].subject)
	}
	if len(texts) == 0 {
		return out, nil
	}
	vecs, err := b.cfg.Embedder.Embed(ctx, texts)
	if err != nil {
		return nil, fmt.Errorf("embed emails: %w", err)
	}
	if len(vecs) != len(texts) {
		return nil, fmt.Errorf("embed emails: got %d vectors for %d texts", len(vecs), len(texts))
	}
	for i, s := range slots {
		*s = vecs[i]
	}
	if wv, ok := b.cfg.Embedder.(WordVectors); ok {
		for i, e := range emails {
			seen := map[string]bool{}
			for _, w := range contentTokens(e.Subject + " " + bodies[i]) {
				if seen[w] {
					continue
				}
				seen[w] = true
				v, ok := wv.Vector(w)
				if !ok {
					continue
				}
				out[i].words = append(out[i].words, v)
				out[i].weights = append(out[i].weights, wv.Weight(w))
			}
		}
	}
	return out, nil
}

func hasVectors(chunks []core.Chunk) bool {
	for _, c := range chunks {
		if len(c.Vector) > 0 {
			return true
		}
	}
	return false
}

func meanVector(chunks []core.Chunk, dim int) []float32 {
	v := make([]float32, dim)
	for _, c := range chunks {
		if len(c.Vector) != dim {
			continue
		}
		for j, x := range c.Vector {
			v[j] += x
		}
	}
	vec.Normalize(v)
	return v
}

type scored struct {
	n     *node
	score float64
}

func (b *Backend) classifySection(idx *sectionIndex, e core.Email, ev emailVector, sig signals, interest *node) ([]core.Classification, *node) {
	var tops []scored
	for _, tn := range idx.tops {
		s := tierScore(ev.whole, tn) + voteW*vote(ev, tn) + lexW*lexWeight(tn.cat)*lexScore(lexHits(ev.tokens, tn.terms))
		if interest != nil {
			s += agreeW * vec.Cosine(tn.nameVec, interest.nameVec)
		}
		s += sig.boost(idx.tax, tn.cat)
		tops = append(tops, scored{tn, s})
	}
	sort.Slice(tops, func(i, j int) bool { return tops[i].score > tops[j].score })
	var out []core.Classification
	var best *node
	if len(tops) > 0 && tops[0].score >= b.cfg.MinScore {
		best = tops[0].n
	}
	for i, t := range tops {
		if i >= b.cfg.MaxPerSection || t.score < b.cfg.MinScore || t.score < tops[0].score-b.cfg.Margin {
			break
		}
		cat, leafScore := t.n.cat, t.score
		// Descend to the best child when it is a clear match.
		for _, k := range t.n.kids {
			if ks := vec.Cosine(ev.whole, k.vec); ks > b.cfg.MinScore+0.15 && ks > leafScore-0.02 {
				cat, leafScore = k.cat, ks
			}
		}
		conf := calibrate(t.score, b.cfg.MinScore)
		if i > 0 {
			conf *= 0.8
		}
		kind := core.EvidenceContextual
		if sig.ruleHit(idx.tax, t.n.cat) {
			kind = core.EvidenceExplicit
		}
		if sig.newsletter {
			conf *= 0.8 // reading about a topic is weaker than acting on it
		}
		out = append(out, core.Classification{
			EmailID: e.ID, Taxonomy: idx.tax.Kind, CategoryID: cat.ID, Section: idx.section,
			Confidence: conf, EvidenceType: kind, Evidence: excerpt(e),
			Backend: Name, Model: b.cfg.Embedder.ModelID(), PromptVersion: PromptVersion,
		})
	}
	return out, best
}

// calibrate maps a cosine score above the threshold to a strength in [0.3, 0.9].
func calibrate(score, min float64) float64 {
	x := (score - min) / 0.25
	if x < 0 {
		x = 0
	}
	if x > 1 {
		x = 1
	}
	return 0.3 + 0.6*x
}

func excerpt(e core.Email) string {
	s := strings.TrimSpace(e.Subject)
	if s == "" {
		s = strings.TrimSpace(e.Text)
	}
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200])
	}
	return s
}

// tierScore blends the Tier-1 description's similarity with the mean of its
// best-matching descendants: a broad subtree alone would attract everything.
func tierScore(v []float32, tn *node) float64 {
	own := vec.Cosine(v, tn.vec)
	if len(tn.kids) == 0 {
		return own
	}
	ks := make([]float64, len(tn.kids))
	for i, k := range tn.kids {
		ks[i] = vec.Cosine(v, k.vec)
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(ks)))
	n := min(kidsK, len(ks))
	var sum float64
	for _, x := range ks[:n] {
		sum += x
	}
	return ownW*own + (1-ownW)*sum/float64(n)
}

// Scoring constants, calibrated on the labeled eval set with the word-vector
// embedder (README: "Local backend"): a Tier-1's score is ownW·(its subtree
// description) + (1−ownW)·(mean of its kidsK best children), plus voteW·vote
// where each email word closer than voteT to a category name votes for it.
const (
	kidsK = 3
	ownW  = 0.7
	voteW = 3.0
	voteT = 0.75
	// agreeW pulls purchase intent towards the email's interest: an order
	// from a travel site is travel intent (name similarity of the two Tier-1s).
	agreeW = 0.3
	// lexW weighs the lexicon hits (lexicon.json) against the similarities.
	lexW = 0.2
)

// lexScore turns a count of lexicon hits into a score with diminishing
// returns: the first typical word says much, the tenth little more.
func lexScore(hits int) float64 {
	return math.Log1p(float64(hits))
}

// lexWeight is 1, or less for a fallback Tier-1.
func lexWeight(c *taxonomy.Category) float64 {
	if w, ok := fallbackTops[c.Name]; ok {
		return w
	}
	return 1
}

// vote is the SIF-weighted share of the email's words that lie close to v.
func vote(ev emailVector, tn *node) float64 {
	var sum, tot float64
	for i, w := range ev.words {
		tot += ev.weights[i]
		best := vec.Cosine(w, tn.nameVec)
		for _, k := range tn.kids {
			if c := vec.Cosine(w, k.nameVec); c > best {
				best = c
			}
		}
		if c := best - voteT; c > 0 {
			sum += ev.weights[i] * c
		}
	}
	if tot == 0 {
		return 0
	}
	return sum / tot
}

func tokenize(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '\'')
	})
}
