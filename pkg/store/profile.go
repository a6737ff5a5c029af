package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ProfileEvidence links a profile category to an email that supports it.
type ProfileEvidence struct {
	EmailID       string    `json:"email_id"`
	Subject       string    `json:"subject"`
	At            time.Time `json:"at"`
	Excerpt       string    `json:"excerpt"`
	Confidence    float64   `json:"confidence"`
	Judgement     string    `json:"judgement"`
	Backend       string    `json:"backend"`
	Model         string    `json:"model"`
	PromptVersion string    `json:"prompt_version"`
}

// ProfileCategory is one category of the user's profile (written by the classifier).
type ProfileCategory struct {
	Taxonomy        string            `json:"taxonomy"`
	CategoryID      string            `json:"category_id"`
	Section         string            `json:"section"`
	Path            string            `json:"path"`
	Group           string            `json:"group,omitempty"`
	Primary         bool              `json:"primary"`
	Confidence      float64           `json:"confidence"`
	EvidenceCount   int               `json:"evidence_count"`
	FirstEvidenceAt *time.Time        `json:"first_evidence_at,omitempty"`
	LastEvidenceAt  *time.Time        `json:"last_evidence_at,omitempty"`
	Disputed        bool              `json:"disputed"`
	Evidence        []ProfileEvidence `json:"evidence"`
}

// ClassifierStatus is what the classifier reports about itself.
type ClassifierStatus struct {
	Backend     string    `json:"backend"`
	Model       string    `json:"model"`
	BudgetLevel string    `json:"budget_level"`
	BudgetUsed  int64     `json:"budget_used"`
	BudgetLimit int64     `json:"budget_limit"`
	Message     string    `json:"message,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Profile returns the profile ordered by section and confidence, each category
// with up to evidence of its most recent supporting emails.
func (db *DB) Profile(ctx context.Context, evidence int) ([]ProfileCategory, error) {
	rows, err := db.Pool.Query(ctx, `
		SELECT taxonomy, category_id, section, path, group_key, is_primary, confidence, evidence_count,
			first_evidence_at, last_evidence_at, disputed
		FROM profile ORDER BY section, disputed, confidence DESC, category_id`)
	if err != nil {
		return nil, fmt.Errorf("load profile: %w", err)
	}
	cats, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ProfileCategory, error) {
		var c ProfileCategory
		var conf float32
		err := r.Scan(&c.Taxonomy, &c.CategoryID, &c.Section, &c.Path, &c.Group, &c.Primary, &conf, &c.EvidenceCount,
			&c.FirstEvidenceAt, &c.LastEvidenceAt, &c.Disputed)
		c.Confidence = float64(conf)
		c.Evidence = []ProfileEvidence{}
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("load profile: %w", err)
	}
	if len(cats) == 0 || evidence <= 0 {
		return cats, nil
	}
	idx := map[[2]string]int{}
	for i, c := range cats {
		idx[[2]string{c.Taxonomy, c.CategoryID}] = i
	}
	erows, err := db.Pool.Query(ctx, `
		SELECT p.taxonomy, p.category_id, ev.email_id, ev.subject, ev.sort_at, ev.evidence, ev.confidence, ev.judgement, ev.backend, ev.model, ev.prompt_version
		FROM profile p CROSS JOIN LATERAL (
			SELECT c.email_id, e.subject, e.sort_at, c.evidence, c.confidence, c.judgement, c.backend, c.model, c.prompt_version
			FROM classifications c JOIN emails e ON e.id = c.email_id
			WHERE c.taxonomy = p.taxonomy AND c.category_id = p.category_id
			ORDER BY e.sort_at DESC, c.email_id LIMIT $1) ev`, evidence)
	if err != nil {
		return nil, fmt.Errorf("load profile evidence: %w", err)
	}
	defer erows.Close()
	for erows.Next() {
		var t, id string
		var ev ProfileEvidence
		var conf float32
		if err := erows.Scan(&t, &id, &ev.EmailID, &ev.Subject, &ev.At, &ev.Excerpt, &conf, &ev.Judgement, &ev.Backend, &ev.Model, &ev.PromptVersion); err != nil {
			return nil, fmt.Errorf("load profile evidence: %w", err)
		}
		ev.Confidence = float64(conf)
		if i, ok := idx[[2]string{t, id}]; ok {
			cats[i].Evidence = append(cats[i].Evidence, ev)
		}
	}
	if err := erows.Err(); err != nil {
		return nil, fmt.Errorf("load profile evidence: %w", err)
	}
	return cats, nil
}

// SetDisputed marks a profile category disputed (or not). A disputed category
// shows confidence 0 and stops contributing; the classifier keeps it so.
// It returns ErrNotFound when the category is not in the profile.
func (db *DB) SetDisputed(ctx context.Context, taxonomy, categoryID string, disputed bool) error {
	tag, err := db.Pool.Exec(ctx, `
		UPDATE profile SET disputed = $3, is_primary = CASE WHEN $3 THEN false ELSE is_primary END,
			confidence = CASE WHEN $3 THEN 0 ELSE raw_confidence END, updated_at = now()
		WHERE taxonomy = $1 AND category_id = $2`, taxonomy, categoryID, disputed)
	if err != nil {
		return fmt.Errorf("dispute category: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// GetClassifierStatus returns the classifier's status, or a zero status with
// ErrNotFound before the classifier has started once.
func (db *DB) GetClassifierStatus(ctx context.Context) (ClassifierStatus, error) {
	var s ClassifierStatus
	err := db.Pool.QueryRow(ctx, `SELECT backend, model, budget_level, budget_used, budget_limit, message, updated_at FROM classifier_status WHERE id = 'classifier'`).
		Scan(&s.Backend, &s.Model, &s.BudgetLevel, &s.BudgetUsed, &s.BudgetLimit, &s.Message, &s.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, ErrNotFound
	}
	if err != nil {
		return s, fmt.Errorf("classifier status: %w", err)
	}
	return s, nil
}
