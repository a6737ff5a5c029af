package search

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Common-term lists. Keyword search ranks every mail its query matches; a
// query made only of words found in a large share of the mail ("new",
// "year") would rank tens of thousands of rows. For each term found in at
// least Config.CommonTermDocs mails, RefreshTermLists keeps the
// Config.CommonTermTop mails that rank highest for that term alone. A query
// whose terms are all common then ranks, with the same ordering, only the
// mails on its terms' lists plus the mail that arrived since they were
// computed.
//
// For a one-word query the answer is the exact one: a mail missing from the
// list ranks below the list's last entry, so when the n-th hit ranks above
// it nothing was missed (otherwise every match is ranked, as without lists).
// For several common words the lists give the mails most about each word;
// a mail that mentions all of them only moderately can be missed.

// termListMargin is how far before a refresh's start the lists stop
// vouching for mail: rows written by transactions that began earlier but
// committed after the refresh's snapshot are still found as new mail.
const termListMargin = 5 * time.Minute

// termListLock is the advisory lock held while refreshing, so one process
// of a scaled-out cluster refreshes at a time.
const termListLock = 0x6f796e_7465726d // "oyn" "term"

// TermListStats describes a refresh of the common-term lists.
type TermListStats struct {
	Mails   int64         `json:"mails"`
	Terms   int           `json:"terms"`
	Listed  int64         `json:"listed"`
	Took    time.Duration `json:"took"`
	Skipped bool          `json:"skipped,omitempty"` // another process was refreshing
}

// RefreshTermLists recomputes the common terms and their lists in one
// transaction; searches keep using the previous lists until it commits. It
// ranks every common term's matches (about 20 s of Postgres time at 100k
// mails on two cores), so callers run it in the background, as
// RefreshTermListsIfStale does. Safe to call from several processes: all
// but one skip.
func (s *Searcher) RefreshTermLists(ctx context.Context) (TermListStats, error) {
	start := time.Now()
	var st TermListStats
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, int64(termListLock)).Scan(&locked); err != nil {
			return err
		}
		if !locked {
			st.Skipped = true
			return nil
		}
		var dbNow time.Time
		if err := tx.QueryRow(ctx, `SELECT now()`).Scan(&dbNow); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM search_common_terms`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM search_term_top`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
INSERT INTO search_common_terms (lexeme, ndoc, listed, min_score)
SELECT word, ndoc, 0, 0 FROM ts_stat('SELECT search_tsv FROM emails') WHERE ndoc >= $1`, s.cfg.CommonTermDocs); err != nil {
			return err
		}
		// Per term, its matches through the GIN index, in keyword search's
		// order (score, then newest, then id), top-N sorted: no sort of
		// every (term, mail) pair. The lexeme is quoted as tsquery input,
		// quotes doubled (URL-path lexemes hold them) and backslashes too
		// (the default parser never keeps one, another configuration might).
		if _, err := tx.Exec(ctx, `
INSERT INTO search_term_top (lexeme, email_id, score, sort_at)
SELECT c.lexeme, t.id, t.score, t.sort_at FROM search_common_terms c
CROSS JOIN LATERAL (SELECT ('''' || replace(replace(c.lexeme, '\', '\\'), '''', '''''') || '''')::tsquery AS q) lq
CROSS JOIN LATERAL (
    SELECT e.id, ts_rank_cd(e.search_tsv, lq.q, 1) AS score, e.sort_at
    FROM emails e WHERE e.search_tsv @@ lq.q
    ORDER BY score DESC, e.sort_at DESC, e.id
    LIMIT $1
) t`, s.cfg.CommonTermTop); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
UPDATE search_common_terms c SET listed = l.n, min_score = l.min_score
FROM (SELECT lexeme, count(*) AS n, min(score) AS min_score FROM search_term_top GROUP BY lexeme) l
WHERE l.lexeme = c.lexeme`); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM emails), (SELECT count(*) FROM search_common_terms), (SELECT count(*) FROM search_term_top)`).
			Scan(&st.Mails, &st.Terms, &st.Listed); err != nil {
			return err
		}
		st.Took = time.Since(start)
		_, err := tx.Exec(ctx, `
