package mission

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// Rating is the user's verdict on a card.
type Rating string

// Ratings.
const (
	RatingMeh  Rating = "meh"
	RatingLike Rating = "like"
	RatingLove Rating = "love"
)

// FeedbackKind is what the user did to a card.
type FeedbackKind string

// Feedback kinds.
const (
	FeedbackRate     FeedbackKind = "rate"
	FeedbackSnooze   FeedbackKind = "snooze"
	FeedbackDismiss  FeedbackKind = "dismiss"
	FeedbackComplete FeedbackKind = "complete"
	FeedbackPresent  FeedbackKind = "present"  // the card was shown
	FeedbackActivate FeedbackKind = "activate" // the user opened or acted on it
)

// Feedback is one episode of the user reacting to a card.
type Feedback struct {
	CardID   string       `json:"card_id"`
	Agent    string       `json:"agent"`
	CardKind string       `json:"card_kind"`
	Kind     FeedbackKind `json:"kind"`
	Rating   Rating       `json:"rating,omitempty"`
	Until    time.Time    `json:"until,omitzero"` // snooze end
	Note     string       `json:"note,omitempty"`
	At       time.Time    `json:"at"`
}

// Validate checks that the feedback is well formed.
func (f Feedback) Validate() error {
	switch f.Kind {
	case FeedbackRate:
		if f.Rating != RatingMeh && f.Rating != RatingLike && f.Rating != RatingLove {
			return fmt.Errorf("rating %q: want meh, like or love", f.Rating)
		}
	case FeedbackSnooze:
		if f.Until.IsZero() || !f.Until.After(f.At) {
			return fmt.Errorf("snooze needs a future until")
		}
	case FeedbackDismiss, FeedbackComplete, FeedbackPresent, FeedbackActivate:
	default:
		return fmt.Errorf("unknown feedback kind %q", f.Kind)
	}
	return nil
}

// Apply returns the card after the feedback: ratings are recorded, snooze /
// dismiss / complete move the status. A closed card only accepts ratings.
func Apply(c Card, f Feedback) (Card, error) {
	if err := f.Validate(); err != nil {
		return c, err
	}
	if c.Status.Closed() && f.Kind != FeedbackRate {
		return c, fmt.Errorf("%w: %s card cannot %s", ErrBadTransition, c.Status, f.Kind)
	}
	switch f.Kind {
	case FeedbackRate:
		c.Rating = f.Rating
		if f.Note != "" {
			c.Feedback = f.Note
		}
	case FeedbackSnooze:
		c.Status, c.SnoozedUntil = StatusSnoozed, f.Until
	case FeedbackDismiss:
		c.Status = StatusDismissed
	case FeedbackComplete:
		c.Status = StatusCompleted
	case FeedbackPresent:
		if c.Status == StatusCreated {
			c.Status = StatusPresented
		}
	case FeedbackActivate:
		c.Status, c.SnoozedUntil = StatusActive, time.Time{}
	}
	return c, nil
}

// Prefs are the preferences learnt from feedback, per agent and card kind.
type Prefs struct {
	score map[string]*prefCount
}

type prefCount struct{ pos, neg, n float64 }

func prefKey(agent, kind string) string { return agent + "/" + kind }

// Learn builds preferences from feedback episodes: love, like and complete
// count for a kind of card, dismiss and meh against it.
func Learn(fb []Feedback) Prefs {
	p := Prefs{score: map[string]*prefCount{}}
	for _, f := range fb {
		k := prefKey(f.Agent, f.CardKind)
		c := p.score[k]
		if c == nil {
			c = &prefCount{}
			p.score[k] = c
		}
		switch {
		case f.Kind == FeedbackRate && f.Rating == RatingLove:
			c.pos += 2
		case f.Kind == FeedbackRate && f.Rating == RatingLike, f.Kind == FeedbackComplete:
			c.pos++
		case f.Kind == FeedbackRate && f.Rating == RatingMeh:
			c.neg += 0.5
		case f.Kind == FeedbackDismiss:
			c.neg++
		default:
			continue
		}
		c.n++
	}
	return p
}

// Weight is the user's leaning for an agent's kind of card, from -1 (always
// dismissed) to 1 (always loved); 0 without feedback.
func (p Prefs) Weight(agent, kind string) float64 {
	c := p.score[prefKey(agent, kind)]
	if c == nil || c.pos+c.neg == 0 {
		return 0
	}
	// shrink towards 0 while there is little feedback
	return (c.pos - c.neg) / (c.pos + c.neg + 2)
}

// Suppress reports whether the user has dismissed this kind of card often
// enough (three times, far more than they liked it) that agents should stop
// producing new ones.
func (p Prefs) Suppress(agent, kind string) bool {
	c := p.score[prefKey(agent, kind)]
	return c != nil && c.neg >= 3 && c.neg >= 3*c.pos
}

// Ranked is a card with its feed score.
type Ranked struct {
	Card  Card    `json:"card"`
	Score float64 `json:"score"`
}

// Rank orders the visible cards for the feed by urgency, how soon their
// event is, recency, learnt preference, the card's own rating and the
// profile's confidence in the card's category: from confidence when given,
// else the Confidence recorded on the card.
func Rank(cards []Card, prefs Prefs, confidence func(category string) float64, now time.Time) []Ranked {
	var out []Ranked
	for _, c := range cards {
		if !c.Visible(now) {
			continue
		}
		s := 0.3 * float64(c.Urgency) / float64(UrgencyCritical)
		if !c.EventAt.IsZero() {
			days := c.EventAt.Sub(now).Hours() / 24
			if days >= -1 {
				s += 0.15 * math.Exp(-math.Max(days, 0)/7)
			}
		}
		age := now.Sub(c.UpdatedAt).Hours() / 24
		s += 0.2 * math.Exp(-math.Max(age, 0)/3)
		s += 0.2 * prefs.Weight(c.Agent, c.Kind)
		switch c.Rating {
		case RatingLove:
			s += 0.1
		case RatingLike:
			s += 0.05
		case RatingMeh:
			s -= 0.05
		}
		if confidence != nil && c.Category != "" {
			s += 0.15 * confidence(c.Category)
		} else {
			s += 0.15 * c.Confidence
		}
		out = append(out, Ranked{Card: c, Score: s})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].Card.ID < out[j].Card.ID
	})
	return out
}
