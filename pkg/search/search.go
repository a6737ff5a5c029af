// Package search answers queries over the user's mail with two retrievers —
// Postgres full-text search (ranked tsvector matches, highlighted snippets)
// and vector kNN over chunk embeddings (pgvector HNSW, cosine) — fused by
// reciprocal rank fusion, with filters by date, sender and IAB category.
// A Searcher is safe for concurrent use.
package search

import (
	"context"
	"errors"
	"fmt"
	"html"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgvector/pgvector-go"
)

// Mode selects the retrievers.
type Mode string

// Search modes.
const (
	Hybrid   Mode = "hybrid"
	Semantic Mode = "semantic"
	Keyword  Mode = "keyword"
)

// Retriever names reported per hit.
const (
	RetrieverKeyword  = "keyword"
	RetrieverSemantic = "semantic"
)

// RRFK is the reciprocal rank fusion constant: score = Σ 1/(RRFK + rank).
const RRFK = 60

// Errors callers map to client errors (HTTP 400).
var (
	ErrEmptyQuery = errors.New("empty query")
	ErrBadMode    = errors.New("mode must be hybrid, semantic or keyword")
	ErrBadRange   = errors.New("after must be before before")
)

// QueryEmbedder embeds query text with the same model as the stored vectors;
// ModelID must be valid after a successful Embed.
type QueryEmbedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	ModelID() string
}

// Query is one search request. Zero filter fields do not filter.
type Query struct {
	Text string
	Mode Mode
	// Limit is the number of hits (default 20, at most 100).
	Limit int
	// From matches a substring of the sender's address or name, case-insensitively.
	From string
	// After and Before bound the mail's date (sort_at): After ≤ date < Before.
	After, Before time.Time
	// Category keeps mail classified in this IAB category id (any taxonomy).
	Category string
}

// Hit is one email found.
type Hit struct {
	EmailID  string    `json:"email_id"`
	Subject  string    `json:"subject"`
	FromAddr string    `json:"from_addr"`
	FromName string    `json:"from_name"`
	Date     time.Time `json:"date"`
	// Snippet is plain text; SnippetHTML is the same, HTML-escaped, with
	// matched words wrapped in <mark>…</mark>.
	Snippet     string `json:"snippet"`
	SnippetHTML string `json:"snippet_html"`
	// Score is the fused RRF score (hybrid) or the single retriever's score.
	Score float64 `json:"score"`
	// Retrievers lists which retrievers found the email, with their ranks (1-based).
	Retrievers   []string `json:"retrievers"`
	KeywordRank  int      `json:"keyword_rank,omitempty"`
	SemanticRank int      `json:"semantic_rank,omitempty"`
	// Similarity is the cosine similarity of the best chunk (semantic hits).
	Similarity float64 `json:"similarity,omitempty"`

	chunkStart, chunkEnd int // best chunk's character range in the body
}

// Result is a page of hits.
type Result struct {
	Query string `json:"query"`
	Mode  Mode   `json:"mode"`
	Model string `json:"model,omitempty"`
	Hits  []Hit  `json:"hits"`
	// Warnings explain degraded answers, e.g. semantic retrieval unavailable.
	Warnings []string `json:"warnings,omitempty"`
	// TimingsMS is the time spent per phase: embed, semantic, keyword, details.
	TimingsMS map[string]float64 `json:"timings_ms"`
}

// Config tunes retrieval.
type Config struct {
	// Candidates is how many results each retriever contributes before fusion
	// (default 50; never fewer than the query's Limit).
	Candidates int
	// EfSearch is pgvector's hnsw.ef_search (default 80).
	EfSearch int
	// TextConfig is the Postgres text search configuration (default english).
	TextConfig string
	// CommonTermDocs is how many mails a term must occur in to get a
	// common-term list (default 2000); CommonTermTop is how many mails each
	// list keeps (default 500). See RefreshTermLists.
	CommonTermDocs, CommonTermTop int
	// Floor is the cosine similarity below which a model's vector hits are
	// dropped as unrelated (default DefaultFloor): the nearest neighbours
	// of a query always exist, related or not.
	Floor func(model string) float64
	// SemanticWeight scales the semantic list's share of hybrid fusion
	// (default DefaultSemanticWeight).
	SemanticWeight float64
}

