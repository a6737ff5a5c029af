// Package mission is the mission card model: cards with typed actions and
// evidence, their deterministic ids, the status lifecycle, feedback, the
// preferences learnt from feedback and the feed ranking.
//
// Everything here is plain data and pure functions, safe for concurrent use.
package mission

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Status is where a card is in its lifecycle.
type Status string

// Card statuses: created → presented → active → snoozed / dismissed / completed.
const (
	StatusCreated   Status = "created"
	StatusPresented Status = "presented"
	StatusActive    Status = "active"
	StatusSnoozed   Status = "snoozed"
	StatusDismissed Status = "dismissed"
	StatusCompleted Status = "completed"
)

// Closed reports whether the user is done with a card in this status.
func (s Status) Closed() bool { return s == StatusDismissed || s == StatusCompleted }

// Urgency orders cards by how soon they need the user.
type Urgency int

// Urgency levels.
const (
	UrgencyLow Urgency = iota
	UrgencyNormal
	UrgencyHigh
	UrgencyCritical
)

// Evidence points at what justifies a card: an email (with an excerpt of
// it) or, for reports, a source.
type Evidence struct {
	EmailID  string    `json:"email_id,omitempty"`
	SourceID string    `json:"source_id,omitempty"`
	Subject  string    `json:"subject,omitempty"`
	Date     time.Time `json:"date,omitzero"`
	Excerpt  string    `json:"excerpt"`
}

// Detail is one labelled fact on a card ("Depart", "Fri 11 Dec 07:05").
type Detail struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Card is one mission card.
type Card struct {
	ID           string     `json:"id"`
	Agent        string     `json:"agent"`
	Kind         string     `json:"kind"` // what the card is about: trip, order, watch, reservation, event, digest, report, suggestion
	SubjectKey   string     `json:"subject_key"`
	Title        string     `json:"title"`
	Summary      string     `json:"summary"`
	Details      []Detail   `json:"details,omitempty"`
	Category     string     `json:"category,omitempty"`   // profile category the card serves, for ranking
	Confidence   float64    `json:"confidence,omitempty"` // the profile's confidence in Category when the card was made
	Urgency      Urgency    `json:"urgency"`
	Status       Status     `json:"status"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	EventAt      time.Time  `json:"event_at,omitzero"` // when the thing the card is about happens
	ExpiresAt    time.Time  `json:"expires_at,omitzero"`
	SnoozedUntil time.Time  `json:"snoozed_until,omitzero"`
	Primary      *Action    `json:"primary_action,omitempty"`
	Secondary    []Action   `json:"secondary_actions,omitempty"`
	Evidence     []Evidence `json:"evidence"`
	Rating       Rating     `json:"rating,omitempty"`
	Feedback     string     `json:"feedback,omitempty"`
}

// ID returns the card id for an agent and subject key: the same agent
// looking at the same subject always gets the same id, so new evidence
// updates the card instead of creating another.
func ID(agent, subjectKey string) string {
	h := sha256.Sum256([]byte(agent + "\x00" + subjectKey))
	return "m_" + hex.EncodeToString(h[:12])
}

// Errors of card validation and lifecycle.
var (
	ErrNoEvidence       = errors.New("card has no evidence")
	ErrNoTitle          = errors.New("card has no title")
	ErrActionNotAllowed = errors.New("action not defined by agent")
	ErrBadTransition    = errors.New("status transition not allowed")
)

// Validate checks a card an agent produced: it has an id matching its
// subject, a title, evidence, and only actions from allowed.
func (c Card) Validate(allowed []ActionKind) error {
	if strings.TrimSpace(c.Title) == "" {
		return ErrNoTitle
	}
	if c.ID != ID(c.Agent, c.SubjectKey) {
		return fmt.Errorf("card id %q does not match agent/subject", c.ID)
	}
	ok := false
	for _, e := range c.Evidence {
		if e.EmailID != "" || e.SourceID != "" {
			ok = true
		}
	}
	if !ok {
		return ErrNoEvidence
	}
	acts := c.Secondary
	if c.Primary != nil {
		acts = append([]Action{*c.Primary}, acts...)
	}
	for _, a := range acts {
		if a.Payload == nil || a.Payload.ActionKind() != a.Kind {
			return fmt.Errorf("action %q: payload does not match kind", a.Kind)
		}
		found := false
		for _, k := range allowed {
			if a.Kind == k {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%w: %s", ErrActionNotAllowed, a.Kind)
		}
	}
	return nil
}

// New returns a card for agent and subject with its id set and status created.
func New(agent, kind, subjectKey string, now time.Time) Card {
	return Card{ID: ID(agent, subjectKey), Agent: agent, Kind: kind, SubjectKey: subjectKey,
		Status: StatusCreated, CreatedAt: now, UpdatedAt: now}
}

// Merge folds a freshly produced card into the stored one with the same id:
// the content (title, summary, details, actions, evidence, urgency, dates)
// comes from fresh, the user's state (status, rating, feedback, snooze,
// creation time) is kept. changed reports whether the content differs, i.e.
// whether the card needs a missions.updated event.
func Merge(stored, fresh Card) (merged Card, changed bool) {
	merged = fresh
	merged.CreatedAt = stored.CreatedAt
	merged.Status = stored.Status
	merged.Rating = stored.Rating
	merged.Feedback = stored.Feedback
	merged.SnoozedUntil = stored.SnoozedUntil
	changed = !sameContent(stored, fresh)
	if !changed {
		merged.UpdatedAt = stored.UpdatedAt
	}
	return merged, changed
}

func sameContent(a, b Card) bool {
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}
	a.Status, b.Status = "", ""
	a.Rating, b.Rating = "", ""
	a.Feedback, b.Feedback = "", ""
	a.SnoozedUntil, b.SnoozedUntil = time.Time{}, time.Time{}
	ja, err1 := marshalCanon(a)
	jb, err2 := marshalCanon(b)
	return err1 == nil && err2 == nil && ja == jb
}

// Visible reports whether the card belongs in the feed at now.
func (c Card) Visible(now time.Time) bool {
	if c.Status.Closed() {
		return false
	}
	if !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt) {
		return false
	}
	if c.Status == StatusSnoozed && now.Before(c.SnoozedUntil) {
		return false
	}
	return true
}
