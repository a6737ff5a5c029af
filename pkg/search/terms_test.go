package search

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// termCorpus inserts n mails of words drawn with a skewed distribution from
// a small vocabulary, so the first words occur in most mails, some in the
// subject (weight A) and most in the body (weight C), over ten years.
func termCorpus(t *testing.T, pool *pgxpool.Pool, n int) []string {
	t.Helper()
	vocab := strings.Fields("harbour ferry timetable invoice garden concert ticket recipe budget school football holiday weather museum village river bakery library cinema tennis")
	rng := rand.New(rand.NewPCG(7, 11))
	pick := func() string { // word i with weight ∝ 1/(i+1)
		for {
			i := rng.IntN(len(vocab))
			if rng.Float64() < 1/float64(i+1) {
				return vocab[i]
			}
		}
	}
	words := func(k int) string {
		w := make([]string, k)
		for i := range w {
			w[i] = pick()
		}
		return strings.Join(w, " ")
	}
	ids, subjects, bodies := make([]string, n), make([]string, n), make([]string, n)
	ats := make([]time.Time, n)
	for i := range n {
		ids[i] = fmt.Sprintf("m%04d", i)
		subjects[i] = words(1 + rng.IntN(3))
		bodies[i] = words(5 + rng.IntN(60))
		ats[i] = time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(rng.IntN(3650*24)) * time.Hour)
	}
	_, err := pool.Exec(context.Background(), `
INSERT INTO emails (id, message_id, content_hash, subject, from_addr, sort_at, body_text)
SELECT id, id, id, s, 'someone@mail.test', at, b FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS x(id, s, b, at)`,
		ids, subjects, bodies, ats)
	if err != nil {
		t.Fatal(err)
	}
	return vocab
}

// refreshedCorpus is a fresh database holding termCorpus(n) and a Searcher
// whose common-term lists, computed under cfg, cover it.
func refreshedCorpus(t *testing.T, n int, cfg Config) (*pgxpool.Pool, *Searcher) {
	t.Helper()
	pool := testPool(t)
	termCorpus(t, pool, n)
	s := New(pool, nil, cfg)
	if _, err := s.RefreshTermLists(context.Background()); err != nil {
		t.Fatal(err)
	}
	return pool, s
}

func hitIDs(rs []ranked) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.id
	}
	return out
}

func TestTermListsAnswerOneWordQueriesExactlyAsRankingEveryMatch(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	vocab := termCorpus(t, pool, 1200)
	s := New(pool, nil, Config{Candidates: 20, CommonTermDocs: 150, CommonTermTop: 80})
	queries := []Query{}
	for _, w := range vocab[:6] {
		queries = append(queries, Query{Text: w}, Query{Text: w, After: time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)})
	}
	want := map[int][]string{}
	for i, q := range queries {
		q, _ = Normalize(q)
		got, err := s.keyword(ctx, q) // no lists yet: every match is ranked
		if err != nil {
			t.Fatal(err)
		}
		want[i] = hitIDs(got)
	}
	st, err := s.RefreshTermLists(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Terms < 6 || st.Listed != int64(80*st.Terms) {
		t.Fatalf("refresh: %+v, want ≥ 6 common terms with 80 mails listed each", st)
	}
	for i, q := range queries {
		t.Run(fmt.Sprintf("%s after=%v", q.Text, !q.After.IsZero()), func(t *testing.T) {
			q, _ = Normalize(q)
			plan, ok, err := s.planTerms(ctx, pool, q)
			if err != nil || !ok || !plan.exact {
				t.Fatalf("plan = %+v %v %v, want the term's list, exact", plan, ok, err)
			}
			got, err := s.keywordFromLists(ctx, pool, q, plan, 20)
			if err != nil {
				t.Fatalf("from lists: %v", err)
			}
			if !slices.Equal(hitIDs(got), want[i]) {
				t.Fatalf("from lists %v\nranking all %v", hitIDs(got), want[i])
			}
			full, err := s.keyword(ctx, q)
			if err != nil || !slices.Equal(hitIDs(full), want[i]) {
				t.Fatalf("keyword() = %v, %v", hitIDs(full), err)
			}
		})
	}
}