// DefaultFloor is the similarity floor per embedding model, chosen on the
// search evaluation's tuning set (tools/eval/search) for the lite model;
// MiniLM's is the usual level of unrelated sentence pairs for it (its
// weights are not available where OwnYou is developed, so not tuned here).
// Other models (test graphs) have none.
func DefaultFloor(model string) float64 {
	switch {
	case strings.HasPrefix(model, "wink-embeddings"):
		return liteFloor
	case strings.HasPrefix(model, "all-minilm-l6-v2"):
		return 0.2
	}
	return -1
}

// Tuned values (tools/eval/search, tuning split).
const (
	liteFloor = 0.5
	// DefaultSemanticWeight is the semantic list's weight in fusion.
	DefaultSemanticWeight = 1.0
)

// Searcher runs queries against the store.
type Searcher struct {
	pool *pgxpool.Pool
	emb  QueryEmbedder
	cfg  Config
}

// New returns a Searcher; emb may be nil, then only keyword search works.
func New(pool *pgxpool.Pool, emb QueryEmbedder, cfg Config) *Searcher {
	if cfg.Candidates <= 0 {
		cfg.Candidates = 50
	}
	if cfg.EfSearch <= 0 {
		cfg.EfSearch = 80
	}
	if cfg.TextConfig == "" {
		cfg.TextConfig = "english"
	}
	if cfg.CommonTermDocs <= 0 {
		cfg.CommonTermDocs = 2000
	}
	if cfg.CommonTermTop <= 0 {
		cfg.CommonTermTop = 500
	}
	if cfg.Floor == nil {
		cfg.Floor = DefaultFloor
	}
	if cfg.SemanticWeight <= 0 {
		cfg.SemanticWeight = DefaultSemanticWeight
	}
	return &Searcher{pool: pool, emb: emb, cfg: cfg}
}

// Normalize validates q and applies defaults.
func Normalize(q Query) (Query, error) {
	q.Text = strings.TrimSpace(q.Text)
	if q.Text == "" {
		return q, ErrEmptyQuery
	}
	if utf8.RuneCountInString(q.Text) > 1000 {
		q.Text = string([]rune(q.Text)[:1000])
	}
	switch q.Mode {
	case "":
		q.Mode = Hybrid
	case Hybrid, Semantic, Keyword:
	default:
		return q, ErrBadMode
	}
	if q.Limit <= 0 {
		q.Limit = 20
	}
	q.Limit = min(q.Limit, 100)
	if !q.After.IsZero() && !q.Before.IsZero() && !q.After.Before(q.Before) {
		return q, ErrBadRange
	}
	return q, nil
}

type ranked struct {
	id     string
	score  float64 // retriever's own score (ts_rank or cosine similarity)
	phrase bool    // keyword: the mail contains the query as an exact phrase
	// semantic: character range of the best chunk in body_text (0,0 = subject)
	start, end int
}

