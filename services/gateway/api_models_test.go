package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ownyou/home/pkg/app"
	"github.com/ownyou/home/pkg/store"
	"github.com/ownyou/home/pkg/testkit"
)

// modelsEnv is a gateway whose pinned manifests point at a local file
// server (the real hosts are out of reach): "weights" is a 3 MiB file
// served with Range support, "broken" a file whose bytes do not match its
// sha256, "gone" a URL that answers 404.
type modelsEnv struct {
	t       *testing.T
	srv     *Server
	http    *httptest.Server
	files   *httptest.Server
	db      *store.DB
	weights []byte

	mu     sync.Mutex
	ranges []string // Range headers the file server saw
}

func newModelsEnv(t *testing.T) *modelsEnv {
	t.Helper()
	e := &modelsEnv{t: t, db: testkit.DB(t), weights: bytes.Repeat([]byte("0123456789abcdef"), 3<<16)}
	e.files = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.ranges = append(e.ranges, r.Header.Get("Range"))
		e.mu.Unlock()
		switch r.URL.Path {
		case "/weights.bin":
			http.ServeContent(w, r, "weights.bin", time.Time{}, bytes.NewReader(e.weights))
		case "/broken.bin":
			_, _ = w.Write(bytes.Repeat([]byte("x"), 100))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(e.files.Close)
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	manifest := func(name string, optional bool, path, url string, size int, sha string) *fstest.MapFile {
		b, _ := json.Marshal(map[string]any{"name": name, "version": "1", "license": "MIT", "optional": optional,
			"files": []map[string]any{{"path": path, "url": url, "size": size, "sha256": sha}}})
		return &fstest.MapFile{Data: b}
	}
	fsys := fstest.MapFS{
		"all-minilm-l6-v2.json": manifest("all-minilm-l6-v2", true, "all-MiniLM-L6-v2/model.onnx", e.files.URL+"/weights.bin", len(e.weights), sum(e.weights)),
		"broken.json":           manifest("broken", false, "broken/file.bin", e.files.URL+"/broken.bin", 100, sum(bytes.Repeat([]byte("y"), 100))),
		"gone.json":             manifest("gone", false, "gone/file.bin", e.files.URL+"/nothing-here.bin", 10, sum([]byte("0123456789"))),
	}
	cfg := Config{HTTPAddr: "127.0.0.1:0", AdminToken: testAdminToken}
	cfg.DataDir = t.TempDir()
	srv, err := New(cfg, app.Deps{DB: e.db, Bus: testkit.NATS(t, nil), Log: testkit.Logger(t), Health: app.NewHealth()})
	if err != nil {
		t.Fatal(err)
	}
	srv.models.fsys = fsys
	t.Cleanup(func() { srv.stopBackground(); srv.ln.Close() })
	e.srv = srv
	e.http = httptest.NewServer(asAdmin(srv.Handler()))
	t.Cleanup(e.http.Close)
	return e
}

func (e *modelsEnv) do(method, path, contentType, body string) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (e *modelsEnv) model(name string) modelView {
	e.t.Helper()
	code, b := e.do("GET", "/api/v1/models", "", "")
	var r modelsResponse
	if code != http.StatusOK || json.Unmarshal(b, &r) != nil {
		e.t.Fatalf("GET /api/v1/models: %d %s", code, b)
	}
	for _, m := range r.Models {
		if m.Name == name {
			return m
		}
	}
	e.t.Fatalf("model %s not listed: %s", name, b)
	return modelView{}
}

func (e *modelsEnv) waitFor(name string, statuses ...string) modelView {
	e.t.Helper()
	var m modelView
	testkit.Eventually(e.t, 30*time.Second, func() bool {
		m = e.model(name)
		for _, s := range statuses {
			if m.Status == s {
				return true
			}
		}
		return false
	}, "model %s never reached %v", name, statuses)
	return m
}

func TestModelDownloadFromSettingsResumesAndVerifies(t *testing.T) {
	e := newModelsEnv(t)
	if m := e.model("all-minilm-l6-v2"); m.Status != "missing" || !m.Optional || m.Size != int64(len(e.weights)) || m.Title == "" {
		t.Fatalf("before: %+v", m)
	}
	// An interrupted download left the first MiB: it shows as partial, and
	// the download resumes from there instead of starting again.
	dst := filepath.Join(e.srv.models.dir, "all-MiniLM-L6-v2", "model.onnx")
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".part", e.weights[:1<<20], 0o644); err != nil {
		t.Fatal(err)
	}
	if m := e.model("all-minilm-l6-v2"); m.Status != "partial" || m.Progress < 0.3 || m.Progress > 0.4 {
		t.Fatalf("with a partial download: %+v", m)
	}
	if code, b := e.do("POST", "/api/v1/models/all-minilm-l6-v2/download", "", ""); code != http.StatusAccepted {
		t.Fatalf("download: %d %s", code, b)
	}
	e.waitFor("all-minilm-l6-v2", "verified")
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, e.weights) {
		t.Fatal("downloaded file differs")
	}
	e.mu.Lock()
	ranges := fmt.Sprint(e.ranges)
	e.mu.Unlock()
	if !strings.Contains(ranges, fmt.Sprintf("bytes=%d-", 1<<20)) {
		t.Errorf("the download did not resume (Range headers %s)", ranges)
	}
	// Asking again for a verified model changes nothing.
	if code, _ := e.do("POST", "/api/v1/models/all-minilm-l6-v2/download", "", ""); code != http.StatusOK {
		t.Errorf("download of a verified model: %d", code)
	}
}

func TestFailedModelDownloadsSayWhyAndWhichURL(t *testing.T) {
	e := newModelsEnv(t)
	for _, tc := range []struct{ name, want string }{{"gone", "404"}, {"broken", "sha256"}} {
		t.Run(tc.name, func(t *testing.T) {
			if code, b := e.do("POST", "/api/v1/models/"+tc.name+"/download", "", ""); code != http.StatusAccepted {
				t.Fatalf("download: %d %s", code, b)
			}
			m := e.waitFor(tc.name, "failed")
			if !strings.Contains(m.Error, tc.want) || !strings.HasPrefix(m.URL, e.files.URL) {
				t.Errorf("failed download: error %q, url %q; want the reason (%s) and the URL tried", m.Error, m.URL, tc.want)
			}
		})
	}
	if code, _ := e.do("POST", "/api/v1/models/nope/download", "", ""); code != http.StatusNotFound {
		t.Errorf("unknown model: %d", code)
	}
}

func TestEmbeddingPreferenceIsSetFromSettings(t *testing.T) {
	e := newModelsEnv(t)
	if code, b := e.do("PUT", "/api/v1/models/embedding", "application/json", `{"preference":"lite"}`); code != http.StatusOK || !strings.Contains(string(b), `"preference":"lite"`) {
		t.Fatalf("set lite: %d %s", code, b)
	}
	if st, _ := e.db.GetEmbeddingState(context.Background()); st.Preference != store.EmbedPreferLite {
		t.Fatalf("stored preference %q", st.Preference)
	}
	if code, _ := e.do("PUT", "/api/v1/models/embedding", "application/json", `{"preference":"gpt"}`); code != http.StatusBadRequest {
		t.Errorf("unknown preference: %d", code)
	}
	if code, _ := e.do("PUT", "/api/v1/models/embedding", "text/plain", `{"preference":"auto"}`); code != http.StatusUnsupportedMediaType {
		t.Errorf("a form-like post: %d, want 415", code)
	}
}
