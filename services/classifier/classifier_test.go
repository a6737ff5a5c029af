package classifier

import (
	"context"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
	"github.com/ownyou/home/services/classifier/fakeoai"
	"github.com/ownyou/home/services/classifier/internal/testenv"
	"github.com/ownyou/home/services/classifier/profile"
)

func TestMain(m *testing.M) { testkit.Main(m) }

type env struct {
	db  *store.DB
	bus *bus.Bus
	svc *Service
}

// start runs a classifier (LLM backend against fake when fake != nil) on a
// fresh database and bus, and returns once it consumes.
func start(t *testing.T, fake *fakeoai.Server) *env {
	t.Helper()
	testenv.Taxonomies(t)
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	return &env{db: db, bus: b, svc: startService(t, db, b, fake, nil)}
}

// startService runs a classifier on db and b until the test ends, with the
// LLM backend against fake when fake != nil; tweak (may be nil) adjusts the
// test configuration first.
func startService(t *testing.T, db *store.DB, b *bus.Bus, fake *fakeoai.Server, tweak func(*Config)) *Service {
	t.Helper()
	cfg := Config{
		TaxonomyDir: testenv.SharedDir() + "/data/iab", WordVecPath: os.Getenv("OWNYOU_WORDVEC_PATH"), ModelCache: os.Getenv("OWNYOU_MODEL_DIR"),
		Concurrency: 16, BatchSize: 10, BatchWait: 100 * time.Millisecond, LLMConcurrency: 4, LLMTimeout: 5 * time.Second,
	}
	if cfg.ModelCache == "" {
		cfg.ModelCache = t.TempDir()
	}
	if fake != nil {
		srv := httptest.NewServer(fake)
		t.Cleanup(srv.Close)
		cfg.LLMBaseURL, cfg.LLMModel = srv.URL+"/v1", "fake-model"
	}
	if tweak != nil {
		tweak(&cfg)
	}
	if cfg.WordVecPath == "" {
		testenv.WordVec(t) // skips locally, fails in CI
	}
	cfg.DataDir = t.TempDir()
	svc, err := New(cfg, app.Deps{Common: cfg.Common, DB: db, Bus: b, Log: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, svc)
	return svc
}

// useEmbedder makes a test classifier ask the embedder service (word vectors meanwhile).
func useEmbedder(cfg *Config) {
	cfg.UseEmbedder, cfg.EmbedTimeout, cfg.EmbedRetry = true, 5*time.Second, 200*time.Millisecond
}

func (e *env) insert(t *testing.T, n int) []string {
	t.Helper()
	return insertLabeled(t, e.db, "em", 0, n)
}

func (e *env) publish(t *testing.T, ids []string, tag string) {
	t.Helper()
	for _, id := range ids {
		if err := bus.Publish(context.Background(), e.bus, bus.EmailsEmbedded, "embedded:"+id+":"+tag, bus.EmailEmbedded{EmailID: id}); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) doneCount(t *testing.T) int {
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM email_stages WHERE stage = 'classifier' AND status = 'done'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

type snapshot struct {
	Classifications []string
	Profile         []string
}

func (e *env) snapshot(t *testing.T) snapshot {
	t.Helper()
	var s snapshot
	rows, err := e.db.Pool.Query(context.Background(), `SELECT email_id||'|'||taxonomy||'|'||category_id||'|'||confidence::text||'|'||judgement||'|'||backend||'|'||model||'|'||prompt_version||'|'||evidence FROM classifications ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r string
		_ = rows.Scan(&r)
		s.Classifications = append(s.Classifications, r)
	}
	rows, err = e.db.Pool.Query(context.Background(), `SELECT taxonomy||'|'||category_id||'|'||confidence::text||'|'||raw_confidence::text||'|'||evidence_count::text||'|'||path||'|'||group_key||'|'||is_primary::text FROM profile ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r string
		_ = rows.Scan(&r)
		s.Profile = append(s.Profile, r)
	}
	return s
}

// collect subscribes to emails.classified.
func collect(t *testing.T, b *bus.Bus) func() map[string]bus.EmailClassified {
	t.Helper()
	var mu sync.Mutex
	got := map[string]bus.EmailClassified{}
	ctx, cancel := context.WithCancel(context.Background())
	cons, err := bus.Consume(ctx, b, bus.EmailsClassified, bus.ConsumeOptions{Durable: "test-classified", Concurrency: 4}, func(_ context.Context, m bus.EmailClassified) error {
		mu.Lock()
		got[m.EmailID] = m
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-cons.Done() })
	return func() map[string]bus.EmailClassified {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]bus.EmailClassified{}
		for k, v := range got {
			out[k] = v
		}
		return out
	}
}

func TestLocalBackendClassifiesStoresProfileAndPublishes(t *testing.T) {
	e := start(t, nil)
	got := collect(t, e.bus)
	ids := e.insert(t, 20)
	e.publish(t, ids, "1")
	testkit.Eventually(t, 60*time.Second, func() bool { return e.doneCount(t) == 20 && len(got()) == 20 }, "20 emails classified and announced")
	snap := e.snapshot(t)
	if len(snap.Classifications) == 0 || len(snap.Profile) == 0 {
		t.Fatalf("nothing stored: %+v", snap)
	}
	var n int
	_ = e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM classifications WHERE backend = 'local' AND model <> '' AND prompt_version <> '' AND evidence <> ''`).Scan(&n)
	if n != len(snap.Classifications) {
		t.Errorf("%d of %d classifications lack provenance", len(snap.Classifications)-n, len(snap.Classifications))
	}
	m := got()["em-000"] // British Airways booking
	found := false
	for _, c := range m.Categories {
		if c.Taxonomy == "content-3.1" && c.ID == "653" {
			found = true
		}
	}
	if !found {
		t.Errorf("booking email not announced as Travel: %+v", m)
	}
}

func TestRedeliveredMessagesChangeNothing(t *testing.T) {
	e := start(t, &fakeoai.Server{})
	ids := e.insert(t, 12)
	e.publish(t, ids, "1")
	testkit.Eventually(t, 60*time.Second, func() bool { return e.doneCount(t) == 12 }, "12 emails classified")
	before := e.snapshot(t)
	if len(before.Classifications) == 0 {
		t.Fatal("no classifications")
	}
	e.publish(t, ids, "2") // a redelivery under new msg ids
	time.Sleep(2 * time.Second)
	testkit.Eventually(t, 30*time.Second, func() bool {
		pending, ack, err := e.bus.ConsumerLag(context.Background(), bus.StreamEmails, bus.ConsumerClassifier)
		return err == nil && pending == 0 && ack == 0
	}, "redelivered messages handled")
	if after := e.snapshot(t); !reflect.DeepEqual(before, after) {
		t.Errorf("redelivery changed the results:\nbefore %v\nafter  %v", before, after)
	}
}

func TestLLMBatchesAreJudgedAndKeepProvenance(t *testing.T) {
	fake := &fakeoai.Server{}
	e := start(t, fake)
	ids := e.insert(t, 10)
	e.publish(t, ids, "1")
	testkit.Eventually(t, 60*time.Second, func() bool { return e.doneCount(t) == 10 }, "10 emails classified")
	calls := len(fake.Calls())
	if calls == 0 || calls > 3*8 {
		t.Errorf("%d LLM calls for 10 emails in batches of 10 (want ≤ 8 per batch, never one per email)", calls)
	}
	var n, bad int
	_ = e.db.Pool.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE backend <> 'llm' OR model <> 'fake-model' OR prompt_version = '' OR judgement NOT IN ('explicit','contextual','weak')) FROM classifications`).Scan(&n, &bad)
	if n == 0 || bad != 0 {
		t.Errorf("classifications: %d, without LLM provenance/judgement: %d", n, bad)
	}
}

func TestExhaustedBudgetFallsBackToLocalAndShowsStatus(t *testing.T) {
	fake := &fakeoai.Server{}
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO llm_usage (month, op, prompt_tokens) VALUES (to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM'), 'classify', 5000)`); err != nil {
		t.Fatal(err)
	}
	svc := startService(t, db, b, fake, func(cfg *Config) {
		cfg.Concurrency, cfg.BatchSize, cfg.BatchWait, cfg.LLMConcurrency, cfg.LLMMonthlyTokens = 8, 5, 50*time.Millisecond, 2, 5000
	})
	e := &env{db: db, bus: b, svc: svc}
	ids := e.insert(t, 5)
	e.publish(t, ids, "1")
	testkit.Eventually(t, 60*time.Second, func() bool { return e.doneCount(t) == 5 }, "5 emails classified")
	if len(fake.Calls()) != 0 {
		t.Errorf("exhausted budget still called the LLM %d times", len(fake.Calls()))
	}
	var llmRows int
	_ = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM classifications WHERE backend <> 'local'`).Scan(&llmRows)
	if llmRows != 0 {
		t.Errorf("%d classifications not from the local fallback", llmRows)
	}
	var level, msg string
	if err := db.Pool.QueryRow(context.Background(), `SELECT budget_level, message FROM classifier_status WHERE id = 'classifier'`).Scan(&level, &msg); err != nil {
		t.Fatal(err)
	}
	if level != "stopped" || msg == "" {
		t.Errorf("status = %q %q, want stopped with a message", level, msg)
	}
}

func TestWithoutWordVectorsItDegradesToRulesAndSaysSo(t *testing.T) {
	testenv.Taxonomies(t)
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	svc := startService(t, db, b, nil, func(cfg *Config) {
		cfg.WordVecPath, cfg.ModelCache, cfg.Concurrency, cfg.BatchSize, cfg.BatchWait = "/nonexistent/wink.json", t.TempDir(), 4, 5, 50*time.Millisecond
	})
	e := &env{db: db, bus: b, svc: svc}
	ids := e.insert(t, 3)
	e.publish(t, ids, "1")
	testkit.Eventually(t, 30*time.Second, func() bool { return e.doneCount(t) == 3 }, "3 emails through the degraded classifier")
	var msg string
	_ = db.Pool.QueryRow(context.Background(), `SELECT message FROM classifier_status WHERE id = 'classifier'`).Scan(&msg)
	if msg == "" {
		t.Error("degraded mode not visible in classifier_status")
	}
}

func TestRejectingLLMServerFallsBackToLocalAndSaysSo(t *testing.T) {
	fake := &fakeoai.Server{Script: func(int, openai.ChatCompletionRequest) (fakeoai.Reply, bool) { return fakeoai.Reply{Status: 401}, true }}
	e := start(t, fake)
	ids := e.insert(t, 4)
	e.publish(t, ids, "1")
	testkit.Eventually(t, 60*time.Second, func() bool { return e.doneCount(t) == 4 }, "4 emails classified despite the LLM rejecting")
	var nonLocal, deadLetters int
	_ = e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM classifications WHERE backend <> 'local'`).Scan(&nonLocal)
	_ = e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM dead_letters`).Scan(&deadLetters)
	if nonLocal != 0 || deadLetters != 0 {
		t.Errorf("non-local classifications %d, dead letters %d", nonLocal, deadLetters)
	}
	var msg string
	_ = e.db.Pool.QueryRow(context.Background(), `SELECT message FROM classifier_status WHERE id = 'classifier'`).Scan(&msg)
	if !strings.Contains(msg, "rejects") {
		t.Errorf("status message = %q", msg)
	}
}

func TestDecaySweepMatchesTheProfileFormula(t *testing.T) {
	db := testkit.DB(t)
	r := &repo{pool: db.Pool}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `INSERT INTO profile (taxonomy, category_id, confidence, raw_confidence, last_evidence_at, disputed) VALUES
		('content-3.1','653',0.5,0.5,$1,false), ('content-3.1','1',0.9,0.9,$2,false), ('content-3.1','42',0.7,0.7,$1,true)`,
		now.Add(-10*7*24*time.Hour), now.Add(-300*7*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := r.decay(ctx, now); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"653": profile.Decay(0.5, 10), "1": 0, "42": 0}
	rows, err := db.Pool.Query(ctx, `SELECT category_id, confidence FROM profile`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var c float32
		if err := rows.Scan(&id, &c); err != nil {
			t.Fatal(err)
		}
		if d := float64(c) - want[id]; d > 1e-4 || d < -1e-4 {
			t.Errorf("category %s decayed to %v, want %v", id, c, want[id])
		}
	}
}

func TestUnreachableLLMServerFallsBackToLocalAndSaysSoUntilItAnswers(t *testing.T) {
	testenv.Taxonomies(t)
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	// A server that accepts connections and answers nothing but 503: after
	// the backend's own retries, the LLM counts as unreachable.
	var down atomic.Bool
	down.Store(true)
	fake := &fakeoai.Server{Script: func(int, openai.ChatCompletionRequest) (fakeoai.Reply, bool) {
		if down.Load() {
			return fakeoai.Reply{Status: 503}, true
		}
		return fakeoai.Reply{}, false
	}}
	e := &env{db: db, bus: b, svc: startService(t, db, b, fake, nil)}
	ids := e.insert(t, 4)
	e.publish(t, ids, "1")
	testkit.Eventually(t, 60*time.Second, func() bool { return e.doneCount(t) == 4 }, "emails classified while the LLM is unreachable")
	status := func() string {
		var msg string
		_ = e.db.Pool.QueryRow(context.Background(), `SELECT message FROM classifier_status WHERE id = 'classifier'`).Scan(&msg)
		return msg
	}
	var deadLetters int
	_ = e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM dead_letters`).Scan(&deadLetters)
	if deadLetters != 0 || !strings.Contains(status(), "unreachable") {
		t.Fatalf("dead letters %d, status %q", deadLetters, status())
	}
	down.Store(false)
	more := insertLabeled(t, e.db, "em2", 100, 2)
	e.publish(t, more, "2")
	testkit.Eventually(t, 60*time.Second, func() bool { return status() == "" }, "the unreachable message stays after the LLM answers again")
}