// Search runs q. In hybrid mode a failing embedder degrades to keyword
// results with a warning rather than failing the request.
func (s *Searcher) Search(ctx context.Context, q Query) (Result, error) {
	q, err := Normalize(q)
	if err != nil {
		return Result{}, err
	}
	res := Result{Query: q.Text, Mode: q.Mode, Hits: []Hit{}, TimingsMS: map[string]float64{}}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	// The semantic leg (embed the query, then kNN) runs beside the keyword
	// leg on its own connection: a query costs the slower leg, not the sum.
	var (
		kw, sem          []ranked
		semErr           error
		embedT, semT     time.Duration
		semDone          = make(chan struct{})
		legCtx, stopLegs = context.WithCancel(ctx)
	)
	defer stopLegs()
	switch {
	case q.Mode == Keyword:
		close(semDone)
	case s.emb == nil:
		close(semDone)
		if q.Mode == Semantic {
			return res, errors.New("semantic search: no embedder configured")
		}
		res.Warnings = append(res.Warnings, "semantic search unavailable: no embedder configured")
	default:
		go func() {
			defer close(semDone)
			sem, embedT, semT, semErr = s.semantic(legCtx, q)
		}()
	}
	if q.Mode != Semantic {
		t0 := time.Now()
		kw, err = s.keyword(ctx, q)
		if err != nil {
			stopLegs()
			<-semDone
			return res, err
		}
		res.TimingsMS["keyword"] = ms(time.Since(t0))
	}
	<-semDone
	if q.Mode != Keyword && s.emb != nil {
		res.TimingsMS["embed"], res.TimingsMS["semantic"] = ms(embedT), ms(semT)
		res.Model = s.emb.ModelID()
		if semErr != nil {
			if q.Mode == Semantic || ctx.Err() != nil {
				return res, semErr
			}
			res.Warnings = append(res.Warnings, "semantic search unavailable: "+semErr.Error())
			sem = nil
		}
	}
	fused := fuse(kw, sem, q.Mode, s.cfg.SemanticWeight)
	if len(fused) > q.Limit {
		fused = fused[:q.Limit]
	}
	if len(fused) == 0 {
		return res, nil
	}
	t0 := time.Now()
	hits, err := s.details(ctx, q, fused)
	if err != nil {
		return res, err
	}
	res.TimingsMS["details"] = ms(time.Since(t0))
	res.Hits = hits
	return res, nil
}

// fuse merges the ranked lists with reciprocal rank fusion; single-retriever
// modes keep that retriever's order and score.
func fuse(kw, sem []ranked, mode Mode, semWeight float64) []Hit {
	byID := map[string]*Hit{}
	var order []*Hit
	get := func(id string) *Hit {
		h, ok := byID[id]
		if !ok {
			h = &Hit{EmailID: id}
			byID[id] = h
			order = append(order, h)
		}
		return h
	}
	phrase := map[string]bool{}
	for i, r := range kw {
		h := get(r.id)
		phrase[r.id] = r.phrase
		h.KeywordRank = i + 1
		h.Retrievers = append(h.Retrievers, RetrieverKeyword)
		h.Score += 1 / float64(RRFK+i+1)
		if mode == Keyword {
			h.Score = r.score
		}
	}
	for i, r := range sem {
		h := get(r.id)
		h.SemanticRank = i + 1
		h.Similarity = r.score
		h.chunkStart, h.chunkEnd = r.start, r.end
		h.Retrievers = append(h.Retrievers, RetrieverSemantic)
		h.Score += semWeight / float64(RRFK+i+1)
		if mode == Semantic {
			h.Score = r.score
		}
	}
	if mode == Hybrid {
		// An exact-phrase match is the strongest signal a user can give;
		// rank-only fusion would let paraphrases outvote it.
		sort.SliceStable(order, func(i, j int) bool {
			if pi, pj := phrase[order[i].EmailID], phrase[order[j].EmailID]; pi != pj {
				return pi
			}
			if order[i].Score != order[j].Score {
				return order[i].Score > order[j].Score
			}
			// Tie: prefer the keyword rank (exact words beat paraphrase).
			return rankOrMax(order[i].KeywordRank) < rankOrMax(order[j].KeywordRank)
		})
	}
	out := make([]Hit, len(order))
	for i, h := range order {
		out[i] = *h
	}
	return out
}

func rankOrMax(r int) int {
	if r == 0 {
		return 1 << 30
	}
	return r
}

