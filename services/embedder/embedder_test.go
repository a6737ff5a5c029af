package embedder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/bus"
	"github.com/ownyou/home/pkg/embed"
	"github.com/ownyou/home/pkg/embedclient"
	"github.com/ownyou/home/pkg/models"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

var (
	graphOnce sync.Once
	graphPath string
	graphErr  error
)

// testConfig runs the service on the generated tiny BERT graph.
func testConfig(t *testing.T) Config {
	t.Helper()
	graphOnce.Do(func() {
		var g []byte
		if g, graphErr = embed.GenerateGraph(embed.TinyGraph()); graphErr != nil {
			return
		}
		graphPath = filepath.Join(os.TempDir(), "embedder-test-tiny.onnx")
		graphErr = os.WriteFile(graphPath, g, 0o644)
	})
	if graphErr != nil {
		t.Fatal(graphErr)
	}
	lib := models.ORTLib()
	return Config{
		Common: app.Common{DataDir: t.TempDir()},
		Model:  graphPath, Vocab: filepath.Join(testkit.SharedDir(t), "models", "all-MiniLM-L6-v2", "vocab.txt"), ORTLib: lib,
		Threads: 2, InterThreads: 1, MaxTokens: 32, Overlap: 4, MaxChunks: 4, MaxBatch: 16, BatchWait: 2 * time.Millisecond,
		Queue: 256, Concurrency: 8, Requests: 4, MaxTexts: 64,
		WordVecPath: os.Getenv("OWNYOU_WORDVEC_PATH"), CheckEvery: 100 * time.Millisecond, ReembedBatch: 16,
	}
}

func deps(t *testing.T, db *store.DB, b *bus.Bus) app.Deps {
	return app.Deps{DB: db, Bus: b, Log: testkit.Logger(t)}
}

type env struct {
	db  *store.DB
	bus *bus.Bus
	svc *Service
}

func start(t *testing.T, cfg Config) env {
	t.Helper()
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	svc, err := New(cfg, deps(t, db, b))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, svc)
	// Ready once it answers an info request.
	c := embedclient.New(b.Conn(), time.Second)
	testkit.Eventually(t, 10*time.Second, func() bool { _, _, err := c.Info(context.Background()); return err == nil }, "embedder never answered")
	return env{db, b, svc}
}

