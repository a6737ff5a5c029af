package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ownyou/home/pkg/mission"
)

const missionCols = `id, agent, kind, subject_key, title, summary, urgency, status, primary_action, actions, evidence, details,
	category, confidence, rating, feedback_note, created_at, updated_at, event_at, expires_at, snoozed_until`

func scanMission(row pgx.Row) (mission.Card, error) {
	var c mission.Card
	var status, rating string
	var urgency int
	var primary, actions, evidence, details []byte
	var eventAt, expiresAt, snoozed *time.Time
	if err := row.Scan(&c.ID, &c.Agent, &c.Kind, &c.SubjectKey, &c.Title, &c.Summary, &urgency, &status, &primary, &actions,
		&evidence, &details, &c.Category, &c.Confidence, &rating, &c.Feedback, &c.CreatedAt, &c.UpdatedAt, &eventAt, &expiresAt, &snoozed); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return c, ErrNotFound
		}
		return c, err
	}
	c.Urgency, c.Status, c.Rating = mission.Urgency(urgency), mission.Status(status), mission.Rating(rating)
	if len(primary) > 0 && string(primary) != "null" {
		var a mission.Action
		if err := json.Unmarshal(primary, &a); err != nil {
			return c, fmt.Errorf("mission %s primary action: %w", c.ID, err)
		}
		c.Primary = &a
	}
	if err := json.Unmarshal(actions, &c.Secondary); err != nil {
		return c, fmt.Errorf("mission %s actions: %w", c.ID, err)
	}
	if err := json.Unmarshal(evidence, &c.Evidence); err != nil {
		return c, fmt.Errorf("mission %s evidence: %w", c.ID, err)
	}
	if err := json.Unmarshal(details, &c.Details); err != nil {
		return c, fmt.Errorf("mission %s details: %w", c.ID, err)
	}
	c.EventAt, c.ExpiresAt, c.SnoozedUntil = deref(eventAt), deref(expiresAt), deref(snoozed)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return c, nil
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Mission returns one card, or ErrNotFound.
func (db *DB) Mission(ctx context.Context, id string) (mission.Card, error) {
	c, err := scanMission(db.Pool.QueryRow(ctx, `SELECT `+missionCols+` FROM missions WHERE id = $1`, id))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return c, fmt.Errorf("read mission: %w", err)
	}
	return c, err
}

// MissionFilter selects cards. Zero fields do not filter; closed cards
// (dismissed, completed) are left out unless a status asks for them.
type MissionFilter struct {
	Agent    string
	Kind     string
	Statuses []string
	// EventBefore keeps cards whose event happens before it (and after now).
	EventBefore time.Time
	Limit       int
}