// filterSQL appends WHERE conditions on emails alias e for q's filters.
func filterSQL(q Query, args *[]any) string {
	var conds []string
	add := func(cond string, v any) {
		*args = append(*args, v)
		conds = append(conds, strings.ReplaceAll(cond, "$?", fmt.Sprintf("$%d", len(*args))))
	}
	if q.From != "" {
		// Served by the trigram index emails_from_trgm_idx (migration 00200).
		add(`(e.from_addr || ' ' || e.from_name) ILIKE $?`, "%"+likeEscape(q.From)+"%")
	}
	if c := dateSQL("e.sort_at", q, args); c != "" {
		conds = append(conds, c)
	}
	if q.Category != "" {
		add(`EXISTS (SELECT 1 FROM classifications c WHERE c.email_id = e.id AND c.category_id = $?)`, q.Category)
	}
	if len(conds) == 0 {
		return ""
	}
	return " AND " + strings.Join(conds, " AND ")
}

// dateSQL is q's date range as conditions on col (After ≤ col < Before),
// or "" when q has none; the bounds are appended to args.
func dateSQL(col string, q Query, args *[]any) string {
	var conds []string
	if !q.After.IsZero() {
		*args = append(*args, q.After)
		conds = append(conds, fmt.Sprintf("%s >= $%d", col, len(*args)))
	}
	if !q.Before.IsZero() {
		*args = append(*args, q.Before)
		conds = append(conds, fmt.Sprintf("%s < $%d", col, len(*args)))
	}
	return strings.Join(conds, " AND ")
}