func insert(t *testing.T, db *store.DB, subject, body string) string {
	t.Helper()
	e := store.Email{MessageID: "<" + subject + "@test>", ContentHash: subject, Subject: subject, FromAddr: "a@b.example", BodyText: body}
	e.ID = store.EmailID(e.MessageID, e.ContentHash)
	if _, err := db.InsertEmail(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	return e.ID
}

type chunkRow struct {
	chunk, start, end int
	model             string
}

func chunks(t *testing.T, db *store.DB, id string) []chunkRow {
	rows, err := db.Pool.Query(context.Background(), `SELECT chunk, text_start, text_end, model FROM embeddings WHERE email_id = $1 ORDER BY chunk`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []chunkRow
	for rows.Next() {
		var c chunkRow
		if err := rows.Scan(&c.chunk, &c.start, &c.end, &c.model); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestIngestedEmailIsEmbeddedStoredAndAnnounced(t *testing.T) {
	e := start(t, testConfig(t))
	ctx := context.Background()
	body := strings.Repeat("The quarterly budget review is due on Friday, please send the figures. ", 12)
	id := insert(t, e.db, "Budget review", body)

	var mu sync.Mutex
	var embedded []bus.EmailEmbedded
	cons, err := bus.Consume(ctx, e.bus, bus.EmailsEmbedded, bus.ConsumeOptions{Durable: "test-embedded"}, func(_ context.Context, m bus.EmailEmbedded) error {
		mu.Lock()
		embedded = append(embedded, m)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Stop()
	if err := bus.Publish(ctx, e.bus, bus.EmailsIngested, "ingested/"+id, bus.EmailIngested{EmailID: id}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(embedded) == 1 }, "emails.embedded not published")
	got := chunks(t, e.db, id)
	// subject + 4 body windows (MaxChunks) of a long body
	if len(got) != 5 || got[0].chunk != 0 || got[1].start != 0 || got[4].end <= got[1].end {
		t.Fatalf("chunks %+v", got)
	}
	for _, c := range got {
		if c.model != e.svc.ModelID() {
			t.Fatalf("chunk model %q, want %q", c.model, e.svc.ModelID())
		}
	}
	mu.Lock()
	if embedded[0].EmailID != id || embedded[0].Chunks != 5 || embedded[0].Model != e.svc.ModelID() {
		t.Fatalf("event %+v", embedded[0])
	}
	mu.Unlock()
	// The stage is marked done after the event is published: wait for it.
	testkit.Eventually(t, 10*time.Second, func() bool {
		var status string
		err := e.db.Pool.QueryRow(ctx, `SELECT status FROM email_stages WHERE email_id = $1 AND stage = $2`, id, Stage).Scan(&status)
		return err == nil && status == "done"
	}, "email stage never marked done")

	// Handling the same message again changes nothing (idempotent upsert).
	if err := e.svc.HandleIngested(ctx, bus.EmailIngested{EmailID: id}); err != nil {
		t.Fatal(err)
	}
	if again := chunks(t, e.db, id); len(again) != 5 {
		t.Fatalf("after redelivery %d chunks", len(again))
	}
}

func TestUnknownOrEmptyEmailIsPermanent(t *testing.T) {
	e := start(t, testConfig(t))
	for _, m := range []bus.EmailIngested{{EmailID: ""}, {EmailID: "nope"}} {
		if err := e.svc.HandleIngested(context.Background(), m); !bus.IsPermanent(err) {
			t.Errorf("HandleIngested(%+v) = %v, want permanent", m, err)
		}
	}
}

func TestEmailWithoutTextStoresNoVectorsButCompletes(t *testing.T) {
	e := start(t, testConfig(t))
	id := insert(t, e.db, "", "   ")
	if err := e.svc.HandleIngested(context.Background(), bus.EmailIngested{EmailID: id}); err != nil {
		t.Fatal(err)
	}
	if got := chunks(t, e.db, id); len(got) != 0 {
		t.Fatalf("chunks %+v", got)
	}
}

func TestEmbedRequestsOverNATS(t *testing.T) {
	e := start(t, testConfig(t))
	ctx := context.Background()
	c := embedclient.New(e.bus.Conn(), 10*time.Second)
	vecs, err := c.Embed(ctx, []string{"flight to lisbon", "Sports > Football"})
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 2 || len(vecs[0]) != 384 || c.ModelID() != e.svc.ModelID() || c.Dim() != 384 {
		t.Fatalf("%d vectors, model %q dim %d", len(vecs), c.ModelID(), c.Dim())
	}
	// The same text embeds identically through the service and in-process.
	active, _ := e.svc.models()
	direct, err := active.TryEmbed(ctx, []string{"flight to lisbon"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range direct[0] {
		if d := direct[0][i] - vecs[0][i]; d > 1e-5 || d < -1e-5 {
			t.Fatalf("remote and direct vectors differ at %d", i)
		}
	}
	if model, dim, err := c.Info(ctx); err != nil || model != e.svc.ModelID() || dim != 384 {
		t.Fatalf("Info = %q %d %v", model, dim, err)
	}
}

func TestMalformedEmbedRequestsGetClearErrors(t *testing.T) {
	e := start(t, testConfig(t))
	nc := e.bus.Conn()
	tests := []struct {
		name, body, code, msg string
	}{
		{"not json", `{"texts": [`, bus.EmbedErrBadRequest, "malformed"},
		{"wrong type", `{"texts": "hello"}`, bus.EmbedErrBadRequest, "malformed"},
		{"too many texts", `{"texts": [` + strings.Repeat(`"x",`, 64) + `"x"]}`, bus.EmbedErrBadRequest, "at most 64"},
		{"huge text", `{"texts": ["` + strings.Repeat("a", 70_000) + `"]}`, bus.EmbedErrBadRequest, "bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg, err := nc.Request(bus.SubjectEmbed, []byte(tc.body), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			var rep bus.EmbedReply
			if err := json.Unmarshal(msg.Data, &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Error == nil || rep.Error.Code != tc.code || !strings.Contains(rep.Error.Message, tc.msg) {
				t.Fatalf("reply %+v, want %s mentioning %q", rep, tc.code, tc.msg)
			}
		})
	}
	// The service still answers good requests afterwards.
	if _, err := embedclient.New(nc, 10*time.Second).Embed(context.Background(), []string{"still alive"}); err != nil {
		t.Fatal(err)
	}
	if bad := testutil.ToFloat64(e.svc.requests.WithLabelValues(bus.EmbedErrBadRequest)); bad != float64(len(tests)) {
		t.Fatalf("bad_request metric = %v, want %d", bad, len(tests))
	}
}

func TestOverloadIsRefusedNotQueued(t *testing.T) {
	cfg := testConfig(t)
	cfg.Requests = 1
	e := start(t, cfg)
	c := embedclient.New(e.bus.Conn(), 30*time.Second)
	long := strings.Repeat("word ", 30)
	texts := make([]string, 64)
	for i := range texts {
		texts[i] = long
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, overloaded int
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Embed(context.Background(), texts)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, embedclient.ErrOverloaded):
				overloaded++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok == 0 || overloaded == 0 {
		t.Fatalf("ok=%d overloaded=%d: want some served and some refused", ok, overloaded)
	}
}

func TestModelFileErrorsNameTheFix(t *testing.T) {
	base := testConfig(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.onnx")
	if err := os.WriteFile(garbage, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	tests := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"model file that is not ONNX", func(c *Config) { c.Model = garbage }, "garbage.onnx"},
		{"missing ORT library", func(c *Config) { c.ORTLib = filepath.Join(dir, "libonnxruntime.so") }, "make models"},
		{"no MiniLM and no word vectors either", func(c *Config) { c.Model, c.ModelDir, c.WordVecPath = "fp32", dir, filepath.Join(dir, "none.json") }, "make models"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.mod(&cfg)
			cfg.DataDir = dir
			_, err := New(cfg, deps(t, db, b))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestMissingOrCorruptMiniLMFallsBackToTheLiteModelAndSaysWhy(t *testing.T) {
	base := testConfig(t)
	dir := t.TempDir()
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"MiniLM not downloaded", func(c *Config) { c.Model = "fp32" }},
		{"auto on a fresh box", func(c *Config) { c.Model = "auto" }},
		{"corrupt cached model", func(c *Config) {
			c.Model = "int8"
			_ = os.MkdirAll(filepath.Join(dir, "all-MiniLM-L6-v2"), 0o755)
			_ = os.WriteFile(filepath.Join(dir, "all-MiniLM-L6-v2", "model_quint8_avx2.onnx"), []byte("corrupt"), 0o644)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := testkit.DB(t)
			b := testkit.NATS(t, db)
			cfg := base
			cfg.ModelDir, cfg.DataDir = dir, dir
			tc.mod(&cfg)
			svc, err := New(cfg, deps(t, db, b))
			if err != nil {
				t.Fatal(err)
			}
			st, _ := db.GetEmbeddingState(context.Background())
			if svc.ModelID() != LiteModelID || st.ActiveModel != LiteModelID || st.ActiveDim != 100 {
				t.Fatalf("model %s, state %+v; want the lite model active", svc.ModelID(), st)
			}
			if !strings.Contains(st.Reason, "make models") || !strings.Contains(st.Reason, "Settings → Models") {
				t.Errorf("reason %q does not say how to get MiniLM", st.Reason)
			}
		})
	}
}

// TestSwitchingModelsKeepsSearchOnTheOldVectorsUntilAllMailIsReembedded runs
// a box on the lite model, then asks for another model: until every email
// has the new model's vectors, requests (what search embeds queries with)
// keep the old model and new mail gets both; then the new model is active
// and the old vectors go.
func TestSwitchingModelsKeepsSearchOnTheOldVectorsUntilAllMailIsReembedded(t *testing.T) {
	ctx := context.Background()
	db := testkit.DB(t)
	b := testkit.NATS(t, db)
	lite := testConfig(t)
	lite.Model = "lite"
	old, err := New(lite, deps(t, db, b))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 40 {
		id := insert(t, db, fmt.Sprintf("Mail %d", i), fmt.Sprintf("a booking for dinner number %d at the harbour", i))
		if err := old.HandleIngested(ctx, bus.EmailIngested{EmailID: id}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}

	onnx := testConfig(t) // the tiny BERT graph
	onnx.SwitchGrace = 0
	svc, err := New(onnx, deps(t, db, b))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := db.GetEmbeddingState(ctx)
	_, target := svc.models()
	if svc.ModelID() != LiteModelID || st.ActiveModel != LiteModelID || target == nil || st.TargetModel != target.ID() || st.StartedAt == nil {
		t.Fatalf("during the switch: answering with %s, state %+v", svc.ModelID(), st)
	}
	fresh := insert(t, db, "New mail", "arrived during the switch")
	if err := svc.HandleIngested(ctx, bus.EmailIngested{EmailID: fresh}); err != nil {
		t.Fatal(err)
	}
	if models := modelsOf(t, db, fresh); len(models) != 2 {
		t.Fatalf("mail arriving during a switch has vectors of %v, want both models", models)
	}
	if done, total, _ := db.EmbeddingCoverage(ctx, target.ID()); done != 1 || total != 41 {
		t.Fatalf("coverage before re-embedding %d of %d", done, total)
	}

	if err := svc.reembed(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ = db.GetEmbeddingState(ctx)
	if svc.ModelID() != target.ID() || st.ActiveModel != target.ID() || st.TargetModel != "" || st.ActiveDim != 384 {
		t.Fatalf("after re-embedding: answering with %s, state %+v", svc.ModelID(), st)
	}
	for _, id := range append(ids, fresh) {
		if models := modelsOf(t, db, id); len(models) != 1 || models[0] != target.ID() {
			t.Fatalf("email %s has vectors of %v after the switch, want only %s", id, models, target.ID())
		}
	}
}

func TestAnActiveModelThatCannotBeLoadedIsReplacedAtOnce(t *testing.T) {
	cfg := testConfig(t)
	cfg.SwitchGrace = 0
	db := testkit.DB(t)
	ctx := context.Background()
	id := insert(t, db, "Old vectors", "this email was embedded by an earlier model")
	v := make([]float32, 384)
	v[0] = 1
	if err := db.StoreEmbeddings(ctx, id, "old-model", []store.EmbeddedChunk{{N: 0, Vec: v}}); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkStageDone(ctx, id, Stage); err != nil {
		t.Fatal(err)
	}
	if err := db.UseEmbeddingModel(ctx, "old-model", 384, ""); err != nil {
		t.Fatal(err)
	}
	b := testkit.NATS(t, db)
	svc, err := New(cfg, deps(t, db, b))
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := db.GetEmbeddingState(ctx); st.ActiveModel != svc.ModelID() {
		t.Fatalf("state %+v, want %s active at once", st, svc.ModelID())
	}
	defer testkit.Run(t, svc)()
	testkit.Eventually(t, 20*time.Second, func() bool {
		got := chunks(t, db, id)
		return len(got) == 2 && got[0].model == svc.ModelID() && got[1].model == svc.ModelID()
	}, "old-model vectors were not replaced")
}

func modelsOf(t *testing.T, db *store.DB, id string) []string {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT DISTINCT model FROM embeddings WHERE email_id = $1 ORDER BY 1`, id)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func pgvectorOf(v []float32) any { return pgvector.NewVector(v) }