func TestTermListsFindMailThatArrivedAfterTheRefreshAndDropDeletedMail(t *testing.T) {
	ctx := context.Background()
	pool, s := refreshedCorpus(t, 600, Config{Candidates: 10, CommonTermDocs: 100, CommonTermTop: 40})
	res, err := s.Search(ctx, Query{Text: "ferry", Mode: Keyword, Limit: 3})
	if err != nil || len(res.Hits) == 0 {
		t.Fatalf("%v %v", res.Hits, err)
	}
	top := res.Hits[0].EmailID
	if _, err := pool.Exec(ctx, `DELETE FROM emails WHERE id = $1`, top); err != nil {
		t.Fatal(err)
	}
	insertMails(t, pool, []mail{{id: "new-ferry", subject: "Ferry ferry ferry", body: "The ferry, the ferry: ferry news.", at: time.Date(2017, 5, 1, 0, 0, 0, 0, time.UTC)}})
	q, _ := Normalize(Query{Text: "ferry", Mode: Keyword, Limit: 3})
	if _, ok, _ := s.planTerms(ctx, pool, q); !ok {
		t.Fatal("ferry should be answered from its list")
	}
	res, err = s.Search(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	got := ids(res.Hits)
	if len(got) == 0 || got[0] != "new-ferry" || slices.Contains(got, top) {
		t.Fatalf("got %v, want the new mail first and deleted %s gone", got, top)
	}
}

func TestTermListsRankSeveralCommonWordsTogether(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	termCorpus(t, pool, 1200)
	insertMails(t, pool, []mail{{id: "both", subject: "Harbour ferry", body: "harbour ferry harbour ferry, the harbour ferry", at: time.Date(2016, 2, 1, 0, 0, 0, 0, time.UTC)}})
	s := New(pool, nil, Config{Candidates: 20, CommonTermDocs: 150, CommonTermTop: 80})
	q, _ := Normalize(Query{Text: "harbour ferry", Mode: Keyword})
	exact, err := s.keyword(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RefreshTermLists(ctx); err != nil {
		t.Fatal(err)
	}
	plan, ok, err := s.planTerms(ctx, pool, q)
	if err != nil || !ok || plan.exact {
		t.Fatalf("plan = %+v %v %v, want both lists, not exact", plan, ok, err)
	}
	got, err := s.keywordFromLists(ctx, pool, q, plan, 20)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(hitIDs(got)[:3], "both") || !slices.Contains(hitIDs(exact)[:3], "both") {
		t.Fatalf("from lists %v, ranking all %v: want the mail all about both words in the top 3 of each", hitIDs(got), hitIDs(exact))
	}
	// The lists' answer shares most of the exact one.
	shared := 0
	for _, r := range got {
		if slices.Contains(hitIDs(exact), r.id) {
			shared++
		}
	}
	if shared < len(exact)/2 {
		t.Fatalf("lists %v share %d of exact %v", hitIDs(got), shared, hitIDs(exact))
	}
}

func TestTermListsAreNotUsedWhenTheyCannotVouchForTheAnswer(t *testing.T) {
	ctx := context.Background()
	pool, s := refreshedCorpus(t, 600, Config{Candidates: 20, CommonTermDocs: 100, CommonTermTop: 40})
	tests := []struct {
		name string
		q    Query
	}{
		{"a rare word bounds the matches", Query{Text: "ferry zeppelin"}},
		{"or", Query{Text: "ferry or harbour"}},
		{"negation", Query{Text: "ferry -harbour"}},
		{"quoted phrase", Query{Text: `"harbour ferry"`}},
		{"sender filter", Query{Text: "ferry", From: "someone"}},
		{"only stop words", Query{Text: "the and of"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := Normalize(tc.q)
			if plan, ok, err := s.planTerms(ctx, pool, q); err != nil || ok {
				t.Fatalf("plan = %+v %v %v, want every match ranked", plan, ok, err)
			}
		})
	}
	// Only stop words: nothing to rank at all (not a scan of every mail).
	q0, _ := Normalize(Query{Text: "the and of", After: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)})
	if plan, _, err := s.planTerms(ctx, pool, q0); err != nil || !plan.empty {
		t.Fatalf("stop words: plan %+v %v, want empty", plan, err)
	}
	if got, err := s.keyword(ctx, q0); err != nil || len(got) != 0 {
		t.Fatalf("stop words: keyword() = %v, %v", got, err)
	}
	// A date range the list barely covers falls back to ranking every match.
	q, _ := Normalize(Query{Text: "harbour", After: time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)})
	plan, ok, err := s.planTerms(ctx, pool, q)
	if err != nil || !ok {
		t.Fatalf("plan %v %v", ok, err)
	}
	if _, err := s.keywordFromLists(ctx, pool, q, plan, 20); !errors.Is(err, errIncomplete) {
		t.Fatalf("narrow range from lists: %v, want errIncomplete", err)
	}
	if got, err := s.keyword(ctx, q); err != nil || len(got) == 0 {
		t.Fatalf("keyword() = %v, %v", got, err)
	}
}

