package search

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgvector/pgvector-go"

	"github.com/ownyou/home/pkg/embed"
	"github.com/ownyou/home/pkg/models"
)

type mail struct {
	id, subject, fromAddr, fromName, body string
	at                                    time.Time
	categories                            []string
}

func insertMails(t testing.TB, pool *pgxpool.Pool, mails []mail) {
	t.Helper()
	ctx := context.Background()
	for _, m := range mails {
		_, err := pool.Exec(ctx, `INSERT INTO emails (id, message_id, content_hash, subject, from_addr, from_name, sort_at, body_text, snippet)
			VALUES ($1, $1, $1, $2, $3, $4, $5, $6, left($6, 100))`, m.id, m.subject, m.fromAddr, m.fromName, m.at, m.body)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range m.categories {
			if _, err := pool.Exec(ctx, `INSERT INTO classifications (email_id, taxonomy, category_id, confidence, backend) VALUES ($1, 'content-3.1', $2, 0.9, 'local')`, m.id, c); err != nil {
				t.Fatal(err)
			}
		}
	}
}

var (
	embOnce sync.Once
	embVal  *embed.ONNX
	embErr  error
)

// tinyEmbedder is the real ONNX embedder on the generated tiny graph.
func tinyEmbedder(t testing.TB) *embed.ONNX {
	t.Helper()
	embOnce.Do(func() {
		shared, err := models.SharedDir()
		if err != nil {
			embErr = err
			return
		}
		lib := models.ORTLib()
		g, err := embed.GenerateGraph(embed.TinyGraph())
		if err != nil {
			embErr = err
			return
		}
		p := filepath.Join(os.TempDir(), fmt.Sprintf("search-test-tiny-%d.onnx", os.Getpid()))
		if embErr = os.WriteFile(p, g, 0o644); embErr != nil {
			return
		}
		embVal, embErr = embed.New(embed.Config{ModelPath: p, ModelName: "tiny", VocabPath: filepath.Join(shared, "models", "all-MiniLM-L6-v2", "vocab.txt"),
			Session: embed.SessionConfig{Library: lib, IntraOpThreads: 2}})
	})
	if embErr != nil {
		t.Fatalf("tiny embedder (run `go run ./cmd/models fetch onnxruntime`): %v", embErr)
	}
	return embVal
}

// embedMails stores one vector per mail (subject + body) with the embedder's model id.
func embedMails(t testing.TB, pool *pgxpool.Pool, e *embed.ONNX, mails []mail) {
	t.Helper()
	ctx := context.Background()
	for _, m := range mails {
		v, err := e.Embed(ctx, []string{m.subject + "\n" + m.body})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `INSERT INTO embeddings (email_id, model, chunk, embedding) VALUES ($1, $2, 0, $3)`, m.id, e.ModelID(), pgvector.NewVector(v[0])); err != nil {
			t.Fatal(err)
		}
	}
}

func day(d int) time.Time { return time.Date(2026, 1, d, 12, 0, 0, 0, time.UTC) }

var corpus = []mail{
	{id: "m1", subject: "Team update", fromAddr: "alice@work.example", fromName: "Alice", at: day(1),
		body: "The quarterly budget needs review. Separately, the offsite planning is on track.", categories: []string{"52"}},
	{id: "m2", subject: "Budget", fromAddr: "bob@work.example", fromName: "Bob", at: day(2),
		body: "Budget budget budget: the review of travel costs and the quarterly numbers, review again.", categories: []string{"52"}},
	{id: "m3", subject: "Re: numbers", fromAddr: "carol@home.example", fromName: "Carol", at: day(3),
		body: "Before Friday please send me the quarterly budget review so I can sign it off.", categories: []string{"80"}},
	{id: "m4", subject: "Flight confirmation LIS", fromAddr: "noreply@airline.example", fromName: "Airline", at: day(4),
		body: "Your flight to Lisbon departs at 09:40. Booking reference XK7P2Q. <script>alert(1)</script>", categories: []string{"653"}},
	{id: "m5", subject: "Weekly recipes", fromAddr: "news@cooking.example", fromName: "Cooking Weekly", at: day(5),
		body: "Five quick dinners: pasta, curry, tacos, soup and a budget-friendly stir fry."},
}