// Missions returns the cards matching f, newest change first.
func (db *DB) Missions(ctx context.Context, f MissionFilter) ([]mission.Card, error) {
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	statuses := f.Statuses
	if len(statuses) == 0 {
		statuses = []string{string(mission.StatusCreated), string(mission.StatusPresented), string(mission.StatusActive), string(mission.StatusSnoozed)}
	}
	rows, err := db.Pool.Query(ctx, `SELECT `+missionCols+` FROM missions
		WHERE status = ANY($1) AND ($2 = '' OR agent = $2) AND ($3 = '' OR kind = $3)
		  AND ($4::timestamptz IS NULL OR (event_at > now() AND event_at < $4))
		ORDER BY updated_at DESC, id LIMIT $5`, statuses, f.Agent, f.Kind, nullTime(f.EventBefore), limit)
	if err != nil {
		return nil, fmt.Errorf("list missions: %w", err)
	}
	defer rows.Close()
	var out []mission.Card
	for rows.Next() {
		c, err := scanMission(rows)
		if err != nil {
			return nil, fmt.Errorf("list missions: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list missions: %w", err)
	}
	return out, nil
}

// MissionChange says what an upsert did to a card and whether an event is
// still owed for it.
type MissionChange struct {
	Card    mission.Card
	Created bool // the card is new
	// Unpublished is true while the card's latest change has not been
	// published; call MarkMissionPublished after publishing.
	Unpublished bool
}

// UpsertMission stores a freshly made card: a new id is inserted; an
// existing one is merged (content from fresh, the user's state kept) and
// rewritten only if its content changed. Safe to repeat: the same card twice
// changes nothing, and a change whose event was never published stays
// Unpublished until MarkMissionPublished.
func (db *DB) UpsertMission(ctx context.Context, fresh mission.Card) (MissionChange, error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return MissionChange{}, fmt.Errorf("upsert mission: %w", err)
	}
	defer tx.Rollback(ctx)
	stored, err := scanMission(tx.QueryRow(ctx, `SELECT `+missionCols+` FROM missions WHERE id = $1 FOR UPDATE`, fresh.ID))
	var ch MissionChange
	switch {
	case errors.Is(err, ErrNotFound):
		ch = MissionChange{Card: fresh, Created: true}
	case err != nil:
		return MissionChange{}, fmt.Errorf("upsert mission: %w", err)
	default:
		merged, changed := mission.Merge(stored, fresh)
		ch = MissionChange{Card: merged}
		if !changed {
			var pending bool
			if err := tx.QueryRow(ctx, `SELECT published_at IS NULL OR published_at < updated_at FROM missions WHERE id = $1`, fresh.ID).Scan(&pending); err != nil {
				return MissionChange{}, fmt.Errorf("upsert mission: %w", err)
			}
			ch.Unpublished = pending
			ch.Created = pending && stored.CreatedAt.Equal(stored.UpdatedAt)
			return ch, tx.Commit(ctx)
		}
	}
	c := ch.Card
	var primary []byte
	if c.Primary != nil {
		if primary, err = json.Marshal(c.Primary); err != nil {
			return MissionChange{}, fmt.Errorf("upsert mission: %w", err)
		}
	}
	actions, err1 := json.Marshal(nonNil(c.Secondary))
	evidence, err2 := json.Marshal(nonNil(c.Evidence))
	details, err3 := json.Marshal(nonNil(c.Details))
	if err := errors.Join(err1, err2, err3); err != nil {
		return MissionChange{}, fmt.Errorf("upsert mission: %w", err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO missions (id, agent, kind, subject_key, title, summary, urgency, status, primary_action, actions, evidence, details,
			category, confidence, rating, feedback_note, created_at, updated_at, event_at, expires_at, snoozed_until)
		VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21)
		ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, title = EXCLUDED.title, summary = EXCLUDED.summary,
			urgency = EXCLUDED.urgency, primary_action = EXCLUDED.primary_action, actions = EXCLUDED.actions,
			evidence = EXCLUDED.evidence, details = EXCLUDED.details, category = EXCLUDED.category,
			confidence = EXCLUDED.confidence, updated_at = EXCLUDED.updated_at, event_at = EXCLUDED.event_at,
			expires_at = EXCLUDED.expires_at`,
		c.ID, c.Agent, c.Kind, c.SubjectKey, c.Title, c.Summary, int(c.Urgency), string(c.Status), primary, actions, evidence, details,
		c.Category, c.Confidence, string(c.Rating), c.Feedback, c.CreatedAt, c.UpdatedAt, nullTime(c.EventAt), nullTime(c.ExpiresAt),
		nullTime(c.SnoozedUntil)); err != nil {
		return MissionChange{}, fmt.Errorf("upsert mission: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return MissionChange{}, fmt.Errorf("upsert mission: %w", err)
	}
	ch.Unpublished = true
	return ch, nil
}

// MarkMissionPublished records that the card's change at updatedAt was
// published.
func (db *DB) MarkMissionPublished(ctx context.Context, id string, updatedAt time.Time) error {
	if _, err := db.Pool.Exec(ctx, `UPDATE missions SET published_at = $2 WHERE id = $1 AND (published_at IS NULL OR published_at < $2)`, id, updatedAt); err != nil {
		return fmt.Errorf("mark mission published: %w", err)
	}
	return nil
}

// feedback kinds as stored in feedback.kind
var feedbackKinds = map[mission.FeedbackKind]string{
	mission.FeedbackRate: "rating", mission.FeedbackSnooze: "snooze", mission.FeedbackDismiss: "dismiss",
	mission.FeedbackComplete: "complete", mission.FeedbackActivate: "action", mission.FeedbackPresent: "presented",
}

// RecordFeedback applies a feedback episode to its card (status, rating,
// snooze) and stores the episode, in one transaction. It returns the card
// after the change; mission.ErrBadTransition and validation errors come back
// unwrapped by store so callers can answer 409/400.
func (db *DB) RecordFeedback(ctx context.Context, f mission.Feedback) (mission.Card, error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return mission.Card{}, fmt.Errorf("record feedback: %w", err)
	}
	defer tx.Rollback(ctx)
	c, err := scanMission(tx.QueryRow(ctx, `SELECT `+missionCols+` FROM missions WHERE id = $1 FOR UPDATE`, f.CardID))
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return c, err
		}
		return c, fmt.Errorf("record feedback: %w", err)
	}
	c, err = mission.Apply(c, f)
	if err != nil {
		return c, err
	}
	value := string(f.Rating)
	if f.Kind == mission.FeedbackSnooze {
		value = f.Until.UTC().Format(time.RFC3339)
	}
	if _, err := tx.Exec(ctx, `UPDATE missions SET status = $2, rating = $3, snoozed_until = $4, feedback_note = $5 WHERE id = $1`,
		c.ID, string(c.Status), string(c.Rating), nullTime(c.SnoozedUntil), c.Feedback); err != nil {
		return c, fmt.Errorf("record feedback: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO feedback (mission_id, kind, value, note, created_at) VALUES ($1, $2, $3, $4, $5)`,
		c.ID, feedbackKinds[f.Kind], value, f.Note, f.At); err != nil {
		return c, fmt.Errorf("record feedback: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return c, fmt.Errorf("record feedback: %w", err)
	}
	return c, nil
}

// MarkPresented moves newly created cards to presented (the feed showed
// them) and returns the ids it changed; other statuses are left alone, so
// of two feeds racing to present a card only one sees it changed.
func (db *DB) MarkPresented(ctx context.Context, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rows, err := db.Pool.Query(ctx, `UPDATE missions SET status = 'presented' WHERE id = ANY($1) AND status = 'created' RETURNING id`, ids)
	if err != nil {
		return nil, fmt.Errorf("mark presented: %w", err)
	}
	changed, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("mark presented: %w", err)
	}
	return changed, nil
}

