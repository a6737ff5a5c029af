package ops_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/ops"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func insertEmail(t *testing.T, db *store.DB, id string, age time.Duration) {
	t.Helper()
	_, err := db.Pool.Exec(context.Background(), `INSERT INTO emails (id, message_id, content_hash, subject, sort_at, ingested_at)
		VALUES ($1, $1, 'h-'||$1, 'subject '||$1, now(), now() - $2::interval)`, id, age.String())
	if err != nil {
		t.Fatal(err)
	}
}

func setStage(t *testing.T, db *store.DB, id, stage, status string, age time.Duration) {
	t.Helper()
	_, err := db.Pool.Exec(context.Background(), `INSERT INTO email_stages (email_id, stage, status, updated_at)
		VALUES ($1, $2, $3, now() - $4::interval)`, id, stage, status, age.String())
	if err != nil {
		t.Fatal(err)
	}
}

func streamMsgs(t *testing.T, b *bus.Bus) uint64 {
	t.Helper()
	s, err := b.JetStream().Stream(context.Background(), bus.StreamEmails)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// subjectsOf returns "subject:email" for every message in the EMAILS stream.
func subjectsOf(t *testing.T, b *bus.Bus) map[string]int {
	t.Helper()
	ctx := context.Background()
	c, err := b.JetStream().OrderedConsumer(ctx, bus.StreamEmails, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	n := streamMsgs(t, b)
	for i := uint64(0); i < n; i++ {
		m, err := c.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Data struct {
				EmailID string `json:"email_id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data(), &env); err != nil {
			t.Fatal(err)
		}
		out[m.Subject()+":"+env.Data.EmailID]++
	}
	return out
}

func TestReconcileRepublishesOnlyEmailsMissingAStageAndIsIdempotent(t *testing.T) {
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	ctx := context.Background()
	old := time.Hour
	insertEmail(t, db, "lost-at-ingest", old) // never embedded → emails.ingested
	insertEmail(t, db, "lost-at-embed", old)  // embedded, not classified → emails.embedded
	setStage(t, db, "lost-at-embed", "embedder", "done", old)
	insertEmail(t, db, "lost-at-classify", old) // classified, no agents → emails.classified
	setStage(t, db, "lost-at-classify", "embedder", "done", old)
	setStage(t, db, "lost-at-classify", "classifier", "done", old)
	insertEmail(t, db, "complete", old)
	for _, s := range []string{"embedder", "classifier", "agents"} {
		setStage(t, db, "complete", s, "done", old)
	}
	insertEmail(t, db, "dead-letter", old) // failed: the user's to retry, not ours
	setStage(t, db, "dead-letter", "embedder", "failed", old)
	insertEmail(t, db, "fresh", time.Second) // still within the grace period
	insertEmail(t, db, "fresh-embed", old)
	setStage(t, db, "fresh-embed", "embedder", "done", time.Second)

	r := ops.NewReconciler(db, b, ops.ReconcileOptions{Batch: 100, Grace: 10 * time.Minute, Log: testkit.Logger(t)})
	res, err := r.Once(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"embedder": 1, "classifier": 1, "agents": 1}
	for k, v := range want {
		if res.Republished[k] != v {
			t.Errorf("republished[%s] = %d, want %d (all %v)", k, res.Republished[k], v, res.Republished)
		}
	}
	got := subjectsOf(t, b)
	wantMsgs := map[string]int{"emails.ingested:lost-at-ingest": 1, "emails.embedded:lost-at-embed": 1, "emails.classified:lost-at-classify": 1}
	if len(got) != len(wantMsgs) {
		t.Fatalf("stream holds %v, want %v", got, wantMsgs)
	}
	for k := range wantMsgs {
		if got[k] != 1 {
			t.Errorf("stream holds %v, want %v", got, wantMsgs)
		}
	}
	// A second run re-publishes the same ids; the deterministic Msg-Id keeps
	// the stream from holding them twice.
	if _, err := r.Once(ctx); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, b); n != 3 {
		t.Errorf("after a second run the stream holds %d messages, want 3", n)
	}
}

func TestReconcileBatchBoundsOneRun(t *testing.T) {
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		insertEmail(t, db, id, time.Hour)
	}
	r := ops.NewReconciler(db, b, ops.ReconcileOptions{Batch: 2, Grace: time.Minute, Log: testkit.Logger(t)})
	res, err := r.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Republished["embedder"] != 2 {
		t.Errorf("republished %v, want 2 for embedder", res.Republished)
	}
}

func TestReconcileOnDemandAnswersJSONResult(t *testing.T) {
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	insertEmail(t, db, "x", time.Hour)
	r := ops.NewReconciler(db, b, ops.ReconcileOptions{Grace: time.Minute, Log: testkit.Logger(t)})
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/ops/reconcile", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var res ops.Result
	if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if res.Republished["embedder"] != 1 {
		t.Errorf("answer %s, want embedder:1", rec.Body)
	}
}

func TestHeartbeatListsWorkerAndRemovesItAtStop(t *testing.T) {
	b := testkit.NATS(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	hb, err := ops.NewHeartbeat(b, ops.HeartbeatOptions{Service: "classifier", Interval: 20 * time.Millisecond, InFlight: func() int { return 3 }, Host: "nas.local", PID: 42, Log: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- hb.Run(ctx) }()
	kv, err := ops.WorkersBucket(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	var got []ops.Beat
	testkit.Eventually(t, 30*time.Second, func() bool {
		got, err = ops.Workers(context.Background(), kv)
		return err == nil && len(got) == 1
	}, "heartbeat never appeared: %v %v", got, err)
	w := got[0]
	if w.Service != "classifier" || w.Instance != "nas_local-42" || w.Host != "nas.local" || w.PID != 42 || w.InFlight != 3 || w.Started.IsZero() || w.LastBeat.IsZero() {
		t.Errorf("beat = %+v", w)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, err = ops.Workers(context.Background(), kv)
	if err != nil || len(got) != 0 {
		t.Errorf("after stop: workers %v, err %v; want none", got, err)
	}
}

func TestInFlightFromSumsTheRunnersGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ownyou_stage_inflight"}, []string{"stage"})
	reg.MustRegister(g)
	g.WithLabelValues("embedder").Set(2)
	g.WithLabelValues("classifier").Set(5)
	if n := ops.InFlightFrom(reg)(); n != 7 {
		t.Errorf("in flight = %d, want 7", n)
	}
}

// waitingStage creates the embedder's durable consumer and leaves one message
// waiting on it.
func waitingStage(t *testing.T, b *bus.Bus) {
	t.Helper()
	ctx := context.Background()
	_, err := b.JetStream().CreateOrUpdateConsumer(ctx, bus.StreamEmails, jetstream.ConsumerConfig{
		Durable: bus.ConsumerEmbedder, FilterSubject: bus.EmailsIngested.Subject, AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(ctx, b, bus.EmailsIngested, "e1", bus.EmailIngested{EmailID: "e1"}); err != nil {
		t.Fatal(err)
	}
}

func TestQueueCollectorReportsConsumerLag(t *testing.T) {
	b := testkit.NATS(t, nil)
	waitingStage(t, b)
	c := ops.NewQueueCollector(b)
	want := `
# HELP ownyou_stage_queue_pending Messages waiting for a stage that no worker has received yet (consumer lag).
# TYPE ownyou_stage_queue_pending gauge
ownyou_stage_queue_pending{stage="embedder"} 1
`
	var err error
	// JetStream updates a consumer's pending count shortly after the publish.
	testkit.Eventually(t, 30*time.Second, func() bool {
		err = testutil.CollectAndCompare(c, strings.NewReader(want), "ownyou_stage_queue_pending")
		return err == nil
	}, "queue metrics: %v", err)
}

func TestSnapshotFlagsStageWithoutWorkersAndSilentSource(t *testing.T) {
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	ctx := context.Background()
	waitingStage(t, b)
	_, err := db.Pool.Exec(ctx, `INSERT INTO sources (id, kind, account, status, heartbeat_at) VALUES
		('gmail-1', 'gmail', 'me@example.com', 'syncing', now() - interval '1 hour'),
		('imap-1', 'imap', 'me@example.org', 'syncing', now()),
		('file-1', 'file', '', 'idle', NULL)`)
	if err != nil {
		t.Fatal(err)
	}
	hb, err := ops.NewHeartbeat(b, ops.HeartbeatOptions{Service: "classifier", Log: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := hb.Beat(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := ops.Snapshot(ctx, db, b, 2*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Workers) != 1 || st.Workers[0].Service != "classifier" {
		t.Errorf("workers = %+v, want the classifier", st.Workers)
	}
	byStage := map[string]ops.StageStatus{}
	for _, s := range st.Stages {
		byStage[s.Stage] = s
	}
	if s := byStage["embedder"]; !s.Stalled || !strings.Contains(s.Reason, "no embedder worker") {
		t.Errorf("embedder = %+v, want stalled for lack of workers", s)
	}
	if s := byStage["classifier"]; s.Stalled || len(s.Workers) != 1 {
		t.Errorf("classifier = %+v, want not stalled with one worker", s)
	}
	if len(st.StalledSources) != 1 || st.StalledSources[0].ID != "gmail-1" {
		t.Errorf("stalled sources = %+v, want gmail-1", st.StalledSources)
	}
	// A worker silent for longer than the threshold no longer counts as alive.
	st, err = ops.Snapshot(ctx, db, b, 2*time.Minute, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Workers) != 0 {
		t.Errorf("an hour later workers = %+v, want none alive", st.Workers)
	}
}

func TestBackupRestoreBringsDataBack(t *testing.T) {
	url := testkit.DatabaseURL(t)
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{URL: url}, testkit.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	insertEmail(t, db, "keep-me", time.Hour)
	setStage(t, db, "keep-me", "embedder", "done", time.Hour)

	dir := filepath.Join(t.TempDir(), "backups")
	bk := &ops.Backups{URL: url, Dir: dir, Keep: 2, Log: testkit.Logger(t)}
	file, err := bk.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM emails; INSERT INTO emails (id, message_id, content_hash, sort_at) VALUES ('after-backup','m','h',now())`); err != nil {
		t.Fatal(err)
	}
	db.Close() // restore runs with the services stopped
	if err := bk.Restore(ctx, file); err != nil {
		t.Fatal(err)
	}
	db2, err := store.Open(ctx, store.Config{URL: url}, testkit.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	var ids []string
	rows, err := db2.Pool.Query(ctx, `SELECT e.id || ':' || s.stage FROM emails e JOIN email_stages s ON s.email_id = e.id ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s)
	}
	var n int
	if err := db2.Pool.QueryRow(ctx, `SELECT count(*) FROM emails`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != "keep-me:embedder" || n != 1 {
		t.Errorf("after restore: %v (%d emails), want [keep-me:embedder] only", ids, n)
	}
}

func TestBackupRetentionKeepsNewest(t *testing.T) {
	url := testkit.DatabaseURL(t)
	dir := t.TempDir()
	base := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	for i := range 4 {
		bk := &ops.Backups{URL: url, Dir: dir, Keep: 2, Log: testkit.Logger(t), Now: func() time.Time { return base.Add(time.Duration(i) * time.Hour) }}
		if _, err := bk.Backup(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	bk := &ops.Backups{Dir: dir}
	all, err := bk.List()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ownyou-20260101T050000Z.dump", "ownyou-20260101T060000Z.dump"}
	if len(all) != 2 || filepath.Base(all[0]) != want[0] || filepath.Base(all[1]) != want[1] {
		t.Errorf("kept %v, want %v", all, want)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("dir holds %d files, want 2 (no partial files)", len(ents))
	}
}

func TestRestoreOfMissingFileFails(t *testing.T) {
	bk := &ops.Backups{URL: "postgres://nowhere/x", Dir: t.TempDir()}
	if err := bk.Restore(context.Background(), filepath.Join(t.TempDir(), "nope.dump")); err == nil {
		t.Error("restore of a missing file succeeded")
	}
	if _, err := bk.Latest(); err == nil {
		t.Error("latest of an empty dir succeeded")
	}
}

func TestServiceBeatsForEachServiceExportsQueuesAndServesStatus(t *testing.T) {
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	reg := prometheus.NewRegistry()
	health := app.NewHealth()
	d := app.Deps{DB: db, Bus: b, Log: testkit.Logger(t), Metrics: reg, Health: health}
	s, err := ops.New(ops.Config{HeartbeatInterval: 20 * time.Millisecond, ReconcileInterval: time.Hour, ReconcileBatch: 10}, true, d, "embedder", "classifier")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	kv, err := ops.WorkersBucket(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 30*time.Second, func() bool {
		w, err := ops.Workers(context.Background(), kv)
		return err == nil && len(w) == 2
	}, "two heartbeats (embedder, classifier)")
	waitingStage(t, b)
	testkit.Eventually(t, 30*time.Second, func() bool {
		n, err := testutil.GatherAndCount(reg, "ownyou_stage_queue_pending")
		return err == nil && n == 1
	}, "queue metrics for the embedder's consumer")

	rec := httptest.NewRecorder()
	ops.StatusHandler(db, b, time.Minute, testkit.Logger(t)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/ops/status", nil))
	var st ops.Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("status %d %s: %v", rec.Code, rec.Body, err)
	}
	if len(st.Workers) != 2 || len(st.Stages) != 3 {
		t.Errorf("status = %+v, want 2 workers and 3 stages", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if w, _ := ops.Workers(context.Background(), kv); len(w) != 0 {
		t.Errorf("after stop: %v, want no heartbeats", w)
	}
}
