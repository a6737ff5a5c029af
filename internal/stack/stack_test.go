package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ownyou/home/internal/stack"
	"github.com/ownyou/home/internal/testmail"
	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/config"
	"github.com/ownyou/home/pkg/embed"
	"github.com/ownyou/home/pkg/models"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// startStack runs all five services in this process against a fresh database
// and an embedded JetStream, and returns the gateway's base URL.
func startStack(t *testing.T) (baseURL string, db *store.DB) {
	t.Helper()
	return startStackWith(t, nil)
}

// startStackWith is startStack with the configuration adjusted by tweak
// (may be nil) just before the services are built.
func startStackWith(t *testing.T, tweak func(*stack.Config)) (baseURL string, db *store.DB) {
	t.Helper()
	var cfg stack.Config
	if err := config.Load(&cfg, "test", nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	common := cfg.Gateway.Common
	common.DataDir = t.TempDir()
	common.AdminAddr = ""
	common.DB.URL = testkit.DatabaseURL(t)
	dbURL := common.DB.URL
	common.Bus = testkit.BusConfig(testkit.NATSURL(t))
	cfg.SetCommon(common)
	cfg.Gateway.HTTPAddr = "127.0.0.1:0"
	// The embedder runs its real code on a generated BERT-shaped graph (no weights in tests).
	graph, err := embed.WriteGraph(t.TempDir(), "tiny.onnx", embed.TinyGraph())
	if err != nil {
		t.Fatal(err)
	}
	cfg.Embedder.Model, cfg.Embedder.ORTLib = graph, models.ORTLib()
	cfg.Embedder.Vocab = filepath.Join(testkit.SharedDir(t), "models", "all-MiniLM-L6-v2", "vocab.txt")
	cfg.Gateway.AdminToken = testToken
	// That graph's weights are random: the classifier keeps to word vectors
	// rather than switch to its vectors part-way through a test (which would
	// make classifications depend on timing). Its use of the embedder is
	// tested in services/classifier (embedding_test.go).
	cfg.Classifier.UseEmbedder = false
	// One import is one burst: the agents look at the mailbox a few seconds
	// after its last email is classified rather than after the default 30s.
	cfg.Agents.Debounce = 5 * time.Second
	cfg.Ops.HeartbeatInterval = time.Second
	if tweak != nil {
		tweak(&cfg)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	addr := make(chan string, 1)
	builders := stack.Builders(cfg)
	gw := builders[len(builders)-1]
	builders[len(builders)-1] = app.Builder{Name: gw.Name, Build: func(ctx context.Context, d app.Deps) (app.Service, error) {
		s, err := gw.Build(ctx, d)
		if err == nil {
			addr <- s.(interface{ Addr() string }).Addr()
		}
		return s, err
	}}
	builders = append(builders, stack.OpsBuilder(cfg)) // worker heartbeats for the pipeline view, as cmd/ownyou runs them
	go func() { done <- app.Run(ctx, "test", common, testkit.Logger(t), builders...) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("stack stopped with error: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("stack did not stop within 30s")
		}
	})
	select {
	case a := <-addr:
		baseURL = "http://" + a
	case err := <-done:
		done <- err // for the cleanup
		t.Fatalf("stack failed to start: %v", err)
	case <-time.After(2 * time.Minute): // the classifier indexes the taxonomy at start
		t.Fatal("stack did not start within 2m")
	}
	// the stack's own database, for tests that look behind the API
	db, err = store.Open(context.Background(), store.Config{URL: dbURL, MaxConns: 4}, testkit.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return baseURL, db
}

// testToken is the OWNYOU_ADMIN_TOKEN of the test stack; every API call sends it.
const testToken = "test-admin-token-0123456789"

// get and post call the API as the admin, with the bearer token.
func get(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	return http.DefaultClient.Do(req)
}

func post(url, contentType string, body io.Reader) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+testToken)
	return http.DefaultClient.Do(req)
}

