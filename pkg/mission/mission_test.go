package mission

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 18, 9, 0, 0, 0, time.UTC)

func card() Card {
	c := New("travel", "trip", "trip:Lisbon:2026-12-11", now)
	c.Title = "Trip to Lisbon"
	c.Evidence = []Evidence{{EmailID: "e1", Excerpt: "Booking reference: X7KQ2P"}}
	p := NewAction("Add to calendar", CalendarEvent{Title: "Lisbon", Start: now.Add(72 * time.Hour)})
	c.Primary = &p
	c.Secondary = []Action{NewAction("Open mail", EmailRef{EmailID: "e1"})}
	return c
}

func TestIDIsStablePerAgentAndSubject(t *testing.T) {
	if ID("travel", "a") != ID("travel", "a") {
		t.Fatal("same agent and subject gave different ids")
	}
	if ID("travel", "a") == ID("events", "a") || ID("travel", "a") == ID("travel", "b") {
		t.Fatal("different agent or subject gave the same id")
	}
}

func TestValidate(t *testing.T) {
	allowed := []ActionKind{ActionAddToCalendar, ActionOpenEmail}
	tests := []struct {
		name   string
		mutate func(*Card)
		want   error
	}{
		{"valid card passes", func(*Card) {}, nil},
		{"no evidence fails", func(c *Card) { c.Evidence = nil }, ErrNoEvidence},
		{"empty title fails", func(c *Card) { c.Title = " " }, ErrNoTitle},
		{"undeclared action fails", func(c *Card) {
			c.Secondary = append(c.Secondary, NewAction("Connect", SourceConnect{Kind: "imap"}))
		}, ErrActionNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := card()
			tt.mutate(&c)
			err := c.Validate(allowed)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Validate = %v, want %v", err, tt.want)
			}
		})
	}
	c := card()
	c.ID = "m_forged"
	if c.Validate(allowed) == nil {
		t.Fatal("forged id accepted")
	}
}

func TestActionJSONRoundTripKeepsTypedPayload(t *testing.T) {
	c := card()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Card
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if _, ok := back.Primary.Payload.(CalendarEvent); !ok {
		t.Fatalf("primary payload = %T, want CalendarEvent", back.Primary.Payload)
	}
	bad := strings.Replace(string(b), `"open_email"`, `"wire_money"`, 1)
	if err := json.Unmarshal([]byte(bad), &back); err == nil {
		t.Fatal("unknown action kind decoded without error")
	}
}

func TestMergeKeepsUserStateAndReportsChange(t *testing.T) {
	stored := card()
	stored.Status = StatusSnoozed
	stored.Rating = RatingLove
	later := now.Add(time.Hour)
	same := card()
	same.UpdatedAt, same.CreatedAt = later, later
	m, changed := Merge(stored, same)
	if changed || m.Status != StatusSnoozed || m.Rating != RatingLove || !m.CreatedAt.Equal(now) || !m.UpdatedAt.Equal(now) {
		t.Fatalf("identical content: changed=%v merged=%+v", changed, m)
	}
	fresh := card()
	fresh.Summary = "Hotel added"
	fresh.UpdatedAt = later
	m, changed = Merge(stored, fresh)
	if !changed || m.Summary != "Hotel added" || m.Status != StatusSnoozed || !m.UpdatedAt.Equal(later) {
		t.Fatalf("new content: changed=%v merged=%+v", changed, m)
	}
}

func TestApplyMovesStatus(t *testing.T) {
	c := card()
	c, err := Apply(c, Feedback{Kind: FeedbackSnooze, Until: now.Add(24 * time.Hour), At: now})
	if err != nil || c.Status != StatusSnoozed || c.Visible(now) || !c.Visible(now.Add(25*time.Hour)) {
		t.Fatalf("snooze: %v %+v", err, c)
	}
	c, err = Apply(c, Feedback{Kind: FeedbackDismiss, At: now})
	if err != nil || c.Status != StatusDismissed || c.Visible(now.Add(48*time.Hour)) {
		t.Fatalf("dismiss: %v %+v", err, c)
	}
	if _, err := Apply(c, Feedback{Kind: FeedbackComplete, At: now}); !errors.Is(err, ErrBadTransition) {
		t.Fatalf("complete after dismiss = %v, want ErrBadTransition", err)
	}
	if _, err := Apply(c, Feedback{Kind: FeedbackRate, Rating: "awesome", At: now}); err == nil {
		t.Fatal("bad rating accepted")
	}
}

func TestPrefsSuppressDismissedKinds(t *testing.T) {
	var fb []Feedback
	for i := 0; i < 3; i++ {
		fb = append(fb, Feedback{Agent: "shopping", CardKind: "watch", Kind: FeedbackDismiss})
	}
	fb = append(fb, Feedback{Agent: "travel", CardKind: "trip", Kind: FeedbackRate, Rating: RatingLove})
	p := Learn(fb)
	if !p.Suppress("shopping", "watch") || p.Suppress("travel", "trip") || p.Suppress("shopping", "order") {
		t.Fatal("wrong suppression")
	}
	if !(p.Weight("travel", "trip") > 0 && p.Weight("shopping", "watch") < 0 && p.Weight("x", "y") == 0) {
		t.Fatal("wrong weights")
	}
}

func TestRankOrdersByUrgencyFeedbackAndHidesClosed(t *testing.T) {
	mk := func(agent, key string, u Urgency) Card {
		c := New(agent, "k", key, now)
		c.Urgency = u
		return c
	}
	urgent := mk("travel", "a", UrgencyHigh)
	low := mk("content", "b", UrgencyLow)
	disliked := mk("shopping", "c", UrgencyHigh)
	done := mk("events", "d", UrgencyCritical)
	done.Status = StatusCompleted
	prefs := Learn([]Feedback{{Agent: "shopping", CardKind: "k", Kind: FeedbackDismiss}, {Agent: "shopping", CardKind: "k", Kind: FeedbackDismiss}})
	got := Rank([]Card{low, disliked, done, urgent}, prefs, nil, now)
	if len(got) != 3 || got[0].Card.ID != urgent.ID || got[1].Card.ID != disliked.ID || got[2].Card.ID != low.ID {
		for _, r := range got {
			t.Logf("%s %.3f", r.Card.Agent, r.Score)
		}
		t.Fatal("wrong order")
	}
}