func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// keyword ranks full-text matches: mails with every word first —
// exact-phrase matches first among them, then by ts_rank_cd (cover density,
// so close words beat scattered ones) — then, for a query of several plain
// words, mails with only some of them, more of the words first. Every
// all-words match is ranked, so the best hits are found however common the
// words are and however old the mail; the cost grows with the number of
// matches (the GIN index finds them, ranking reads each one's tsvector,
// kept in the heap row by migration 00210). A query made only of very
// common words ranks the common-term lists instead (terms.go) when they can
// vouch for the answer; so do the common words of a partial match.
func (s *Searcher) keyword(ctx context.Context, q Query) ([]ranked, error) {
	n := max(s.cfg.Candidates, q.Limit)
	var out []ranked
	// The plan and the lists it relies on are read in one snapshot, so a
	// refresh committing in between cannot pair one list's bound with
	// another list's entries.
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		plan, ok, err := s.planTerms(ctx, tx, q)
		if err != nil || plan.empty {
			return err
		}
		if ok {
			out, err = s.keywordFromLists(ctx, tx, q, plan, n)
			if err != nil && !errors.Is(err, errIncomplete) {
				return err
			}
		}
		if !ok || err != nil {
			args := []any{s.cfg.TextConfig, q.Text, n}
			out, err = rankKeyword(ctx, tx, `
SELECT `+keywordColumns+`
FROM emails e
WHERE e.search_tsv @@ websearch_to_tsquery($1::regconfig, $2)`+filterSQL(q, &args)+keywordOrder, args)
			if err != nil {
				return err
			}
		}
		if len(out) < n && len(plan.words) > 1 && plainQuery(q.Text) {
			some, err := s.keywordSome(ctx, tx, q, plan, out, n-len(out))
			if err != nil {
				return err
			}
			out = append(out, some...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// plainQuery reports a query of plain words: no quotes, no -word, no "or"
// (web search syntax asks for exactly what it says).
func plainQuery(text string) bool {
	if strings.ContainsAny(text, `"`) {
		return false
	}
	for _, w := range strings.Fields(strings.ToLower(text)) {
		if w == "or" || strings.HasPrefix(w, "-") {
			return false
		}
	}
	return true
}

// keywordSome ranks, after the mails with every word (have), up to n mails
// with only some of the query's words: more of the words first, then by
// ts_rank_cd of the words. Rare words are matched through the GIN index; a
// common word (one with a common-term list) contributes the mails of its
// list and the mail that arrived since, so the cost stays bounded however
// common the words are.
func (s *Searcher) keywordSome(ctx context.Context, db querier, q Query, plan termPlan, have []ranked, n int) ([]ranked, error) {
	seen := make([]string, len(have))
	for i, r := range have {
		seen[i] = r.id
	}
	common := plan.common
	if common == nil {
		common = []string{}
	}
	args := []any{plan.words, common, seen, n, plan.coversTo}
	return rankKeyword(ctx, db, `
WITH w AS (
    SELECT l, (''''||replace(replace(l, '\', '\\'), '''', '''''')||'''')::tsquery AS q FROM unnest($1::text[]) l
), anyq AS (
    SELECT string_agg(q::text, ' | ')::tsquery AS q FROM w
), rareq AS (
    SELECT string_agg(q::text, ' | ')::tsquery AS q FROM w WHERE NOT (l = ANY($2::text[]))
), cand AS (
    SELECT e.id FROM emails e, rareq WHERE rareq.q IS NOT NULL AND e.search_tsv @@ rareq.q
    UNION
    SELECT email_id FROM search_term_top WHERE lexeme = ANY($2::text[])
    UNION
    SELECT e.id FROM emails e, anyq WHERE cardinality($2::text[]) > 0 AND e.ingested_at >= $5 AND e.search_tsv @@ anyq.q
)
SELECT e.id, ts_rank_cd(e.search_tsv, anyq.q, 1) AS score, false AS phrase
FROM cand JOIN emails e ON e.id = cand.id, anyq
WHERE NOT (e.id = ANY($3::text[]))`+filterSQL(q, &args)+`
ORDER BY (SELECT count(*) FROM w WHERE e.search_tsv @@ w.q) DESC, score DESC, e.sort_at DESC, e.id
LIMIT $4`, args)
}

// keywordColumns and keywordOrder are the keyword leg's ranking over emails
// e, for query text $2 in configuration $1, keeping $3 rows.
const (
	keywordColumns = `e.id, ts_rank_cd(e.search_tsv, websearch_to_tsquery($1::regconfig, $2), 1) AS score,
       numnode(phraseto_tsquery($1::regconfig, $2)) > 1 AND e.search_tsv @@ phraseto_tsquery($1::regconfig, $2) AS phrase`
	keywordOrder = `
ORDER BY phrase DESC, score DESC, e.sort_at DESC, e.id
LIMIT $3`
)

// querier runs queries: a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// rankKeyword runs a keyword ranking query returning id, score, phrase.
func rankKeyword(ctx context.Context, db querier, sql string, args []any) ([]ranked, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("keyword search: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ranked, error) {
		var x ranked
		err := r.Scan(&x.id, &x.score, &x.phrase)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("keyword search: %w", err)
	}
	return out, nil
}

// semantic embeds the query and returns emails by their best chunk's cosine
// similarity, using the HNSW index (iterative scan keeps filtered queries full).
// It returns the time spent embedding and searching.
func (s *Searcher) semantic(ctx context.Context, q Query) (out []ranked, embedT, knnT time.Duration, err error) {
	t0 := time.Now()
	vecs, err := s.emb.Embed(ctx, []string{q.Text})
	embedT = time.Since(t0)
	if err != nil {
		return nil, embedT, 0, fmt.Errorf("embed query: %w", err)
	}
	if len(vecs) != 1 {
		return nil, embedT, 0, fmt.Errorf("embed query: got %d vectors", len(vecs))
	}
	// The model is read after embedding: a remote embedder learns it from the reply.
	t1 := time.Now()
	model := s.emb.ModelID()
	out, err = s.knn(ctx, vecs[0], model, q, max(s.cfg.Candidates, q.Limit), true)
	if err != nil {
		return nil, embedT, time.Since(t1), fmt.Errorf("semantic search: %w", err)
	}
	floor := s.cfg.Floor(model)
	kept := out[:0]
	for _, r := range out {
		if r.score >= floor {
			kept = append(kept, r)
		}
	}
	return kept, embedT, time.Since(t1), nil
}

// knn returns up to n emails nearest to vec by their best chunk of model;
// approx uses the HNSW index (unless a selective filter makes an exact scan
// cheaper); otherwise every matching vector is compared: exact results.
func (s *Searcher) knn(ctx context.Context, vec []float32, model string, q Query, n int, approx bool) ([]ranked, error) {
	if approx && (q.From != "" || q.Category != "") {
		// Sender and category filters are usually selective; HNSW would then
		// walk much of the graph to find n matches. Below exactThreshold
		// filtered emails an exact scan of their vectors is faster and exact.
		args := []any{}
		var count int
		if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM emails e WHERE true`+filterSQL(q, &args)+fmt.Sprintf(` LIMIT %d) f`, exactThreshold+1), args...).Scan(&count); err != nil {
			return nil, err
		}
		if count <= exactThreshold {
			approx = false
		}
	}
	var out []ranked
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if !approx {
			args := []any{pgvector.NewVector(vec), model, n}
			sql := `
SELECT email_id, sim, text_start, text_end FROM (
    SELECT DISTINCT ON (em.email_id) em.email_id, 1 - (em.embedding <=> $1) AS sim, em.text_start, em.text_end
    FROM emails e JOIN embeddings em ON em.email_id = e.id AND em.model = $2 AND vector_dims(em.embedding) = ` + fmt.Sprint(len(vec)) + `
    WHERE true` + filterSQL(q, &args) + `
    ORDER BY em.email_id, em.embedding <=> $1
) best ORDER BY sim DESC, email_id LIMIT $3`
			rows, err := tx.Query(ctx, sql, args...)
			if err != nil {
				return err
			}
			out, err = pgx.CollectRows(rows, scanRanked)
			return err
		}
		// ef_search at least the chunk LIMIT, so unfiltered queries finish in
		// one index pass; iterative scan only continues for filtered ones.
		settings := []string{fmt.Sprintf("SET LOCAL hnsw.ef_search = %d", max(s.cfg.EfSearch, 2*n)), "SET LOCAL hnsw.iterative_scan = relaxed_order"}
		for _, st := range settings {
			if _, err := tx.Exec(ctx, st); err != nil {
				return err
			}
		}
		// Chunks per email vary; fetch extra chunks so n emails remain after grouping.
		sql, args := knnSQL(vec, model, q, n)
		rows, err := tx.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scanRanked)
		return err
	})
	return out, err
}

// exactThreshold is the filtered-email count below which kNN scans exactly.
const exactThreshold = 5000

func scanRanked(r pgx.CollectableRow) (ranked, error) {
	var x ranked
	err := r.Scan(&x.id, &x.score, &x.start, &x.end)
	return x, err
}

// knnSQL is the kNN query: nearest chunks of model by cosine distance in
// half precision (what the per-dimension HNSW indexes of migration 00240
// serve: the query names the dimension so the planner can use the one of
// the model's), grouped to each email's best chunk by full-precision distance.
func knnSQL(vec []float32, model string, q Query, n int) (string, []any) {
	args := []any{pgvector.NewVector(vec), model, n * 2, n}
	join, filters := "", filterSQL(q, &args)
	if filters != "" {
		join = " JOIN emails e ON e.id = em.email_id"
	}
	dim := len(vec) // an int: safe to format into the statement
	return fmt.Sprintf(`
WITH nn AS (
    SELECT em.email_id, em.text_start, em.text_end, em.embedding <=> $1 AS dist
    FROM embeddings em`+join+`
    WHERE em.model = $2 AND vector_dims(em.embedding) = %[1]d`+filters+`
    ORDER BY em.embedding::halfvec(%[1]d) <=> $1::halfvec(%[1]d)
    LIMIT $3
), best AS (
    SELECT DISTINCT ON (email_id) email_id, text_start, text_end, dist FROM nn ORDER BY email_id, dist
)
SELECT email_id, 1 - dist AS sim, text_start, text_end FROM best ORDER BY sim DESC, email_id LIMIT $4`, dim), args
}

// Sentinels ts_headline puts around matches; they cannot occur in stored text
// (the C0 controls are stripped from the snippet source first).
const (
	selStart = "\x01"
	selStop  = "\x02"
)

// details loads display fields and snippets for the fused hits, in order.
func (s *Searcher) details(ctx context.Context, q Query, hits []Hit) ([]Hit, error) {
	ids := make([]string, len(hits))
	starts, ends := make([]int32, len(hits)), make([]int32, len(hits))
	for i, h := range hits {
		ids[i] = h.EmailID
		starts[i], ends[i] = int32(h.chunkStart), int32(min(h.chunkEnd, h.chunkStart+400))
	}
	rows, err := s.pool.Query(ctx, `
WITH q AS (SELECT websearch_to_tsquery($2::regconfig, $3) AS ts),
span AS (SELECT * FROM unnest($1::text[], $4::int[], $5::int[]) AS s(id, st, en))
SELECT e.id, e.subject, e.from_addr, e.from_name, e.sort_at,
       CASE WHEN e.search_tsv @@ q.ts
            THEN ts_headline($2::regconfig, translate(left(e.body_text, 20000), E'\x01\x02', '  '), q.ts,
                 'StartSel=' || E'\x01' || ', StopSel=' || E'\x02' || ', MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=" … "')
            ELSE '' END AS headline,
       CASE WHEN span.en > span.st THEN substring(e.body_text FROM span.st + 1 FOR span.en - span.st) ELSE '' END AS chunk,
       e.snippet, left(e.body_text, 400) AS head
FROM emails e JOIN span ON span.id = e.id, q`, ids, s.cfg.TextConfig, q.Text, starts, ends)
	if err != nil {
		return nil, fmt.Errorf("search details: %w", err)
	}
	type row struct {
		subject, fromAddr, fromName, headline, chunk, snippet, head string
		date                                                        time.Time
	}
	byID := map[string]row{}
	for rows.Next() {
		var id string
		var r row
		if err := rows.Scan(&id, &r.subject, &r.fromAddr, &r.fromName, &r.date, &r.headline, &r.chunk, &r.snippet, &r.head); err != nil {
			rows.Close()
			return nil, fmt.Errorf("search details: %w", err)
		}
		byID[id] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search details: %w", err)
	}
	out := make([]Hit, 0, len(hits))
	for _, h := range hits {
		r, ok := byID[h.EmailID]
		if !ok {
			continue // deleted between retrieval and display
		}
		h.Subject, h.FromAddr, h.FromName, h.Date = r.subject, r.fromAddr, r.fromName, r.date.UTC()
		// Keyword hits show their highlighted words; hits only the vector
		// search found show the passage (chunk) that matched.
		hl := r.headline
		if h.KeywordRank == 0 && r.chunk != "" || !strings.Contains(hl, selStart) {
			hl = cutWords(r.chunk, 300)
		}
		if hl == "" {
			hl = r.snippet
		}
		if hl == "" {
			hl = r.head
		}
		h.Snippet, h.SnippetHTML = renderSnippet(hl)
		out = append(out, h)
	}
	return out, nil
}

// renderSnippet turns a headline with sentinel marks into plain text and
// escaped HTML with <mark> tags; whitespace runs collapse to one space.
func renderSnippet(s string) (plain, htm string) {
	s = strings.Join(strings.Fields(s), " ")
	plain = strings.NewReplacer(selStart, "", selStop, "").Replace(s)
	var b strings.Builder
	for len(s) > 0 {
		i := strings.Index(s, selStart)
		if i < 0 {
			b.WriteString(html.EscapeString(strings.ReplaceAll(s, selStop, "")))
			break
		}
		b.WriteString(html.EscapeString(strings.ReplaceAll(s[:i], selStop, "")))
		s = s[i+len(selStart):]
		j := strings.Index(s, selStop)
		if j < 0 {
			j = len(s)
		}
		b.WriteString("<mark>" + html.EscapeString(s[:j]) + "</mark>")
		s = s[min(j+len(selStop), len(s)):]
	}
	return plain, b.String()
}

// cutWords shortens s to at most n runes, at a word boundary, adding "…".
func cutWords(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	cut := string(r[:n])
	if i := strings.LastIndexAny(cut, " \t\n"); i > n/2 {
		cut = cut[:i]
	}
	return cut + " …"
}