func upload(t *testing.T, baseURL, name string, content []byte) map[string]any {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write(content)
	mw.Close()
	resp, err := post(baseURL+"/api/v1/imports", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: status %d: %v", resp.StatusCode, out)
	}
	return out
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

type pipeline struct {
	Stages []struct {
		Name      string `json:"name"`
		Processed int64  `json:"processed"`
		Total     int64  `json:"total"`
		Failed    int64  `json:"failed"`
		Pending   int64  `json:"pending"`
	} `json:"stages"`
}

func TestImportedMailboxFlowsThroughEveryStageExactlyOnce(t *testing.T) {
	baseURL, _ := startStack(t)
	const n = 60
	msgs := testmail.Messages(n)
	var mbox bytes.Buffer
	if err := testmail.WriteMbox(&mbox, msgs); err != nil {
		t.Fatal(err)
	}
	im := upload(t, baseURL, "inbox.mbox", mbox.Bytes())
	importURL := fmt.Sprintf("%s/api/v1/imports/%s", baseURL, im["id"])

	var imp store.Import
	testkit.Eventually(t, 30*time.Second, func() bool {
		getJSON(t, importURL, &imp)
		if imp.Status == store.ImportFailed {
			t.Fatalf("import failed: %+v", imp)
		}
		return imp.Status == store.ImportDone
	}, "import did not finish")

	var p pipeline
	testkit.Eventually(t, 60*time.Second, func() bool {
		getJSON(t, baseURL+"/api/v1/pipeline", &p)
		for _, s := range p.Stages {
			if s.Processed != n {
				return false
			}
		}
		return len(p.Stages) == 4
	}, "pipeline never reached %d everywhere: %+v", n, p)
	for _, s := range p.Stages {
		if s.Total != n || s.Failed != 0 || s.Pending != 0 {
			t.Errorf("stage %s: %+v, want %d processed of %d, none failed or pending", s.Name, s, n, n)
		}
	}

	if imp.Messages != n || imp.Imported != n || imp.Errors != 0 || imp.BytesRead != int64(mbox.Len()) {
		t.Errorf("import %+v, want %d messages imported, %d bytes read", imp, n, mbox.Len())
	}

	// Every email is listed exactly once, newest first, across pages.
	seen := map[string]bool{}
	var last time.Time
	cursor := ""
	for page := 0; ; page++ {
		var pg store.EmailPage
		getJSON(t, baseURL+"/api/v1/emails?limit=7&cursor="+cursor, &pg)
		for _, e := range pg.Emails {
			if seen[e.MessageID] {
				t.Fatalf("email %s listed twice", e.MessageID)
			}
			seen[e.MessageID] = true
			if !last.IsZero() && e.SentAt.After(last) {
				t.Fatalf("emails not newest first: %v after %v", e.SentAt, last)
			}
			last = *e.SentAt
		}
		if pg.NextCursor == "" {
			break
		}
		cursor = pg.NextCursor
	}
	for _, m := range msgs {
		if !seen[m.MessageID[1:len(m.MessageID)-1]] {
			t.Errorf("email %s missing from the list", m.MessageID)
		}
	}

	// Importing the same mailbox again stores nothing new and publishes nothing.
	im2 := upload(t, baseURL, "again.mbox", mbox.Bytes())
	testkit.Eventually(t, 30*time.Second, func() bool {
		getJSON(t, fmt.Sprintf("%s/api/v1/imports/%s", baseURL, im2["id"]), &imp)
		return imp.Status == store.ImportDone
	}, "second import status %q", imp.Status)
	if imp.Duplicates != n || imp.Imported != 0 {
		t.Errorf("re-import %+v, want %d duplicates and nothing imported", imp, n)
	}
	getJSON(t, baseURL+"/api/v1/pipeline", &p)
	for _, s := range p.Stages {
		if s.Processed != n {
			t.Errorf("after re-import stage %s processed %d, want %d", s.Name, s.Processed, n)
		}
	}
}

func TestBadUploadsGetClearErrors(t *testing.T) {
	baseURL, _ := startStack(t)
	cases := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantCode    string
	}{
		{"not multipart is rejected", "application/json", `{}`, http.StatusBadRequest, "bad_upload"},
		{"multipart without a file field is rejected", "multipart/form-data; boundary=x", "--x\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nhi\r\n--x--\r\n", http.StatusBadRequest, "bad_upload"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := post(baseURL+"/api/v1/imports", tc.contentType, bytes.NewBufferString(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e struct {
				Error struct{ Code, Message string }
			}
			json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != tc.wantStatus || e.Error.Code != tc.wantCode || e.Error.Message == "" {
				t.Fatalf("status %d error %+v, want %d %s with a message", resp.StatusCode, e.Error, tc.wantStatus, tc.wantCode)
			}
		})
	}
	t.Run("a request without credentials is refused", func(t *testing.T) {
		resp, err := http.Get(baseURL + "/api/v1/emails")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	})
	t.Run("an unknown import is not found", func(t *testing.T) {
		resp, err := get(baseURL + "/api/v1/imports/imp_nope")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("status %d, want 404", resp.StatusCode)
		}
	})
	t.Run("a broken message is recorded as an import error while the rest import", func(t *testing.T) {
		var mbox bytes.Buffer
		testmail.WriteMbox(&mbox, testmail.Messages(3))
		mbox.WriteString("From nobody Mon Jan  1 00:00:00 2026\n\n\n")
		im := upload(t, baseURL, "mixed.mbox", mbox.Bytes())
		var imp store.Import
		testkit.Eventually(t, 30*time.Second, func() bool {
			getJSON(t, fmt.Sprintf("%s/api/v1/imports/%s", baseURL, im["id"]), &imp)
			return imp.Status == store.ImportDone
		}, "import status %q", imp.Status)
		if imp.Imported != 3 || imp.Errors != 1 || len(imp.ErrorList) != 1 {
			t.Fatalf("import %+v, want 3 imported and 1 recorded error", imp)
		}
	})
}

