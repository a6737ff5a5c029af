package embedder

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	direct, err := e.svc.emb.Embed(ctx, []string{"flight to lisbon"})
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
		{"manifest model missing from cache", func(c *Config) { c.Model = "fp32"; c.ModelDir = dir }, "make models"},
		{"corrupt cached model", func(c *Config) {
			c.Model, c.ModelDir = "int8", dir
			_ = os.MkdirAll(filepath.Join(dir, "all-MiniLM-L6-v2"), 0o755)
			_ = os.WriteFile(filepath.Join(dir, "all-MiniLM-L6-v2", "model_quint8_avx2.onnx"), []byte("corrupt"), 0o644)
		}, "make models"},
		{"model file that is not ONNX", func(c *Config) { c.Model = garbage }, "garbage.onnx"},
		{"missing ORT library", func(c *Config) { c.ORTLib = filepath.Join(dir, "libonnxruntime.so") }, "make models"},
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

func TestModelChangeReembedsOldVectors(t *testing.T) {
	cfg := testConfig(t)
	db := testkit.DB(t)
	id := insert(t, db, "Old vectors", "this email was embedded by an earlier model")
	vec := make([]float32, 384)
	vec[0] = 1
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO embeddings (email_id, model, chunk, embedding) VALUES ($1, 'old-model', 0, $2)`, id, pgvectorOf(vec)); err != nil {
		t.Fatal(err)
	}
	b := testkit.NATS(t, db)
	svc, err := New(cfg, deps(t, db, b))
	if err != nil {
		t.Fatal(err)
	}
	defer testkit.Run(t, svc)()
	testkit.Eventually(t, 20*time.Second, func() bool {
		got := chunks(t, db, id)
		return len(got) == 2 && got[0].model == svc.ModelID() && got[1].model == svc.ModelID()
	}, "old-model vectors were not replaced")
}

func pgvectorOf(v []float32) any { return pgvector.NewVector(v) }