INSERT INTO search_term_state (id, refreshed_at, covers_before, mails, took_ms) VALUES (true, $1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET refreshed_at = EXCLUDED.refreshed_at, covers_before = EXCLUDED.covers_before,
    mails = EXCLUDED.mails, took_ms = EXCLUDED.took_ms`, dbNow, dbNow.Add(-termListMargin), st.Mails, st.Took.Milliseconds())
		return err
	})
	if err != nil {
		return TermListStats{}, fmt.Errorf("refresh term lists: %w", err)
	}
	if !st.Skipped {
		// The lists' rows were all replaced: clear the dead ones and give the
		// planner their new statistics now rather than when autovacuum
		// comes by in the middle of someone's searches.
		if _, err := s.pool.Exec(ctx, `VACUUM (ANALYZE) search_term_top, search_common_terms`); err != nil {
			return st, fmt.Errorf("refresh term lists: vacuum: %w", err)
		}
		st.Took = time.Since(start)
	}
	return st, nil
}

// RefreshTermListsIfStale refreshes the lists when enough mail arrived
// since the last refresh that ranking it at query time gets dear: at least
// 1,000 mails and 2% of all mail, or any mail at all a day later. It
// reports whether it refreshed. The check counts only the mail that arrived
// since (through the ingested_at index): all mail is the last refresh's
// count plus that, so a check costs little however large the mailbox.
func (s *Searcher) RefreshTermListsIfStale(ctx context.Context) (bool, TermListStats, error) {
	var (
		refreshed     *time.Time
		mails, recent int64
	)
	err := s.pool.QueryRow(ctx, `
SELECT st.refreshed_at, coalesce(st.mails, 0),
       (SELECT count(*) FROM emails WHERE ingested_at >= coalesce(st.refreshed_at, '-infinity'))
FROM (SELECT 1) one LEFT JOIN search_term_state st ON true`).Scan(&refreshed, &mails, &recent)
	if err != nil {
		return false, TermListStats{}, fmt.Errorf("term lists staleness: %w", err)
	}
	mails += recent
	stale := recent >= max(1000, mails/50) || recent > 0 && refreshed != nil && time.Since(*refreshed) > 24*time.Hour
	if refreshed == nil {
		// Never refreshed: lists pay off once some term can be common.
		stale = mails >= int64(s.cfg.CommonTermDocs)
	}
	if !stale {
		return false, TermListStats{}, nil
	}
	st, err := s.RefreshTermLists(ctx)
	return err == nil && !st.Skipped, st, err
}

// termPlan is what the lists can do for a query.
type termPlan struct {
	// words are the query's distinct lexemes (stop words gone); common
	// those of them with a common-term list (coversTo set with them).
	words, common []string
	lexemes       []string
	// exact: one common term, so a long enough answer from its list is exact.
	exact    bool
	minScore float32 // exact: the list's last entry's score
	coversTo time.Time
	// empty: the query has no words to match (only stop words); planTerms
	// then reports !ok and keyword search has nothing to rank.
	empty bool
}

// planTerms decides whether q's keyword leg can rank the common-term lists
// instead of every match: q is a plain conjunction of words (no "or", no
// -word, no quotes), every word is a common term, and, for several words,
// they probably share more than CommonTermDocs mails.
func (s *Searcher) planTerms(ctx context.Context, db querier, q Query) (termPlan, bool, error) {
	var (
		tsq      string
		lexemes  []string
		ndocs    []*int32
		listed   []*int32
		scores   []*float32
		mails    *int64
		coversTo *time.Time
	)
	err := db.QueryRow(ctx, `
WITH lx AS (SELECT DISTINCT u.lexeme FROM unnest(to_tsvector($1::regconfig, $2)) u),
t AS (SELECT lx.lexeme, c.ndoc, c.listed, c.min_score FROM lx LEFT JOIN search_common_terms c USING (lexeme))
SELECT websearch_to_tsquery($1::regconfig, $2)::text,
       coalesce((SELECT array_agg(lexeme ORDER BY lexeme) FROM t), '{}'),
       coalesce((SELECT array_agg(ndoc ORDER BY lexeme) FROM t), '{}'),
       coalesce((SELECT array_agg(listed ORDER BY lexeme) FROM t), '{}'),
       coalesce((SELECT array_agg(min_score ORDER BY lexeme) FROM t), '{}'),
       st.mails, st.covers_before
FROM (SELECT 1) one LEFT JOIN search_term_state st ON true`, s.cfg.TextConfig, q.Text).
		Scan(&tsq, &lexemes, &ndocs, &listed, &scores, &mails, &coversTo)
	if err != nil {
		return termPlan{}, false, fmt.Errorf("plan keyword search: %w", err)
	}
	if strings.TrimSpace(tsq) == "" {
		return termPlan{empty: true}, false, nil // only stop words: nothing can match
	}
	words := termPlan{words: lexemes}
	if coversTo != nil {
		words.coversTo = *coversTo
		for i, l := range lexemes {
			if listed[i] != nil && *listed[i] > 0 {
				words.common = append(words.common, l)
			}
		}
	}
	if q.From != "" || coversTo == nil || len(lexemes) == 0 || strings.ContainsAny(tsq, "|!<") {
		return words, false, nil // (a sender filter leaves few mails to rank)
	}
	plan := words
	plan.lexemes = lexemes
	// Expected shared mails if the words occurred independently.
	shared := float64(*mails)
	for i := range lexemes {
		if ndocs[i] == nil {
			return words, false, nil // a rarer word bounds the matches
		}
		shared *= float64(*ndocs[i]) / float64(max(*mails, 1))
	}
	if len(lexemes) == 1 {
		if int(*listed[0]) < s.cfg.CommonTermTop {
			return words, false, nil // the list holds every match: no gain
		}
		plan.exact, plan.minScore = true, *scores[0]
		return plan, true, nil
	}
	if shared < float64(s.cfg.CommonTermDocs) {
		return words, false, nil
	}
	return plan, true, nil
}

// errIncomplete reports that the lists could not vouch for an answer.
var errIncomplete = errors.New("term lists incomplete for this query")

// keywordFromLists ranks the plan's lists plus newer mail. It returns
// errIncomplete when the answer might differ from ranking every match.
func (s *Searcher) keywordFromLists(ctx context.Context, db querier, q Query, plan termPlan, n int) ([]ranked, error) {
	var (
		out []ranked
		err error
	)
	if plan.exact && q.Category == "" {
		out, err = s.keywordFromStoredScores(ctx, db, q, plan, n)
	} else {
		args := []any{s.cfg.TextConfig, q.Text, n, plan.lexemes, plan.coversTo}
		out, err = rankKeyword(ctx, db, `
WITH cand AS (
    SELECT email_id AS id FROM search_term_top WHERE lexeme = ANY($4)
    UNION
    SELECT id FROM emails WHERE ingested_at >= $5
)
SELECT `+keywordColumns+`
FROM cand JOIN emails e ON e.id = cand.id
WHERE e.search_tsv @@ websearch_to_tsquery($1::regconfig, $2)`+filterSQL(q, &args)+keywordOrder, args)
	}
	if err != nil {
		return nil, err
	}
	if len(out) < n || plan.exact && float32(out[n-1].score) <= plan.minScore {
		return nil, errIncomplete
	}
	return out, nil
}

// keywordFromStoredScores answers a one-word query from its list's stored
// scores and dates (the same ts_rank_cd of the same immutable tsvector),
// reading only the first n entries that still exist, plus newer mail
// ranked in full: no mail row is read for the listed part.
func (s *Searcher) keywordFromStoredScores(ctx context.Context, db querier, q Query, plan termPlan, n int) ([]ranked, error) {
	args := []any{s.cfg.TextConfig, q.Text, n, plan.lexemes[0], plan.coversTo}
	// The listed part filters on the stored date; the fresh part has only
	// date filters too (this path is taken without sender or category).
	listDates := ""
	if c := dateSQL("t.sort_at", q, &args); c != "" {
		listDates = " AND " + c
	}
	freshFilters := filterSQL(q, &args)
	return rankKeyword(ctx, db, `
WITH listed AS (
    SELECT t.email_id AS id, t.score, t.sort_at FROM search_term_top t
    WHERE t.lexeme = $4`+listDates+` AND EXISTS (SELECT 1 FROM emails e WHERE e.id = t.email_id)
    ORDER BY t.score DESC, t.sort_at DESC, t.email_id
    LIMIT $3
), fresh AS (
    SELECT e.id, ts_rank_cd(e.search_tsv, websearch_to_tsquery($1::regconfig, $2), 1) AS score, e.sort_at
    FROM emails e
    WHERE e.ingested_at >= $5 AND e.search_tsv @@ websearch_to_tsquery($1::regconfig, $2)`+freshFilters+`
)
SELECT id, score, false AS phrase FROM (SELECT * FROM listed UNION SELECT * FROM fresh) u
ORDER BY score DESC, sort_at DESC, id
LIMIT $3`, args)
}
