package mission

import (
	"encoding/json"
	"fmt"
	"time"
)

// ActionKind names an action a card offers. Agents declare the kinds they
// may emit; a card carrying any other kind is rejected.
type ActionKind string

// Action kinds. Each has exactly one payload type.
const (
	ActionOpenEmail     ActionKind = "open_email"      // EmailRef
	ActionAddToCalendar ActionKind = "add_to_calendar" // CalendarEvent
	ActionSetReminder   ActionKind = "set_reminder"    // Reminder
	ActionSearchMail    ActionKind = "search_mail"     // MailSearch
	ActionWatchPrice    ActionKind = "watch_price"     // PriceWatch
	ActionPlanGap       ActionKind = "plan_gap"        // TripGap
	ActionConnectSource ActionKind = "connect_source"  // SourceConnect
)

// Payload is the typed data an action carries.
type Payload interface {
	ActionKind() ActionKind
}

// EmailRef opens one email.
type EmailRef struct {
	EmailID string `json:"email_id"`
}

// CalendarEvent adds an event to the user's calendar.
type CalendarEvent struct {
	Title    string    `json:"title"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"`
	AllDay   bool      `json:"all_day,omitempty"`
	Location string    `json:"location,omitempty"`
}

// Reminder asks to be reminded at a time.
type Reminder struct {
	At   time.Time `json:"at"`
	Note string    `json:"note"`
}

// MailSearch runs a search over the user's mail.
type MailSearch struct {
	Query string `json:"query"`
}

// PriceWatch keeps an eye on a product's price as seen in mail.
type PriceWatch struct {
	Product      string `json:"product"`
	Currency     string `json:"currency"`
	LastCents    int64  `json:"last_cents"`
	LowestCents  int64  `json:"lowest_cents"`
	EvidenceMail string `json:"evidence_email_id"`
}

// TripGap is something missing from a trip: a night without a hotel or no
// way back.
type TripGap struct {
	Need string    `json:"need"` // "hotel" or "return"
	City string    `json:"city"`
	From time.Time `json:"from"`
	To   time.Time `json:"to,omitzero"`
}

// SourceConnect suggests connecting a mail source.
type SourceConnect struct {
	Kind   string `json:"kind"` // gmail, imap, mbox
	Reason string `json:"reason"`
}

// ActionKind implements Payload.
func (EmailRef) ActionKind() ActionKind { return ActionOpenEmail }

// ActionKind implements Payload.
func (CalendarEvent) ActionKind() ActionKind { return ActionAddToCalendar }

// ActionKind implements Payload.
func (Reminder) ActionKind() ActionKind { return ActionSetReminder }

// ActionKind implements Payload.
func (MailSearch) ActionKind() ActionKind { return ActionSearchMail }

// ActionKind implements Payload.
func (PriceWatch) ActionKind() ActionKind { return ActionWatchPrice }

// ActionKind implements Payload.
func (TripGap) ActionKind() ActionKind { return ActionPlanGap }

// ActionKind implements Payload.
func (SourceConnect) ActionKind() ActionKind { return ActionConnectSource }

// Action is a button on a card.
type Action struct {
	Kind    ActionKind `json:"kind"`
	Label   string     `json:"label"`
	Payload Payload    `json:"payload"`
}

// NewAction returns an action whose kind is its payload's.
func NewAction(label string, p Payload) Action {
	return Action{Kind: p.ActionKind(), Label: label, Payload: p}
}

// UnmarshalJSON decodes the payload into the type its kind names; an
// unknown kind is an error, so stored or submitted JSON cannot smuggle in
// actions the system does not define.
func (a *Action) UnmarshalJSON(b []byte) error {
	var raw struct {
		Kind    ActionKind      `json:"kind"`
		Label   string          `json:"label"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	var p Payload
	switch raw.Kind {
	case ActionOpenEmail:
		p = decode[EmailRef](raw.Payload)
	case ActionAddToCalendar:
		p = decode[CalendarEvent](raw.Payload)
	case ActionSetReminder:
		p = decode[Reminder](raw.Payload)
	case ActionSearchMail:
		p = decode[MailSearch](raw.Payload)
	case ActionWatchPrice:
		p = decode[PriceWatch](raw.Payload)
	case ActionPlanGap:
		p = decode[TripGap](raw.Payload)
	case ActionConnectSource:
		p = decode[SourceConnect](raw.Payload)
	default:
		return fmt.Errorf("unknown action kind %q", raw.Kind)
	}
	if p == nil {
		return fmt.Errorf("action %q: bad payload", raw.Kind)
	}
	*a = Action{Kind: raw.Kind, Label: raw.Label, Payload: p}
	return nil
}

func decode[T Payload](b json.RawMessage) Payload {
	var v T
	if len(b) > 0 {
		if err := json.Unmarshal(b, &v); err != nil {
			return nil
		}
	}
	return v
}

func marshalCanon(c Card) (string, error) {
	b, err := json.Marshal(c)
	return string(b), err
}