// TestImportedMailIsSearchable checks the search path end to end: the
// embedder stored vectors for imported mail, the gateway embeds queries
// through the embedder over NATS, and hybrid search fuses both retrievers.
func TestImportedMailIsSearchable(t *testing.T) {
	baseURL, _ := startStack(t)
	const n = 20
	var mbox bytes.Buffer
	if err := testmail.WriteMbox(&mbox, testmail.Messages(n)); err != nil {
		t.Fatal(err)
	}
	upload(t, baseURL, "inbox.mbox", mbox.Bytes())
	var p pipeline
	testkit.Eventually(t, 60*time.Second, func() bool {
		getJSON(t, baseURL+"/api/v1/pipeline", &p)
		return len(p.Stages) == 4 && p.Stages[1].Processed == n
	}, "embedder never processed %d emails: %+v", n, p)

	type hit struct {
		Subject    string   `json:"subject"`
		Retrievers []string `json:"retrievers"`
		Snippet    string   `json:"snippet"`
	}
	var res struct {
		Model    string   `json:"model"`
		Hits     []hit    `json:"hits"`
		Warnings []string `json:"warnings"`
	}
	getJSON(t, baseURL+"/api/v1/search?q=%22lentil+stew%22", &res)
	if len(res.Warnings) != 0 || res.Model == "" || len(res.Hits) == 0 {
		t.Fatalf("hybrid search: %+v", res)
	}
	top := res.Hits[0]
	if !strings.HasPrefix(top.Subject, "Weekly recipes") || len(top.Retrievers) != 2 || !strings.Contains(top.Snippet, "lentil") {
		t.Fatalf("top hit %+v, want a recipes mail found by both retrievers", top)
	}
	res.Hits = nil
	getJSON(t, baseURL+"/api/v1/search?q=flight+to+lisbon&mode=semantic&limit=5", &res)
	if len(res.Hits) != 5 {
		t.Fatalf("semantic search: %+v", res)
	}
}

// importAndWait uploads msgs as an mbox and waits until every stage has
// processed all of them.
func importAndWait(t *testing.T, baseURL string, msgs []testmail.Message) {
	t.Helper()
	var mbox bytes.Buffer
	if err := testmail.WriteMbox(&mbox, msgs); err != nil {
		t.Fatal(err)
	}
	upload(t, baseURL, "inbox.mbox", mbox.Bytes())
	var p pipeline
	testkit.Eventually(t, 90*time.Second, func() bool {
		getJSON(t, baseURL+"/api/v1/pipeline", &p)
		for _, s := range p.Stages {
			if s.Processed != int64(len(msgs)) || s.Total != int64(len(msgs)) {
				return false
			}
		}
		return len(p.Stages) == 4
	}, "pipeline never reached %d everywhere: %+v", len(msgs), p)
}