func TestHybridRanksExactPhraseMailFirst(t *testing.T) {
	pool := testPool(t)
	insertMails(t, pool, corpus)
	emb := tinyEmbedder(t)
	embedMails(t, pool, emb, corpus)
	s := New(pool, emb, Config{})
	res, err := s.Search(context.Background(), Query{Text: "quarterly budget review", Mode: Hybrid})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Hits) < 3 || res.Hits[0].EmailID != "m3" {
		t.Fatalf("hits %v, want m3 (exact phrase) first", ids(res.Hits))
	}
	top := res.Hits[0]
	if !strings.Contains(top.SnippetHTML, "<mark>") || top.KeywordRank != 1 || !contains(top.Retrievers, RetrieverKeyword) || !contains(top.Retrievers, RetrieverSemantic) {
		t.Fatalf("top hit %+v: want highlighted snippet, keyword rank 1, both retrievers", top)
	}
	if res.Model != emb.ModelID() {
		t.Fatalf("model %q", res.Model)
	}
	// Every mail has a vector, so semantic retrieval returns all five.
	if len(res.Hits) != 5 {
		t.Fatalf("hybrid returned %d hits, want 5", len(res.Hits))
	}
}

func TestKeywordModeRanksAndFilters(t *testing.T) {
	pool := testPool(t)
	insertMails(t, pool, corpus)
	s := New(pool, nil, Config{})
	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"phrase first then by rank", Query{Text: "quarterly budget review"}, []string{"m3"}},
		{"sender filter", Query{Text: "budget", From: "BOB@"}, []string{"m2"}},
		{"sender name filter", Query{Text: "budget", From: "alice"}, []string{"m1"}},
		{"date range", Query{Text: "budget", After: day(2), Before: day(4)}, []string{"m2", "m3"}},
		{"category", Query{Text: "budget", Category: "80"}, []string{"m3"}},
		{"subject word", Query{Text: "lisbon flight"}, []string{"m4"}},
		{"no match", Query{Text: "zebra"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Mode = Keyword
			res, err := s.Search(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			got := ids(res.Hits)
			if tc.name == "phrase first then by rank" {
				if len(got) == 0 || got[0] != "m3" {
					t.Fatalf("got %v, want m3 first", got)
				}
				return
			}
			if tc.name == "date range" {
				if len(got) != 2 || !contains(got, "m2") || !contains(got, "m3") {
					t.Fatalf("got %v", got)
				}
				return
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSnippetIsEscapedHTML(t *testing.T) {
	pool := testPool(t)
	insertMails(t, pool, corpus)
	s := New(pool, nil, Config{})
	res, err := s.Search(context.Background(), Query{Text: "booking reference", Mode: Keyword})
	if err != nil || len(res.Hits) != 1 {
		t.Fatalf("%v %v", res.Hits, err)
	}
	h := res.Hits[0]
	if strings.Contains(h.SnippetHTML, "<script>") || !strings.Contains(h.SnippetHTML, "<mark>Booking</mark>") {
		t.Fatalf("snippet_html %q", h.SnippetHTML)
	}
	if strings.ContainsAny(h.Snippet, "\x01\x02") {
		t.Fatalf("plain snippet has sentinels: %q", h.Snippet)
	}
}

func TestSearchRejectsBadQueries(t *testing.T) {
	s := New(nil, nil, Config{})
	for _, tc := range []struct {
		q    Query
		want error
	}{
		{Query{Text: "  "}, ErrEmptyQuery},
		{Query{Text: "x", Mode: "fuzzy"}, ErrBadMode},
		{Query{Text: "x", After: day(5), Before: day(1)}, ErrBadRange},
	} {
		if _, err := s.Search(context.Background(), tc.q); !errors.Is(err, tc.want) {
			t.Errorf("Search(%+v) = %v, want %v", tc.q, err, tc.want)
		}
	}
}

type failingEmbedder struct{}

func (failingEmbedder) Embed(context.Context, []string) ([][]float32, error) {
	return nil, errors.New("embedder down")
}
func (failingEmbedder) ModelID() string { return "x" }

func TestHybridDegradesToKeywordWhenEmbedderFails(t *testing.T) {
	pool := testPool(t)
	insertMails(t, pool, corpus)
	s := New(pool, failingEmbedder{}, Config{})
	res, err := s.Search(context.Background(), Query{Text: "lisbon"})
	if err != nil || len(res.Hits) != 1 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "embedder down") {
		t.Fatalf("res %+v err %v", res, err)
	}
	if _, err := s.Search(context.Background(), Query{Text: "lisbon", Mode: Semantic}); err == nil {
		t.Fatal("semantic mode with a failing embedder succeeded")
	}
}

// TestHNSWRecallAt10 checks the migration's HNSW index (with the Searcher's
// ef_search) finds ≥ 95% of the exact 10 nearest neighbours over 20k vectors
// drawn around 200 topic centres, as sentence embeddings cluster.
func TestHNSWRecallAt10(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 20k-vector HNSW index")
	}
	// MiniLM's dimension and the lite model's each have their own index.
	for _, dim := range []int{384, 100} {
		t.Run(fmt.Sprint(dim), func(t *testing.T) { testHNSWRecallAt10(t, dim) })
	}
}

func testHNSWRecallAt10(t *testing.T, dim int) {
	pool := testPool(t)
	ctx := context.Background()
	const n, topics, queries = 20000, 200, 50
	index := fmt.Sprintf("embeddings_hnsw_%d_idx", dim)
	rng := rand.New(rand.NewPCG(7, 7))
	centres := make([][]float32, topics)
	for i := range centres {
		centres[i] = randUnit(rng, dim, nil, 0)
	}
	// Rebuild the migration's index after the bulk load (same definition) — as
	// a restore would — so the test takes seconds, not minutes.
	var indexDef string
	if err := pool.QueryRow(ctx, `SELECT indexdef FROM pg_indexes WHERE indexname = $1`, index).Scan(&indexDef); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DROP INDEX `+index); err != nil {
		t.Fatal(err)
	}
	rows := make([][]any, 0, n)
	mailRows := make([][]any, 0, n)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("e%05d", i)
		mailRows = append(mailRows, []any{id, id, id, day(1)})
		rows = append(rows, []any{id, "m", 0, pgvector.NewVector(randUnit(rng, dim, centres[rng.IntN(topics)], 0.35))})
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"emails"}, []string{"id", "message_id", "content_hash", "sort_at"}, pgx.CopyFromRows(mailRows)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"embeddings"}, []string{"email_id", "model", "chunk", "embedding"}, pgx.CopyFromRows(rows)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, indexDef); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE embeddings"); err != nil {
		t.Fatal(err)
	}
	// The approximate path must really use the index (else recall is trivially 1).
	var plan strings.Builder
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		sql, args := knnSQL(centres[0], "m", Query{}, 10)
		rows, err := tx.Query(ctx, "EXPLAIN "+sql, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var line string
			_ = rows.Scan(&line)
			plan.WriteString(line + "\n")
		}
		return rows.Err()
	})
	if err != nil || !strings.Contains(plan.String(), index) {
		t.Fatalf("kNN plan does not use the HNSW index (err %v):\n%s", err, plan.String())
	}
	s := New(pool, nil, Config{})
	found, total := 0, 0
	for qi := 0; qi < queries; qi++ {
		q := randUnit(rng, dim, centres[rng.IntN(topics)], 0.35)
		exact, err := s.knn(ctx, q, "m", Query{}, 10, false)
		if err != nil {
			t.Fatal(err)
		}
		approx, err := s.knn(ctx, q, "m", Query{}, 10, true)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, r := range exact {
			want[r.id] = true
		}
		for _, r := range approx {
			if want[r.id] {
				found++
			}
		}
		total += len(exact)
	}
	recall := float64(found) / float64(total)
	t.Logf("HNSW recall@10 = %.3f over %d queries", recall, queries)
	if total != queries*10 || recall < 0.95 {
		t.Fatalf("recall@10 = %.3f (%d/%d), want ≥ 0.95", recall, found, total)
	}
}

// randUnit returns a unit vector: centre + noise·N(0,1)/√dim, or uniform when centre is nil.
func randUnit(rng *rand.Rand, dim int, centre []float32, noise float64) []float32 {
	v := make([]float32, dim)
	var norm float64
	for i := range v {
		x := rng.NormFloat64()
		if centre != nil {
			x = float64(centre[i]) + noise*x/math.Sqrt(float64(dim))*3
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

func ids(hits []Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.EmailID)
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestSemanticHitShowsItsBestPassage(t *testing.T) {
	pool := testPool(t)
	emb := tinyEmbedder(t)
	ctx := context.Background()
	passages := []string{"Minutes of the garden committee about tulips and roses.", "The invoice for the roof repair is attached, due in thirty days.", "Kind regards from the whole team."}
	body := strings.Join(passages, " ")
	insertMails(t, pool, []mail{{id: "p1", subject: "Assorted", fromAddr: "x@y.example", body: body, at: day(1)}})
	start := 0
	for i, p := range passages {
		v, err := emb.Embed(ctx, []string{p})
		if err != nil {
			t.Fatal(err)
		}
		n := len([]rune(p))
		if _, err := pool.Exec(ctx, `INSERT INTO embeddings (email_id, model, chunk, text_start, text_end, embedding) VALUES ('p1', $1, $2, $3, $4, $5)`,
			emb.ModelID(), i+1, start, start+n, pgvector.NewVector(v[0])); err != nil {
			t.Fatal(err)
		}
		start += n + 1
	}
	s := New(pool, emb, Config{})
	res, err := s.Search(ctx, Query{Text: passages[1], Mode: Semantic})
	if err != nil || len(res.Hits) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	if h := res.Hits[0]; h.Snippet != passages[1] || h.Similarity < 0.999 {
		t.Fatalf("snippet %q similarity %v, want the matched passage", h.Snippet, h.Similarity)
	}
}

// TestKeywordFindsAnOldStrongMatchAmongThousandsOfWeakOnes: ranking used to
// stop after the first 2,000 matches the index returned, so a mail matching
// best but stored after them was never ranked.
func TestKeywordFindsAnOldStrongMatchAmongThousandsOfWeakOnes(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	_, err := pool.Exec(ctx, `INSERT INTO emails (id, message_id, content_hash, subject, from_addr, sort_at, body_text)
		SELECT 'weak-' || i, 'weak-' || i, 'weak-' || i, 'Newsletter ' || i, 'news@shop.example', now() - i * interval '1 minute',
		       'Our weekly roundup of offers and events, including one mention of the harbour ferry timetable among many other unrelated items ' || i
		FROM generate_series(1, 2500) i`)
	if err != nil {
		t.Fatal(err)
	}
	insertMails(t, pool, []mail{{id: "strong", subject: "Harbour ferry timetable changes", fromAddr: "port@city.example",
		at: time.Date(2015, 3, 1, 0, 0, 0, 0, time.UTC), body: "The harbour ferry timetable changes on Monday: the harbour ferry now leaves hourly."}})
	// Ranking every match, then from common-term lists ("ferry", "harbour"
	// and "timetable" are each in 2,501 mails).
	s := New(pool, nil, Config{CommonTermDocs: 1000, CommonTermTop: 100})
	for _, lists := range []bool{false, true} {
		if lists {
			if st, err := s.RefreshTermLists(ctx); err != nil || st.Terms == 0 {
				t.Fatalf("refresh: %+v %v", st, err)
			}
		}
		for _, text := range []string{"ferry", "harbour timetable"} {
			res, err := s.Search(ctx, Query{Text: text, Mode: Keyword, Limit: 5})
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(res.Hits); len(got) == 0 || got[0] != "strong" {
				t.Errorf("%q (lists %v): got %v, want the 2015 mail about the ferry first", text, lists, got)
			}
		}
	}
}

func TestKeywordRanksMailsWithSomeOfTheWordsAfterThoseWithAll(t *testing.T) {
	pool := testPool(t)
	insertMails(t, pool, corpus)
	s := New(pool, nil, Config{})
	ctx := context.Background()
	// "budget" is in m1, m2, m3 and m5, "lisbon" only in m4, "friday" in
	// m3: no mail has all three words, and a conjunction would find nothing.
	res, err := s.Search(ctx, Query{Text: "lisbon friday budget", Mode: Keyword})
	if err != nil {
		t.Fatal(err)
	}
	got := ids(res.Hits)
	if len(got) != 5 || got[0] != "m3" {
		t.Fatalf("hits %v, want all five, m3 (two of the words) first", got)
	}
	// Every word present beats any partial match.
	res, err = s.Search(ctx, Query{Text: "budget review", Mode: Keyword})
	if err != nil {
		t.Fatal(err)
	}
	got = ids(res.Hits)
	if len(got) != 4 || got[3] != "m5" {
		t.Fatalf("hits %v, want m1, m2, m3 (both words) before m5 (budget only)", got)
	}
	// Web search syntax is taken at its word: quotes and -word stay exact.
	for _, q := range []string{`"lisbon friday"`, "budget -review"} {
		res, err = s.Search(ctx, Query{Text: q, Mode: Keyword})
		if err != nil {
			t.Fatal(err)
		}
		if q == "budget -review" && fmt.Sprint(ids(res.Hits)) != "[m5]" || q != "budget -review" && len(res.Hits) != 0 {
			t.Errorf("%s: hits %v", q, ids(res.Hits))
		}
	}
}
