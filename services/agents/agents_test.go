package agents

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/mission"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/taxonomy"
	"github.com/ownyou/home/pkg/testkit"
	"github.com/ownyou/home/services/agents/agent"
	"github.com/ownyou/home/services/agents/trigger"
)

func TestMain(m *testing.M) { testkit.Main(m) }

type fixture struct {
	db     *store.DB
	bus    *bus.Bus
	svc    *Service
	cancel context.CancelFunc
	done   chan error

	mu     sync.Mutex
	events map[string][]bus.MissionEvent // subject → events
}

func start(t *testing.T, tweak ...func(*Config, *store.DB)) *fixture {
	t.Helper()
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	cfg := Config{Concurrency: 2, PerAgent: 1, Schedules: "", Debounce: 50 * time.Millisecond, DebounceMax: time.Second,
		EventWindow: 48 * time.Hour, EventScan: time.Hour, TaxonomyDir: filepath.Join(testkit.SharedDir(t), "data", "iab")}
	for _, f := range tweak {
		f(&cfg, db)
	}
	svc, err := New(cfg, app.Deps{DB: db, Bus: b, Log: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fixture{db: db, bus: b, svc: svc, cancel: cancel, done: make(chan error, 1), events: map[string][]bus.MissionEvent{}}
	for _, topic := range []bus.Topic[bus.MissionEvent]{bus.MissionsCreated, bus.MissionsUpdated} {
		c, err := bus.Consume(ctx, b, topic, bus.ConsumeOptions{Durable: "test-" + topic.Subject[len("missions."):]}, func(_ context.Context, ev bus.MissionEvent) error {
			f.mu.Lock()
			f.events[topic.Subject] = append(f.events[topic.Subject], ev)
			f.mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Stop)
	}
	go func() { f.done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-f.done:
		case <-time.After(30 * time.Second):
			t.Error("service did not stop")
		}
	})
	return f
}

func (f *fixture) count(subject string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.events[subject])
}