func TestRefreshTermListsIfStaleWaitsForEnoughNewMail(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	s := New(pool, nil, Config{CommonTermDocs: 100, CommonTermTop: 40})
	termCorpus(t, pool, 50)
	if done, _, err := s.RefreshTermListsIfStale(ctx); err != nil || done {
		t.Fatalf("50 mails: refreshed=%v %v, want no lists below CommonTermDocs mails", done, err)
	}
	insertFerryMails := func(prefix string, n int) {
		if _, err := pool.Exec(ctx, `INSERT INTO emails (id, message_id, content_hash, subject, from_addr, sort_at, body_text)
			SELECT $1 || i, $1 || i, $1 || i, 'ferry', 'a@b.test', now(), 'ferry harbour' FROM generate_series(1, $2) i`, prefix, n); err != nil {
			t.Fatal(err)
		}
	}
	insertFerryMails("a", 100)
	done, st, err := s.RefreshTermListsIfStale(ctx)
	if err != nil || !done || st.Terms == 0 {
		t.Fatalf("150 mails: refreshed=%v %+v %v, want lists", done, st, err)
	}
	insertFerryMails("b", 10)
	if done, _, err := s.RefreshTermListsIfStale(ctx); err != nil || done {
		t.Fatalf("10 new mails: refreshed=%v %v, want to wait for more", done, err)
	}
	insertFerryMails("c", 1000)
	if done, _, err := s.RefreshTermListsIfStale(ctx); err != nil || !done {
		t.Fatalf("1010 new mails: refreshed=%v %v, want a refresh", done, err)
	}
}

func TestTermListsTakeLexemesWithQuotes(t *testing.T) {
	pool := testPool(t)
	ctx := context.Background()
	// The default parser keeps quotes in URL paths: "/x?y='z'" is one lexeme.
	if _, err := pool.Exec(ctx, `INSERT INTO emails (id, message_id, content_hash, subject, from_addr, sort_at, body_text)
		SELECT 'q' || i, 'q' || i, 'q' || i, 'link ' || i, 'a@b.test', now(), $1 || ' ' || i FROM generate_series(1, 120) i`,
		`see http://a.example/x?y='z' and http://b.example/p\q?r=''s''`); err != nil {
		t.Fatal(err)
	}
	s := New(pool, nil, Config{CommonTermDocs: 100, CommonTermTop: 50})
	st, err := s.RefreshTermLists(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var quoted int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM search_term_top WHERE lexeme LIKE '%''%'`).Scan(&quoted); err != nil || quoted == 0 {
		t.Fatalf("refresh %+v: %d list entries for lexemes with quotes (%v)", st, quoted, err)
	}
}
