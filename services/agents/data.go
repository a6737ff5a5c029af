package agents

import (
	"context"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/pkg/search"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/services/agents/agent"
)

// pgData is agent.Data over Postgres. Safe for concurrent use.
type pgData struct {
	db     *store.DB
	names  *taxonomy.Set    // category names; nil shows ids
	search *search.Searcher // hybrid evidence search; nil = keyword prefix search only
}

var queryWordRe = regexp.MustCompile(`[\p{L}\p{N}]{3,}`)

// tsQuery turns search text into an OR of prefix terms ("flight:* | hotel:*"),
// dropping a plural "s" so singular and plural both match.
func tsQuery(text string) string {
	seen := map[string]bool{}
	var terms []string
	for _, w := range queryWordRe.FindAllString(strings.ToLower(text), -1) {
		if len(w) > 4 && strings.HasSuffix(w, "s") && !strings.HasSuffix(w, "ss") {
			w = w[:len(w)-1] // "flights" → "flight:*", which matches both
		}
		if !seen[w] {
			seen[w] = true
			terms = append(terms, w+":*")
		}
	}
	return strings.Join(terms, " | ")
}

// hybridQuery turns search text into a websearch query matching any of its
// words ("flight or hotel or …"): the agents' texts list evidence words,
// not a phrase that must all appear.
func hybridQuery(text string) string {
	var words []string
	for _, w := range queryWordRe.FindAllString(strings.ToLower(text), -1) {
		if !slices.Contains(words, w) {
			words = append(words, w)
		}
	}
	return strings.Join(words, " or ")
}

// hybridHits returns the ids pkg/search ranks best for q (keyword and
// vector kNN legs fused by RRF), with notes on what it could not do: without
// a query vector (no embedder, timeout, overloaded) it ranks by keywords
// only, and a failed search leaves the caller's own keyword search alone.
func (d *pgData) hybridHits(ctx context.Context, q agent.EmailQuery) ([]string, []string) {
	text := hybridQuery(q.Text)
	if d.search == nil || text == "" {
		return nil, nil
	}
	res, err := d.search.Search(ctx, search.Query{Text: text, Mode: search.Hybrid, Limit: hybridLimit, After: q.Since, Before: q.Until})
	if err != nil {
		return nil, []string{"hybrid search failed, keyword prefix search only: " + err.Error()}
	}
	ids := make([]string, len(res.Hits))
	for i, h := range res.Hits {
		ids[i] = h.EmailID
	}
	var notes []string
	for _, w := range res.Warnings {
		notes = append(notes, w+" (keywords only)")
	}
	return ids, notes
}

// hybridLimit is how many ranked hits the hybrid search contributes (its maximum).
const hybridLimit = 100

// searchEmailsSQL selects mails by date ($1, $2), ids ($3), prefix words
// ($4, through the search index emails_search_tsv_idx) or rank ($6, the hybrid search's ids
// in order) up to $5, ranked hits first, then newest first.
const searchEmailsSQL = `
		SELECT e.id, coalesce(e.source_id, ''), e.from_name, e.from_addr, e.subject,
			CASE WHEN e.body_text <> '' THEN e.body_text ELSE e.snippet END, e.sort_at,
			coalesce(array_agg(c.taxonomy || ':' || c.category_id) FILTER (WHERE c.category_id IS NOT NULL), '{}')
		FROM emails e LEFT JOIN classifications c ON c.email_id = e.id
		WHERE ($1::timestamptz IS NULL OR e.sort_at >= $1) AND ($2::timestamptz IS NULL OR e.sort_at < $2)
		  AND (cardinality($3::text[]) = 0 OR e.id = ANY($3))
		  AND ($4 = '' OR e.search_tsv @@ to_tsquery('english', $4)
		       OR e.id = ANY($6))
		GROUP BY e.id ORDER BY array_position($6, e.id) NULLS LAST, e.sort_at DESC, e.id LIMIT $5`

