package classifier

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/services/classifier/core"
	"github.com/ownyou/home/services/classifier/profile"
)

// Taxonomy names as stored in classifications.taxonomy and profile.taxonomy.
const (
	dbAudience = taxonomy.KeyAudience
	dbContent  = taxonomy.KeyContent
)

func dbTaxonomy(k taxonomy.Kind) string {
	if k == taxonomy.Content {
		return dbContent
	}
	return dbAudience
}

func kindOf(db string) (taxonomy.Kind, bool) {
	switch db {
	case dbAudience:
		return taxonomy.Audience, true
	case dbContent:
		return taxonomy.Content, true
	}
	return "", false
}

// stage is this service's email_stages.stage value.
const stage = "classifier"

// repo holds the classifier's queries. Safe for concurrent use.
type repo struct {
	pool *pgxpool.Pool
	tax  *taxonomy.Set
}

// done returns the ids among ids the classifier has already finished.
func (r *repo) done(ctx context.Context, ids []string) (map[string]bool, error) {
	rows, err := r.pool.Query(ctx, `SELECT email_id FROM email_stages WHERE stage = $1 AND status = 'done' AND email_id = ANY($2)`, stage, ids)
	if err != nil {
		return nil, fmt.Errorf("load done emails: %w", err)
	}
	out := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("load done emails: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}

// loadEmails reads the emails with ids and, when vectorModel is set, their
// stored chunk vectors of that model. Missing ids are absent from the result.
func (r *repo) loadEmails(ctx context.Context, ids []string, vectorModel string) (map[string]*core.Email, error) {
	rows, err := r.pool.Query(ctx, `
		SELECT id, from_name, from_addr, subject, body_text, sort_at, import_id IS NOT NULL
		FROM emails WHERE id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("load emails: %w", err)
	}
	out := map[string]*core.Email{}
	for rows.Next() {
		var e core.Email
		var name, addr string
		if err := rows.Scan(&e.ID, &name, &addr, &e.Subject, &e.Text, &e.Date, &e.Backfill); err != nil {
			return nil, fmt.Errorf("load emails: %w", err)
		}
		e.From = addr
		if name != "" {
			e.From = name + " <" + addr + ">"
		}
		out[e.ID] = &e
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load emails: %w", err)
	}
	if vectorModel == "" || len(out) == 0 {
		return out, nil
	}
	vrows, err := r.pool.Query(ctx, `
		SELECT email_id, '', embedding::real[]
		FROM embeddings WHERE model = $1 AND email_id = ANY($2) ORDER BY email_id, chunk`, vectorModel, ids)
	if err != nil {
		return nil, fmt.Errorf("load chunk vectors: %w", err)
	}
	for vrows.Next() {
		var id, text string
		var vec []float32
		if err := vrows.Scan(&id, &text, &vec); err != nil {
			return nil, fmt.Errorf("load chunk vectors: %w", err)
		}
		if e := out[id]; e != nil {
			e.Chunks = append(e.Chunks, core.Chunk{Vector: vec})
			e.VectorModel = vectorModel
		}
	}
	if err := vrows.Err(); err != nil {
		return nil, fmt.Errorf("load chunk vectors: %w", err)
	}
	return out, nil
}

// replace stores the email's classifications in place of any earlier ones and
// returns every category key whose evidence changed.
func (r *repo) replace(ctx context.Context, emailID string, cls []core.Classification) ([]profile.Key, error) {
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("store classifications: %w", err)
	}
	defer tx.Rollback(ctx)
	keys := map[profile.Key]bool{}
	rows, err := tx.Query(ctx, `DELETE FROM classifications WHERE email_id = $1 RETURNING taxonomy, category_id`, emailID)
	if err != nil {
		return nil, fmt.Errorf("store classifications: %w", err)
	}
	for rows.Next() {
		var t, id string
		if err := rows.Scan(&t, &id); err != nil {
			return nil, fmt.Errorf("store classifications: %w", err)
		}
		if k, ok := kindOf(t); ok {
			keys[profile.Key{Taxonomy: k, CategoryID: id}] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store classifications: %w", err)
	}
	// One row per (email, taxonomy, category): keep the strongest.
	best := map[profile.Key]core.Classification{}
	for _, c := range cls {
		k := profile.Key{Taxonomy: c.Taxonomy, CategoryID: c.CategoryID}
		if old, ok := best[k]; !ok || c.Confidence > old.Confidence {
			best[k] = c
		}
	}
	for k, c := range best {
		keys[k] = true
		if _, err := tx.Exec(ctx, `
			INSERT INTO classifications (email_id, taxonomy, category_id, confidence, evidence, judgement, backend, model, prompt_version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			emailID, dbTaxonomy(c.Taxonomy), c.CategoryID, c.Confidence, c.Evidence, c.EvidenceType, c.Backend, c.Model, c.PromptVersion); err != nil {
			return nil, fmt.Errorf("store classification: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("store classifications: %w", err)
	}
	out := make([]profile.Key, 0, len(keys))
	for k := range keys {
		out = append(out, k)
	}
	return out, nil
}

// expand adds the members of the exclusive groups of keys: evidence for one
// member changes the others.
func (r *repo) expand(keys []profile.Key) []profile.Key {
	set := map[profile.Key]bool{}
	for _, k := range keys {
		set[k] = true
		if k.Taxonomy != taxonomy.Audience {
			continue
		}
		c := r.tax.Audience.Get(k.CategoryID)
		if c == nil || c.Group == "" {
			continue
		}
		var walk func(id string)
		walk = func(id string) {
			for _, ch := range r.tax.Audience.Children(id) {
				set[profile.Key{Taxonomy: taxonomy.Audience, CategoryID: ch.ID}] = true
				walk(ch.ID)
			}
		}
		walk(r.tax.Audience.Group(c.Group).ParentID)
	}
	out := make([]profile.Key, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Taxonomy != out[j].Taxonomy {
			return out[i].Taxonomy < out[j].Taxonomy
		}
		return out[i].CategoryID < out[j].CategoryID
	})
	return out
}

// lockKey is the advisory lock serialising profile updates of one category
// (or of one exclusive group) across classifier processes.
func (r *repo) lockKey(k profile.Key) int64 {
	name := string(k.Taxonomy) + ":" + k.CategoryID
	if k.Taxonomy == taxonomy.Audience {
		if c := r.tax.Audience.Get(k.CategoryID); c != nil && c.Group != "" {
			name = "group:" + c.Group
		}
	}
	h := fnv.New64a()
	h.Write([]byte("ownyou-profile:" + name))
	return int64(h.Sum64())
}

// rebuild recomputes the profile rows of keys (and their group peers) from all
// their classifications. It is a pure function of the stored classifications,
// so running it twice, or concurrently from several processes (serialised by
// advisory locks), gives the same rows.
func (r *repo) rebuild(ctx context.Context, keys []profile.Key, now time.Time) error {
	if len(keys) == 0 {
		return nil
	}
	keys = r.expand(keys)
	locks := map[int64]bool{}
	for _, k := range keys {
		locks[r.lockKey(k)] = true
	}
	lockList := make([]int64, 0, len(locks))
	for l := range locks {
		lockList = append(lockList, l)
	}
	sort.Slice(lockList, func(i, j int) bool { return lockList[i] < lockList[j] })
	taxs := make([]string, len(keys))
	cats := make([]string, len(keys))
	for i, k := range keys {
		taxs[i], cats[i] = dbTaxonomy(k.Taxonomy), k.CategoryID
	}
	tx, err := r.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("rebuild profile: %w", err)
	}
	defer tx.Rollback(ctx)
	for _, l := range lockList {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, l); err != nil {
			return fmt.Errorf("rebuild profile: lock: %w", err)
		}
	}
	rows, err := tx.Query(ctx, `
		SELECT c.taxonomy, c.category_id, c.email_id, c.confidence, c.evidence, c.backend, c.model, c.prompt_version, e.sort_at
		FROM classifications c JOIN emails e ON e.id = c.email_id
		JOIN unnest($1::text[], $2::text[]) AS k(taxonomy, category_id) ON k.taxonomy = c.taxonomy AND k.category_id = c.category_id`, taxs, cats)
	if err != nil {
		return fmt.Errorf("rebuild profile: evidence: %w", err)
	}
	var ev []profile.Evidence
	first := map[profile.Key]time.Time{}
	for rows.Next() {
		var t string
		var e profile.Evidence
		var conf float32
		if err := rows.Scan(&t, &e.CategoryID, &e.EmailID, &conf, &e.Excerpt, &e.Backend, &e.Model, &e.Prompt, &e.At); err != nil {
			return fmt.Errorf("rebuild profile: evidence: %w", err)
		}
		k, ok := kindOf(t)
		if !ok {
			continue
		}
		e.Taxonomy, e.Strength = k, float64(conf)
		ev = append(ev, e)
		key := profile.Key{Taxonomy: k, CategoryID: e.CategoryID}
		if f, ok := first[key]; !ok || e.At.Before(f) {
			first[key] = e.At
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("rebuild profile: evidence: %w", err)
	}
	disputed := map[profile.Key]bool{}
	drows, err := tx.Query(ctx, `
		SELECT p.taxonomy, p.category_id FROM profile p
		JOIN unnest($1::text[], $2::text[]) AS k(taxonomy, category_id) ON k.taxonomy = p.taxonomy AND k.category_id = p.category_id
		WHERE p.disputed`, taxs, cats)
	if err != nil {
		return fmt.Errorf("rebuild profile: disputes: %w", err)
	}
	for drows.Next() {
		var t, id string
		if err := drows.Scan(&t, &id); err != nil {
			return fmt.Errorf("rebuild profile: disputes: %w", err)
		}
		if k, ok := kindOf(t); ok {
			disputed[profile.Key{Taxonomy: k, CategoryID: id}] = true
		}
	}
	if err := drows.Err(); err != nil {
		return fmt.Errorf("rebuild profile: disputes: %w", err)
	}
	p := profile.Build(r.tax, ev, disputed, now)
	primary := map[profile.Key]bool{}
	for _, g := range p.Groups {
		primary[g.Primary.Key] = true
	}
	present := map[profile.Key]bool{}
	for _, en := range p.Entries {
		present[en.Key] = true
		if _, err := tx.Exec(ctx, `
			INSERT INTO profile (taxonomy, category_id, section, confidence, raw_confidence, evidence_count,
				first_evidence_at, last_evidence_at, path, group_key, is_primary, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
			ON CONFLICT (taxonomy, category_id) DO UPDATE SET
				section = EXCLUDED.section, confidence = EXCLUDED.confidence, raw_confidence = EXCLUDED.raw_confidence,
				evidence_count = EXCLUDED.evidence_count, first_evidence_at = EXCLUDED.first_evidence_at,
				last_evidence_at = EXCLUDED.last_evidence_at, path = EXCLUDED.path, group_key = EXCLUDED.group_key,
				is_primary = EXCLUDED.is_primary, updated_at = now()`,
			dbTaxonomy(en.Taxonomy), en.CategoryID, string(en.Section), en.Confidence, en.Raw, en.Evidence,
			first[en.Key], en.LastEvidence, en.Path, en.Group, primary[en.Key]); err != nil {
			return fmt.Errorf("rebuild profile: upsert: %w", err)
		}
	}
	// Categories left without evidence leave the profile (disputes are kept).
	for i, k := range keys {
		if present[k] {
			continue
		}
		if _, err := tx.Exec(ctx, `DELETE FROM profile WHERE taxonomy = $1 AND category_id = $2 AND NOT disputed`, taxs[i], cats[i]); err != nil {
			return fmt.Errorf("rebuild profile: delete: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("rebuild profile: %w", err)
	}
	return nil
}

// decaySQL refreshes every row's decayed confidence; it is profile.Decay in SQL.
const decaySQL = `
	UPDATE profile SET confidence = CASE WHEN disputed THEN 0 ELSE
		greatest(0, raw_confidence * greatest(0, 1 - 0.01 * greatest(0, extract(epoch FROM $1::timestamptz - last_evidence_at)) / 604800.0)) END
	WHERE last_evidence_at IS NOT NULL`

// decay applies time decay to the whole profile as of now.
func (r *repo) decay(ctx context.Context, now time.Time) error {
	if _, err := r.pool.Exec(ctx, decaySQL, now); err != nil {
		return fmt.Errorf("decay profile: %w", err)
	}
	return nil
}

// classifications reads an email's stored categories.
func (r *repo) classifications(ctx context.Context, emailID string) ([]core.Classification, error) {
	rows, err := r.pool.Query(ctx, `SELECT taxonomy, category_id, confidence FROM classifications WHERE email_id = $1 ORDER BY taxonomy, category_id`, emailID)
	if err != nil {
		return nil, fmt.Errorf("load classifications: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (core.Classification, error) {
		var t string
		var c core.Classification
		var conf float32
		err := row.Scan(&t, &c.CategoryID, &conf)
		k, _ := kindOf(t)
		c.Taxonomy, c.Confidence, c.EmailID = k, float64(conf), emailID
		return c, err
	})
}

var errNoEmail = errors.New("email not found")