func insertMail(t *testing.T, db *store.DB, id, from, subject, body string, sent time.Time, cats ...string) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO sources (id, kind, account) VALUES ('src-1', 'imap', 'alex@example.com') ON CONFLICT DO NOTHING`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.InsertEmail(ctx, store.Email{ID: id, SourceID: "src-1", MessageID: "<" + id + "@example.com>", ContentHash: id,
		Subject: subject, FromAddr: from, FromName: "", BodyText: body, SentAt: &sent}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cats {
		if _, err := db.Pool.Exec(ctx, `INSERT INTO classifications (email_id, taxonomy, category_id, confidence, backend) VALUES ($1, 'content-3.1', $2, 0.9, 'local')`, id, c); err != nil {
			t.Fatal(err)
		}
	}
}

func TestClassifiedMailTriggersRunAndCardThroughNATS(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	in := time.Now().AddDate(0, 0, 3)
	body := "Hi Alex, you're all set! Table for 2 on " + in.Format("Monday, 2 January 2006") + " at 7:30 PM.\nConfirmation #: BV-55120\nAddress: 12 Rua das Flores, Lisbon"
	insertMail(t, f.db, "m1", "no-reply@opentable.example", "Your reservation at Bistro Verde is confirmed", body, time.Now().Add(-time.Hour), "218")
	msg := bus.EmailClassified{EmailID: "m1", Categories: []bus.Category{{Taxonomy: "content-3.1", ID: "218", Confidence: 0.9}}}
	if err := bus.Publish(ctx, f.bus, bus.EmailsClassified, "m1", msg); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, func() bool { return f.count(bus.MissionsCreated.Subject) == 1 }, "no missions.created")
	cards, err := f.db.Missions(ctx, store.MissionFilter{Agent: "restaurant"})
	if err != nil || len(cards) != 1 {
		t.Fatalf("restaurant cards = %v, %v", cards, err)
	}
	c := cards[0]
	if c.Evidence[0].EmailID != "m1" || c.Primary == nil || c.Primary.Kind != mission.ActionAddToCalendar || c.Kind != "reservation" {
		t.Fatalf("card = %+v", c)
	}
	var stage string
	if err := f.db.Pool.QueryRow(ctx, `SELECT status FROM email_stages WHERE email_id = 'm1' AND stage = 'agents'`).Scan(&stage); err != nil || stage != "done" {
		t.Fatalf("stage = %q, %v", stage, err)
	}
	// data.classified and data.profile share the agent's "mailbox" subject: one run, the other deduped
	var dataRuns []store.AgentRun
	testkit.Eventually(t, 10*time.Second, func() bool {
		all, _ := f.db.AgentRuns(ctx, "restaurant", 10)
		dataRuns = dataRuns[:0]
		for _, r := range all {
			if strings.HasPrefix(r.Trigger, "data.") && r.Outcome != "running" {
				dataRuns = append(dataRuns, r)
			}
		}
		return len(dataRuns) > 0
	}, "no data-triggered run recorded")
	if r := dataRuns[0]; len(dataRuns) != 1 || r.Outcome != "ok" || r.ToolCalls != 3 || r.Cards != 1 {
		t.Fatalf("data runs = %+v", dataRuns)
	}

	// the same message again (a redelivery) and a re-run make no second card and no second event
	if err := bus.Publish(ctx, f.bus, bus.EmailsClassified, "m1:again", msg); err != nil {
		t.Fatal(err)
	}
	f.svc.sched.Run(ctx, jobFor(t, "restaurant"))
	time.Sleep(300 * time.Millisecond)
	if n := f.count(bus.MissionsCreated.Subject); n != 1 {
		t.Fatalf("missions.created sent %d times", n)
	}
	if n, _ := f.db.Missions(ctx, store.MissionFilter{}); len(n) != 1 {
		t.Fatalf("%d cards after reprocessing, want 1", len(n))
	}
}

func TestUserRequestIsRoutedRunAndRecorded(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	d := time.Now().AddDate(0, 1, 0)
	insertMail(t, f.db, "t1", "tickets@trainline.example", "Your e-ticket for your journey",
		"Booking reference: TL88K2Q1\nFrom: London St Pancras\nTo: Paris Gare du Nord\nDeparture: "+d.Format("2 Jan 2006")+" at 08:31\nTrain: ES 9014",
		time.Now().Add(-time.Hour), "653")
	for id, text := range map[string]string{"req_1": "what's missing for my trip to Paris?", "req_2": "hello there"} {
		if err := f.db.CreateAgentRequest(ctx, id, text); err != nil {
			t.Fatal(err)
		}
		if err := bus.Publish(ctx, f.bus, bus.MissionsRequested, id, bus.MissionRequest{RequestID: id}); err != nil {
			t.Fatal(err)
		}
	}
	var req store.AgentRequest
	testkit.Eventually(t, 20*time.Second, func() bool {
		req, _ = f.db.AgentRequestByID(ctx, "req_1")
		return req.Status == "done"
	}, "request not answered")
	var ents struct{ Places []string }
	_ = json.Unmarshal(req.Entities, &ents)
	if req.Agent != "travel" || len(ents.Places) == 0 || ents.Places[0] != "Paris" || req.RunID == "" {
		t.Fatalf("request = %+v", req)
	}
	run, err := f.db.AgentRunByID(ctx, req.RunID)
	if err != nil || run.Trigger != "user.request" || len(run.CardIDs) != 1 {
		t.Fatalf("run = %+v, %v", run, err)
	}
	c, err := f.db.Mission(ctx, run.CardIDs[0])
	if err != nil || c.Kind != "trip" {
		t.Fatalf("card = %+v, %v", c, err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		r2, _ := f.db.AgentRequestByID(ctx, "req_2")
		return r2.Status == "no_intent"
	}, "unroutable request not answered")
}

func jobFor(t *testing.T, agentName string) trigger.Job {
	t.Helper()
	jobs, err := trigger.Plan(trigger.Trigger{Kind: trigger.WeeklyReview, At: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range jobs {
		if j.Agent == agentName {
			return j
		}
	}
	t.Fatalf("no job for %s", agentName)
	return trigger.Job{}
}

func TestPgDataReadsMailProfileAndSources(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	nm, err := taxonomy.Load(filepath.Join(testkit.SharedDir(t), "data", "iab"))
	if err != nil {
		t.Fatal(err)
	}
	d := &pgData{db: db, names: nm}
	insertMail(t, db, "f1", "no-reply@flytap.example", "Your flight itinerary", "Flight TP 1351 Lisbon (LIS) → London (LHR)", time.Now().Add(-time.Hour), "653")
	insertMail(t, db, "n1", "news@example.com", "Weekly digest", "Nothing about travel here", time.Now().Add(-2*time.Hour))
	if _, err := db.Pool.Exec(ctx, `INSERT INTO profile (taxonomy, category_id, confidence, evidence_count) VALUES ('content-3.1', '653', 0.8, 5)`); err != nil {
		t.Fatal(err)
	}
	found, err := d.SearchEmails(ctx, agent.EmailQuery{Text: "flights itinerary"})
	es := found.Emails
	if err != nil || len(es) != 1 || es[0].ID != "f1" || es[0].Categories[0] != "Travel" || es[0].From != "<no-reply@flytap.example>" {
		t.Fatalf("search = %+v, %v", es, err)
	}
	p, err := d.Profile(ctx)
	if err != nil || len(p.Interests) != 1 || p.Interests[0].Name != "Travel" || p.Confidence("Travel") < 0.79 {
		t.Fatalf("profile = %+v, %v", p, err)
	}
	srcs, err := d.Sources(ctx)
	if err != nil || len(srcs) != 1 || srcs[0].Emails != 2 || len(srcs[0].Weekly) != 8 || srcs[0].Weekly[7] != 2 {
		t.Fatalf("sources = %+v, %v", srcs, err)
	}
}

func TestMailSearchUsesTheIndex(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	for i := range 300 {
		insertMail(t, db, fmt.Sprintf("x%d", i), "a@example.com", "note", "nothing to see", time.Now().Add(-time.Duration(i)*time.Minute))
	}
	insertMail(t, db, "hit", "a@example.com", "Your flight", "Booking reference X7KQ2P", time.Now())
	if _, err := db.Pool.Exec(ctx, `ANALYZE emails`); err != nil {
		t.Fatal(err)
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	// the query SearchEmails runs, with ranked hybrid hits beside the words
	var none *time.Time
	rows, err := tx.Query(ctx, "EXPLAIN "+searchEmailsSQL, none, none, []string{}, tsQuery("flights"), 500, []string{"x7", "x9"})
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		_ = rows.Scan(&line)
		plan.WriteString(line + "\n")
	}
	rows.Close()
	if !strings.Contains(plan.String(), "emails_search_tsv_idx") {
		t.Fatalf("search does not use the index:\n%s", plan.String())
	}
	d := &pgData{db: db, names: nil}
	found, err := d.SearchEmails(ctx, agent.EmailQuery{Text: "flights"})
	es := found.Emails
	if err != nil || len(es) != 1 || es[0].ID != "hit" {
		t.Fatalf("search = %v, %v", es, err)
	}
}

func TestApproachingBookingRefreshesItsCard(t *testing.T) {
	var cardID string
	f := start(t, func(cfg *Config, db *store.DB) {
		cfg.EventScan = 100 * time.Millisecond
		c := mission.New("restaurant", "reservation", "restaurant:bistro verde:soon", time.Now())
		c.Title, c.EventAt = "Table at Bistro Verde", time.Now().Add(5*time.Hour)
		c.Evidence = []mission.Evidence{{EmailID: "m1", Excerpt: "Table for 2"}}
		if _, err := db.UpsertMission(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		cardID = c.ID
	})
	testkit.Eventually(t, 15*time.Second, func() bool {
		runs, _ := f.db.AgentRuns(context.Background(), "restaurant", 20)
		for _, r := range runs {
			if r.Trigger == "event.approaching" && r.Subject == "event:"+cardID && r.Outcome == "ok" {
				return true
			}
		}
		return false
	}, "no event.approaching run for the card")
	// the 24 h cool-down keeps later scans from running it again
	time.Sleep(400 * time.Millisecond)
	runs, _ := f.db.AgentRuns(context.Background(), "restaurant", 50)
	n := 0
	for _, r := range runs {
		if r.Trigger == "event.approaching" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d event runs, want 1 (cool-down)", n)
	}
}

func TestScheduleRunsDiagnosticReport(t *testing.T) {
	f := start(t, func(cfg *Config, db *store.DB) {
		cfg.Schedules = "weekly_diagnostic=@every 1s"
		if _, err := db.Pool.Exec(context.Background(), `INSERT INTO sources (id, kind, account, errors_count, last_success_at) VALUES ('src-1', 'imap', 'alex@example.com', 2, now())`); err != nil {
			t.Fatal(err)
		}
	})
	var cards []mission.Card
	testkit.Eventually(t, 15*time.Second, func() bool {
		cards, _ = f.db.Missions(context.Background(), store.MissionFilter{Agent: "diagnostic"})
		return len(cards) == 1
	}, "no diagnostic report")
	c := cards[0]
	if c.Kind != "report" || c.Evidence[0].SourceID != "src-1" || c.Primary == nil || c.Primary.Kind != mission.ActionConnectSource {
		t.Fatalf("report = %+v", c)
	}
	runs, _ := f.db.AgentRuns(context.Background(), "diagnostic", 10)
	if len(runs) == 0 || runs[len(runs)-1].Trigger != "schedule.weekly_diagnostic" {
		t.Fatalf("runs = %+v", runs)
	}
}
