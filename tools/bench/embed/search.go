package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgvector/pgvector-go"

	"github.com/ownyou/home/pkg/embed"
	"github.com/ownyou/home/pkg/search"
)

// corpusModel is the model id of the synthetic vectors; the benchmark's query
// embedder reports its own id, so the searcher is pointed at this one.
type fixedModel struct {
	*embed.ONNX
	id string
}

func (f fixedModel) ModelID() string { return f.id }

// loadCorpus fills an empty migrated database with n synthetic emails (mail-like
// bodies drawn Zipf-wise from the tokenizer vocabulary, one to three chunk
// vectors each clustered around topics) unless it already holds them.
func loadCorpus(ctx context.Context, pool *pgxpool.Pool, words []string, n int) (loaded bool, err error) {
	var have int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM emails WHERE id LIKE 'bench-%'`).Scan(&have); err != nil {
		return false, err
	}
	if have == n {
		return false, nil
	}
	if have > 0 {
		if _, err := pool.Exec(ctx, `DELETE FROM emails WHERE id LIKE 'bench-%'`); err != nil {
			return false, err
		}
	}
	rng := rand.New(rand.NewPCG(42, 42))
	zipf := rand.NewZipf(rand.New(rand.NewPCG(1, 2)), 1.1, 2, uint64(len(words)-1))
	sentence := func(k int) string {
		var b strings.Builder
		for i := 0; i < k; i++ {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(words[zipf.Uint64()])
		}
		return b.String()
	}
	var indexDef string
	if err := pool.QueryRow(ctx, `SELECT indexdef FROM pg_indexes WHERE indexname = 'embeddings_hnsw_idx'`).Scan(&indexDef); err != nil {
		return false, fmt.Errorf("find hnsw index: %w", err)
	}
	if _, err := pool.Exec(ctx, `DROP INDEX embeddings_hnsw_idx`); err != nil {
		return false, err
	}
	rebuilt := false
	defer func() {
		if !rebuilt { // put the index back even when loading failed
			_, _ = pool.Exec(context.WithoutCancel(ctx), indexDef)
		}
	}()
	const topics, dim = 500, 384
	centres := make([][]float32, topics)
	for i := range centres {
		centres[i] = unit(rng, dim, nil)
	}
	senders := make([]string, 2000)
	for i := range senders {
		senders[i] = fmt.Sprintf("%s%d@%s.example", words[100+rng.IntN(5000)], i, words[100+rng.IntN(5000)])
	}
	start := time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)
	const batch = 5000
	for off := 0; off < n; off += batch {
		var mails, vecs [][]any
		for i := off; i < min(off+batch, n); i++ {
			id := fmt.Sprintf("bench-%07d", i)
			body := sentence(80 + rng.IntN(250))
			at := start.Add(time.Duration(rng.Int64N(int64(8 * 365 * 24 * time.Hour))))
			from := senders[rng.IntN(len(senders))]
			mails = append(mails, []any{id, id, id, sentence(3 + rng.IntN(6)), from, at, body, firstRunes(body, 120)})
			topic := centres[rng.IntN(topics)]
			for c := 0; c < 1+rng.IntN(3); c++ {
				vecs = append(vecs, []any{id, "bench-corpus", c, pgvector.NewVector(unit(rng, dim, topic))})
			}
		}
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"emails"}, []string{"id", "message_id", "content_hash", "subject", "from_addr", "sort_at", "body_text", "snippet"}, pgx.CopyFromRows(mails)); err != nil {
			return false, fmt.Errorf("copy emails: %w", err)
		}
		if _, err := pool.CopyFrom(ctx, pgx.Identifier{"embeddings"}, []string{"email_id", "model", "chunk", "embedding"}, pgx.CopyFromRows(vecs)); err != nil {
			return false, fmt.Errorf("copy embeddings: %w", err)
		}
	}
	if _, err := pool.Exec(ctx, `SET maintenance_work_mem = '1GB'`); err != nil {
		return false, err
	}
	rebuilt = true
	if _, err := pool.Exec(ctx, indexDef); err != nil {
		return false, fmt.Errorf("rebuild hnsw: %w", err)
	}
	_, err = pool.Exec(ctx, `ANALYZE emails; ANALYZE embeddings; ANALYZE classifications`)
	return true, err
}

func unit(rng *rand.Rand, dim int, centre []float32) []float32 {
	v := make([]float32, dim)
	var norm float64
	for i := range v {
		x := rng.NormFloat64()
		if centre != nil {
			x = float64(centre[i]) + 1.05*x/math.Sqrt(float64(dim))
		}
		v[i] = float32(x)
		norm += x * x
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] = float32(float64(v[i]) / norm)
	}
	return v
}

// prewarm loads the search indexes and tables into the buffer cache (the
// rest into the OS cache), so the figures are those of a server that has been
// answering queries, not of the first minutes after a restart.
func prewarm(ctx context.Context, pool *pgxpool.Pool) error {
	if _, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pg_prewarm`); err != nil {
		return fmt.Errorf("prewarm: %w", err)
	}
	_, err := pool.Exec(ctx, `
SELECT pg_prewarm(c.oid, CASE WHEN c.relname LIKE 'embeddings%' AND c.relkind = 'r' THEN 'read' ELSE 'buffer' END)
FROM pg_class c
WHERE c.relname IN ('embeddings_hnsw_idx', 'emails_search_tsv_idx', 'emails_from_trgm_idx', 'emails_pkey', 'emails_sort_idx', 'emails', 'embeddings')
   OR c.oid = (SELECT reltoastrelid FROM pg_class WHERE relname = 'emails')`)
	if err != nil {
		return fmt.Errorf("prewarm: %w", err)
	}
	return nil
}

