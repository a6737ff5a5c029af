package gateway

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func do(t *testing.T, s *Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	asAdmin(s.Handler()).ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: %d %q", method, path, rec.Code, rec.Body.String())
	}
	return rec.Code, out
}

func seedCard(t *testing.T, db *store.DB, agent, key string, urgency mission.Urgency, eventIn time.Duration) mission.Card {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Microsecond)
	c := mission.New(agent, "trip", key, now)
	c.Title, c.Summary, c.Urgency = "Trip "+key, "summary", urgency
	c.Evidence = []mission.Evidence{{EmailID: "e-" + key, Excerpt: "Booking reference: X7KQ2P"}}
	if eventIn != 0 {
		c.EventAt = now.Add(eventIn)
	}
	p := mission.NewAction("Add to calendar", mission.CalendarEvent{Title: "Trip", Start: now.Add(eventIn), AllDay: true})
	c.Primary = &p
	c.Secondary = []mission.Action{mission.NewAction("Open", mission.EmailRef{EmailID: "e-" + key})}
	if _, err := db.UpsertMission(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// watchUpdates records the missions.updated events the server publishes;
// the returned function waits until want of them have arrived (or fails).
func watchUpdates(t *testing.T, s *Server) func(want int) []bus.MissionEvent {
	t.Helper()
	var mu sync.Mutex
	var got []bus.MissionEvent
	ctx, cancel := context.WithCancel(context.Background())
	c, err := bus.Consume(ctx, s.bus, bus.MissionsUpdated, bus.ConsumeOptions{Durable: "test-updates"}, func(_ context.Context, ev bus.MissionEvent) error {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(); cancel() })
	return func(want int) []bus.MissionEvent {
		t.Helper()
		testkit.Eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= want }, "missions.updated events missing")
		time.Sleep(100 * time.Millisecond) // and no more than want
		mu.Lock()
		defer mu.Unlock()
		return append([]bus.MissionEvent(nil), got...)
	}
}

func TestMissionFeedRanksAndPresents(t *testing.T) {
	s, db := newTestServer(t)
	updates := watchUpdates(t, s)
	low := seedCard(t, db, "travel", "low", mission.UrgencyLow, 0)
	high := seedCard(t, db, "travel", "high", mission.UrgencyCritical, 24*time.Hour)
	seedCard(t, db, "events", "other", mission.UrgencyNormal, 0)

	code, body := do(t, s, "GET", "/api/v1/missions?agent=travel", "")
	if code != 200 || body["count"].(float64) != 2 {
		t.Fatalf("feed = %d %v", code, body)
	}
	ms := body["missions"].([]any)
	if ms[0].(map[string]any)["id"] != high.ID || ms[1].(map[string]any)["id"] != low.ID {
		t.Fatalf("order = %v", ms)
	}
	c, _ := db.Mission(context.Background(), high.ID)
	if c.Status != mission.StatusPresented {
		t.Fatalf("shown card status = %s, want presented", c.Status)
	}
	do(t, s, "GET", "/api/v1/missions?agent=travel", "") // shown again: no second change
	evs := updates(2)
	if len(evs) != 2 {
		t.Fatalf("missions.updated = %+v, want one per presented card", evs)
	}
	for _, ev := range evs {
		if ev.Status != "presented" || ev.Agent != "travel" || (ev.MissionID != high.ID && ev.MissionID != low.ID) {
			t.Fatalf("presented event = %+v", ev)
		}
	}
	if code, body := do(t, s, "GET", "/api/v1/missions?status=bogus", ""); code != 400 || body["error"] == nil {
		t.Fatalf("bad status = %d %v", code, body)
	}
}

