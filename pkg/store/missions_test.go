package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func TestUpsertMissionMergesAndOwesEventsUntilPublished(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	c := mission.New("travel", "trip", "trip:paris:2027-01-12", now)
	c.Title, c.Category = "Trip to Paris", "Travel"
	c.Evidence = []mission.Evidence{{EmailID: "t1", Excerpt: "Booking reference: TL88K2Q1"}}

	ch, err := db.UpsertMission(ctx, c)
	if err != nil || !ch.Created || !ch.Unpublished {
		t.Fatalf("first upsert = %+v, %v", ch, err)
	}
	// publish failed: the same card again still owes its created event
	ch, err = db.UpsertMission(ctx, c)
	if err != nil || !ch.Created || !ch.Unpublished {
		t.Fatalf("repeat before publish = %+v, %v", ch, err)
	}
	if err := db.MarkMissionPublished(ctx, c.ID, ch.Card.UpdatedAt); err != nil {
		t.Fatal(err)
	}
	if ch, err = db.UpsertMission(ctx, c); err != nil || ch.Unpublished {
		t.Fatalf("repeat after publish = %+v, %v", ch, err)
	}
	if _, err := db.RecordFeedback(ctx, mission.Feedback{CardID: c.ID, Kind: mission.FeedbackRate, Rating: mission.RatingLove, At: now}); err != nil {
		t.Fatal(err)
	}
	later := c
	later.Summary, later.UpdatedAt = "Hotel added", now.Add(time.Minute)
	ch, err = db.UpsertMission(ctx, later)
	if err != nil || ch.Created || !ch.Unpublished || ch.Card.Rating != mission.RatingLove || ch.Card.Summary != "Hotel added" {
		t.Fatalf("changed card = %+v, %v", ch, err)
	}
	stored, err := db.Mission(ctx, c.ID)
	if err != nil || stored.Rating != mission.RatingLove || stored.Summary != "Hotel added" || !stored.CreatedAt.Equal(now) {
		t.Fatalf("stored = %+v, %v", stored, err)
	}
	fb, err := db.Feedback(ctx, "travel")
	if err != nil || len(fb) != 1 || fb[0].CardKind != "trip" || fb[0].Rating != mission.RatingLove {
		t.Fatalf("feedback = %+v, %v", fb, err)
	}
}

func TestMissionsFilterAndPresent(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	mk := func(agent, key string, eventIn time.Duration) mission.Card {
		c := mission.New(agent, "k", key, now)
		c.Title = key
		c.Evidence = []mission.Evidence{{EmailID: "e", Excerpt: "x"}}
		if eventIn != 0 {
			c.EventAt = now.Add(eventIn)
		}
		if _, err := db.UpsertMission(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	soon := mk("travel", "soon", 10*time.Hour)
	mk("travel", "later", 10*24*time.Hour)
	other := mk("events", "none", 0)
	got, err := db.Missions(ctx, store.MissionFilter{EventBefore: now.Add(48 * time.Hour)})
	if err != nil || len(got) != 1 || got[0].ID != soon.ID {
		t.Fatalf("event window = %v, %v", got, err)
	}
	if got, _ := db.Missions(ctx, store.MissionFilter{Agent: "events"}); len(got) != 1 || got[0].ID != other.ID {
		t.Fatalf("agent filter = %v", got)
	}
	if _, err := db.RecordFeedback(ctx, mission.Feedback{CardID: other.ID, Kind: mission.FeedbackDismiss, At: now}); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Missions(ctx, store.MissionFilter{Agent: "events"}); len(got) != 0 {
		t.Fatalf("dismissed card listed by default: %v", got)
	}
	if got, _ := db.Missions(ctx, store.MissionFilter{Agent: "events", Statuses: []string{"dismissed"}}); len(got) != 1 {
		t.Fatalf("dismissed card not listed on request: %v", got)
	}
	changed, err := db.MarkPresented(ctx, []string{soon.ID, other.ID})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(changed, []string{soon.ID}) {
		t.Fatalf("changed = %v, want only the created card %s", changed, soon.ID)
	}
	if again, err := db.MarkPresented(ctx, []string{soon.ID}); err != nil || len(again) != 0 {
		t.Fatalf("presenting twice changed %v, %v; want nothing", again, err)
	}
	a, _ := db.Mission(ctx, soon.ID)
	b, _ := db.Mission(ctx, other.ID)
	if a.Status != mission.StatusPresented || b.Status != mission.StatusDismissed {
		t.Fatalf("after present: %s, %s", a.Status, b.Status)
	}
	if _, err := db.Mission(ctx, "m_missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing card err = %v", err)
	}
}

func TestAgentRunsAndRequests(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	start := time.Now().UTC().Truncate(time.Microsecond)
	r := store.AgentRun{ID: "run_1", Agent: "travel", Trigger: "data.classified", Subject: "mailbox", StartedAt: start, Outcome: "running"}
	if err := db.SaveAgentRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if last, err := db.LastOKAgentRun(ctx, "travel", "mailbox"); err != nil || !last.IsZero() {
		t.Fatalf("last ok while running = %v, %v", last, err)
	}
	end := start.Add(time.Second)
	r.EndedAt, r.Outcome, r.ToolCalls, r.CardIDs = &end, "ok", 4, []string{"m_1"}
	if err := db.SaveAgentRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if last, err := db.LastOKAgentRun(ctx, "travel", "mailbox"); err != nil || !last.Equal(end) {
		t.Fatalf("last ok = %v, %v", last, err)
	}
	got, err := db.AgentRunByID(ctx, "run_1")
	if err != nil || got.ToolCalls != 4 || got.CardIDs[0] != "m_1" {
		t.Fatalf("run = %+v, %v", got, err)
	}
	if err := db.CreateAgentRequest(ctx, "req_1", "trip to Paris?"); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAgentRequest(ctx, "req_1", "changed"); err != nil {
		t.Fatal(err)
	}
	if err := db.UpdateAgentRequest(ctx, store.AgentRequest{ID: "req_1", Agent: "travel", Status: "done", RunID: "run_1"}); err != nil {
		t.Fatal(err)
	}
	q, err := db.AgentRequestByID(ctx, "req_1")
	if err != nil || q.Text != "trip to Paris?" || q.Status != "done" || q.RunID != "run_1" {
		t.Fatalf("request = %+v, %v", q, err)
	}
}
