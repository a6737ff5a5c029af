package agents

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
	"github.com/ownyou/home/services/agents/sched"
	"github.com/ownyou/home/services/agents/trigger"
)

// runService runs an agents service on db and b until the returned stop is
// called; stop cancels it and waits for Run to return.
func runService(t *testing.T, db *store.DB, b *bus.Bus, cfg Config) (stop func()) {
	t.Helper()
	svc, err := New(cfg, app.Deps{DB: db, Bus: b, Log: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return testkit.Run(t, svc)
}

func countRows(t *testing.T, db *store.DB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAckedNewMailRunsAfterACrashBeforeItsBatch(t *testing.T) {
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	ctx := context.Background()
	// a quiet period far longer than the test: the batch never fires on its own
	cfg := Config{Concurrency: 2, PerAgent: 1, Debounce: time.Hour, DebounceMax: time.Hour, EventWindow: 48 * time.Hour,
		EventScan: time.Hour, TaxonomyDir: filepath.Join(testkit.SharedDir(t), "data", "iab")}
	in := time.Now().AddDate(0, 0, 3)
	insertMail(t, db, "m1", "no-reply@opentable.example", "Your reservation at Bistro Verde is confirmed",
		"Table for 2 on "+in.Format("Monday, 2 January 2006")+" at 7:30 PM.\nConfirmation #: BV-55120\nAddress: 12 Rua das Flores, Lisbon",
		time.Now().Add(-time.Hour), "218")

	stop := runService(t, db, b, cfg)
	msg := bus.EmailClassified{EmailID: "m1", Categories: []bus.Category{{Taxonomy: "content-3.1", ID: "218", Confidence: 0.9}}}
	if err := bus.Publish(ctx, b, bus.EmailsClassified, "m1", msg); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		pending, acking, err := b.ConsumerLag(ctx, bus.EmailsClassified.Stream, bus.ConsumerAgents)
		return err == nil && pending == 0 && acking == 0 &&
			countRows(t, db, `SELECT count(*) FROM email_stages WHERE email_id = 'm1' AND stage = 'agents' AND status = 'done'`) == 1
	}, "message not acked")
	stop() // the process goes away between the ack and the batch
	if n := countRows(t, db, `SELECT count(*) FROM agent_runs WHERE trigger LIKE 'data.%'`); n != 0 {
		t.Fatalf("%d data runs before the batch was due", n)
	}
	if n := countRows(t, db, `SELECT count(*) FROM agent_pending_triggers WHERE email_id = 'm1'`); n != 1 {
		t.Fatalf("pending triggers for m1 = %d, want 1", n)
	}

	runService(t, db, b, cfg) // restart: nothing is redelivered, the pending row is the only trace
	testkit.Eventually(t, 20*time.Second, func() bool {
		return countRows(t, db, `SELECT count(*) FROM agent_pending_triggers`) == 0
	}, "pending trigger never cleared")
	if n := countRows(t, db, `SELECT count(*) FROM agent_runs WHERE agent = 'restaurant' AND trigger = 'data.classified' AND outcome = 'ok' AND cards = 1`); n != 1 {
		t.Fatalf("restaurant data runs = %d, want 1", n)
	}
	cards, err := db.Missions(ctx, store.MissionFilter{Agent: "restaurant"})
	if err != nil || len(cards) != 1 || cards[0].Evidence[0].EmailID != "m1" {
		t.Fatalf("restaurant cards = %+v, %v", cards, err)
	}
}

func TestPendingTriggersAreIdempotentByEmail(t *testing.T) {
	db := testkit.DB(t)
	ctx := context.Background()
	for _, cats := range [][]string{{"Travel"}, {"Travel", "Dining"}} {
		if err := addPending(ctx, db, "m1", cats, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	got, err := loadPending(ctx, db, 10)
	if err != nil || len(got) != 1 || len(got[0].Categories) != 2 {
		t.Fatalf("pending = %+v, %v", got, err)
	}
	// a redelivery after the batch read the row keeps it pending
	if err := addPending(ctx, db, "m1", []string{"Travel"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := donePending(ctx, db, got); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, db, `SELECT count(*) FROM agent_pending_triggers`); n != 1 {
		t.Fatalf("refreshed row cleared by an older batch: %d rows", n)
	}
	again, _ := loadPending(ctx, db, 10)
	if err := donePending(ctx, db, again); err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, db, `SELECT count(*) FROM agent_pending_triggers`); n != 0 {
		t.Fatalf("%d rows left after their batch", n)
	}
}

func TestPendingMailARunAlreadyReadIsClearedWithoutWaiting(t *testing.T) {
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	ctx := context.Background()
	insertMail(t, db, "m1", "no-reply@opentable.example", "Your reservation", "Table for 2", time.Now().Add(-time.Hour))
	seen := time.Now().Add(-time.Minute)
	if err := addPending(ctx, db, "m1", []string{"Food & Drink > Dining Out"}, seen); err != nil {
		t.Fatal(err)
	}
	// every agent the mail wakes ran successfully after the mail came in
	// (a crash hit before the batch cleared its row), so each is cooling down
	for _, a := range []string{"restaurant", "content", "events"} {
		run := sched.Run{ID: "run_" + a, Agent: a, Trigger: trigger.DataClassified, Subject: "mailbox", Start: seen.Add(time.Second),
			End: seen.Add(2 * time.Second), Outcome: sched.OutcomeOK}
		if err := (runStore{db}).SaveRun(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	runService(t, db, b, Config{Concurrency: 1, PerAgent: 1, Debounce: time.Hour, DebounceMax: time.Hour, EventWindow: 48 * time.Hour, EventScan: time.Hour})
	testkit.Eventually(t, 10*time.Second, func() bool {
		return countRows(t, db, `SELECT count(*) FROM agent_pending_triggers`) == 0
	}, "covered pending trigger waited for the cool-down")
	if n := countRows(t, db, `SELECT count(*) FROM agent_runs`); n != 3 {
		t.Fatalf("%d runs, want the 3 earlier ones only", n)
	}
}

func TestPendingMailCoolingDownRunsWhenTheCoolDownEnds(t *testing.T) {
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	ctx := context.Background()
	insertMail(t, db, "m1", "no-reply@opentable.example", "Your reservation", "Table for 2", time.Now().Add(-time.Hour))
	// each agent the mail wakes ran before the mail came in; its cool-down ends in two seconds
	for a, coolDown := range map[string]time.Duration{"restaurant": 10 * time.Minute, "content": time.Hour, "events": time.Hour} {
		end := time.Now().Add(-coolDown + 2*time.Second)
		run := sched.Run{ID: "run_" + a, Agent: a, Trigger: trigger.DataClassified, Subject: "mailbox", Start: end.Add(-time.Second), End: end, Outcome: sched.OutcomeOK}
		if err := (runStore{db}).SaveRun(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	if err := addPending(ctx, db, "m1", []string{"Food & Drink > Dining Out"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	runService(t, db, b, Config{Concurrency: 1, PerAgent: 1, Debounce: time.Hour, DebounceMax: time.Hour, EventWindow: 48 * time.Hour, EventScan: time.Hour})
	time.Sleep(time.Second)
	if n := countRows(t, db, `SELECT count(*) FROM agent_pending_triggers`); n != 1 {
		t.Fatalf("pending rows = %d during the cool-down, want 1", n)
	}
	testkit.Eventually(t, 15*time.Second, func() bool {
		return countRows(t, db, `SELECT count(*) FROM agent_pending_triggers`) == 0
	}, "pending trigger not run after the cool-down")
	// the earlier runs started at least ten minutes ago
	if n := countRows(t, db, `SELECT count(*) FROM agent_runs WHERE started_at > now() - interval '1 minute' AND trigger LIKE 'data.%'`); n != 3 {
		t.Fatalf("%d new runs, want one per agent", n)
	}
}