func TestMissionFeedbackAndActions(t *testing.T) {
	s, db := newTestServer(t)
	updates := watchUpdates(t, s)
	c := seedCard(t, db, "travel", "a", mission.UrgencyHigh, 72*time.Hour)
	until := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name, body string
		wantCode   int
		wantStatus string
	}{
		{"love is recorded", `{"kind":"rate","rating":"love"}`, 200, "created"},
		{"bad rating is refused", `{"kind":"rate","rating":"awesome"}`, 400, ""},
		{"snooze hides the card", `{"kind":"snooze","until":"` + until + `"}`, 200, "snoozed"},
		{"dismiss closes it", `{"kind":"dismiss"}`, 200, "dismissed"},
		{"complete after dismiss conflicts", `{"kind":"complete"}`, 409, ""},
		{"unknown kind is refused", `{"kind":"delete"}`, 400, ""},
	}
	for _, tt := range tests {
		code, body := do(t, s, "POST", "/api/v1/missions/"+c.ID+"/feedback", tt.body)
		if code != tt.wantCode || (tt.wantStatus != "" && body["status"] != tt.wantStatus) {
			t.Fatalf("%s: %d %v", tt.name, code, body)
		}
	}
	code, body := do(t, s, "GET", "/api/v1/missions/"+c.ID, "")
	if code != 200 || body["rating"] != "love" || len(body["history"].([]any)) != 3 {
		t.Fatalf("detail = %d %v", code, body)
	}
	if code, _ := do(t, s, "GET", "/api/v1/missions?agent=travel", ""); code != 200 {
		t.Fatal("feed failed")
	}
	_, feed := do(t, s, "GET", "/api/v1/missions", "")
	if feed["count"].(float64) != 0 {
		t.Fatalf("dismissed card still in feed: %v", feed)
	}

	d := seedCard(t, db, "travel", "b", mission.UrgencyHigh, 72*time.Hour)
	code, body = do(t, s, "POST", "/api/v1/missions/"+d.ID+"/actions", `{"action":0}`)
	if code != 200 || !strings.Contains(body["ics"].(string), "BEGIN:VEVENT") || body["mission"].(map[string]any)["status"] != "active" {
		t.Fatalf("calendar action = %d %v", code, body)
	}
	code, body = do(t, s, "POST", "/api/v1/missions/"+d.ID+"/actions", `{"action":1}`)
	if code != 200 || body["email_url"] != "/api/v1/emails/e-b" {
		t.Fatalf("open action = %d %v", code, body)
	}
	if code, _ := do(t, s, "POST", "/api/v1/missions/"+d.ID+"/actions", `{"action":7}`); code != 400 {
		t.Fatalf("missing action = %d", code)
	}
	if code, _ := do(t, s, "GET", "/api/v1/missions/m_nope", ""); code != 404 {
		t.Fatalf("unknown card = %d", code)
	}
	// every accepted change published the card's new status; refused ones did not
	name := map[string]string{c.ID: "a", d.ID: "b"}
	var got []string
	for _, ev := range updates(5) {
		got = append(got, name[ev.MissionID]+"="+ev.Status)
	}
	slices.Sort(got)
	if want := []string{"a=created", "a=dismissed", "a=snoozed", "b=active", "b=active"}; !slices.Equal(got, want) {
		t.Fatalf("missions.updated = %v, want %v", got, want)
	}
}

func TestRequestsAndRuns(t *testing.T) {
	s, db := newTestServer(t)
	code, body := do(t, s, "POST", "/api/v1/requests", `{"text":"any concerts coming up?"}`)
	if code != 202 || body["status"] != "queued" {
		t.Fatalf("create = %d %v", code, body)
	}
	id := body["id"].(string)
	if code, body := do(t, s, "GET", "/api/v1/requests/"+id, ""); code != 200 || body["text"] != "any concerts coming up?" {
		t.Fatalf("get = %d %v", code, body)
	}
	if code, _ := do(t, s, "POST", "/api/v1/requests", `{"text":"   "}`); code != 400 {
		t.Fatalf("empty request = %d", code)
	}
	end := time.Now()
	if err := db.SaveAgentRun(context.Background(), store.AgentRun{ID: "run_1", Agent: "events", Trigger: "user.request", StartedAt: end.Add(-time.Second),
		EndedAt: &end, Outcome: "ok", ToolCalls: 3, CardIDs: []string{}}); err != nil {
		t.Fatal(err)
	}
	code, body = do(t, s, "GET", "/api/v1/runs?agent=events", "")
	if code != 200 || body["count"].(float64) != 1 {
		t.Fatalf("runs = %d %v", code, body)
	}
	if code, body := do(t, s, "GET", "/api/v1/runs/run_1", ""); code != 200 || body["tool_calls"].(float64) != 3 {
		t.Fatalf("run = %d %v", code, body)
	}
}

func TestFeedCacheFollowsChanges(t *testing.T) {
	s, db := newTestServer(t)
	ctx := context.Background()
	a := seedCard(t, db, "travel", "a", mission.UrgencyHigh, 72*time.Hour)
	count := func() int {
		t.Helper()
		code, body := do(t, s, "GET", "/api/v1/missions", "")
		if code != 200 {
			t.Fatalf("feed = %d %v", code, body)
		}
		return int(body["count"].(float64))
	}
	if n := count(); n != 1 {
		t.Fatalf("feed has %d cards, want 1", n)
	}

	// feedback through this gateway shows in the very next read
	if code, body := do(t, s, "POST", "/api/v1/missions/"+a.ID+"/feedback", `{"kind":"dismiss"}`); code != 200 {
		t.Fatalf("dismiss = %d %v", code, body)
	}
	if n := count(); n != 0 {
		t.Fatalf("dismissed card still in the feed: %d cards", n)
	}

	// a card another service made shows once its missions.created arrives,
	// well before the cached feed would expire on its own
	b := seedCard(t, db, "travel", "b", mission.UrgencyHigh, 72*time.Hour)
	if err := bus.Publish(ctx, s.bus, bus.MissionsCreated, b.ID, bus.MissionEvent{MissionID: b.ID, Agent: b.Agent, Status: string(b.Status)}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, feedTTL/2, func() bool { return count() == 1 }, "the new card did not reach the feed within %s", feedTTL/2)
}