// reprocess calls POST /api/v1/pipeline/{stage}/reprocess and returns how
// many emails it queued.
func reprocess(t *testing.T, baseURL, stage, mode string) int {
	t.Helper()
	resp, err := post(baseURL+"/api/v1/pipeline/"+stage+"/reprocess?mode="+mode, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Queued int `json:"queued"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("reprocess %s %s: status %d, %v", stage, mode, resp.StatusCode, err)
	}
	return out.Queued
}

// classifierState is what the classifier stage left in the database.
type classifierState struct {
	Rows     int            // classification rows
	Dupes    int            // (email, taxonomy, category) pairs stored more than once
	PerEmail map[string]int // classification rows per email
	Attempts map[string]int // classifier stage runs per email since its mark was last cleared
	Missions []string       // mission card ids
}

func readClassifierState(t *testing.T, db *store.DB) classifierState {
	t.Helper()
	ctx := context.Background()
	st := classifierState{PerEmail: map[string]int{}, Attempts: map[string]int{}}
	q := func(sql string, scan func(pgx.Rows) error) {
		rows, err := db.Pool.Query(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				t.Fatal(err)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	q(`SELECT email_id, count(*) FROM classifications GROUP BY email_id`, func(r pgx.Rows) error {
		var id string
		var n int
		err := r.Scan(&id, &n)
		st.PerEmail[id], st.Rows = n, st.Rows+n
		return err
	})
	q(`SELECT count(*) FROM (SELECT 1 FROM classifications GROUP BY email_id, taxonomy, category_id HAVING count(*) > 1) d`, func(r pgx.Rows) error {
		return r.Scan(&st.Dupes)
	})
	q(`SELECT email_id, attempts FROM email_stages WHERE stage = 'classifier' AND status = 'done'`, func(r pgx.Rows) error {
		var id string
		var n int
		err := r.Scan(&id, &n)
		st.Attempts[id] = n
		return err
	})
	q(`SELECT id FROM missions ORDER BY id`, func(r pgx.Rows) error {
		var id string
		err := r.Scan(&id)
		st.Missions = append(st.Missions, id)
		return err
	})
	return st
}

// TestReprocessRepublishesThroughTheStack checks that the pipeline's
// reprocess buttons do more than answer 202: "missing" runs an email whose
// classification was lost through the classifier again, and "all" re-runs
// every email without duplicating a classification or a mission.
func TestReprocessRepublishesThroughTheStack(t *testing.T) {
	baseURL, db := startStack(t)
	ctx := context.Background()
	msgs := append(testmail.Messages(10), testmail.Bookings(time.Now())...)
	importAndWait(t, baseURL, msgs)
	// Let the agents' one look at the new mail finish, so the missions are settled.
	waitForCards(t, baseURL)
	testkit.Eventually(t, 30*time.Second, func() bool {
		var running int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM agent_runs WHERE outcome = 'running'`).Scan(&running); err != nil {
			t.Fatal(err)
		}
		return running == 0
	}, "agent runs still running")
	before := readClassifierState(t, db)
	if before.Rows == 0 || len(before.Attempts) != len(msgs) {
		t.Fatalf("after the import: %d classifications, classifier done for %d of %d emails", before.Rows, len(before.Attempts), len(msgs))
	}
	var lost string // an email that has classifications, whose stage we erase
	for id, n := range before.PerEmail {
		if n > 0 && (lost == "" || id < lost) {
			lost = id
		}
	}

	t.Run("missing re-classifies the email that lost its stage", func(t *testing.T) {
		if _, err := db.Pool.Exec(ctx, `DELETE FROM classifications WHERE email_id = $1`, lost); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `DELETE FROM email_stages WHERE email_id = $1 AND stage = 'classifier'`, lost); err != nil {
			t.Fatal(err)
		}
		if n := reprocess(t, baseURL, "classifier", "missing"); n != 1 {
			t.Fatalf("reprocess missing queued %d emails, want the 1 that lost its stage", n)
		}
		var got classifierState
		testkit.Eventually(t, 30*time.Second, func() bool {
			got = readClassifierState(t, db)
			return got.Attempts[lost] == 1 && got.PerEmail[lost] == before.PerEmail[lost]
		}, "email %s not classified again: %d classifications (had %d), stage runs %d", lost, got.PerEmail[lost], before.PerEmail[lost], got.Attempts[lost])
		if got.Rows != before.Rows {
			t.Errorf("%d classifications after reprocessing one email, want %d as before", got.Rows, before.Rows)
		}
		if n := reprocess(t, baseURL, "classifier", "missing"); n != 0 {
			t.Errorf("a second reprocess missing queued %d emails, want none", n)
		}
	})

	t.Run("all re-runs every email idempotently", func(t *testing.T) {
		var t0 time.Time
		if err := db.Pool.QueryRow(ctx, `SELECT now()`).Scan(&t0); err != nil {
			t.Fatal(err)
		}
		if n := reprocess(t, baseURL, "classifier", "all"); n != len(msgs) {
			t.Fatalf("reprocess all queued %d emails, want %d", n, len(msgs))
		}
		var rerun int
		testkit.Eventually(t, 60*time.Second, func() bool {
			if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM email_stages WHERE stage = 'classifier' AND status = 'done' AND updated_at > $1`, t0).Scan(&rerun); err != nil {
				t.Fatal(err)
			}
			return rerun == len(msgs)
		}, "not every email went through the classifier again")
		got := readClassifierState(t, db)
		if got.Rows != before.Rows || got.Dupes != 0 {
			t.Errorf("after reprocess all: %d classifications (%d duplicated), want %d as before", got.Rows, got.Dupes, before.Rows)
		}
		if !slices.Equal(got.Missions, before.Missions) {
			t.Errorf("missions changed with reprocess all: %v, were %v", got.Missions, before.Missions)
		}
		var p pipeline
		getJSON(t, baseURL+"/api/v1/pipeline", &p)
		for _, s := range p.Stages {
			if s.Processed != int64(len(msgs)) || s.Total != int64(len(msgs)) || s.Failed != 0 {
				t.Errorf("stage %s after reprocess all: %+v, want %d of %d, none failed", s.Name, s, len(msgs), len(msgs))
			}
		}
	})
}