// benchSearch times hybrid queries (query embedding included) over the
// corpus: first on the pool's fresh connections, then, after as many queries
// again to warm the connections up, in the steady state of a gateway whose
// connections have lived a while. Each phase draws its own random queries.
func benchSearch(ctx context.Context, pool *pgxpool.Pool, emb *embed.ONNX, words []string, queries int) (cold, warm [2]time.Duration, err error) {
	if err := prewarm(ctx, pool); err != nil {
		return cold, warm, err
	}
	s := search.New(pool, fixedModel{emb, "bench-corpus"}, search.Config{})
	// The gateway keeps the common-term lists fresh in the background; a
	// steady-state install has them.
	st, err := s.RefreshTermLists(ctx)
	if err != nil {
		return cold, warm, err
	}
	fmt.Printf("BENCH search_term_lists_refresh %.1f s\n", st.Took.Seconds())
	fmt.Fprintf(os.Stderr, "bench embed: common-term lists: %d terms, %d entries\n", st.Terms, st.Listed)
	if cold, err = searchPhase(ctx, s, words, queries, 1, "cold"); err != nil {
		return cold, warm, err
	}
	if _, err = searchPhase(ctx, s, words, 2*queries, 2, ""); err != nil {
		return cold, warm, err
	}
	warm, err = searchPhase(ctx, s, words, queries, 3, "warm")
	return cold, warm, err
}

// searchPhase runs n random queries of 1–4 zipf-distributed words, a quarter
// with a date filter and a quarter with a sender filter, and returns their
// p50 and p95 (the first 10 are a warm-up).
func searchPhase(ctx context.Context, s *search.Searcher, words []string, n int, seed uint64, label string) ([2]time.Duration, error) {
	rng := rand.New(rand.NewPCG(9, 9*seed))
	zipf := rand.NewZipf(rand.New(rand.NewPCG(3, 4*seed)), 1.1, 2, uint64(len(words)-1))
	var lat []time.Duration
	for i := 0; i < n+10; i++ {
		k := 1 + rng.IntN(4)
		parts := make([]string, k)
		for j := range parts {
			parts[j] = words[zipf.Uint64()]
		}
		q := search.Query{Text: strings.Join(parts, " "), Mode: search.Hybrid, Limit: 20}
		switch rng.IntN(4) {
		case 0:
			q.After = time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
		case 1:
			q.From = words[100+rng.IntN(5000)]
		}
		t0 := time.Now()
		res, err := s.Search(ctx, q)
		if err != nil {
			return [2]time.Duration{}, fmt.Errorf("query %q: %w", q.Text, err)
		}
		if len(res.Warnings) > 0 {
			return [2]time.Duration{}, fmt.Errorf("query %q: %v", q.Text, res.Warnings)
		}
		if i >= 10 { // warm-up
			lat = append(lat, time.Since(t0))
			if label != "" && os.Getenv("BENCH_VERBOSE") != "" {
				fmt.Fprintf(os.Stderr, "%s %6.1fms %q from=%q after=%v %v\n", label, float64(time.Since(t0).Microseconds())/1000, q.Text, q.From, !q.After.IsZero(), res.TimingsMS)
			}
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return [2]time.Duration{lat[len(lat)/2], lat[len(lat)*95/100]}, nil
}

func firstRunes(s string, n int) string {
	r := []rune(s)
	return string(r[:min(len(r), n)])
}