// Feedback returns the feedback episodes on an agent's cards ("" = all
// agents), oldest first, with the card's agent and kind.
func (db *DB) Feedback(ctx context.Context, agent string) ([]mission.Feedback, error) {
	return db.feedback(ctx, `$1 = '' OR m.agent = $1`, agent)
}

// MissionFeedback returns one card's feedback episodes, oldest first.
func (db *DB) MissionFeedback(ctx context.Context, id string) ([]mission.Feedback, error) {
	return db.feedback(ctx, `f.mission_id = $1`, id)
}

func (db *DB) feedback(ctx context.Context, where string, arg string) ([]mission.Feedback, error) {
	rows, err := db.Pool.Query(ctx, `
		SELECT f.mission_id, m.agent, m.kind, f.kind, f.value, f.note, f.created_at
		FROM feedback f JOIN missions m ON m.id = f.mission_id
		WHERE `+where+` ORDER BY f.created_at, f.id LIMIT 10000`, arg)
	if err != nil {
		return nil, fmt.Errorf("read feedback: %w", err)
	}
	defer rows.Close()
	back := map[string]mission.FeedbackKind{}
	for k, v := range feedbackKinds {
		back[v] = k
	}
	var out []mission.Feedback
	for rows.Next() {
		var f mission.Feedback
		var kind, value string
		if err := rows.Scan(&f.CardID, &f.Agent, &f.CardKind, &kind, &value, &f.Note, &f.At); err != nil {
			return nil, fmt.Errorf("read feedback: %w", err)
		}
		f.Kind = back[kind]
		f.At = f.At.UTC()
		switch f.Kind {
		case mission.FeedbackRate:
			f.Rating = mission.Rating(value)
		case mission.FeedbackSnooze:
			f.Until, _ = time.Parse(time.RFC3339, value)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read feedback: %w", err)
	}
	return out, nil
}