// SearchEmails implements agent.Data. The evidence is the hybrid search's
// best hits for the text (pkg/search: keyword and semantic legs fused by
// RRF), in its order, then every other mail with any of the words as a
// prefix of a word (stemmed) in subject, sender or body (the search index,
// emails_search_tsv_idx; migration 00412 dropped the agents' own index,
// which cost every ingested email a second full-text pass), newest first; each with its category names. When the semantic
// leg is unavailable the result says so in its notes.
func (d *pgData) SearchEmails(ctx context.Context, q agent.EmailQuery) (agent.Found, error) {
	ranked, notes := d.hybridHits(ctx, q)
	if ranked == nil {
		ranked = []string{}
	}
	limit := q.Limit
	if limit <= 0 || limit > 2000 {
		limit = 500
	}
	var since, until *time.Time
	if !q.Since.IsZero() {
		since = &q.Since
	}
	if !q.Until.IsZero() {
		until = &q.Until
	}
	ids := q.IDs
	if ids == nil {
		ids = []string{}
	}
	rows, err := d.db.Pool.Query(ctx, searchEmailsSQL, since, until, ids, tsQuery(q.Text), limit, ranked)
	if err != nil {
		return agent.Found{}, fmt.Errorf("search emails: %w", err)
	}
	defer rows.Close()
	var out []agent.Email
	for rows.Next() {
		var e agent.Email
		var name, addr string
		var cats []string
		if err := rows.Scan(&e.ID, &e.SourceID, &name, &addr, &e.Subject, &e.Body, &e.Date, &cats); err != nil {
			return agent.Found{}, fmt.Errorf("search emails: %w", err)
		}
		e.From = (&mail.Address{Name: name, Address: addr}).String()
		e.Date = e.Date.UTC()
		for _, c := range cats {
			tax, id, _ := strings.Cut(c, ":")
			e.Categories = append(e.Categories, d.names.Name(tax, id))
		}
		if len(q.Categories) > 0 && !anyPrefix(e.Categories, q.Categories) {
			continue
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return agent.Found{}, fmt.Errorf("search emails: %w", err)
	}
	return agent.Found{Emails: out, Notes: notes}, nil
}

func anyPrefix(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if strings.HasPrefix(strings.ToLower(h), strings.ToLower(w)) {
				return true
			}
		}
	}
	return false
}

// Profile implements agent.Data: the undisputed profile rows with names.
func (d *pgData) Profile(ctx context.Context) (agent.Profile, error) {
	rows, err := d.db.Pool.Query(ctx, `SELECT taxonomy, category_id, confidence, evidence_count, updated_at FROM profile
		WHERE NOT disputed ORDER BY confidence DESC, category_id`)
	if err != nil {
		return agent.Profile{}, fmt.Errorf("read profile: %w", err)
	}
	defer rows.Close()
	var p agent.Profile
	for rows.Next() {
		var tax, id string
		var conf float32
		var n int
		var at time.Time
		if err := rows.Scan(&tax, &id, &conf, &n, &at); err != nil {
			return p, fmt.Errorf("read profile: %w", err)
		}
		p.Interests = append(p.Interests, agent.Interest{Category: id, Name: d.names.Name(tax, id), Confidence: float64(conf), Evidence: n})
		if at.After(p.UpdatedAt) {
			p.UpdatedAt = at
		}
	}
	return p, rows.Err()
}

// Cards implements agent.Data: every card of the agent, closed ones too.
func (d *pgData) Cards(ctx context.Context, agentName string) ([]mission.Card, error) {
	return d.db.Missions(ctx, store.MissionFilter{Agent: agentName, Statuses: []string{"created", "presented", "active", "snoozed", "dismissed", "completed"}})
}

// Feedback implements agent.Data.
func (d *pgData) Feedback(ctx context.Context, agentName string) ([]mission.Feedback, error) {
	return d.db.Feedback(ctx, agentName)
}

// Sources implements agent.Data: per-source counts, progress through the
// stages, errors, last sync and mails per week over eight weeks.
func (d *pgData) Sources(ctx context.Context) ([]agent.SourceStat, error) {
	rows, err := d.db.Pool.Query(ctx, `
		SELECT s.id, s.kind, coalesce(nullif(s.name, ''), s.account), s.errors_count, s.last_success_at,
			(SELECT count(*) FROM emails e WHERE e.source_id = s.id),
			(SELECT count(*) FROM email_stages st JOIN emails e ON e.id = st.email_id
				WHERE e.source_id = s.id AND st.stage = 'classifier' AND st.status = 'done'),
			(SELECT count(*) FROM email_stages st JOIN emails e ON e.id = st.email_id
				WHERE e.source_id = s.id AND st.stage = 'embedder' AND st.status = 'done'),
			(SELECT coalesce(array_agg(n ORDER BY w DESC), '{}') FROM (
				SELECT w, (SELECT count(*) FROM emails e WHERE e.source_id = s.id
					AND e.sort_at >= now() - (w + 1) * interval '1 week' AND e.sort_at < now() - w * interval '1 week') AS n
				FROM generate_series(0, 7) AS w) weeks)
		FROM sources s ORDER BY s.id`)
	if err != nil {
		return nil, fmt.Errorf("read sources: %w", err)
	}
	defer rows.Close()
	var out []agent.SourceStat
	for rows.Next() {
		var s agent.SourceStat
		var last *time.Time
		var errs int64
		var weekly []int64
		if err := rows.Scan(&s.ID, &s.Kind, &s.Name, &errs, &last, &s.Emails, &s.Classified, &s.Embedded, &weekly); err != nil {
			return nil, fmt.Errorf("read sources: %w", err)
		}
		s.Errors = int(errs)
		if last != nil {
			s.LastImport = *last
		}
		for _, n := range weekly {
			s.Weekly = append(s.Weekly, int(n))
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
